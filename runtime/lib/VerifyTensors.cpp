//===- VerifyTensors.cpp - Checks of the config, buffers and weights ------===//
#include "PlanChecks.h"

#include "moec/runtime/CheckedMath.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

namespace moec::detail {

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

std::string printableText(const std::string &text, size_t limit) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= limit)
      return out + "...";
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      out += escaped;
    }
  }
  return out;
}

std::string elementLabel(const char *kind, size_t index, const flatbuffers::String *name) {
  std::string label = std::string(kind) + "[" + std::to_string(index) + "]";
  if (name && name->size() > 0)
    label += " (" + printableText(name->str()) + ")";
  return label;
}

std::string dtypeLabel(plan::DType type) {
  if (const char *name = dtypeName(type))
    return name;
  return "dtype(" + std::to_string(static_cast<int>(type)) + ")";
}

namespace {

Status checkDim(const char *field, int64_t value, int64_t lo) {
  if (value < lo || value > kMaxModelDim)
    return Status::error("model: %s is %" PRId64 ", expected %" PRId64 "..%" PRId64, field,
                         value, lo, kMaxModelDim);
  return Status();
}

Status checkPositive(const char *field, float value) {
  if (!(std::isfinite(value) && value > 0))
    return Status::error("model: %s is %g, expected a positive finite number", field,
                         static_cast<double>(value));
  return Status();
}

/// Reads a shape, rejecting absent or empty ones.
Status readShape(const flatbuffers::Vector<int64_t> *shape, const std::string &label,
                 std::vector<int64_t> *out) {
  if (!shape || shape->size() == 0)
    return Status::error("%s: has no shape", label.c_str());
  out->assign(shape->begin(), shape->end());
  return Status();
}

} // namespace

Status verifyConfig(const plan::Plan &root) {
  const plan::ModelConfig *model = root.model();
  if (!model)
    return Status::error("model: missing model config");
  if (!model->architecture() || model->architecture()->size() == 0)
    return Status::error("model: architecture is empty");
  MOEC_RETURN_IF_ERROR(checkDim("vocab_size", model->vocab_size(), 1));
  MOEC_RETURN_IF_ERROR(checkDim("hidden_size", model->hidden_size(), 1));
  MOEC_RETURN_IF_ERROR(checkDim("num_hidden_layers", model->num_hidden_layers(), 1));
  MOEC_RETURN_IF_ERROR(checkDim("num_attention_heads", model->num_attention_heads(), 1));
  MOEC_RETURN_IF_ERROR(checkDim("qk_nope_head_dim", model->qk_nope_head_dim(), 0));
  MOEC_RETURN_IF_ERROR(checkDim("qk_rope_head_dim", model->qk_rope_head_dim(), 2));
  if (model->qk_rope_head_dim() % 2 != 0)
    return Status::error("model: qk_rope_head_dim is %" PRId64 ", expected an even number",
                         model->qk_rope_head_dim());
  MOEC_RETURN_IF_ERROR(checkDim("v_head_dim", model->v_head_dim(), 1));
  MOEC_RETURN_IF_ERROR(checkDim("kv_lora_rank", model->kv_lora_rank(), 1));
  MOEC_RETURN_IF_ERROR(checkDim("q_lora_rank", model->q_lora_rank(), 0));
  MOEC_RETURN_IF_ERROR(checkDim("intermediate_size", model->intermediate_size(), 0));
  MOEC_RETURN_IF_ERROR(checkDim("moe_intermediate_size", model->moe_intermediate_size(), 0));
  MOEC_RETURN_IF_ERROR(checkDim("first_k_dense_replace", model->first_k_dense_replace(), 0));
  MOEC_RETURN_IF_ERROR(checkDim("n_routed_experts", model->n_routed_experts(), 0));
  MOEC_RETURN_IF_ERROR(checkDim("n_shared_experts", model->n_shared_experts(), 0));
  MOEC_RETURN_IF_ERROR(checkDim("num_experts_per_tok", model->num_experts_per_tok(), 0));
  MOEC_RETURN_IF_ERROR(checkDim("n_group", model->n_group(), 1));
  MOEC_RETURN_IF_ERROR(checkDim("topk_group", model->topk_group(), 1));
  MOEC_RETURN_IF_ERROR(checkPositive("rms_norm_eps", model->rms_norm_eps()));
  MOEC_RETURN_IF_ERROR(checkPositive("rope_theta", model->rope_theta()));
  MOEC_RETURN_IF_ERROR(checkPositive("softmax_scale", model->softmax_scale()));
  if (!std::isfinite(model->routed_scaling_factor()))
    return Status::error("model: routed_scaling_factor is not finite");
  if (const plan::YarnParams *yarn = model->rope_yarn()) {
    MOEC_RETURN_IF_ERROR(checkPositive("rope_yarn.factor", yarn->factor()));
    MOEC_RETURN_IF_ERROR(checkPositive("rope_yarn.beta_fast", yarn->beta_fast()));
    MOEC_RETURN_IF_ERROR(checkPositive("rope_yarn.beta_slow", yarn->beta_slow()));
    MOEC_RETURN_IF_ERROR(checkPositive("rope_yarn.attention_factor", yarn->attention_factor()));
    MOEC_RETURN_IF_ERROR(checkDim("rope_yarn.original_max_position_embeddings",
                                  yarn->original_max_position_embeddings(), 1));
  }
  if (root.max_tokens() < 1 || root.max_tokens() > kMaxModelDim)
    return Status::error("max_tokens is %" PRId64 ", expected 1..%" PRId64, root.max_tokens(),
                         kMaxModelDim);
  return Status();
}

Status verifyBuffers(PlanInfo &info) {
  const plan::Plan &root = *info.root;
  const auto *buffers = root.buffers();
  size_t count = buffers ? buffers->size() : 0;
  info.buffers.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const plan::Buffer *buffer = buffers->Get(static_cast<flatbuffers::uoffset_t>(i));
    TensorInfo &tensor = info.buffers[i];
    tensor.label = elementLabel("buffers", i, buffer->name());
    const char *label = tensor.label.c_str();
    tensor.dtype = buffer->dtype();
    if (tensor.dtype != plan::DType::F32 && tensor.dtype != plan::DType::I32)
      return Status::error("%s: dtype %s is not an activation type (f32 or i32)", label,
                           dtypeLabel(tensor.dtype).c_str());
    MOEC_RETURN_IF_ERROR(readShape(buffer->shape(), tensor.label, &tensor.shape));
    if (tensor.shape.size() > 4)
      return Status::error("%s: shape %s has more than 4 dimensions", label,
                           formatShape(tensor.shape).c_str());
    for (size_t d = 0; d < tensor.shape.size(); ++d) {
      int64_t dim = tensor.shape[d];
      if (dim == -1 && d == 0)
        continue;
      if (dim < 1)
        return Status::error("%s: shape %s has dimension %zu = %" PRId64
                             " (only the first may be -1, the token dimension)",
                             label, formatShape(tensor.shape).c_str(), d, dim);
    }
    if (!tensorBytes(tensor.shape, tensor.dtype, static_cast<uint64_t>(root.max_tokens()),
                     &tensor.bytes))
      return Status::error("%s: size of shape %s x %s for max_tokens %" PRId64
                           " overflows 64 bits",
                           label, formatShape(tensor.shape).c_str(),
                           dtypeLabel(tensor.dtype).c_str(), root.max_tokens());
    if (buffer->size() != tensor.bytes)
      return Status::error("%s: size is %" PRIu64 " bytes, shape %s x %s for max_tokens %" PRId64
                           " needs %" PRIu64,
                           label, static_cast<uint64_t>(buffer->size()),
                           formatShape(tensor.shape).c_str(), dtypeLabel(tensor.dtype).c_str(),
                           root.max_tokens(), tensor.bytes);
    if (buffer->offset() % kPlanAlignment != 0)
      return Status::error("%s: arena offset %" PRIu64 " is not a multiple of %" PRIu64, label,
                           static_cast<uint64_t>(buffer->offset()), kPlanAlignment);
    uint64_t end;
    if (!checkedAdd(buffer->offset(), buffer->size(), &end) || end > root.arena_size())
      return Status::error("%s: bytes [%" PRIu64 ", +%" PRIu64 ") lie outside the arena of %" PRIu64
                           " bytes",
                           label, static_cast<uint64_t>(buffer->offset()),
                           static_cast<uint64_t>(buffer->size()),
                           static_cast<uint64_t>(root.arena_size()));
  }
  return Status();
}

Status verifyWeights(PlanInfo &info) {
  const plan::Plan &root = *info.root;
  const auto *weights = root.weights();
  size_t count = weights ? weights->size() : 0;
  info.weights.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const plan::Weight *weight = weights->Get(static_cast<flatbuffers::uoffset_t>(i));
    TensorInfo &tensor = info.weights[i];
    tensor.label = elementLabel("weights", i, weight->name());
    const char *label = tensor.label.c_str();
    tensor.dtype = weight->dtype();
    if (tensor.dtype == plan::DType::I32 || dtypeSize(tensor.dtype) == 0)
      return Status::error("%s: dtype %s is not a weight type (f32, f16, bf16 or f8e4m3)",
                           label, dtypeLabel(tensor.dtype).c_str());
    MOEC_RETURN_IF_ERROR(readShape(weight->shape(), tensor.label, &tensor.shape));
    if (tensor.shape.size() > 2)
      return Status::error("%s: shape %s has more than 2 dimensions", label,
                           formatShape(tensor.shape).c_str());
    for (int64_t dim : tensor.shape)
      if (dim < 1)
        return Status::error("%s: shape %s has a dimension < 1", label,
                             formatShape(tensor.shape).c_str());
    if (!tensorBytes(tensor.shape, tensor.dtype, 0, &tensor.bytes))
      return Status::error("%s: size of shape %s x %s overflows 64 bits", label,
                           formatShape(tensor.shape).c_str(), dtypeLabel(tensor.dtype).c_str());
    if (weight->size() != tensor.bytes)
      return Status::error("%s: size is %" PRIu64 " bytes, shape %s x %s needs %" PRIu64, label,
                           static_cast<uint64_t>(weight->size()),
                           formatShape(tensor.shape).c_str(), dtypeLabel(tensor.dtype).c_str(),
                           tensor.bytes);
  }
  // Block scales, once every weight's shape is known.
  for (size_t i = 0; i < count; ++i) {
    const plan::Weight *weight = weights->Get(static_cast<flatbuffers::uoffset_t>(i));
    const TensorInfo &tensor = info.weights[i];
    const char *label = tensor.label.c_str();
    int32_t scale = weight->block_scale();
    bool fp8 = tensor.dtype == plan::DType::F8E4M3;
    if (scale == -1) {
      if (fp8)
        return Status::error("%s: f8e4m3 weight has no block_scale", label);
      continue;
    }
    if (!fp8)
      return Status::error("%s: only f8e4m3 weights have a block_scale, this one is %s", label,
                           dtypeLabel(tensor.dtype).c_str());
    if (scale < 0 || static_cast<size_t>(scale) >= count || static_cast<size_t>(scale) == i)
      return Status::error("%s: block_scale refers to weight %d, plan has %zu", label, scale,
                           count);
    const TensorInfo &scales = info.weights[static_cast<size_t>(scale)];
    int64_t rows = tensor.shape.size() == 2 ? tensor.shape[0] : 1;
    int64_t cols = tensor.shape.back();
    std::vector<int64_t> expected = {ceilDiv(rows, 128), ceilDiv(cols, 128)};
    if (scales.dtype != plan::DType::F32 || scales.shape != expected)
      return Status::error("%s: block_scale %s is %s %s, expected f32 %s", label,
                           scales.label.c_str(), dtypeLabel(scales.dtype).c_str(),
                           formatShape(scales.shape).c_str(), formatShape(expected).c_str());
  }
  return Status();
}

Status verifyKernelModules(const PlanInfo &info) {
  const auto *modules = info.root->kernel_modules();
  if (!modules)
    return Status();
  size_t numSteps = info.root->steps() ? info.root->steps()->size() : 0;
  for (flatbuffers::uoffset_t m = 0; m < modules->size(); ++m) {
    const plan::KernelModule *module = modules->Get(m);
    std::string label = elementLabel("kernel_modules", m, module->target_arch());
    if (!module->target_arch() || module->target_arch()->size() == 0)
      return Status::error("%s: target_arch is empty", label.c_str());
    if (!module->kernels())
      continue;
    for (flatbuffers::uoffset_t k = 0; k < module->kernels()->size(); ++k) {
      const plan::KernelEntry *kernel = module->kernels()->Get(k);
      if (!kernel->name() || kernel->name()->size() == 0)
        return Status::error("%s: kernels[%u]: name is empty", label.c_str(), k);
      if (kernel->step() < -1 || (kernel->step() >= 0 &&
                                  static_cast<size_t>(kernel->step()) >= numSteps))
        return Status::error("%s: kernels[%u]: step %d is out of range, plan has %zu steps",
                             label.c_str(), k, kernel->step(), numSteps);
      if ((kernel->grid() && kernel->grid()->size() != 3) ||
          (kernel->block() && kernel->block()->size() != 3))
        return Status::error("%s: kernels[%u]: grid and block need 3 values each",
                             label.c_str(), k);
    }
  }
  return Status();
}

} // namespace moec::detail
