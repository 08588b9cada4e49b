//===- MemoryPlan.h - The arena plan of a loaded plan, for people -*- C++ -*-===//
//
// What the compiler's arena planner decided, read back from a plan: for every
// activation buffer its arena offset, size (for the plan's max_tokens) and live
// range in each entry point, the arena's size (the peak), and what giving every
// buffer its own memory would cost instead. `moec-run PLAN --memory-plan` prints
// it; the explain report draws it.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_MEMORYPLAN_H
#define MOEC_RUNTIME_MEMORYPLAN_H

#include "moec/runtime/Liveness.h"
#include "moec/runtime/Plan.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec {

/// The arena plan of one plan.
struct MemoryPlan {
  struct Entry {
    std::string name;   ///< "prefill", "decode"
    int64_t numSteps = 0;
  };
  struct Buffer {
    std::string name;
    int32_t index = -1;   ///< in Plan.buffers
    uint64_t offset = 0;  ///< in the arena
    uint64_t size = 0;    ///< bytes for max_tokens
    /// Per entry point (same order as entries): the steps, counted from the entry
    /// point's first, during which the buffer is live; -1 is "before the first
    /// step" (an input), numSteps "after the last" (an output).
    std::vector<LiveRange> live;
  };
  std::vector<Entry> entries;
  std::vector<Buffer> buffers;  ///< the buffers some entry point uses, by offset
  int64_t maxTokens = 0;
  uint64_t arenaBytes = 0;      ///< the arena: the peak
  uint64_t separateBytes = 0;   ///< every used buffer in memory of its own
};

/// Reads the arena plan out of a loaded (verified) plan.
MemoryPlan describeMemoryPlan(const Plan &plan);
/// As a table for people.
std::string memoryPlanText(const MemoryPlan &memory);
/// As JSON (one object: entries, buffers with live ranges, totals).
std::string memoryPlanJson(const MemoryPlan &memory);

} // namespace moec

#endif // MOEC_RUNTIME_MEMORYPLAN_H
