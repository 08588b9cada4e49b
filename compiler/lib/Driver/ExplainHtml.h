//===- ExplainHtml.h - The explain report as one HTML document --*- C++ -*-===//
//
// `moec explain` collects what happened during a compile into one JSON object
// (its layout: docs/explain.md, "The JSON facts"); this renders that object as
// the self-contained HTML report of docs/explain.md, "The HTML report": inline
// CSS and SVG only, no script, nothing fetched.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_DRIVER_EXPLAINHTML_H
#define MOEC_DRIVER_EXPLAINHTML_H

#include <nlohmann/json.hpp>

#include <string>

namespace moec::driver {

/// The HTML5 document for `facts`. Every string taken from the facts is
/// HTML-escaped. Any member may be missing, null or of an unexpected type: the
/// report then says "not applicable", "none" or "—" for it; this never throws
/// and never aborts.
std::string renderExplainHtml(const nlohmann::json &facts);

} // namespace moec::driver

#endif // MOEC_DRIVER_EXPLAINHTML_H
