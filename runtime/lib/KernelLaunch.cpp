//===- KernelLaunch.cpp - a plan kernel's arguments and launch shape ------===//

#include "moec/runtime/KernelLaunch.h"

#include "moec/runtime/Plan.h"

#include <algorithm>
#include <cinttypes>

namespace moec {
namespace {

/// The fields of a KernelEntry a launch needs, from either form.
struct EntryFields {
  std::array<uint32_t, 3> grid{1, 1, 1}, block{1, 1, 1};
  uint32_t tokensPerBlock = 0, sharedBytes = 0;
  uint64_t scratchPerToken = 0;
  bool weightTable = false;
  bool tma = false;
};

KernelLaunch launch(const EntryFields &e, const KernelStepResources &r, int32_t tokens) {
  KernelLaunch k;
  k.args = r.buffers;
  if (e.weightTable)
    k.args.push_back(r.weightTable);
  else
    k.args.insert(k.args.end(), r.weights.begin(), r.weights.end());
  if (e.tma)
    k.args.insert(k.args.end(), r.tensorMaps.begin(), r.tensorMaps.end());
  for (size_t s = 0; s < r.stateData.size(); ++s) {
    k.args.push_back(r.stateData[s]);
    k.args.push_back(uint64_t(r.stateRows[s]));
  }
  if (e.scratchPerToken > 0)
    k.args.push_back(r.scratch);
  k.args.push_back(uint64_t(uint32_t(tokens)));
  k.grid = e.grid;
  k.block = e.block;
  if (e.tokensPerBlock)
    k.grid[0] = (uint32_t(tokens) + e.tokensPerBlock - 1) / e.tokensPerBlock;
  k.sharedBytes = e.sharedBytes;
  return k;
}

} // namespace

StepArguments stepArguments(const Plan &plan, uint32_t index) {
  StepArguments a;
  const plan::Step *step = plan.root().steps()->Get(index);
  const auto *buffers = plan.root().buffers();
  for (const auto *list : {step->operands(), step->results()})
    if (list)
      for (int32_t b : *list)
        a.bufferOffsets.push_back(buffers->Get(uint32_t(b))->offset());
  if (step->weights())
    for (int32_t w : *step->weights()) {
      a.weights.push_back(w);
      if (int32_t scale = plan.root().weights()->Get(uint32_t(w))->block_scale(); scale >= 0)
        a.weights.push_back(scale);
    }
  if (step->states())
    a.states.assign(step->states()->begin(), step->states()->end());
  return a;
}

bool generatedKernelsRun(const StepTypes &types, const std::string &target, std::string *why) {
  for (plan::DType w : types.weights)
    if (w == plan::DType::I8) {
      if (why)
        *why = "int8 (W8A8) weights have no GPU kernel yet";
      return false;
    }
  (void)target; // both targets run every kind (sm_80 encodes e4m3 in integer arithmetic)
  return true;
}

uint64_t scratchTokens(const plan::KernelEntry &entry, const Plan &plan) {
  const uint64_t most = uint64_t(plan.maxTokens());
  return entry.max_tokens() > 0 ? std::min<uint64_t>(most, entry.max_tokens()) : most;
}

uint64_t scratchTokens(const plan::KernelEntryT &entry, const Plan &plan) {
  const uint64_t most = uint64_t(plan.maxTokens());
  return entry.max_tokens > 0 ? std::min<uint64_t>(most, entry.max_tokens) : most;
}

bool kernelEntryRuns(const plan::KernelEntry &entry, int32_t tokens) {
  return uint32_t(tokens) >= entry.min_tokens() &&
         (entry.max_tokens() == 0 || uint32_t(tokens) <= entry.max_tokens());
}

bool kernelEntryRuns(const plan::KernelEntryT &entry, int32_t tokens) {
  return uint32_t(tokens) >= entry.min_tokens &&
         (entry.max_tokens == 0 || uint32_t(tokens) <= entry.max_tokens);
}

KernelLaunch kernelLaunch(const plan::KernelEntry &entry, const KernelStepResources &r,
                          int32_t tokens) {
  EntryFields e;
  for (uint32_t d = 0; d < 3; ++d) {
    if (entry.grid() && entry.grid()->size() == 3)
      e.grid[d] = entry.grid()->Get(d);
    if (entry.block() && entry.block()->size() == 3)
      e.block[d] = entry.block()->Get(d);
  }
  e.tokensPerBlock = entry.tokens_per_block();
  e.sharedBytes = entry.shared_mem_bytes();
  e.scratchPerToken = entry.scratch_bytes_per_token();
  e.weightTable = entry.weight_table();
  e.tma = entry.tma_box() && entry.tma_box()->size() > 0;
  return launch(e, r, tokens);
}

KernelLaunch kernelLaunch(const plan::KernelEntryT &entry, const KernelStepResources &r,
                          int32_t tokens) {
  EntryFields e;
  for (size_t d = 0; d < 3; ++d) {
    if (entry.grid.size() == 3)
      e.grid[d] = entry.grid[d];
    if (entry.block.size() == 3)
      e.block[d] = entry.block[d];
  }
  e.tokensPerBlock = entry.tokens_per_block;
  e.sharedBytes = entry.shared_mem_bytes;
  e.scratchPerToken = entry.scratch_bytes_per_token;
  e.weightTable = entry.weight_table;
  e.tma = !entry.tma_box.empty();
  return launch(e, r, tokens);
}

Status SharedPrefixCopies::apply(const Bindings &bindings, const Copy &copy) {
  for (size_t i = 0; i < bindings.numStates; ++i) {
    const StateBinding &b = bindings.states[i];
    if (!b.prefixSeq || !b.prefixRows)
      continue;
    for (int32_t seq = 0; seq < bindings.numSequences; ++seq) {
      const int32_t parent = b.prefixSeq[seq];
      const int64_t rows = b.prefixRows[seq];
      if (parent == seq || rows <= 0)
        continue;
      if (!b.shareIds)
        return Status::error("sequence %d shares %" PRId64 " rows with sequence %d, but the "
                             "cache does not say which share() made them",
                             seq, rows, parent);
      const uint64_t id = b.shareIds[seq];
      uint64_t &done = done_[{b.data, seq}];
      if (done == id)
        continue;
      if (parent < 0 || parent >= bindings.numSequences || rows > b.capacity)
        return Status::error("sequence %d shares %" PRId64 " rows with sequence %d: out of "
                             "range (%d sequences of %" PRId64 " rows)",
                             seq, rows, parent, bindings.numSequences, b.capacity);
      MOEC_RETURN_IF_ERROR(copy(b.data + uint64_t(seq) * b.sequenceStride,
                                b.data + uint64_t(parent) * b.sequenceStride,
                                uint64_t(rows) * b.rowBytes));
      done = id;
      ++copies_;
    }
  }
  return Status();
}

} // namespace moec
