//===- GoldenVariants.h - the golden fixtures' checkpoints -------*- C++ -*-===//
//
// The variants of tests/golden/manifest.json and the checkpoint directory of each
// (its "checkpoint", relative to the manifest, when the fixture keeps outputs
// only, as the trained model's do; else its "dir"), for tests that compile them.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TESTS_GOLDEN_GOLDENVARIANTS_H
#define MOEC_TESTS_GOLDEN_GOLDENVARIANTS_H

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Path.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace moec::testing {

struct GoldenVariant {
  std::string name;       ///< e.g. "v3", "poems_fp8"
  std::string checkpoint; ///< its checkpoint directory
};

/// Every variant of `goldenDir`/manifest.json, in its order; empty if unreadable.
inline std::vector<GoldenVariant> goldenVariants(const std::string &goldenDir) {
  std::vector<GoldenVariant> out;
  std::ifstream in(goldenDir + "/manifest.json");
  nlohmann::json manifest = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded())
    return out;
  for (const auto &v : manifest["variants"]) {
    llvm::SmallString<256> dir(goldenDir);
    llvm::sys::path::append(dir, v.value("checkpoint", v["dir"].get<std::string>()));
    llvm::sys::path::remove_dots(dir, /*remove_dot_dot=*/true);
    out.push_back({v["name"].get<std::string>(), std::string(dir)});
  }
  return out;
}

} // namespace moec::testing

#endif // MOEC_TESTS_GOLDEN_GOLDENVARIANTS_H
