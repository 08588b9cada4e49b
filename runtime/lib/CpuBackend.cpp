//===- CpuBackend.cpp - Plan steps on the built-in CPU kernels ------------===//
//
// The CPU device of the HAL (Backend.h). Device memory is host memory: allocate()
// maps anonymous zeroed pages, importHost() uses a weight's bytes in place. A
// program is an entry point with everything a step needs resolved once by
// prepare(): arena offsets and row widths of its buffers, kernel views of its
// weights, kernel parameters from its attributes, rope frequencies, expert
// tables. execute() then only reads the bindings and calls the kernels
// (runtime/cpu) with this backend's thread count. Nothing here reads the plan's
// model config.
//
//===----------------------------------------------------------------------===//
#include "moec/runtime/Backend.h"
#include "moec/runtime/Plan.h"

#include "moec/cpu/kernels.h"

#include "PlanChecks.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sys/mman.h>

namespace moec {

namespace {

/// Whether the CPU kernels read weights of this dtype.
bool isWeightType(plan::DType dtype) {
  return dtype == plan::DType::F32 || dtype == plan::DType::F16 || dtype == plan::DType::BF16 ||
         dtype == plan::DType::F8E4M3 || dtype == plan::DType::I8;
}

/// Whether weights of this dtype carry block scales.
bool isBlockQuantized(plan::DType dtype) {
  return dtype == plan::DType::F8E4M3 || dtype == plan::DType::I8;
}

cpu::WeightType weightType(plan::DType dtype) {
  switch (dtype) {
  case plan::DType::F16:
    return cpu::WeightType::F16;
  case plan::DType::BF16:
    return cpu::WeightType::BF16;
  case plan::DType::F8E4M3:
    return cpu::WeightType::F8E4M3;
  case plan::DType::I8:
    return cpu::WeightType::I8;
  default:
    return cpu::WeightType::F32; // supportsStep admits no other weight dtype
  }
}

std::string dtypeText(plan::DType dtype) {
  const char *name = dtypeName(dtype);
  return name ? name : "dtype(" + std::to_string(int(dtype)) + ")";
}

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

/// Sets *why (when given) to the formatted reason and returns false.
bool refuse(std::string *why, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
bool refuse(std::string *why, const char *format, ...) {
  if (why) {
    char text[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    *why = text;
  }
  return false;
}

/// What the CPU kernels accept for one weight of a step.
enum class WeightRule {
  Any,         ///< f32, f16, bf16, or f8e4m3 / i8 in [kFp8BlockSize, kFp8BlockSize] blocks
  Unquantized, ///< f32, f16 or bf16
  F32,         ///< f32 only (the router's correction bias)
};

/// The activation and state dtypes one step kind takes on the CPU, and its weights.
struct KindSignature {
  std::vector<plan::DType> operands; ///< per operand
  std::vector<plan::DType> results;  ///< per result
  size_t numStates = 0;              ///< states, all F32, all BF16 or all F8E4M3
  size_t minWeights = 0, maxWeights = 0;
  size_t weightGroup = 1;            ///< the weight count is a multiple of this
  /// Rule of weight i (the last rule repeats).
  std::vector<WeightRule> weightRules;
};

/// Signatures of every kind the kernels implement; false for an unknown kind.
bool signatureOf(plan::StepKind kind, KindSignature *sig) {
  using D = plan::DType;
  using R = WeightRule;
  switch (kind) {
  case plan::StepKind::Embedding:
    *sig = {{D::I32}, {D::F32}, 0, 1, 1, 1, {R::Unquantized}};
    return true;
  case plan::StepKind::RmsNorm:
    *sig = {{D::F32}, {D::F32}, 0, 1, 1, 1, {R::Unquantized}};
    return true;
  case plan::StepKind::Linear:
  case plan::StepKind::HeadLinear:
    *sig = {{D::F32}, {D::F32}, 0, 1, 1, 1, {R::Any}};
    return true;
  case plan::StepKind::Add:
    *sig = {{D::F32, D::F32}, {D::F32}, 0, 0, 0, 1, {}};
    return true;
  case plan::StepKind::AddRmsNorm:
    *sig = {{D::F32, D::F32}, {D::F32, D::F32}, 0, 1, 1, 1, {R::Unquantized}};
    return true;
  case plan::StepKind::SliceColumns:
    *sig = {{D::F32}, {D::F32}, 0, 0, 0, 1, {}};
    return true;
  case plan::StepKind::Rope:
    *sig = {{D::F32, D::I32}, {D::F32}, 0, 0, 0, 1, {}};
    return true;
  case plan::StepKind::CacheStore:
    *sig = {{D::F32, D::F32, D::I32, D::I32}, {}, 2, 0, 0, 1, {}};
    return true;
  case plan::StepKind::LatentAttention:
    *sig = {{D::F32, D::F32, D::I32, D::I32}, {D::F32}, 2, 0, 0, 1, {}};
    return true;
  case plan::StepKind::ExpandedAttention:
    *sig = {{D::F32, D::I32, D::I32}, {D::F32}, 2, 1, 1, 1, {R::Any}};
    return true;
  case plan::StepKind::Router:
    *sig = {{D::F32}, {D::I32, D::F32}, 0, 1, 2, 1, {R::Unquantized, R::F32}};
    return true;
  case plan::StepKind::MoeExperts:
    *sig = {{D::F32, D::I32, D::F32}, {D::F32}, 0, 3, SIZE_MAX, 3, {R::Any}};
    return true;
  case plan::StepKind::SwigluMlp:
    *sig = {{D::F32}, {D::F32}, 0, 3, 3, 1, {R::Any}};
    return true;
  case plan::StepKind::FusedMoeExperts:
    *sig = {{D::F32, D::I32, D::F32}, {D::F32}, 0, 2, SIZE_MAX, 2, {R::Any}};
    return true;
  case plan::StepKind::FusedSwigluMlp:
    *sig = {{D::F32}, {D::F32}, 0, 2, 2, 1, {R::Any}};
    return true;
  }
  return false;
}

/// Where a buffer lives in the arena and how wide its token rows are.
struct Place {
  uint64_t offset = 0; ///< bytes from the arena's start
  int64_t cols = 1;    ///< elements per token (product of the dims after T)
};

/// One step of a program, resolved by prepare().
struct CpuStep {
  plan::StepKind kind = plan::StepKind::Embedding; ///< which kernel
  uint32_t index = 0;                              ///< in Plan.steps (for messages)
  std::vector<Place> operands;                     ///< per operand buffer
  std::vector<Place> results;                      ///< per result buffer
  std::vector<int32_t> states;                     ///< Plan.states indices
  cpu::StateElement stateElement = cpu::StateElement::F32; ///< how its states store rows
  std::vector<cpu::Weight> weights;                ///< kernel views, per weight
  float eps = 0;                                   ///< rms_norm
  int64_t sliceBegin = 0, sliceWidth = 0;          ///< slice_columns
  cpu::RopeParams rope;                            ///< rope: frequencies' parameters
  std::vector<float> freqs;                        ///< rope: rope_dim / 2 frequencies
  int64_t ropeHeads = 0, ropeHeadStride = 0, ropeOffset = 0; ///< rope: where it rotates
  cpu::RopeLayout ropeLayout = cpu::RopeLayout::Interleaved; ///< rope: pair order
  cpu::HeadLinearParams headLinear;                ///< head_linear
  cpu::LatentAttentionParams latent;               ///< latent_attention
  cpu::ExpandedAttentionParams expanded;           ///< expanded_attention
  cpu::RouterParams router;                        ///< router
  std::vector<cpu::SwigluWeights> experts;         ///< (fused_)moe_experts, (fused_)swiglu_mlp (one)
  bool writesLogits = false; ///< its first result is the entry point's logits
};

class CpuBackend;

/// An entry point prepared for the CPU.
class CpuProgram final : public Program {
public:
  CpuProgram(const Plan &plan, const CpuBackend &backend) : plan(plan), backend(backend) {}

  const Plan &plan;                  ///< borrowed
  const CpuBackend &backend;         ///< the backend that prepared it
  std::vector<CpuStep> steps;        ///< in execution order
  std::vector<int32_t> usedStates;   ///< states any step reads or writes (distinct)
  std::vector<DeviceBuffer> imports; ///< the weights' importHost() records
  /// Per plan weight: its kernel view once imported (a weight several steps use,
  /// such as kv_b_proj's two per-head views, is imported once).
  std::vector<std::optional<cpu::Weight>> weights;
};

class CpuBackend final : public Backend {
public:
  explicit CpuBackend(const BackendOptions &options) : threads_(options.threads) {}

  const char *name() const override { return "cpu"; }
  std::vector<BufferType> bufferTypes() const override { return {{"cpu", 64, true}}; }
  Status allocate(uint64_t bytes, DeviceBuffer *out, int type) override;
  void release(DeviceBuffer &buffer) override;
  Status copyToDevice(void *device, const void *host, uint64_t bytes) override {
    std::memcpy(device, host, size_t(bytes));
    return Status();
  }
  Status copyToHost(void *host, const void *device, uint64_t bytes) override {
    std::memcpy(host, device, size_t(bytes));
    return Status();
  }
  Status importHost(const void *host, uint64_t bytes, DeviceBuffer *out) override {
    out->data = const_cast<void *>(host); // kernels only read weights
    out->bytes = bytes;
    out->bufferType = 0;
    out->owned = false;
    return Status();
  }
  bool supportsStep(const StepTypes &types, std::string *why) const override;
  Status prepare(const Plan &plan, uint32_t entry, std::unique_ptr<Program> *out) override;
  Status execute(Program &program, const Bindings &bindings) override;
  Status synchronize() override { return Status(); }

private:
  Status resolveStep(CpuProgram &program, uint32_t index, CpuStep *out);
  /// The kernel view of plan weight `index`, imported on first use.
  Status weight(CpuProgram &program, int32_t index, cpu::Weight *out);
  Status run(const CpuStep &step, const Bindings &bindings) const;

  int threads_; ///< kernel threads of this backend; <= 0: the CPUs it may run on
};

Status CpuBackend::allocate(uint64_t bytes, DeviceBuffer *out, int type) {
  if (type != 0)
    return Status::error("cpu: no buffer type %d (the cpu backend has one, \"cpu\")", type);
  // Anonymous pages are zeroed, 4 KiB aligned, and only become resident when touched.
  uint64_t rounded = bytes ? bytes : 1;
  void *memory = ::mmap(nullptr, size_t(rounded), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED)
    return Status::error("cpu: cannot allocate %" PRIu64 " bytes: %s", bytes,
                         std::strerror(errno));
  out->data = memory;
  out->bytes = rounded;
  out->bufferType = 0;
  out->owned = true;
  return Status();
}

void CpuBackend::release(DeviceBuffer &buffer) {
  if (buffer.data && buffer.owned)
    ::munmap(buffer.data, size_t(buffer.bytes));
  buffer = DeviceBuffer();
}

bool CpuBackend::supportsStep(const StepTypes &types, std::string *why) const {
  KindSignature sig;
  if (!signatureOf(types.kind, &sig))
    return refuse(why, "step kind %d is unknown to the cpu kernels", int(types.kind));
  auto dtypes = [&](const char *role, const std::vector<plan::DType> &have,
                    const std::vector<plan::DType> &want) {
    if (have.size() != want.size())
      return refuse(why, "%zu %ss, the cpu kernel takes %zu", have.size(), role,
                    want.size());
    for (size_t i = 0; i < have.size(); ++i)
      if (have[i] != want[i])
        return refuse(why, "%s %zu is %s, the cpu kernel takes %s", role, i,
                      dtypeText(have[i]).c_str(), dtypeText(want[i]).c_str());
    return true;
  };
  // The KV cache's rows are f32, bf16 or f8e4m3 (moe-kv-cache-type), the same for
  // all of a step's states.
  const plan::DType stateType =
      !types.states.empty() &&
              (types.states[0] == plan::DType::BF16 || types.states[0] == plan::DType::F8E4M3)
          ? types.states[0]
          : plan::DType::F32;
  if (types.activations != plan::DType::F32) {
    const bool bf16 = types.activations == plan::DType::BF16 && multipliesWeights(types.kind);
    const bool fp8 = types.activations == plan::DType::F8E4M3 &&
                     multipliesWeights(types.kind) && types.kind != plan::StepKind::HeadLinear &&
                     types.kind != plan::StepKind::ExpandedAttention;
    if (!bf16 && !fp8)
      return refuse(why, "activations %s: the cpu kernels round the inputs of weight "
                         "products (linear, head_linear, expanded_attention, the MLPs and "
                         "experts) to BF16, or quantize those of linear, the MLPs and "
                         "experts to F8E4M3",
                    dtypeText(types.activations).c_str());
  }
  const std::vector<plan::DType> states(sig.numStates, stateType);
  if (!dtypes("operand", types.operands, sig.operands) ||
      !dtypes("result", types.results, sig.results) || !dtypes("state", types.states, states))
    return false;
  const size_t numWeights = types.weights.size();
  if (numWeights < sig.minWeights || numWeights > sig.maxWeights ||
      numWeights % sig.weightGroup != 0)
    return refuse(why, "%zu weights, the cpu kernel takes %zu..%zu", numWeights,
                  sig.minWeights, sig.maxWeights == SIZE_MAX ? numWeights : sig.maxWeights);
  for (size_t i = 0; i < numWeights; ++i) {
    const plan::DType dtype = types.weights[i];
    const WeightRule rule = sig.weightRules[std::min(i, sig.weightRules.size() - 1)];
    const std::vector<int64_t> block =
        i < types.weightBlocks.size() ? types.weightBlocks[i] : std::vector<int64_t>();
    if (!isWeightType(dtype))
      return refuse(why, "weight %zu is %s, not a weight dtype", i,
                    dtypeText(dtype).c_str());
    if (rule == WeightRule::F32 && dtype != plan::DType::F32)
      return refuse(why, "weight %zu is %s, the cpu kernel takes f32", i,
                    dtypeText(dtype).c_str());
    if (rule == WeightRule::Unquantized && isBlockQuantized(dtype))
      return refuse(why, "weight %zu is %s, the cpu kernel takes f32, f16 or bf16", i,
                    dtypeText(dtype).c_str());
    if (isBlockQuantized(dtype)) {
      if (block != std::vector<int64_t>{cpu::kFp8BlockSize, cpu::kFp8BlockSize})
        return refuse(why,
                      "weight %zu is %s with block shape %s, the cpu kernels "
                      "implement [%" PRId64 ", %" PRId64 "] only",
                      i, dtypeText(dtype).c_str(), shapeText(block).c_str(),
                      cpu::kFp8BlockSize, cpu::kFp8BlockSize);
    } else if (!block.empty()) {
      return refuse(why, "weight %zu is %s with block shape %s, the cpu kernels block-"
                    "quantize f8e4m3 and i8 only",
                    i, dtypeText(dtype).c_str(), shapeText(block).c_str());
    }
  }
  return true;
}

Status CpuBackend::prepare(const Plan &plan, uint32_t entry, std::unique_ptr<Program> *out) {
  if (entry >= plan.numEntryPoints())
    return Status::error("cpu: %s: no entry point %u (the plan has %zu)", plan.name().c_str(),
                         entry, plan.numEntryPoints());
  const EntryPointInfo &info = plan.entryPoint(entry);
  auto program = std::make_unique<CpuProgram>(plan, *this);
  program->steps.resize(info.numSteps);
  program->weights.resize(plan.numWeights());
  for (uint32_t i = 0; i < info.numSteps; ++i) {
    const uint32_t index = info.firstStep + i;
    std::string why;
    if (!supportsStep(stepTypes(plan, index), &why))
      return Status::error("cpu: %s: %s: cannot run %s: %s", plan.name().c_str(),
                           plan.stepLabel(index).c_str(),
                           stepKindName(plan.root().steps()->Get(index)->kind()), why.c_str());
    MOEC_RETURN_IF_ERROR(resolveStep(*program, index, &program->steps[i]));
    const auto *results = plan.root().steps()->Get(index)->results();
    program->steps[i].writesLogits =
        results && results->size() > 0 && int32_t(results->Get(0)) == info.logits;
    for (int32_t state : program->steps[i].states)
      if (std::find(program->usedStates.begin(), program->usedStates.end(), state) ==
          program->usedStates.end())
        program->usedStates.push_back(state);
  }
  *out = std::move(program);
  return Status();
}

Status CpuBackend::weight(CpuProgram &program, int32_t index, cpu::Weight *out) {
  std::optional<cpu::Weight> &cached = program.weights[size_t(index)];
  if (!cached) {
    const WeightView &view = program.plan.weight(size_t(index));
    DeviceBuffer data;
    MOEC_RETURN_IF_ERROR(importHost(view.data, view.bytes, &data));
    program.imports.push_back(data);
    cpu::Weight weight;
    weight.type = weightType(view.dtype);
    weight.data = data.data;
    weight.rows = view.rows;
    weight.cols = view.cols;
    if (view.blockScale && view.blockRows > 0 && view.blockCols > 0) {
      const uint64_t scales = uint64_t((view.rows + view.blockRows - 1) / view.blockRows) *
                              uint64_t((view.cols + view.blockCols - 1) / view.blockCols);
      DeviceBuffer scale;
      MOEC_RETURN_IF_ERROR(importHost(view.blockScale, scales * sizeof(float), &scale));
      program.imports.push_back(scale);
      weight.blockScale = static_cast<const float *>(scale.data);
    }
    cached = weight;
  }
  *out = *cached;
  return Status();
}

Status CpuBackend::resolveStep(CpuProgram &program, uint32_t index, CpuStep *out) {
  const Plan &plan = program.plan;
  const plan::Step *step = plan.root().steps()->Get(index);
  const auto *buffers = plan.root().buffers();
  auto place = [&](int32_t buffer) {
    const plan::Buffer *b = buffers->Get(flatbuffers::uoffset_t(buffer));
    Place p;
    p.offset = b->offset();
    const std::vector<int64_t> shape = detail::readDims(b->shape());
    for (size_t d = 1; d < shape.size(); ++d)
      p.cols *= shape[d];
    return p;
  };
  CpuStep &s = *out;
  s.kind = step->kind();
  s.index = index;
  if (step->operands())
    for (int32_t buffer : *step->operands())
      s.operands.push_back(place(buffer));
  if (step->results())
    for (int32_t buffer : *step->results())
      s.results.push_back(place(buffer));
  if (step->states())
    s.states.assign(step->states()->begin(), step->states()->end());
  // signatureOf's check made every state of a step the same dtype.
  if (!s.states.empty()) {
    const plan::DType dtype = plan.state(size_t(s.states[0])).dtype;
    s.stateElement = dtype == plan::DType::BF16     ? cpu::StateElement::BF16
                     : dtype == plan::DType::F8E4M3 ? cpu::StateElement::F8E4M3
                                                    : cpu::StateElement::F32;
  }
  if (step->weights())
    for (int32_t w : *step->weights()) {
      cpu::Weight view;
      MOEC_RETURN_IF_ERROR(weight(program, w, &view));
      // The view is the step's own: bf16 activations are a property of the step.
      view.bf16Activations = step->activations() == plan::DType::BF16;
      view.fp8Activations = step->activations() == plan::DType::F8E4M3;
      s.weights.push_back(view);
    }
  switch (s.kind) {
  case plan::StepKind::RmsNorm:
  case plan::StepKind::AddRmsNorm:
    s.eps = step->attrs_as_RmsNormAttrs()->eps();
    break;
  case plan::StepKind::SliceColumns:
    s.sliceBegin = step->attrs_as_SliceAttrs()->begin();
    s.sliceWidth = step->attrs_as_SliceAttrs()->width();
    break;
  case plan::StepKind::Rope: {
    const plan::RopeAttrs *a = step->attrs_as_RopeAttrs();
    s.rope.dim = a->rope_dim();
    s.rope.theta = a->theta();
    if (const plan::YarnParams *yarn = a->yarn()) {
      s.rope.yarn = true;
      s.rope.factor = yarn->factor();
      s.rope.originalMaxPositions = yarn->original_max_position_embeddings();
      s.rope.betaFast = yarn->beta_fast();
      s.rope.betaSlow = yarn->beta_slow();
      s.rope.attentionFactor = yarn->attention_factor();
    }
    s.freqs.resize(size_t(s.rope.dim / 2));
    cpu::ropeFrequencies(s.rope, s.freqs.data());
    s.ropeHeads = a->heads();
    s.ropeHeadStride = a->head_stride();
    s.ropeOffset = a->offset();
    s.ropeLayout = a->layout() == plan::RopeLayout::Half ? cpu::RopeLayout::Half
                                                         : cpu::RopeLayout::Interleaved;
    break;
  }
  case plan::StepKind::HeadLinear: {
    const plan::HeadLinearAttrs *a = step->attrs_as_HeadLinearAttrs();
    s.headLinear.heads = a->heads();
    s.headLinear.inStride = a->in_stride();
    s.headLinear.inOffset = a->in_offset();
    s.headLinear.inWidth = a->in_width();
    s.headLinear.rowStride = a->row_stride();
    s.headLinear.rowOffset = a->row_offset();
    s.headLinear.rows = a->rows();
    s.headLinear.transpose = a->transpose();
    break;
  }
  case plan::StepKind::LatentAttention: {
    const plan::LatentAttentionAttrs *a = step->attrs_as_LatentAttentionAttrs();
    s.latent.heads = a->heads();
    s.latent.latentDim = a->latent_dim();
    s.latent.ropeDim = a->rope_dim();
    s.latent.qStride = a->q_stride();
    s.latent.qRopeOffset = a->q_rope_offset();
    s.latent.softmaxScale = a->softmax_scale();
    break;
  }
  case plan::StepKind::ExpandedAttention: {
    const plan::ExpandedAttentionAttrs *a = step->attrs_as_ExpandedAttentionAttrs();
    s.expanded.heads = a->heads();
    s.expanded.nopeDim = a->nope_dim();
    s.expanded.ropeDim = a->rope_dim();
    s.expanded.vDim = a->v_dim();
    s.expanded.latentDim = a->latent_dim();
    s.expanded.softmaxScale = a->softmax_scale();
    break;
  }
  case plan::StepKind::Router: {
    const plan::RouterAttrs *a = step->attrs_as_RouterAttrs();
    s.router.experts = a->experts();
    s.router.topK = a->top_k();
    s.router.groups = a->groups();
    s.router.topkGroups = a->topk_groups();
    s.router.score = a->score_func() == plan::ScoreFunc::Sigmoid ? cpu::ScoreFunc::Sigmoid
                                                                 : cpu::ScoreFunc::Softmax;
    s.router.groupScore = a->group_score() == plan::GroupScore::Top2Sum
                              ? cpu::GroupScore::Top2Sum
                              : cpu::GroupScore::Max;
    s.router.normTopkProb = a->norm_topk_prob();
    s.router.routedScalingFactor = a->routed_scaling_factor();
    break;
  }
  case plan::StepKind::MoeExperts:
  case plan::StepKind::SwigluMlp:
    for (size_t e = 0; e + 2 < s.weights.size(); e += 3) {
      cpu::SwigluWeights mlp;
      mlp.gate = s.weights[e];
      mlp.up = s.weights[e + 1];
      mlp.down = s.weights[e + 2];
      s.experts.push_back(mlp);
    }
    break;
  case plan::StepKind::FusedMoeExperts:
  case plan::StepKind::FusedSwigluMlp: {
    const int64_t unit = step->kind() == plan::StepKind::FusedMoeExperts
                             ? step->attrs_as_MoeAttrs()->gate_up_rows()
                             : step->attrs_as_GateUpAttrs()->rows();
    for (size_t e = 0; e + 1 < s.weights.size(); e += 2) {
      cpu::SwigluWeights mlp;
      mlp.gateUp = s.weights[e];
      mlp.gateUpRows = unit;
      mlp.down = s.weights[e + 1];
      s.experts.push_back(mlp);
    }
    break;
  }
  default:
    break;
  }
  return Status();
}

Status CpuBackend::execute(Program &base, const Bindings &bindings) {
  CpuProgram *program = dynamic_cast<CpuProgram *>(&base);
  if (!program || &program->backend != this)
    return Status::error("cpu: execute: the program was not prepared by this backend");
  const Plan &plan = program->plan;
  if (bindings.tokens < 1 || bindings.tokens > plan.maxTokens())
    return Status::error("cpu: execute: %" PRId64 " tokens, the plan takes 1..%" PRId64,
                         bindings.tokens, plan.maxTokens());
  if (!bindings.arena)
    return Status::error("cpu: execute: no arena");
  for (int32_t state : program->usedStates) {
    if (!bindings.states || size_t(state) >= bindings.numStates)
      return Status::error("cpu: execute: state %d (%s) is not bound (%zu bound)", state,
                           plan.state(size_t(state)).name.c_str(), bindings.numStates);
    const StateBinding &b = bindings.states[state];
    if (!b.data || b.rowBytes < plan.state(size_t(state)).rowBytes ||
        b.rowBytes % sizeof(float) != 0 || b.sequenceStride % sizeof(float) != 0 ||
        reinterpret_cast<uintptr_t>(b.data) % alignof(float) != 0)
      return Status::error("cpu: execute: state %d (%s) is bound with rows of %" PRIu64
                           " bytes, %" PRIu64 " bytes apart per sequence; expected f32 rows "
                           "of at least %" PRIu64 " bytes",
                           state, plan.state(size_t(state)).name.c_str(), b.rowBytes,
                           b.sequenceStride, plan.state(size_t(state)).rowBytes);
  }
  const cpu::ScopedNumThreads threads(threads_);
  for (const CpuStep &step : program->steps) {
    MOEC_RETURN_IF_ERROR(run(step, bindings));
    if (bindings.afterStep)
      MOEC_RETURN_IF_ERROR((*bindings.afterStep)(step.index));
  }
  return Status();
}

Status CpuBackend::run(const CpuStep &step, const Bindings &bindings) const {
  const int64_t T = bindings.tokens;
  auto f32 = [&](const Place &p) { return reinterpret_cast<float *>(bindings.arena + p.offset); };
  auto i32 = [&](const Place &p) {
    return reinterpret_cast<const int32_t *>(bindings.arena + p.offset);
  };
  auto state = [&](size_t i) {
    const StateBinding &b = bindings.states[step.states[i]];
    cpu::StateView view;
    view.data = b.data;
    view.element = step.stateElement;
    view.sequenceStride = int64_t(b.sequenceStride) / view.elementBytes();
    view.rowStride = int64_t(b.rowBytes) / view.elementBytes();
    view.capacity = b.capacity;
    view.prefixSeq = b.prefixSeq;
    view.prefixRows = b.prefixRows;
    return view;
  };
  const std::vector<Place> &in = step.operands, &out = step.results;
  switch (step.kind) {
  case plan::StepKind::Embedding:
    cpu::embedding(step.weights[0], i32(in[0]), T, f32(out[0]));
    break;
  case plan::StepKind::RmsNorm:
    cpu::rmsNorm(f32(in[0]), T, in[0].cols, step.weights[0], step.eps, f32(out[0]));
    break;
  case plan::StepKind::Linear:
    if (step.writesLogits && bindings.numLogitsRows >= 0) {
      // Only the rows the caller reads, run by run of consecutive rows (a prompt:
      // its last row; several sequences: one row each, gathered).
      const float *x = f32(in[0]);
      float *y = f32(out[0]);
      const int64_t n = bindings.numLogitsRows, K = in[0].cols, V = out[0].cols;
      const int32_t *rows = bindings.logitsRows;
      if (n == 0 || rows[n - 1] - rows[0] + 1 == n) { // one run of consecutive rows
        if (n > 0)
          cpu::linear(x + rows[0] * K, n, step.weights[0], y + rows[0] * V);
        break;
      }
      std::vector<float> xs(size_t(n * K)), ys(size_t(n * V));
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(xs.data() + i * K, x + rows[i] * K, size_t(K) * sizeof(float));
      cpu::linear(xs.data(), n, step.weights[0], ys.data());
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(y + rows[i] * V, ys.data() + i * V, size_t(V) * sizeof(float));
      break;
    }
    cpu::linear(f32(in[0]), T, step.weights[0], f32(out[0]));
    break;
  case plan::StepKind::Add:
    cpu::add(f32(in[0]), f32(in[1]), T * in[0].cols, f32(out[0]));
    break;
  case plan::StepKind::AddRmsNorm:
    cpu::addRmsNorm(f32(in[0]), f32(in[1]), T, in[0].cols, step.weights[0], step.eps,
                    f32(out[0]), f32(out[1]));
    break;
  case plan::StepKind::SliceColumns:
    cpu::sliceColumns(f32(in[0]), T, in[0].cols, step.sliceBegin, step.sliceWidth,
                      f32(out[0]));
    break;
  case plan::StepKind::Rope: {
    float *x = f32(out[0]);
    if (x != f32(in[0]))
      std::memcpy(x, f32(in[0]), size_t(T * in[0].cols) * sizeof(float));
    cpu::rope(x, T, step.ropeHeads, in[0].cols, step.ropeHeadStride, step.ropeOffset,
              step.rope, step.freqs.data(), i32(in[1]), step.ropeLayout);
    break;
  }
  case plan::StepKind::CacheStore:
    cpu::cacheStore(f32(in[0]), f32(in[1]), T, in[0].cols, in[1].cols, i32(in[2]), i32(in[3]),
                    state(0), state(1));
    break;
  case plan::StepKind::HeadLinear:
    cpu::headLinear(f32(in[0]), T, in[0].cols, step.weights[0], step.headLinear, f32(out[0]));
    break;
  case plan::StepKind::LatentAttention:
    cpu::latentAttention(f32(in[0]), f32(in[1]), in[1].cols, T, i32(in[2]), i32(in[3]),
                         state(0), state(1), step.latent, f32(out[0]));
    break;
  case plan::StepKind::ExpandedAttention:
    cpu::expandedAttention(f32(in[0]), T, i32(in[1]), i32(in[2]), state(0), state(1),
                           step.weights[0], step.expanded, f32(out[0]));
    break;
  case plan::StepKind::Router: {
    const float *bias =
        step.weights.size() > 1 ? static_cast<const float *>(step.weights[1].data) : nullptr;
    cpu::router(f32(in[0]), T, step.weights[0], bias, step.router,
                reinterpret_cast<int32_t *>(bindings.arena + out[0].offset), f32(out[1]));
    break;
  }
  case plan::StepKind::MoeExperts:
  case plan::StepKind::FusedMoeExperts:
    cpu::moeExperts(f32(in[0]), T, step.experts.data(), int64_t(step.experts.size()),
                    i32(in[1]), f32(in[2]), in[1].cols, f32(out[0]));
    break;
  case plan::StepKind::SwigluMlp:
  case plan::StepKind::FusedSwigluMlp:
    cpu::swigluMlp(f32(in[0]), T, step.experts[0], f32(out[0]));
    break;
  }
  return Status();
}

Status createCpuBackend(const BackendOptions &options, std::unique_ptr<Backend> *out) {
  *out = std::make_unique<CpuBackend>(options);
  return Status();
}

} // namespace

void registerCpuBackend() { registerBackend("cpu", createCpuBackend); }

} // namespace moec
