//===- ReferenceForward.h - Plain-loop DeepSeek forward pass ----*- C++ -*-===//
//
// The oracle of the executor tests: the spec's forward pass (sections 4-6) written
// as straightforward double-precision loops over the TinyModel's decoded weights,
// with the naive (non-absorbed) MLA form and interleaved RoPE. It shares no code
// with the kernels.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TESTS_RUNTIME_REFERENCEFORWARD_H
#define MOEC_TESTS_RUNTIME_REFERENCEFORWARD_H

#include "TinyModel.h"

#include <vector>

namespace moec::test {

/// Logits and how safely the routing was decided.
struct ReferenceResult {
  std::vector<double> logits; ///< [T, vocab]
  /// Smallest gap, over all tokens and MoE layers, between the last kept and the first
  /// dropped candidate (groups and experts). A tiny gap means fp32 rounding could
  /// flip the routing, so a test must not depend on it.
  double minRoutingMargin = 1e300;
};

/// Runs one sequence of `tokens` at positions 0..n-1.
ReferenceResult referenceForward(const TinyModel &model, const std::vector<int32_t> &tokens);

} // namespace moec::test

#endif // MOEC_TESTS_RUNTIME_REFERENCEFORWARD_H
