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

/// A buffer, weight or state read once from the flatbuffer.
struct TensorInfo {
  plan::DType dtype = plan::DType::F32; ///< element type
  std::vector<int64_t> shape;           ///< dims; -1 = token dim (buffers); a row (states)
  uint64_t bytes = 0;                   ///< size for max_tokens (buffers); of a row (states)
  std::vector<int64_t> blockShape;      ///< [br, bc] when block-quantized, else empty
  int32_t scale = -1;                   ///< buffer/weight holding the block scales; -1 none
  std::string label;                    ///< "buffers[3] (name)" for messages
};

/// What the checks share.
struct PlanInfo {
  const plan::Plan *root = nullptr; ///< flatbuffers-verified root
  std::vector<TensorInfo> buffers;  ///< filled by verifyBuffers
  std::vector<TensorInfo> weights;  ///< filled by verifyWeights
  std::vector<TensorInfo> states;   ///< filled by verifyStates
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
/// Copies a flatbuffer vector of int64 (no unaligned loads); empty for null.
std::vector<int64_t> readDims(const flatbuffers::Vector<int64_t> *dims);

/// Top-level scalars (max_tokens). The model config is metadata and not checked.
Status verifyScalars(const plan::Plan &root);
/// Buffer dtypes, shapes, sizes, alignment, arena bounds and activation block scales.
Status verifyBuffers(PlanInfo &info);
/// Weight dtypes, shapes, sizes, block shapes and scales (not their place in files).
Status verifyWeights(PlanInfo &info);
/// State dtypes and row shapes.
Status verifyStates(PlanInfo &info);
/// Per-step kind, attributes, index ranges and shapes.
Status verifySteps(const PlanInfo &info);
/// Kernel module entries.
Status verifyKernelModules(const PlanInfo &info);
/// Entry points: step ranges, "prefill" and "decode" present, the signature and
/// token bound, def-before-use of buffers and states, where index values come from,
/// and that no two buffers overlap in the arena while both are live. Fills `entries`
/// (one per entry point) and the indices of prefill and decode.
Status verifyEntryPoints(const PlanInfo &info, std::vector<EntryPointInfo> *entries,
                         size_t *prefill, size_t *decode);

} // namespace moec::detail

#endif // MOEC_RUNTIME_LIB_PLANCHECKS_H
