//===- ArenaPlanner.cpp - Packs a plan's buffers into the arena -----------===//
//
// First-fit by decreasing size over the live ranges the loader checks (Liveness.h):
// a simple, deterministic packing, good enough for tests and small models. The
// compiler's memory-planning pass may assign offsets itself instead.
//
//===----------------------------------------------------------------------===//
#include "moec/plan_writer/PlanWriter.h"

#include "moec/runtime/Liveness.h"

#include <algorithm>
#include <cinttypes>

namespace moec {

Status PlanWriter::planArena() {
  size_t count = plan_.buffers.size();
  uint64_t tokens = plan_.max_tokens > 0 ? uint64_t(plan_.max_tokens) : 0;
  for (size_t i = 0; i < count; ++i) {
    plan::BufferT &buffer = *plan_.buffers[i];
    if (!tensorBytes(buffer.shape, buffer.dtype, tokens, &buffer.size))
      return Status::error("buffers[%zu] (%s): size overflows 64 bits", i, buffer.name.c_str());
  }

  std::vector<int32_t> scales(count);
  for (size_t i = 0; i < count; ++i) {
    scales[i] = plan_.buffers[i]->scale;
    if (scales[i] < -1 || scales[i] >= int32_t(count))
      return Status::error("buffers[%zu] (%s): scale buffer %d does not exist", i,
                           plan_.buffers[i]->name.c_str(), scales[i]);
  }

  // Live ranges per entry point; two buffers conflict if they are live together in any.
  std::vector<std::vector<LiveRange>> ranges;
  for (const auto &entry : plan_.entry_points) {
    std::vector<std::vector<int32_t>> stepBuffers;
    for (uint32_t s = 0; s < entry->num_steps; ++s) {
      size_t index = size_t(entry->first_step) + s;
      if (index >= plan_.steps.size())
        return Status::error("entry point %s: step %zu does not exist", entry->name.c_str(),
                             index);
      const plan::StepT &step = *plan_.steps[index];
      std::vector<int32_t> touched = step.operands;
      touched.insert(touched.end(), step.results.begin(), step.results.end());
      for (int32_t buffer : touched)
        if (buffer < 0 || size_t(buffer) >= count)
          return Status::error("steps[%zu]: buffer %d does not exist", index, buffer);
      stepBuffers.push_back(std::move(touched));
    }
    for (int32_t buffer : entry->inputs)
      if (buffer < 0 || size_t(buffer) >= count)
        return Status::error("entry point %s: buffer %d does not exist", entry->name.c_str(),
                             buffer);
    for (int32_t buffer : entry->outputs)
      if (buffer < 0 || size_t(buffer) >= count)
        return Status::error("entry point %s: buffer %d does not exist", entry->name.c_str(),
                             buffer);
    ranges.push_back(
        computeLiveRanges(count, entry->inputs, entry->outputs, stepBuffers, scales));
  }
  auto conflict = [&](size_t a, size_t b) {
    for (const auto &perEntry : ranges)
      if (perEntry[a].overlaps(perEntry[b]))
        return true;
    return false;
  };

  std::vector<size_t> order(count);
  for (size_t i = 0; i < count; ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return plan_.buffers[a]->size > plan_.buffers[b]->size;
  });

  std::vector<size_t> placed;
  uint64_t arenaEnd = 0;
  for (size_t index : order) {
    plan::BufferT &buffer = *plan_.buffers[index];
    // Byte ranges of placed buffers that are live together with this one.
    std::vector<std::pair<uint64_t, uint64_t>> busy;
    for (size_t other : placed)
      if (conflict(index, other))
        busy.emplace_back(plan_.buffers[other]->offset,
                          plan_.buffers[other]->offset + plan_.buffers[other]->size);
    std::sort(busy.begin(), busy.end());
    uint64_t offset = 0;
    for (const auto &[begin, end] : busy) {
      if (offset + buffer.size <= begin)
        break;
      offset = std::max(offset, alignUp(end, kPlanAlignment));
    }
    buffer.offset = offset;
    uint64_t end;
    if (!checkedAdd(offset, buffer.size, &end))
      return Status::error("buffers[%zu] (%s): arena offset overflows 64 bits", index,
                           buffer.name.c_str());
    arenaEnd = std::max(arenaEnd, end);
    placed.push_back(index);
  }
  plan_.arena_size = alignUp(arenaEnd, kPlanAlignment);
  return Status();
}

} // namespace moec
