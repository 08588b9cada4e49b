//===- PlanJson.h - A loaded plan printed as JSON ---------------*- C++ -*-===//
//
// For people and tests (`moec-run PLAN --dump-plan`): the plan's whole flatbuffer
// as JSON, printed by flatbuffers' own text generator against the schema's text
// (runtime/schema/plan.fbs, embedded at build time), so every field of every table
// appears under its schema name, defaults included: entry points, steps with their
// attributes, buffers, states, weights (names, dtypes, shapes, block shapes, file
// and offset), kernel modules, provenance and the model metadata. Weight bytes are
// not part of the flatbuffer and are never printed. The text can be turned back
// into a flatbuffer with `flatc -b plan.fbs`.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_PLANJSON_H
#define MOEC_RUNTIME_PLANJSON_H

#include "moec/runtime/Plan.h"

#include <string>

namespace moec {

/// Prints `plan` as JSON into `json` (ending with a newline). Fails, naming the
/// plan, when a string of the plan is not valid UTF-8 (JSON cannot hold it).
Status planToJson(const Plan &plan, std::string *json);

} // namespace moec

#endif // MOEC_RUNTIME_PLANJSON_H
