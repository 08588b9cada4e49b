//===- StepTypes.cpp - The dtypes and block shapes of a plan step ---------===//
#include "moec/runtime/Backend.h"
#include "moec/runtime/Plan.h"

namespace moec {

bool multipliesWeights(plan::StepKind kind) {
  switch (kind) {
  case plan::StepKind::Linear:
  case plan::StepKind::HeadLinear:
  case plan::StepKind::ExpandedAttention:
  case plan::StepKind::SwigluMlp:
  case plan::StepKind::FusedSwigluMlp:
  case plan::StepKind::MoeExperts:
  case plan::StepKind::FusedMoeExperts:
    return true;
  default:
    return false;
  }
}

StepTypes stepTypes(const Plan &plan, uint32_t step) {
  const plan::Plan &root = plan.root();
  const plan::Step *s = root.steps()->Get(step);
  StepTypes types;
  types.kind = s->kind();
  types.activations = s->activations();
  auto bufferTypes = [&](const flatbuffers::Vector<int32_t> *indices,
                         std::vector<plan::DType> *out) {
    if (!indices)
      return;
    for (int32_t index : *indices)
      out->push_back(root.buffers()->Get(flatbuffers::uoffset_t(index))->dtype());
  };
  bufferTypes(s->operands(), &types.operands);
  bufferTypes(s->results(), &types.results);
  if (const auto *weights = s->weights())
    for (int32_t index : *weights) {
      const WeightView &weight = plan.weight(size_t(index));
      types.weights.push_back(weight.dtype);
      if (weight.blockRows > 0)
        types.weightBlocks.push_back({weight.blockRows, weight.blockCols});
      else
        types.weightBlocks.emplace_back();
    }
  if (const auto *states = s->states())
    for (int32_t index : *states)
      types.states.push_back(plan.state(size_t(index)).dtype);
  return types;
}

} // namespace moec
