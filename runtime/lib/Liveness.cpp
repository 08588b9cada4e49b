//===- Liveness.cpp - Live ranges of the buffers of an entry point --------===//
#include "moec/runtime/Liveness.h"

#include <algorithm>

namespace moec {

std::vector<LiveRange> computeLiveRanges(size_t numBuffers,
                                         const std::vector<int32_t> &inputs,
                                         const std::vector<int32_t> &outputs,
                                         const std::vector<std::vector<int32_t>> &stepBuffers,
                                         const std::vector<int32_t> &scales) {
  std::vector<LiveRange> ranges(numBuffers);
  auto touchOne = [&](int32_t buffer, int64_t step) {
    LiveRange &range = ranges[static_cast<size_t>(buffer)];
    range.first = std::min(range.first, step);
    range.last = std::max(range.last, step);
  };
  auto touch = [&](int32_t buffer, int64_t step) {
    touchOne(buffer, step);
    if (!scales.empty() && scales[static_cast<size_t>(buffer)] >= 0)
      touchOne(scales[static_cast<size_t>(buffer)], step);
  };
  for (int32_t buffer : inputs)
    touch(buffer, -1);
  for (size_t step = 0; step < stepBuffers.size(); ++step)
    for (int32_t buffer : stepBuffers[step])
      touch(buffer, static_cast<int64_t>(step));
  for (int32_t buffer : outputs)
    touch(buffer, static_cast<int64_t>(stepBuffers.size()));
  return ranges;
}

} // namespace moec
