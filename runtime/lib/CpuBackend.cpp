//===- CpuBackend.cpp - Plan steps on the built-in CPU kernels ------------===//
//
// Maps each step kind to its kernel in runtime/cpu. Device memory is host memory;
// weights are used in place from the plan's mapping.
//
//===----------------------------------------------------------------------===//
#include "moec/runtime/Backend.h"
#include "moec/runtime/Plan.h"

#include "moec/cpu/kernels.h"

#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <sys/mman.h>

namespace moec {

namespace {

cpu::WeightType weightType(plan::DType dtype) {
  switch (dtype) {
  case plan::DType::F16:
    return cpu::WeightType::F16;
  case plan::DType::BF16:
    return cpu::WeightType::BF16;
  case plan::DType::F8E4M3:
    return cpu::WeightType::F8E4M3;
  default:
    return cpu::WeightType::F32; // the loader admits no other weight dtype
  }
}

class CpuBackend final : public Backend {
public:
  CpuBackend(const Plan &plan, const BackendOptions &options);

  const char *name() const override { return "cpu"; }
  Status allocate(uint64_t bytes, DeviceBuffer *out) override;
  void release(DeviceBuffer &buffer) override;
  Status copyToDevice(void *device, const void *host, uint64_t bytes) override {
    std::memcpy(device, host, bytes);
    return Status();
  }
  Status copyToHost(void *host, const void *device, uint64_t bytes) override {
    std::memcpy(host, device, bytes);
    return Status();
  }
  Status launch(const StepLaunch &launch) override;
  Status synchronize() override { return Status(); }

private:
  /// Where a buffer is and how wide its rows are.
  struct BufferPlace {
    uint64_t offset = 0; ///< in the arena
    int64_t cols = 1;    ///< elements per token
  };
  float *f32(const StepLaunch &launch, int32_t buffer) const {
    return reinterpret_cast<float *>(launch.arena + buffers_[size_t(buffer)].offset);
  }
  int32_t *i32(const StepLaunch &launch, int32_t buffer) const {
    return reinterpret_cast<int32_t *>(launch.arena + buffers_[size_t(buffer)].offset);
  }
  int64_t cols(int32_t buffer) const { return buffers_[size_t(buffer)].cols; }

  const Plan &plan_;
  std::vector<BufferPlace> buffers_;                     ///< per plan buffer
  std::vector<cpu::Weight> weights_;                     ///< per plan weight
  std::vector<std::vector<cpu::SwigluWeights>> experts_; ///< per step (moe_experts only)
  cpu::RopeParams rope_;                                 ///< from the model config
  std::vector<float> freqs_;                             ///< rope frequencies
  cpu::MlaDims mla_;                                     ///< from the model config
  std::vector<cpu::LatentKv> caches_;                    ///< scratch for one layer
};

CpuBackend::CpuBackend(const Plan &plan, const BackendOptions &options) : plan_(plan) {
  cpu::setNumThreads(options.threads);
  const plan::Plan &root = plan.root();
  if (const auto *buffers = root.buffers())
    for (const plan::Buffer *buffer : *buffers) {
      BufferPlace place;
      place.offset = buffer->offset();
      for (flatbuffers::uoffset_t d = 1; d < buffer->shape()->size(); ++d)
        place.cols *= buffer->shape()->Get(d);
      buffers_.push_back(place);
    }
  for (size_t i = 0; i < plan.numWeights(); ++i) {
    const WeightView &view = plan.weight(i);
    cpu::Weight weight;
    weight.type = weightType(view.dtype);
    weight.data = view.data;
    weight.rows = view.rows;
    weight.cols = view.cols;
    weight.blockScale = view.blockScale;
    weights_.push_back(weight);
  }
  if (const auto *steps = root.steps()) {
    experts_.resize(steps->size());
    for (flatbuffers::uoffset_t s = 0; s < steps->size(); ++s) {
      const plan::Step *step = steps->Get(s);
      if (step->kind() != plan::StepKind::MoeExperts)
        continue;
      const auto *w = step->weights();
      for (flatbuffers::uoffset_t e = 0; e + 2 < w->size(); e += 3)
        experts_[s].push_back({weights_[size_t(w->Get(e))], weights_[size_t(w->Get(e + 1))],
                               weights_[size_t(w->Get(e + 2))]});
    }
  }
  const plan::ModelConfig &config = plan.config();
  rope_.dim = config.qk_rope_head_dim();
  rope_.theta = config.rope_theta();
  if (const plan::YarnParams *yarn = config.rope_yarn()) {
    rope_.yarn = true;
    rope_.factor = yarn->factor();
    rope_.originalMaxPositions = yarn->original_max_position_embeddings();
    rope_.betaFast = yarn->beta_fast();
    rope_.betaSlow = yarn->beta_slow();
    rope_.attentionFactor = yarn->attention_factor();
  }
  freqs_.resize(size_t(rope_.dim / 2));
  cpu::ropeFrequencies(rope_, freqs_.data());
  mla_.heads = config.num_attention_heads();
  mla_.nope = config.qk_nope_head_dim();
  mla_.rope = config.qk_rope_head_dim();
  mla_.v = config.v_head_dim();
  mla_.kvLoraRank = config.kv_lora_rank();
  mla_.softmaxScale = config.softmax_scale();
}

Status CpuBackend::allocate(uint64_t bytes, DeviceBuffer *out) {
  // Anonymous pages are zeroed and only become resident when touched.
  uint64_t rounded = bytes ? bytes : 1;
  void *memory = ::mmap(nullptr, size_t(rounded), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED)
    return Status::error("cpu: cannot allocate %" PRIu64 " bytes: %s", bytes,
                         std::strerror(errno));
  out->data = memory;
  out->bytes = rounded;
  return Status();
}

void CpuBackend::release(DeviceBuffer &buffer) {
  if (buffer.data)
    ::munmap(buffer.data, size_t(buffer.bytes));
  buffer = DeviceBuffer();
}

Status CpuBackend::launch(const StepLaunch &launch) {
  const plan::Step *step = plan_.root().steps()->Get(launch.step);
  const auto &in = *step->operands();
  const auto &out = *step->results();
  const auto *w = step->weights();
  auto weight = [&](flatbuffers::uoffset_t i) -> const cpu::Weight & {
    return weights_[size_t(w->Get(i))];
  };
  int64_t T = launch.tokens;
  switch (step->kind()) {
  case plan::StepKind::Embedding:
    cpu::embedding(weight(0), i32(launch, in[0]), T, f32(launch, out[0]));
    break;
  case plan::StepKind::RmsNorm:
    cpu::rmsNorm(f32(launch, in[0]), T, cols(in[0]), weight(0),
                 step->attrs_as_RmsNormAttrs()->eps(), f32(launch, out[0]));
    break;
  case plan::StepKind::Linear:
    cpu::linear(f32(launch, in[0]), T, weight(0), f32(launch, out[0]));
    break;
  case plan::StepKind::Add:
    cpu::add(f32(launch, in[0]), f32(launch, in[1]), T * cols(in[0]), f32(launch, out[0]));
    break;
  case plan::StepKind::SliceColumns: {
    const plan::SliceAttrs *slice = step->attrs_as_SliceAttrs();
    cpu::sliceColumns(f32(launch, in[0]), T, cols(in[0]), slice->begin(), slice->width(),
                      f32(launch, out[0]));
    break;
  }
  case plan::StepKind::Rope: {
    const plan::RopeAttrs *rope = step->attrs_as_RopeAttrs();
    float *x = f32(launch, out[0]);
    if (out[0] != in[0])
      std::memcpy(x, f32(launch, in[0]), size_t(T * cols(in[0])) * sizeof(float));
    cpu::rope(x, T, rope->heads(), cols(in[0]), rope->head_stride(), rope->offset(), rope_,
              freqs_.data(), i32(launch, in[1]),
              rope->layout() == plan::RopeLayout::Half ? cpu::RopeLayout::Half
                                                       : cpu::RopeLayout::Interleaved);
    break;
  }
  case plan::StepKind::MlaAttention: {
    const plan::MlaAttrs *mla = step->attrs_as_MlaAttrs();
    if (!launch.caches)
      return Status::error("cpu: steps[%u]: attention without a KV cache", launch.step);
    caches_.resize(size_t(launch.numSequences));
    for (int32_t s = 0; s < launch.numSequences; ++s) {
      const LatentKvSlot &slot =
          launch.caches[size_t(mla->layer()) * size_t(launch.numSequences) + size_t(s)];
      caches_[size_t(s)] = {slot.latent, slot.rope, slot.capacity};
    }
    cpu::mlaAttention(f32(launch, in[0]), f32(launch, in[1]), f32(launch, in[2]), T,
                      i32(launch, in[3]), i32(launch, in[4]), caches_.data(), weight(0), mla_,
                      mla->absorbed(), f32(launch, out[0]));
    break;
  }
  case plan::StepKind::Router: {
    const plan::RouterAttrs *attrs = step->attrs_as_RouterAttrs();
    cpu::RouterParams params;
    params.experts = attrs->experts();
    params.topK = attrs->top_k();
    params.groups = attrs->groups();
    params.topkGroups = attrs->topk_groups();
    params.score = attrs->score_func() == plan::ScoreFunc::Sigmoid ? cpu::ScoreFunc::Sigmoid
                                                                  : cpu::ScoreFunc::Softmax;
    params.groupScore = attrs->group_score() == plan::GroupScore::Top2Sum
                            ? cpu::GroupScore::Top2Sum
                            : cpu::GroupScore::Max;
    params.normTopkProb = attrs->norm_topk_prob();
    params.routedScalingFactor = attrs->routed_scaling_factor();
    const float *bias =
        w->size() > 1 ? static_cast<const float *>(weight(1).data) : nullptr;
    cpu::router(f32(launch, in[0]), T, weight(0), bias, params, i32(launch, out[0]),
                f32(launch, out[1]));
    break;
  }
  case plan::StepKind::MoeExperts: {
    const std::vector<cpu::SwigluWeights> &experts = experts_[launch.step];
    cpu::moeExperts(f32(launch, in[0]), T, experts.data(), int64_t(experts.size()),
                    i32(launch, in[1]), f32(launch, in[2]), cols(in[1]), f32(launch, out[0]));
    break;
  }
  case plan::StepKind::SwigluMlp:
    cpu::swigluMlp(f32(launch, in[0]), T, {weight(0), weight(1), weight(2)},
                   f32(launch, out[0]));
    break;
  }
  return Status();
}

Status createCpuBackend(const Plan &plan, const BackendOptions &options,
                        std::unique_ptr<Backend> *out) {
  *out = std::make_unique<CpuBackend>(plan, options);
  return Status();
}

} // namespace

void registerCpuBackend() { registerBackend("cpu", createCpuBackend); }

} // namespace moec
