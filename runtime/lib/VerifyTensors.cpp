//===- VerifyTensors.cpp - Checks of scalars, buffers, weights and states -===//
#include "PlanChecks.h"

#include "moec/runtime/CheckedMath.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

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

std::vector<int64_t> readDims(const flatbuffers::Vector<int64_t> *dims) {
  std::vector<int64_t> out;
  if (!dims)
    return out;
  // The verifier only guarantees 4-byte alignment of a vector's elements: copy the
  // bytes instead of loading 8-byte values through a possibly misaligned pointer.
  out.resize(dims->size());
  if (!out.empty())
    std::memcpy(out.data(), dims->Data(), out.size() * sizeof(int64_t));
  for (int64_t &dim : out)
    dim = flatbuffers::EndianScalar(dim);
  return out;
}

namespace {

/// Reads a shape, rejecting absent or empty ones.
Status readShape(const flatbuffers::Vector<int64_t> *shape, const std::string &label,
                 std::vector<int64_t> *out) {
  if (!shape || shape->size() == 0)
    return Status::error("%s: has no shape", label.c_str());
  *out = readDims(shape);
  return Status();
}

/// A block shape [br, bc] with both values in 1..kMaxModelDim.
bool validBlockShape(const std::vector<int64_t> &block) {
  return block.size() == 2 && block[0] >= 1 && block[0] <= kMaxModelDim && block[1] >= 1 &&
         block[1] <= kMaxModelDim;
}

} // namespace

Status verifyScalars(const plan::Plan &root) {
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
    if (tensor.dtype != plan::DType::F32 && tensor.dtype != plan::DType::I32 &&
        tensor.dtype != plan::DType::BF16 && tensor.dtype != plan::DType::F8E4M3)
      return Status::error("%s: dtype %s is not an activation type (f32, i32, bf16 or f8e4m3)",
                           label, dtypeLabel(tensor.dtype).c_str());
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
    tensor.blockShape = readDims(buffer->block_shape());
    tensor.scale = buffer->scale();
  }
  // Block scales of quantized activations, once every buffer's shape is known.
  for (size_t i = 0; i < count; ++i) {
    const TensorInfo &tensor = info.buffers[i];
    const char *label = tensor.label.c_str();
    bool quantized = tensor.dtype == plan::DType::F8E4M3;
    if (!quantized) {
      if (!tensor.blockShape.empty() || tensor.scale != -1)
        return Status::error("%s: only f8e4m3 buffers have a block_shape and scale, this one "
                             "is %s",
                             label, dtypeLabel(tensor.dtype).c_str());
      continue;
    }
    if (tensor.blockShape.empty())
      return Status::error("%s: f8e4m3 buffer has no block_shape", label);
    if (!validBlockShape(tensor.blockShape))
      return Status::error("%s: block_shape %s must be [rows, cols] with values in 1..%" PRId64,
                           label, formatShape(tensor.blockShape).c_str(), kMaxModelDim);
    if (tensor.shape.size() != 2)
      return Status::error("%s: a block-quantized buffer must be a matrix, shape is %s", label,
                           formatShape(tensor.shape).c_str());
    if (tensor.shape[0] == -1 && tensor.blockShape[0] != 1)
      return Status::error("%s: block_shape %s of a token-major buffer must cover one row",
                           label, formatShape(tensor.blockShape).c_str());
    if (tensor.scale == -1)
      return Status::error("%s: f8e4m3 buffer has no scale", label);
    if (tensor.scale < 0 || size_t(tensor.scale) >= count || size_t(tensor.scale) == i)
      return Status::error("%s: scale refers to buffer %d, plan has %zu", label, tensor.scale,
                           count);
    const TensorInfo &scales = info.buffers[size_t(tensor.scale)];
    std::vector<int64_t> expected = {
        tensor.shape[0] == -1 ? -1 : ceilDiv(tensor.shape[0], tensor.blockShape[0]),
        ceilDiv(tensor.shape[1], tensor.blockShape[1])};
    if (scales.dtype != plan::DType::F32 || scales.shape != expected)
      return Status::error("%s: scale %s is %s %s, expected f32 %s for block shape %s", label,
                           scales.label.c_str(), dtypeLabel(scales.dtype).c_str(),
                           formatShape(scales.shape).c_str(), formatShape(expected).c_str(),
                           formatShape(tensor.blockShape).c_str());
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
      return Status::error("%s: dtype %s is not a weight type (f32, f16, bf16, f8e4m3 or i8)",
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
    tensor.blockShape = readDims(weight->block_shape());
    tensor.scale = weight->block_scale();
  }
  // Block scales, once every weight's shape is known.
  for (size_t i = 0; i < count; ++i) {
    const TensorInfo &tensor = info.weights[i];
    const char *label = tensor.label.c_str();
    bool quantized = tensor.dtype == plan::DType::F8E4M3 || tensor.dtype == plan::DType::I8;
    if (!quantized) {
      if (tensor.scale != -1 || !tensor.blockShape.empty())
        return Status::error("%s: only f8e4m3 and i8 weights have a block_scale and "
                             "block_shape, this one is %s",
                             label, dtypeLabel(tensor.dtype).c_str());
      continue;
    }
    if (tensor.scale == -1)
      return Status::error("%s: %s weight has no block_scale", label,
                           dtypeLabel(tensor.dtype).c_str());
    if (tensor.blockShape.empty())
      return Status::error("%s: %s weight has no block_shape", label,
                           dtypeLabel(tensor.dtype).c_str());
    if (!validBlockShape(tensor.blockShape))
      return Status::error("%s: block_shape %s must be [rows, cols] with values in 1..%" PRId64,
                           label, formatShape(tensor.blockShape).c_str(), kMaxModelDim);
    if (tensor.scale < 0 || size_t(tensor.scale) >= count || size_t(tensor.scale) == i)
      return Status::error("%s: block_scale refers to weight %d, plan has %zu", label,
                           tensor.scale, count);
    const TensorInfo &scales = info.weights[size_t(tensor.scale)];
    int64_t rows = tensor.shape.size() == 2 ? tensor.shape[0] : 1;
    int64_t cols = tensor.shape.back();
    std::vector<int64_t> expected = {ceilDiv(rows, tensor.blockShape[0]),
                                     ceilDiv(cols, tensor.blockShape[1])};
    if (scales.dtype != plan::DType::F32 || scales.shape != expected)
      return Status::error("%s: block_scale %s is %s %s, expected f32 %s for block shape %s",
                           label, scales.label.c_str(), dtypeLabel(scales.dtype).c_str(),
                           formatShape(scales.shape).c_str(), formatShape(expected).c_str(),
                           formatShape(tensor.blockShape).c_str());
  }
  return Status();
}

Status verifyStates(PlanInfo &info) {
  const auto *states = info.root->states();
  size_t count = states ? states->size() : 0;
  info.states.resize(count);
  for (size_t i = 0; i < count; ++i) {
    const plan::State *state = states->Get(static_cast<flatbuffers::uoffset_t>(i));
    TensorInfo &tensor = info.states[i];
    tensor.label = elementLabel("states", i, state->name());
    const char *label = tensor.label.c_str();
    tensor.dtype = state->dtype();
    if (tensor.dtype != plan::DType::F32 && tensor.dtype != plan::DType::BF16 &&
        tensor.dtype != plan::DType::F8E4M3)
      return Status::error("%s: dtype %s is not supported for states (f32, bf16 or f8e4m3)",
                           label,
                           dtypeLabel(tensor.dtype).c_str());
    MOEC_RETURN_IF_ERROR(readShape(state->shape(), tensor.label, &tensor.shape));
    if (tensor.shape.size() > 4)
      return Status::error("%s: row shape %s has more than 4 dimensions", label,
                           formatShape(tensor.shape).c_str());
    for (int64_t dim : tensor.shape)
      if (dim < 1 || dim > kMaxModelDim)
        return Status::error("%s: row shape %s needs dimensions in 1..%" PRId64, label,
                             formatShape(tensor.shape).c_str(), kMaxModelDim);
    if (!tensorBytes(tensor.shape, tensor.dtype, 0, &tensor.bytes))
      return Status::error("%s: size of a row of shape %s x %s overflows 64 bits", label,
                           formatShape(tensor.shape).c_str(), dtypeLabel(tensor.dtype).c_str());
  }
  return Status();
}

namespace {

/// One KernelEntry of a module's `kernels` (a step's) or `argmax` (step -1).
Status verifyKernelEntry(const plan::KernelEntry *kernel, const std::string &at, bool argmax,
                         size_t numSteps) {
  if (!kernel->name() || kernel->name()->size() == 0)
    return Status::error("%s: name is empty", at.c_str());
  if (argmax && kernel->step() != -1)
    return Status::error("%s: step is %d, an argmax kernel belongs to no step (-1)", at.c_str(),
                         kernel->step());
  if (kernel->step() < -1 ||
      (kernel->step() >= 0 && static_cast<size_t>(kernel->step()) >= numSteps))
    return Status::error("%s: step %d is out of range, plan has %zu steps", at.c_str(),
                         kernel->step(), numSteps);
  if ((kernel->grid() && kernel->grid()->size() != 3) ||
      (kernel->block() && kernel->block()->size() != 3))
    return Status::error("%s: grid and block need 3 values each", at.c_str());
  if (kernel->tokens_per_block() > 0 && (!kernel->grid() || kernel->grid()->Get(0) != 1))
    return Status::error("%s: tokens_per_block is %u, so grid x comes from the token count "
                         "and must be stored as 1",
                         at.c_str(), kernel->tokens_per_block());
  if (kernel->max_tokens() > 0 && kernel->max_tokens() < kernel->min_tokens())
    return Status::error("%s: runs for no token count (min_tokens %u, max_tokens %u)",
                         at.c_str(), kernel->min_tokens(), kernel->max_tokens());
  if (kernel->tma_box() && kernel->tma_box()->size() > 0) {
    if (kernel->tma_box()->size() != 2)
      return Status::error("%s: tma_box has %u dims, the runtime makes 2-D tensor maps",
                           at.c_str(), kernel->tma_box()->size());
    for (uint32_t d : *kernel->tma_box())
      if (d == 0 || d > 256)
        return Status::error("%s: a tma_box side of %u (TMA allows 1..256)", at.c_str(), d);
  }
  if (kernel->block()) {
    uint64_t threads = 1;
    for (uint32_t d : *kernel->block())
      threads *= d;
    if (threads == 0 || threads > 1024)
      return Status::error("%s: a block of %llu threads (CUDA allows 1..1024)", at.c_str(),
                           static_cast<unsigned long long>(threads));
  }
  return Status();
}

} // namespace

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
    for (bool argmax : {false, true}) {
      const auto *entries = argmax ? module->argmax() : module->kernels();
      for (flatbuffers::uoffset_t k = 0; entries && k < entries->size(); ++k)
        MOEC_RETURN_IF_ERROR(verifyKernelEntry(
            entries->Get(k),
            label + (argmax ? ": argmax[" : ": kernels[") + std::to_string(k) + "]", argmax,
            numSteps));
    }
  }
  return Status();
}

} // namespace moec::detail
