//===- PlanChecks.h - Semantic checks of a plan (internal) ------*- C++ -*-===//
//
// The second loading phase, after the flatbuffers verifier. Each function returns
// an error whose message names the element ("steps[12]: ...") but not the file; the
// loader adds the file name.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_LIB_PLANCHECKS_H
#define MOEC_RUNTIME_LIB_PLANCHECKS_H

#include "moec/runtime/Plan.h"

#include <string>
#include <vector>

namespace moec::detail {

using moec::kMaxModelDim;

/// A buffer or weight read once from the flatbuffer.
struct TensorInfo {
  plan::DType dtype = plan::DType::F32; ///< element type
  std::vector<int64_t> shape;           ///< dims; -1 = token dim
  uint64_t bytes = 0;                   ///< size for max_tokens
  std::string label;                    ///< "buffers[3] (name)" for messages
};

/// What the checks share.
struct PlanInfo {
  const plan::Plan *root = nullptr; ///< flatbuffers-verified root
  std::vector<TensorInfo> buffers;  ///< filled by verifyBuffers
  std::vector<TensorInfo> weights;  ///< filled by verifyWeights
};

/// `text` made safe for a one-line message: control and non-ASCII bytes become
/// \xNN, and text longer than `limit` bytes is cut with "...".
std::string printableText(const std::string &text, size_t limit = 160);
/// "[-1, 64]".
std::string formatShape(const std::vector<int64_t> &shape);
/// "kind[i]" or "kind[i] (name)".
std::string elementLabel(const char *kind, size_t index, const flatbuffers::String *name);
/// snake_case name of a step kind; nullptr for a value outside the enum.
const char *kindNameOrNull(plan::StepKind kind);
/// Name of a dtype, or "dtype(N)" for a value outside the enum.
std::string dtypeLabel(plan::DType type);

/// Model config and top-level scalars (max_tokens).
Status verifyConfig(const plan::Plan &root);
/// Buffer dtypes, shapes, sizes, alignment and arena bounds.
Status verifyBuffers(PlanInfo &info);
/// Weight dtypes, shapes, sizes and block scales (not their location in files).
Status verifyWeights(PlanInfo &info);
/// Per-step kind, attributes, index ranges and shapes.
Status verifySteps(const PlanInfo &info);
/// Kernel module entries.
Status verifyKernelModules(const PlanInfo &info);
/// Entry points: step ranges, the forward signature, def-before-use, and that no two
/// buffers overlap in the arena while both are live. Fills `forward`.
Status verifyEntryPoints(const PlanInfo &info, ForwardEntry *forward);

} // namespace moec::detail

#endif // MOEC_RUNTIME_LIB_PLANCHECKS_H
