//===- VerifySteps.cpp - Checks of each step against its kind -------------===//
//
// Every constant a kernel reads is a step attribute, so the shapes a step may see
// follow from its attributes and the shapes of its buffers, weights and states alone.
// Attribute values that size or offset anything are bounded by kMaxModelDim, which
// keeps every product and sum below far from overflow.
//
//===----------------------------------------------------------------------===//
#include "PlanChecks.h"

#include "moec/runtime/CheckedMath.h"

#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace moec::detail {

namespace {

/// Printed as "*" in an expected shape: any value is accepted.
constexpr int64_t kAnyDim = INT64_MIN;

std::string formatExpected(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      text += ", ";
    text += shape[i] == kAnyDim ? std::string("*") : std::to_string(shape[i]);
  }
  return text + "]";
}

bool matches(const std::vector<int64_t> &shape, const std::vector<int64_t> &expected) {
  if (shape.size() != expected.size())
    return false;
  for (size_t i = 0; i < shape.size(); ++i)
    if (expected[i] != kAnyDim && shape[i] != expected[i])
      return false;
  return true;
}

/// The element types an activation role accepts.
enum class Elem {
  Float, ///< f32, or a reduced-precision activation (bf16, f8e4m3); the backend decides
  F32,   ///< f32 only
  I32,   ///< i32 only (indices)
};

bool accepts(Elem elem, plan::DType dtype) {
  switch (elem) {
  case Elem::Float:
    return dtype == plan::DType::F32 || dtype == plan::DType::BF16 ||
           dtype == plan::DType::F8E4M3;
  case Elem::F32:
    return dtype == plan::DType::F32;
  case Elem::I32:
    return dtype == plan::DType::I32;
  }
  return false;
}

const char *elemName(Elem elem) {
  switch (elem) {
  case Elem::Float:
    return "float";
  case Elem::F32:
    return "f32";
  case Elem::I32:
    return "i32";
  }
  return "?";
}

/// Checks one step; every message starts with the step's label.
class StepChecker {
public:
  StepChecker(const PlanInfo &info, size_t index, const plan::Step *step)
      : info_(info), step_(step), kind_(kindNameOrNull(step->kind())) {
    label_ = elementLabel("steps", index, step->name());
    if (step->operands())
      operands_.assign(step->operands()->begin(), step->operands()->end());
    if (step->results())
      results_.assign(step->results()->begin(), step->results()->end());
    if (step->weights())
      weights_.assign(step->weights()->begin(), step->weights()->end());
    if (step->states())
      states_.assign(step->states()->begin(), step->states()->end());
  }

  Status run();

private:
  Status fail(const char *format, ...) const
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
  {
    char text[1024];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof(text), format, args);
    va_end(args);
    return Status::error("%s: %s", label_.c_str(), text);
  }

  /// Checks the numbers of operands, results, weights and states, then that each
  /// index is in range.
  Status signature(size_t numOperands, size_t numResults, size_t minWeights,
                   size_t maxWeights, size_t numStates = 0) const;
  Status indices() const;
  Status attrs(plan::StepAttrs expected) const;
  Status noAliasing(bool mayWorkInPlace) const;

  const TensorInfo &operand(size_t i) const { return info_.buffers[size_t(operands_[i])]; }
  const TensorInfo &result(size_t i) const { return info_.buffers[size_t(results_[i])]; }
  const TensorInfo &weight(size_t i) const { return info_.weights[size_t(weights_[i])]; }
  const TensorInfo &state(size_t i) const { return info_.states[size_t(states_[i])]; }

  /// Checks that activation `tensor` (role "operand 0") is `elem` with `shape`.
  Status expect(const char *role, size_t i, const TensorInfo &tensor, Elem elem,
                const std::vector<int64_t> &shape) const;
  Status expectOperand(size_t i, Elem elem, const std::vector<int64_t> &shape) const {
    return expect("operand", i, operand(i), elem, shape);
  }
  Status expectResult(size_t i, Elem elem, const std::vector<int64_t> &shape) const {
    return expect("result", i, result(i), elem, shape);
  }
  /// Checks that weight i is a matrix [rows, cols] (kAnyDim allowed).
  Status expectMatrix(size_t i, int64_t rows, int64_t cols) const;
  /// Checks that weight i holds `length` values ([length] or [1, length]).
  Status expectVector(size_t i, int64_t length) const;
  /// Checks that state i has rows of shape [length].
  Status expectStateRow(size_t i, int64_t length) const;
  /// Checks that the step's two states differ.
  Status distinctStates() const;
  /// Columns of a token-major float activation [-1, N].
  Status tokenMatrix(const char *role, size_t i, const TensorInfo &tensor, int64_t *cols) const;
  /// Checks that an attribute lies in lo..kMaxModelDim.
  Status dimAttr(const char *name, int64_t value, int64_t lo) const;
  /// Checks that an attribute is a positive finite number.
  Status positiveAttr(const char *name, float value) const;
  Status swiglu(size_t firstWeight, int64_t hidden) const;
  /// A fused SwiGLU's [gate_up, down] from firstWeight, interleaved by `unit` rows.
  Status gateUpSwiglu(size_t firstWeight, int64_t hidden, int64_t unit) const;

  Status checkEmbedding() const;
  Status checkRmsNorm() const;
  Status checkAddRmsNorm() const;
  Status checkLinear() const;
  Status checkAdd() const;
  Status checkSlice() const;
  Status checkRope() const;
  Status checkCacheStore() const;
  Status checkHeadLinear() const;
  Status checkLatentAttention() const;
  Status checkExpandedAttention() const;
  Status checkRouter() const;
  Status checkMoe(bool fused) const;
  Status checkSwiglu() const;
  Status checkFusedSwiglu() const;

  const PlanInfo &info_;
  const plan::Step *step_;
  const char *kind_;
  std::string label_;
  std::vector<int32_t> operands_, results_, weights_, states_;
};

Status StepChecker::signature(size_t numOperands, size_t numResults, size_t minWeights,
                              size_t maxWeights, size_t numStates) const {
  if (operands_.size() != numOperands)
    return fail("%s takes %zu operands, has %zu", kind_, numOperands, operands_.size());
  if (results_.size() != numResults)
    return fail("%s takes %zu results, has %zu", kind_, numResults, results_.size());
  if (weights_.size() < minWeights || weights_.size() > maxWeights) {
    if (minWeights == maxWeights)
      return fail("%s takes %zu weights, has %zu", kind_, minWeights, weights_.size());
    return fail("%s takes %zu to %zu weights, has %zu", kind_, minWeights, maxWeights,
                weights_.size());
  }
  if (states_.size() != numStates)
    return fail("%s takes %zu states, has %zu", kind_, numStates, states_.size());
  return indices();
}

Status StepChecker::indices() const {
  size_t numBuffers = info_.buffers.size();
  for (size_t i = 0; i < operands_.size(); ++i)
    if (operands_[i] < 0 || size_t(operands_[i]) >= numBuffers)
      return fail("operand %zu refers to buffer %d, plan has %zu", i, operands_[i], numBuffers);
  for (size_t i = 0; i < results_.size(); ++i)
    if (results_[i] < 0 || size_t(results_[i]) >= numBuffers)
      return fail("result %zu refers to buffer %d, plan has %zu", i, results_[i], numBuffers);
  size_t numWeights = info_.weights.size();
  for (size_t i = 0; i < weights_.size(); ++i)
    if (weights_[i] < 0 || size_t(weights_[i]) >= numWeights)
      return fail("weight %zu refers to weight %d, plan has %zu", i, weights_[i], numWeights);
  size_t numStates = info_.states.size();
  for (size_t i = 0; i < states_.size(); ++i)
    if (states_[i] < 0 || size_t(states_[i]) >= numStates)
      return fail("state %zu refers to state %d, plan has %zu", i, states_[i], numStates);
  return Status();
}

Status StepChecker::attrs(plan::StepAttrs expected) const {
  plan::StepAttrs actual = step_->attrs_type();
  // The flatbuffers verifier accepts a union whose type is set but whose table is
  // absent; every accessor below relies on the table being there.
  if (actual == expected && (expected == plan::StepAttrs::NONE || step_->attrs()))
    return Status();
  if (actual == expected)
    return fail("%s needs %s attributes, has an empty %s", kind_,
                plan::EnumNameStepAttrs(expected), plan::EnumNameStepAttrs(actual));
  const char *actualName = plan::EnumNameStepAttrs(actual);
  std::string actualText = actualName && *actualName
                               ? std::string(actualName)
                               : "attrs(" + std::to_string(int(actual)) + ")";
  return fail("%s needs %s attributes, has %s", kind_, plan::EnumNameStepAttrs(expected),
              actualText.c_str());
}

Status StepChecker::noAliasing(bool mayWorkInPlace) const {
  for (size_t r = 0; r < results_.size(); ++r) {
    for (size_t s = r + 1; s < results_.size(); ++s)
      if (results_[r] == results_[s])
        return fail("results %zu and %zu are the same buffer %d", r, s, results_[r]);
    if (mayWorkInPlace)
      continue;
    for (size_t o = 0; o < operands_.size(); ++o)
      if (results_[r] == operands_[o])
        return fail("result %zu is also operand %zu (buffer %d); %s cannot work in place", r,
                    o, results_[r], kind_);
  }
  return Status();
}

Status StepChecker::expect(const char *role, size_t i, const TensorInfo &tensor, Elem elem,
                           const std::vector<int64_t> &shape) const {
  if (accepts(elem, tensor.dtype) && matches(tensor.shape, shape))
    return Status();
  return fail("%s %zu (%s) is %s %s, %s expects %s %s", role, i, tensor.label.c_str(),
              dtypeLabel(tensor.dtype).c_str(), formatShape(tensor.shape).c_str(), kind_,
              elemName(elem), formatExpected(shape).c_str());
}

Status StepChecker::tokenMatrix(const char *role, size_t i, const TensorInfo &tensor,
                                int64_t *cols) const {
  MOEC_RETURN_IF_ERROR(expect(role, i, tensor, Elem::Float, {-1, kAnyDim}));
  *cols = tensor.shape[1];
  return Status();
}

Status StepChecker::expectMatrix(size_t i, int64_t rows, int64_t cols) const {
  const TensorInfo &tensor = weight(i);
  if (matches(tensor.shape, {rows, cols}))
    return Status();
  return fail("weight %zu (%s) has shape %s, %s expects %s", i, tensor.label.c_str(),
              formatShape(tensor.shape).c_str(), kind_, formatExpected({rows, cols}).c_str());
}

Status StepChecker::expectVector(size_t i, int64_t length) const {
  const TensorInfo &tensor = weight(i);
  if (matches(tensor.shape, {length}) || matches(tensor.shape, {1, length}))
    return Status();
  return fail("weight %zu (%s) has shape %s, %s expects [%" PRId64 "]", i,
              tensor.label.c_str(), formatShape(tensor.shape).c_str(), kind_, length);
}

Status StepChecker::expectStateRow(size_t i, int64_t length) const {
  const TensorInfo &tensor = state(i);
  if (matches(tensor.shape, {length}))
    return Status();
  return fail("state %zu (%s) has rows of shape %s, %s expects [%" PRId64 "]", i,
              tensor.label.c_str(), formatShape(tensor.shape).c_str(), kind_, length);
}

Status StepChecker::distinctStates() const {
  if (states_[0] == states_[1])
    return fail("states 0 and 1 are the same state %d", states_[0]);
  return Status();
}

Status StepChecker::dimAttr(const char *name, int64_t value, int64_t lo) const {
  if (value < lo || value > kMaxModelDim)
    return fail("%s is %" PRId64 ", expected %" PRId64 "..%" PRId64, name, value, lo,
                kMaxModelDim);
  return Status();
}

Status StepChecker::positiveAttr(const char *name, float value) const {
  if (!(std::isfinite(value) && value > 0))
    return fail("%s is %g, expected a positive finite number", name, double(value));
  return Status();
}

Status StepChecker::checkEmbedding() const {
  MOEC_RETURN_IF_ERROR(signature(1, 1, 1, 1));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::NONE));
  MOEC_RETURN_IF_ERROR(expectOperand(0, Elem::I32, {-1}));
  // The table's rows are checked against the entry point's token_bound.
  MOEC_RETURN_IF_ERROR(expectMatrix(0, kAnyDim, kAnyDim));
  return expectResult(0, Elem::Float, {-1, weight(0).shape[1]});
}

Status StepChecker::checkRmsNorm() const {
  MOEC_RETURN_IF_ERROR(signature(1, 1, 1, 1));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::RmsNormAttrs));
  MOEC_RETURN_IF_ERROR(positiveAttr("eps", step_->attrs_as_RmsNormAttrs()->eps()));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(expectVector(0, cols));
  return expectResult(0, Elem::Float, {-1, cols});
}

Status StepChecker::checkAddRmsNorm() const {
  MOEC_RETURN_IF_ERROR(signature(2, 2, 1, 1));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::RmsNormAttrs));
  MOEC_RETURN_IF_ERROR(positiveAttr("eps", step_->attrs_as_RmsNormAttrs()->eps()));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(expectOperand(1, Elem::Float, {-1, cols}));
  MOEC_RETURN_IF_ERROR(expectVector(0, cols));
  MOEC_RETURN_IF_ERROR(expectResult(0, Elem::Float, {-1, cols}));
  return expectResult(1, Elem::Float, {-1, cols});
}

Status StepChecker::checkLinear() const {
  MOEC_RETURN_IF_ERROR(signature(1, 1, 1, 1));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::NONE));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(expectMatrix(0, kAnyDim, cols));
  return expectResult(0, Elem::Float, {-1, weight(0).shape[0]});
}

Status StepChecker::checkAdd() const {
  MOEC_RETURN_IF_ERROR(signature(2, 1, 0, 0));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::NONE));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(expectOperand(1, Elem::Float, {-1, cols}));
  return expectResult(0, Elem::Float, {-1, cols});
}

Status StepChecker::checkSlice() const {
  MOEC_RETURN_IF_ERROR(signature(1, 1, 0, 0));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::SliceAttrs));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  const plan::SliceAttrs *slice = step_->attrs_as_SliceAttrs();
  if (slice->begin() < 0 || slice->width() < 1 || slice->begin() > cols ||
      slice->width() > cols - slice->begin())
    return fail("columns [%" PRId64 ", +%" PRId64 ") do not fit in %" PRId64, slice->begin(),
                slice->width(), cols);
  return expectResult(0, Elem::Float, {-1, slice->width()});
}

Status StepChecker::checkRope() const {
  MOEC_RETURN_IF_ERROR(signature(2, 1, 0, 0));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::RopeAttrs));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(expectOperand(1, Elem::I32, {-1}));
  const plan::RopeAttrs *rope = step_->attrs_as_RopeAttrs();
  if (rope->layout() != plan::RopeLayout::Interleaved && rope->layout() != plan::RopeLayout::Half)
    return fail("layout %d is not a rope layout", int(rope->layout()));
  int64_t dim = rope->rope_dim();
  if (dim < 2 || dim > kMaxModelDim || dim % 2 != 0)
    return fail("rope_dim is %" PRId64 ", expected an even number in 2..%" PRId64, dim,
                kMaxModelDim);
  MOEC_RETURN_IF_ERROR(positiveAttr("theta", rope->theta()));
  if (const plan::YarnParams *yarn = rope->yarn()) {
    MOEC_RETURN_IF_ERROR(positiveAttr("yarn.factor", yarn->factor()));
    MOEC_RETURN_IF_ERROR(positiveAttr("yarn.beta_fast", yarn->beta_fast()));
    MOEC_RETURN_IF_ERROR(positiveAttr("yarn.beta_slow", yarn->beta_slow()));
    MOEC_RETURN_IF_ERROR(positiveAttr("yarn.attention_factor", yarn->attention_factor()));
    MOEC_RETURN_IF_ERROR(dimAttr("yarn.original_max_position_embeddings",
                                 yarn->original_max_position_embeddings(), 1));
    if (!std::isfinite(yarn->mscale()) || !std::isfinite(yarn->mscale_all_dim()))
      return fail("yarn.mscale and yarn.mscale_all_dim must be finite");
  }
  uint64_t span;
  if (rope->heads() < 1 || rope->head_stride() < 1 || rope->offset() < 0 ||
      rope->offset() > rope->head_stride() - dim ||
      !checkedMul(uint64_t(rope->heads()), uint64_t(rope->head_stride()), &span) ||
      span > uint64_t(cols))
    return fail("%" PRId64 " heads of stride %" PRId64 " rotating %" PRId64
                " dims at offset %" PRId64 " do not fit in %" PRId64 " columns",
                rope->heads(), rope->head_stride(), dim, rope->offset(), cols);
  return expectResult(0, Elem::Float, {-1, cols});
}

Status StepChecker::checkCacheStore() const {
  MOEC_RETURN_IF_ERROR(signature(4, 0, 0, 0, 2));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::NONE));
  int64_t latent, rope;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &latent));
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 1, operand(1), &rope));
  MOEC_RETURN_IF_ERROR(expectOperand(2, Elem::I32, {-1}));
  MOEC_RETURN_IF_ERROR(expectOperand(3, Elem::I32, {-1}));
  MOEC_RETURN_IF_ERROR(distinctStates());
  MOEC_RETURN_IF_ERROR(expectStateRow(0, latent));
  return expectStateRow(1, rope);
}

Status StepChecker::checkHeadLinear() const {
  MOEC_RETURN_IF_ERROR(signature(1, 1, 1, 1));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::HeadLinearAttrs));
  const plan::HeadLinearAttrs *a = step_->attrs_as_HeadLinearAttrs();
  MOEC_RETURN_IF_ERROR(dimAttr("heads", a->heads(), 1));
  MOEC_RETURN_IF_ERROR(dimAttr("in_stride", a->in_stride(), 0));
  MOEC_RETURN_IF_ERROR(dimAttr("in_offset", a->in_offset(), 0));
  MOEC_RETURN_IF_ERROR(dimAttr("in_width", a->in_width(), 1));
  MOEC_RETURN_IF_ERROR(dimAttr("row_stride", a->row_stride(), 0));
  MOEC_RETURN_IF_ERROR(dimAttr("row_offset", a->row_offset(), 0));
  MOEC_RETURN_IF_ERROR(dimAttr("rows", a->rows(), 1));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(expectMatrix(0, kAnyDim, kAnyDim));
  const TensorInfo &w = weight(0);
  int64_t weightRows = w.shape[0], weightCols = w.shape[1];
  // Attributes are at most kMaxModelDim (2^24): these stay below 2^50.
  int64_t inEnd = a->in_offset() + (a->heads() - 1) * a->in_stride() + a->in_width();
  if (inEnd > cols)
    return fail("%" PRId64 " heads reading columns [%" PRId64 " + h * %" PRId64 ", +%" PRId64
                ") of x reach column %" PRId64 ", operand 0 (%s) has %" PRId64,
                a->heads(), a->in_offset(), a->in_stride(), a->in_width(), inEnd,
                operand(0).label.c_str(), cols);
  int64_t rowEnd = a->row_offset() + (a->heads() - 1) * a->row_stride() + a->rows();
  if (rowEnd > weightRows)
    return fail("%" PRId64 " heads reading rows [%" PRId64 " + h * %" PRId64 ", +%" PRId64
                ") of W reach row %" PRId64 ", weight 0 (%s) has %" PRId64,
                a->heads(), a->row_offset(), a->row_stride(), a->rows(), rowEnd, w.label.c_str(),
                weightRows);
  int64_t perHead;
  if (a->transpose()) {
    // y_h = x_h W_h: x_h has one value per row of W_h.
    if (a->in_width() != a->rows())
      return fail("transposed: in_width %" PRId64 " must equal rows %" PRId64, a->in_width(),
                  a->rows());
    perHead = weightCols;
  } else {
    // y_h = x_h W_h^T: x_h has one value per column of W.
    if (a->in_width() != weightCols)
      return fail("in_width %" PRId64 " must equal the %" PRId64 " columns of weight 0 (%s)",
                  a->in_width(), weightCols, w.label.c_str());
    perHead = a->rows();
  }
  return expectResult(0, Elem::Float, {-1, a->heads() * perHead});
}

Status StepChecker::checkLatentAttention() const {
  MOEC_RETURN_IF_ERROR(signature(4, 1, 0, 0, 2));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::LatentAttentionAttrs));
  const plan::LatentAttentionAttrs *a = step_->attrs_as_LatentAttentionAttrs();
  MOEC_RETURN_IF_ERROR(dimAttr("heads", a->heads(), 1));
  MOEC_RETURN_IF_ERROR(dimAttr("latent_dim", a->latent_dim(), 1));
  MOEC_RETURN_IF_ERROR(dimAttr("rope_dim", a->rope_dim(), 1));
  MOEC_RETURN_IF_ERROR(dimAttr("q_stride", a->q_stride(), 0));
  MOEC_RETURN_IF_ERROR(dimAttr("q_rope_offset", a->q_rope_offset(), 0));
  MOEC_RETURN_IF_ERROR(positiveAttr("softmax_scale", a->softmax_scale()));
  int64_t heads = a->heads(), latent = a->latent_dim();
  MOEC_RETURN_IF_ERROR(expectOperand(0, Elem::Float, {-1, heads * latent}));
  int64_t qCols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 1, operand(1), &qCols));
  int64_t ropeEnd = a->q_rope_offset() + (heads - 1) * a->q_stride() + a->rope_dim();
  if (ropeEnd > qCols)
    return fail("%" PRId64 " heads reading %" PRId64 " rope columns at %" PRId64
                " + h * %" PRId64 " reach column %" PRId64 ", operand 1 (%s) has %" PRId64,
                heads, a->rope_dim(), a->q_rope_offset(), a->q_stride(), ropeEnd,
                operand(1).label.c_str(), qCols);
  MOEC_RETURN_IF_ERROR(expectOperand(2, Elem::I32, {-1}));
  MOEC_RETURN_IF_ERROR(expectOperand(3, Elem::I32, {-1}));
  MOEC_RETURN_IF_ERROR(distinctStates());
  MOEC_RETURN_IF_ERROR(expectStateRow(0, latent));
  MOEC_RETURN_IF_ERROR(expectStateRow(1, a->rope_dim()));
  return expectResult(0, Elem::Float, {-1, heads * latent});
}

Status StepChecker::checkExpandedAttention() const {
  MOEC_RETURN_IF_ERROR(signature(3, 1, 1, 1, 2));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::ExpandedAttentionAttrs));
  const plan::ExpandedAttentionAttrs *a = step_->attrs_as_ExpandedAttentionAttrs();
  MOEC_RETURN_IF_ERROR(dimAttr("heads", a->heads(), 1));
  MOEC_RETURN_IF_ERROR(dimAttr("nope_dim", a->nope_dim(), 0));
  MOEC_RETURN_IF_ERROR(dimAttr("rope_dim", a->rope_dim(), 1));
  MOEC_RETURN_IF_ERROR(dimAttr("v_dim", a->v_dim(), 1));
  MOEC_RETURN_IF_ERROR(dimAttr("latent_dim", a->latent_dim(), 1));
  MOEC_RETURN_IF_ERROR(positiveAttr("softmax_scale", a->softmax_scale()));
  int64_t heads = a->heads(), nope = a->nope_dim(), rope = a->rope_dim(), v = a->v_dim();
  MOEC_RETURN_IF_ERROR(expectOperand(0, Elem::Float, {-1, heads * (nope + rope)}));
  MOEC_RETURN_IF_ERROR(expectOperand(1, Elem::I32, {-1}));
  MOEC_RETURN_IF_ERROR(expectOperand(2, Elem::I32, {-1}));
  MOEC_RETURN_IF_ERROR(expectMatrix(0, heads * (nope + v), a->latent_dim()));
  MOEC_RETURN_IF_ERROR(distinctStates());
  MOEC_RETURN_IF_ERROR(expectStateRow(0, a->latent_dim()));
  MOEC_RETURN_IF_ERROR(expectStateRow(1, rope));
  return expectResult(0, Elem::Float, {-1, heads * v});
}

Status StepChecker::checkRouter() const {
  MOEC_RETURN_IF_ERROR(signature(1, 2, 1, 2));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::RouterAttrs));
  const plan::RouterAttrs *router = step_->attrs_as_RouterAttrs();
  int64_t experts = router->experts(), topK = router->top_k();
  int64_t groups = router->groups(), topkGroups = router->topk_groups();
  if (experts < 1 || experts > kMaxModelDim)
    return fail("experts is %" PRId64 ", expected 1..%" PRId64, experts, kMaxModelDim);
  if (groups < 1 || experts % groups != 0)
    return fail("groups is %" PRId64 ", expected a divisor of %" PRId64 " experts", groups,
                experts);
  if (topkGroups < 1 || topkGroups > groups)
    return fail("topk_groups is %" PRId64 ", expected 1..%" PRId64, topkGroups, groups);
  if (topK < 1 || topK > topkGroups * (experts / groups))
    return fail("top_k is %" PRId64 ", expected 1..%" PRId64 " (experts in the kept groups)",
                topK, topkGroups * (experts / groups));
  if (router->score_func() != plan::ScoreFunc::Softmax &&
      router->score_func() != plan::ScoreFunc::Sigmoid)
    return fail("score_func %d is not a score function", int(router->score_func()));
  if (router->group_score() != plan::GroupScore::Max &&
      router->group_score() != plan::GroupScore::Top2Sum)
    return fail("group_score %d is not a group score", int(router->group_score()));
  if (groups > 1 && router->group_score() == plan::GroupScore::Top2Sum && experts / groups < 2)
    return fail("group_score top2_sum needs at least 2 experts per group, has %" PRId64,
                experts / groups);
  if (!std::isfinite(router->routed_scaling_factor()))
    return fail("routed_scaling_factor is not finite");
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(expectMatrix(0, experts, cols));
  if (weights_.size() == 2) {
    MOEC_RETURN_IF_ERROR(expectVector(1, experts));
    if (weight(1).dtype != plan::DType::F32)
      return fail("weight 1 (%s) is %s, the correction bias must be f32",
                  weight(1).label.c_str(), dtypeLabel(weight(1).dtype).c_str());
  }
  MOEC_RETURN_IF_ERROR(expectResult(0, Elem::I32, {-1, topK}));
  return expectResult(1, Elem::F32, {-1, topK});
}

Status StepChecker::swiglu(size_t firstWeight, int64_t hidden) const {
  MOEC_RETURN_IF_ERROR(expectMatrix(firstWeight, kAnyDim, hidden));
  int64_t inner = weight(firstWeight).shape[0];
  MOEC_RETURN_IF_ERROR(expectMatrix(firstWeight + 1, inner, hidden));
  return expectMatrix(firstWeight + 2, hidden, inner);
}

Status StepChecker::gateUpSwiglu(size_t firstWeight, int64_t hidden, int64_t unit) const {
  MOEC_RETURN_IF_ERROR(expectMatrix(firstWeight, kAnyDim, hidden));
  const TensorInfo &gateUp = weight(firstWeight);
  if (gateUp.shape[0] % 2 != 0)
    return fail("weight %zu (%s) has %" PRId64 " rows, %s expects an even number (gate and "
                "up rows)",
                firstWeight, gateUp.label.c_str(), gateUp.shape[0], kind_);
  const int64_t inner = gateUp.shape[0] / 2;
  // Every scale block must hold rows of one projection: whole blocks per unit,
  // and whole blocks in the last (partial) unit too.
  if (!gateUp.blockShape.empty() &&
      (unit % gateUp.blockShape[0] != 0 || inner % gateUp.blockShape[0] != 0))
    return fail("weight %zu (%s): the gate_up unit %" PRId64 " and the %" PRId64
                " inner rows must be whole %" PRId64 "-row scale blocks",
                firstWeight, gateUp.label.c_str(), unit, inner, gateUp.blockShape[0]);
  return expectMatrix(firstWeight + 1, hidden, inner);
}

Status StepChecker::checkMoe(bool fused) const {
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::MoeAttrs));
  const plan::MoeAttrs *moe = step_->attrs_as_MoeAttrs();
  if (moe->experts() < 1 || moe->experts() > kMaxModelDim)
    return fail("experts is %" PRId64 ", expected 1..%" PRId64, moe->experts(), kMaxModelDim);
  if (moe->top_k() < 1 || moe->top_k() > moe->experts())
    return fail("top_k is %" PRId64 ", expected 1..%" PRId64, moe->top_k(), moe->experts());
  if (fused)
    MOEC_RETURN_IF_ERROR(dimAttr("gate_up_rows", moe->gate_up_rows(), 1));
  else if (moe->gate_up_rows() != 0)
    return fail("gate_up_rows is %" PRId64 ", expected 0 (only fused_moe_experts has it)",
                moe->gate_up_rows());
  const size_t perExpert = fused ? 2 : 3;
  size_t numWeights = size_t(moe->experts()) * perExpert;
  MOEC_RETURN_IF_ERROR(signature(3, 1, numWeights, numWeights));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(expectOperand(1, Elem::I32, {-1, moe->top_k()}));
  MOEC_RETURN_IF_ERROR(expectOperand(2, Elem::F32, {-1, moe->top_k()}));
  for (size_t e = 0; e < size_t(moe->experts()); ++e)
    MOEC_RETURN_IF_ERROR(fused ? gateUpSwiglu(2 * e, cols, moe->gate_up_rows())
                               : swiglu(3 * e, cols));
  return expectResult(0, Elem::Float, {-1, cols});
}

Status StepChecker::checkFusedSwiglu() const {
  MOEC_RETURN_IF_ERROR(signature(1, 1, 2, 2));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::GateUpAttrs));
  const plan::GateUpAttrs *a = step_->attrs_as_GateUpAttrs();
  MOEC_RETURN_IF_ERROR(dimAttr("rows", a->rows(), 1));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(gateUpSwiglu(0, cols, a->rows()));
  return expectResult(0, Elem::Float, {-1, cols});
}

Status StepChecker::checkSwiglu() const {
  MOEC_RETURN_IF_ERROR(signature(1, 1, 3, 3));
  MOEC_RETURN_IF_ERROR(attrs(plan::StepAttrs::NONE));
  int64_t cols;
  MOEC_RETURN_IF_ERROR(tokenMatrix("operand", 0, operand(0), &cols));
  MOEC_RETURN_IF_ERROR(swiglu(0, cols));
  return expectResult(0, Elem::Float, {-1, cols});
}

Status StepChecker::run() {
  if (!kind_)
    return fail("kind %d is not a step kind", int(step_->kind()));
  Status status;
  bool mayWorkInPlace = false;
  switch (step_->kind()) {
  case plan::StepKind::Embedding:
    status = checkEmbedding();
    break;
  case plan::StepKind::RmsNorm:
    status = checkRmsNorm();
    mayWorkInPlace = true;
    break;
  case plan::StepKind::Linear:
    status = checkLinear();
    break;
  case plan::StepKind::Add:
    status = checkAdd();
    mayWorkInPlace = true;
    break;
  case plan::StepKind::SliceColumns:
    status = checkSlice();
    break;
  case plan::StepKind::Rope:
    status = checkRope();
    mayWorkInPlace = true;
    break;
  case plan::StepKind::CacheStore:
    status = checkCacheStore();
    break;
  case plan::StepKind::HeadLinear:
    status = checkHeadLinear();
    break;
  case plan::StepKind::LatentAttention:
    status = checkLatentAttention();
    break;
  case plan::StepKind::ExpandedAttention:
    status = checkExpandedAttention();
    break;
  case plan::StepKind::Router:
    status = checkRouter();
    break;
  case plan::StepKind::MoeExperts:
    status = checkMoe(/*fused=*/false);
    break;
  case plan::StepKind::FusedMoeExperts:
    status = checkMoe(/*fused=*/true);
    break;
  case plan::StepKind::SwigluMlp:
    status = checkSwiglu();
    break;
  case plan::StepKind::FusedSwigluMlp:
    status = checkFusedSwiglu();
    break;
  case plan::StepKind::AddRmsNorm:
    status = checkAddRmsNorm();
    mayWorkInPlace = true; // row by row: each row is read before it is written
    break;
  }
  MOEC_RETURN_IF_ERROR(status);
  return noAliasing(mayWorkInPlace);
}

} // namespace

const char *kindNameOrNull(plan::StepKind kind) {
  switch (kind) {
  case plan::StepKind::Embedding:
    return "embedding";
  case plan::StepKind::RmsNorm:
    return "rms_norm";
  case plan::StepKind::Linear:
    return "linear";
  case plan::StepKind::Add:
    return "add";
  case plan::StepKind::SliceColumns:
    return "slice_columns";
  case plan::StepKind::Rope:
    return "rope";
  case plan::StepKind::CacheStore:
    return "cache_store";
  case plan::StepKind::HeadLinear:
    return "head_linear";
  case plan::StepKind::LatentAttention:
    return "latent_attention";
  case plan::StepKind::ExpandedAttention:
    return "expanded_attention";
  case plan::StepKind::Router:
    return "router";
  case plan::StepKind::MoeExperts:
    return "moe_experts";
  case plan::StepKind::SwigluMlp:
    return "swiglu_mlp";
  case plan::StepKind::AddRmsNorm:
    return "add_rms_norm";
  case plan::StepKind::FusedSwigluMlp:
    return "fused_swiglu_mlp";
  case plan::StepKind::FusedMoeExperts:
    return "fused_moe_experts";
  }
  return nullptr;
}

Status verifySteps(const PlanInfo &info) {
  const auto *steps = info.root->steps();
  if (!steps)
    return Status();
  for (flatbuffers::uoffset_t i = 0; i < steps->size(); ++i) {
    StepChecker checker(info, i, steps->Get(i));
    MOEC_RETURN_IF_ERROR(checker.run());
  }
  return Status();
}

} // namespace moec::detail

namespace moec {
const char *stepKindName(plan::StepKind kind) {
  const char *name = detail::kindNameOrNull(kind);
  return name ? name : "unknown";
}
} // namespace moec
