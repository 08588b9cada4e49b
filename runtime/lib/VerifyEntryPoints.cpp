//===- VerifyEntryPoints.cpp - Entry points, data flow and arena overlap --===//
#include "PlanChecks.h"

#include "moec/runtime/Liveness.h"

#include <algorithm>
#include <cinttypes>
#include <set>

namespace moec::detail {

namespace {

std::vector<int32_t> readIndices(const flatbuffers::Vector<int32_t> *vector) {
  if (!vector)
    return {};
  return std::vector<int32_t>(vector->begin(), vector->end());
}

/// "step 4", or "entry"/"exit" for the entry's inputs and outputs.
std::string stepText(int64_t local, uint32_t firstStep, uint32_t numSteps) {
  if (local < 0)
    return "entry";
  if (local >= int64_t(numSteps))
    return "exit";
  return std::to_string(int64_t(firstStep) + local);
}

/// Checks one entry point: its signature, def-before-use of buffers and states, that
/// every data-dependent index comes from a validated input or from a router, and
/// the arena.
class EntryChecker {
public:
  EntryChecker(const PlanInfo &info, uint32_t index, const plan::EntryPoint *entry)
      : info_(info), index_(index), entry_(entry),
        label_(elementLabel("entry_points", index, entry->name())),
        inputs_(readIndices(entry->inputs())), outputs_(readIndices(entry->outputs())) {}

  Status run(EntryPointInfo *out);

private:
  Status indexRanges() const;
  Status signature(EntryPointInfo *out) const;
  Status dataFlow(const EntryPointInfo &entry) const;
  Status arenaOverlap() const;

  const plan::Step *step(size_t local) const {
    return info_.root->steps()->Get(entry_->first_step() + flatbuffers::uoffset_t(local));
  }

  const PlanInfo &info_;
  uint32_t index_;
  const plan::EntryPoint *entry_;
  std::string label_;
  std::vector<int32_t> inputs_, outputs_;
};

Status EntryChecker::indexRanges() const {
  const char *label = label_.c_str();
  size_t numSteps = info_.root->steps() ? info_.root->steps()->size() : 0;
  if (uint64_t(entry_->first_step()) + entry_->num_steps() > numSteps)
    return Status::error("%s: steps [%u, +%u) run past the plan's %zu steps", label,
                         entry_->first_step(), entry_->num_steps(), numSteps);
  size_t numBuffers = info_.buffers.size();
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (inputs_[i] < 0 || size_t(inputs_[i]) >= numBuffers)
      return Status::error("%s: input %zu refers to buffer %d, plan has %zu", label, i,
                           inputs_[i], numBuffers);
  for (size_t i = 0; i < outputs_.size(); ++i)
    if (outputs_[i] < 0 || size_t(outputs_[i]) >= numBuffers)
      return Status::error("%s: output %zu refers to buffer %d, plan has %zu", label, i,
                           outputs_[i], numBuffers);
  return Status();
}

Status EntryChecker::signature(EntryPointInfo *out) const {
  const char *label = label_.c_str();
  if (inputs_.size() != 3 || outputs_.size() != 1)
    return Status::error("%s: an entry point takes 3 inputs (tokens, positions, seq_ids) and "
                         "1 output (logits), has %zu and %zu",
                         label, inputs_.size(), outputs_.size());
  static const char *const inputNames[] = {"tokens", "positions", "seq_ids"};
  for (size_t i = 0; i < 3; ++i) {
    const TensorInfo &buffer = info_.buffers[size_t(inputs_[i])];
    if (buffer.dtype != plan::DType::I32 || buffer.shape != std::vector<int64_t>{-1})
      return Status::error("%s: input %zu (%s, %s) is %s %s, expected i32 [-1]", label, i,
                           inputNames[i], buffer.label.c_str(), dtypeLabel(buffer.dtype).c_str(),
                           formatShape(buffer.shape).c_str());
    for (size_t j = 0; j < i; ++j)
      if (inputs_[j] == inputs_[i])
        return Status::error("%s: inputs %zu and %zu are the same buffer %d", label, j, i,
                             inputs_[i]);
  }
  int64_t bound = entry_->token_bound();
  if (bound < 1 || bound > kMaxModelDim)
    return Status::error("%s: token_bound is %" PRId64 ", expected 1..%" PRId64, label, bound,
                         kMaxModelDim);
  const TensorInfo &logits = info_.buffers[size_t(outputs_[0])];
  std::vector<int64_t> expected = {-1, bound};
  if (logits.dtype != plan::DType::F32 || logits.shape != expected)
    return Status::error("%s: output 0 (logits, %s) is %s %s, expected f32 %s", label,
                         logits.label.c_str(), dtypeLabel(logits.dtype).c_str(),
                         formatShape(logits.shape).c_str(), formatShape(expected).c_str());
  out->name = entry_->name()->str();
  out->index = index_;
  out->tokens = inputs_[0];
  out->positions = inputs_[1];
  out->seqIds = inputs_[2];
  out->logits = outputs_[0];
  out->firstStep = entry_->first_step();
  out->numSteps = entry_->num_steps();
  out->tokenBound = bound;
  if (entry_->min_tokens() < 0 || entry_->min_tokens() > kMaxModelDim)
    return Status::error("%s: min_tokens is %" PRId64 ", expected 0..%" PRId64, label,
                         entry_->min_tokens(), kMaxModelDim);
  out->minTokens = entry_->min_tokens();
  return Status();
}

Status EntryChecker::dataFlow(const EntryPointInfo &entry) const {
  const char *label = label_.c_str();
  constexpr int64_t kUndefined = -2, kInput = -1;
  std::vector<int64_t> writer(info_.buffers.size(), kUndefined);
  std::vector<bool> stored(info_.states.size(), false);
  auto define = [&](int32_t buffer, int64_t by) {
    writer[size_t(buffer)] = by;
    int32_t scale = info_.buffers[size_t(buffer)].scale;
    if (scale >= 0)
      writer[size_t(scale)] = by;
  };
  for (int32_t input : inputs_)
    define(input, kInput);
  for (uint32_t local = 0; local < entry_->num_steps(); ++local) {
    const plan::Step *current = step(local);
    uint32_t index = entry_->first_step() + local;
    std::string stepLabel = elementLabel("steps", index, current->name());
    std::vector<int32_t> operands = readIndices(current->operands());
    std::vector<int32_t> states = readIndices(current->states());
    for (size_t o = 0; o < operands.size(); ++o)
      if (writer[size_t(operands[o])] == kUndefined)
        return Status::error("%s: %s: operand %zu (%s) is read before any step writes it",
                             label, stepLabel.c_str(), o,
                             info_.buffers[size_t(operands[o])].label.c_str());
    // Values used as indices must be checked before the kernels use them: token
    // ids, positions and sequence ids are checked per call on the entry's inputs;
    // expert ids come from a router over the same number of experts.
    auto requireInput = [&](size_t o, int32_t input, const char *what) -> Status {
      if (operands[o] == input)
        return Status();
      return Status::error("%s: %s: operand %zu must be the entry's %s input (buffer %d), "
                           "is buffer %d",
                           label, stepLabel.c_str(), o, what, input, operands[o]);
    };
    // The token's own row must be stored (in this call) before attention reads it.
    auto requireStored = [&]() -> Status {
      for (size_t s = 0; s < states.size(); ++s)
        if (!stored[size_t(states[s])])
          return Status::error("%s: %s: state %zu (%s) is read before any step of the entry "
                               "stores into it",
                               label, stepLabel.c_str(), s,
                               info_.states[size_t(states[s])].label.c_str());
      return Status();
    };
    switch (current->kind()) {
    case plan::StepKind::Embedding: {
      MOEC_RETURN_IF_ERROR(requireInput(0, entry.tokens, "tokens"));
      const TensorInfo &table = info_.weights[size_t(current->weights()->Get(0))];
      if (table.shape[0] != entry.tokenBound)
        return Status::error("%s: %s: the table %s has %" PRId64 " rows, token_bound is %" PRId64,
                             label, stepLabel.c_str(), table.label.c_str(), table.shape[0],
                             entry.tokenBound);
      break;
    }
    case plan::StepKind::Rope:
      MOEC_RETURN_IF_ERROR(requireInput(1, entry.positions, "positions"));
      break;
    case plan::StepKind::CacheStore:
      MOEC_RETURN_IF_ERROR(requireInput(2, entry.positions, "positions"));
      MOEC_RETURN_IF_ERROR(requireInput(3, entry.seqIds, "seq_ids"));
      for (int32_t state : states)
        stored[size_t(state)] = true;
      break;
    case plan::StepKind::LatentAttention:
      MOEC_RETURN_IF_ERROR(requireInput(2, entry.positions, "positions"));
      MOEC_RETURN_IF_ERROR(requireInput(3, entry.seqIds, "seq_ids"));
      MOEC_RETURN_IF_ERROR(requireStored());
      break;
    case plan::StepKind::ExpandedAttention:
      MOEC_RETURN_IF_ERROR(requireInput(1, entry.positions, "positions"));
      MOEC_RETURN_IF_ERROR(requireInput(2, entry.seqIds, "seq_ids"));
      MOEC_RETURN_IF_ERROR(requireStored());
      break;
    case plan::StepKind::MoeExperts:
    case plan::StepKind::FusedMoeExperts: {
      int64_t source = writer[size_t(operands[1])];
      const plan::Step *router =
          source >= 0 ? info_.root->steps()->Get(flatbuffers::uoffset_t(source)) : nullptr;
      const plan::MoeAttrs *moe = current->attrs_as_MoeAttrs();
      if (!router || router->kind() != plan::StepKind::Router ||
          router->results()->Get(0) != operands[1] ||
          router->attrs_as_RouterAttrs()->experts() != moe->experts())
        return Status::error("%s: %s: operand 1 (buffer %d) must be the expert indices of "
                             "a router over %" PRId64 " experts",
                             label, stepLabel.c_str(), operands[1], moe->experts());
      break;
    }
    default:
      break;
    }
    for (int32_t result : readIndices(current->results()))
      define(result, index);
  }
  for (size_t o = 0; o < outputs_.size(); ++o)
    if (writer[size_t(outputs_[o])] == kUndefined)
      return Status::error("%s: output %zu (%s) is never written", label, o,
                           info_.buffers[size_t(outputs_[o])].label.c_str());
  return Status();
}

Status EntryChecker::arenaOverlap() const {
  std::vector<std::vector<int32_t>> stepBuffers(entry_->num_steps());
  for (uint32_t local = 0; local < entry_->num_steps(); ++local) {
    const plan::Step *current = step(local);
    stepBuffers[local] = readIndices(current->operands());
    std::vector<int32_t> results = readIndices(current->results());
    stepBuffers[local].insert(stepBuffers[local].end(), results.begin(), results.end());
  }
  std::vector<int32_t> scales(info_.buffers.size());
  for (size_t i = 0; i < scales.size(); ++i)
    scales[i] = info_.buffers[i].scale;
  std::vector<LiveRange> ranges =
      computeLiveRanges(info_.buffers.size(), inputs_, outputs_, stepBuffers, scales);

  const auto *buffers = info_.root->buffers();
  struct Placed {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Placed> placed;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (!ranges[i].used())
      continue;
    const plan::Buffer *buffer = buffers->Get(flatbuffers::uoffset_t(i));
    placed.push_back({buffer->offset(), buffer->offset() + buffer->size(), i});
  }
  std::sort(placed.begin(), placed.end(), [](const Placed &a, const Placed &b) {
    return a.begin != b.begin ? a.begin < b.begin : a.index < b.index;
  });
  // Sorted by start: only the following buffers that start before this one ends can
  // overlap it in memory.
  for (size_t i = 0; i < placed.size(); ++i) {
    for (size_t j = i + 1; j < placed.size() && placed[j].begin < placed[i].end; ++j) {
      const LiveRange &a = ranges[placed[i].index], &b = ranges[placed[j].index];
      if (placed[j].begin == placed[j].end || !a.overlaps(b))
        continue;
      uint32_t first = entry_->first_step(), count = entry_->num_steps();
      return Status::error(
          "%s: %s and %s overlap in the arena ([%" PRIu64 ", %" PRIu64 ") and [%" PRIu64
          ", %" PRIu64 ")) while both are live (steps %s..%s and %s..%s)",
          label_.c_str(), info_.buffers[placed[i].index].label.c_str(),
          info_.buffers[placed[j].index].label.c_str(), placed[i].begin, placed[i].end,
          placed[j].begin, placed[j].end, stepText(a.first, first, count).c_str(),
          stepText(a.last, first, count).c_str(), stepText(b.first, first, count).c_str(),
          stepText(b.last, first, count).c_str());
    }
  }
  return Status();
}

Status EntryChecker::run(EntryPointInfo *out) {
  MOEC_RETURN_IF_ERROR(indexRanges());
  MOEC_RETURN_IF_ERROR(signature(out));
  MOEC_RETURN_IF_ERROR(dataFlow(*out));
  return arenaOverlap();
}

} // namespace

Status verifyEntryPoints(const PlanInfo &info, std::vector<EntryPointInfo> *entries,
                         size_t *prefill, size_t *decode) {
  const auto *list = info.root->entry_points();
  size_t count = list ? list->size() : 0;
  entries->assign(count, EntryPointInfo());
  std::set<std::string> names;
  const size_t kNone = SIZE_MAX;
  *prefill = *decode = kNone;
  for (flatbuffers::uoffset_t i = 0; i < count; ++i) {
    const plan::EntryPoint *entry = list->Get(i);
    std::string label = elementLabel("entry_points", i, entry->name());
    if (!entry->name() || entry->name()->size() == 0)
      return Status::error("%s: name is empty", label.c_str());
    std::string name = entry->name()->str();
    if (!names.insert(name).second)
      return Status::error("%s: a previous entry point has the same name", label.c_str());
    EntryChecker checker(info, i, entry);
    MOEC_RETURN_IF_ERROR(checker.run(&(*entries)[i]));
    // Every entry point produces logits of the same width: the vocabulary.
    if (i > 0 && (*entries)[i].tokenBound != (*entries)[0].tokenBound)
      return Status::error("%s: token_bound is %" PRId64 ", %s has %" PRId64, label.c_str(),
                           (*entries)[i].tokenBound,
                           elementLabel("entry_points", 0, list->Get(0)->name()).c_str(),
                           (*entries)[0].tokenBound);
    if (name != "prefill" && (*entries)[i].minTokens != 0)
      return Status::error("%s: min_tokens is %" PRId64 "; only prefill may have one",
                           label.c_str(), (*entries)[i].minTokens);
    if (name == "prefill")
      *prefill = i;
    else if (name == "decode")
      *decode = i;
  }
  if (*prefill == kNone)
    return Status::error("entry_points: the plan has no \"prefill\" entry point");
  if (*decode == kNone)
    return Status::error("entry_points: the plan has no \"decode\" entry point");
  return Status();
}

} // namespace moec::detail
