//===- Liveness.h - Live ranges of the buffers of an entry point -*- C++ -*-===//
//
// One definition of "live", shared by the loader (which rejects plans whose live
// buffers overlap in the arena) and the plan writer (which packs buffers into the
// arena). A buffer is live from the first step that touches it to the last; an
// entry point's inputs are live from before its first step, its outputs until after
// its last. Both ends are inclusive: a step's operands and results are live at once.
// The block-scale buffer of a block-quantized activation is live whenever its
// buffer is (a step that reads or writes one reads or writes both).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_LIVENESS_H
#define MOEC_RUNTIME_LIVENESS_H

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace moec {

/// Steps [first, last] of an entry point during which a buffer is live. -1 means
/// "before the first step" and numSteps "after the last".
struct LiveRange {
  int64_t first = std::numeric_limits<int64_t>::max(); ///< first live step
  int64_t last = -2;                                  ///< last live step
  /// True when the entry point touches the buffer at all.
  bool used() const { return first <= last; }
  /// True when both are used and their ranges share a step.
  bool overlaps(const LiveRange &other) const {
    return used() && other.used() && first <= other.last && other.first <= last;
  }
};

/// Computes the live range of each of `numBuffers` buffers. `stepBuffers[s]` lists
/// the buffers step s reads or writes; every index must be < numBuffers.
/// `scales`, if not empty, has one entry per buffer: the index of its block-scale
/// buffer (< numBuffers), or -1.
std::vector<LiveRange> computeLiveRanges(size_t numBuffers,
                                         const std::vector<int32_t> &inputs,
                                         const std::vector<int32_t> &outputs,
                                         const std::vector<std::vector<int32_t>> &stepBuffers,
                                         const std::vector<int32_t> &scales = {});

} // namespace moec

#endif // MOEC_RUNTIME_LIVENESS_H
