//===- MoeOps.cpp - moe dialect op verifiers ------------------------------===//
//
// Verifiers check every relation between shapes and attributes that ODS
// constraints cannot express. Messages read "expected X, got Y".
//
//===----------------------------------------------------------------------===//

#include "moec/Dialect/Moe/IR/MoeDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::moe;

//===----------------------------------------------------------------------===//
// Shape helpers
//===----------------------------------------------------------------------===//

/// Formats a shape as "[a, b]", dynamic dims as "?".
static std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "[";
  llvm::interleaveComma(shape, os, [&](int64_t d) {
    if (ShapedType::isDynamic(d))
      os << "?";
    else
      os << d;
  });
  os << "]";
  return s;
}

/// Two extents agree when equal or when either is dynamic.
static bool compatible(int64_t a, int64_t b) {
  return a == b || ShapedType::isDynamic(a) || ShapedType::isDynamic(b);
}

static bool compatible(ArrayRef<int64_t> got, ArrayRef<int64_t> want) {
  if (got.size() != want.size())
    return false;
  for (auto [g, w] : llvm::zip(got, want))
    if (!compatible(g, w))
      return false;
  return true;
}

static ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

static bool isFp8(Value v) {
  return isa<Float8E4M3FNType>(cast<RankedTensorType>(v.getType()).getElementType());
}

static int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// Checks that `v` has the expected shape; `what` names it in the message.
static LogicalResult expectShape(Operation *op, StringRef what, Value v,
                                 ArrayRef<int64_t> want) {
  if (!compatible(shapeOf(v), want))
    return op->emitOpError() << "expected " << what << " shape "
                             << shapeString(want) << ", got "
                             << shapeString(shapeOf(v));
  return success();
}

/// Block layout of an FP8 weight: the layout of its defining moe.weight, or
/// DeepSeek's 128x128.
static std::pair<int64_t, int64_t> blockOf(Value weight) {
  if (auto w = weight.getDefiningOp<WeightOp>())
    if (auto layout = w.getLayoutAttr())
      return {layout.getRows(), layout.getCols()};
  return {kDefaultFp8Block, kDefaultFp8Block};
}

/// Verifies a projection weight [rows, cols] and its optional FP8 block scale
/// [ceil(rows/br), ceil(cols/bc)]. A dynamic expected extent is not checked.
static LogicalResult verifyProjection(Operation *op, StringRef what,
                                      Value weight, Value scale, int64_t rows,
                                      int64_t cols) {
  if (failed(expectShape(op, what, weight, {rows, cols})))
    return failure();
  if (isFp8(weight) && !scale)
    return op->emitOpError() << "expected a block scale for FP8 " << what
                             << ", got none";
  if (!scale)
    return success();
  if (!isFp8(weight))
    return op->emitOpError()
           << "expected " << what << " to be f8E4M3FN when a scale is given, got "
           << cast<RankedTensorType>(weight.getType()).getElementType();
  auto [br, bc] = blockOf(weight);
  ArrayRef<int64_t> w = shapeOf(weight);
  SmallVector<int64_t> want = {ceilDiv(w[0], br), ceilDiv(w[1], bc)};
  return expectShape(op, (what + " scale").str(), scale, want);
}

/// Verifies a 1-D norm weight of length `n`.
static LogicalResult verifyNorm(Operation *op, StringRef what, Value weight,
                                int64_t n) {
  return expectShape(op, what, weight, {n});
}

/// Verifies per-token int32 operands are 1-D over the same tokens as `ref`.
static LogicalResult verifyTokenVector(Operation *op, StringRef what, Value v,
                                       int64_t tokens) {
  return expectShape(op, what, v, {tokens});
}

/// Verifies a [T, width] activation.
static LogicalResult verifyActivation(Operation *op, StringRef what, Value v,
                                      int64_t tokens, int64_t width) {
  return expectShape(op, what, v, {tokens, width});
}

/// Requires rank 2 on an activation before reading its dims.
static LogicalResult verifyRank2(Operation *op, StringRef what, Value v) {
  int64_t rank = shapeOf(v).size();
  if (rank != 2)
    return op->emitOpError() << "expected " << what << " of rank 2, got rank "
                             << rank;
  return success();
}

//===----------------------------------------------------------------------===//
// WeightOp
//===----------------------------------------------------------------------===//

LogicalResult WeightOp::verify() {
  bool named = getScaleName().has_value();
  bool hasLayout = getLayout().has_value();
  bool hasResult = static_cast<bool>(getScale());
  if (named != hasResult || named != hasLayout)
    return emitOpError() << "expected scale name, layout and scale result "
                            "together, got "
                         << (named ? "a" : "no") << " scale name, "
                         << (hasLayout ? "a" : "no") << " layout and "
                         << (hasResult ? "a" : "no") << " scale result";
  if (getName().empty())
    return emitOpError() << "expected a non-empty tensor name, got \"\"";
  if (isFp8(getWeight()) && !hasResult)
    return emitOpError() << "expected a block scale for FP8 weight '"
                         << getName() << "', got none";
  if (!hasResult)
    return success();
  if (!isFp8(getWeight()))
    return emitOpError() << "expected f8E4M3FN weight with a block scale, got "
                         << getWeight().getType().getElementType();
  ArrayRef<int64_t> w = shapeOf(getWeight());
  if (w.size() != 2)
    return emitOpError() << "expected a 2-D block-scaled weight, got rank "
                         << w.size();
  BlockScaleLayoutAttr layout = *getLayout();
  SmallVector<int64_t> want = {ceilDiv(w[0], layout.getRows()),
                               ceilDiv(w[1], layout.getCols())};
  return expectShape(*this, "scale", getScale(), want);
}

//===----------------------------------------------------------------------===//
// Elementwise and normalisation
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  ArrayRef<int64_t> table = shapeOf(getTable());
  if (table.size() != 2)
    return emitOpError() << "expected a 2-D table, got rank " << table.size();
  if (failed(verifyRank2(*this, "result", getResult())))
    return failure();
  int64_t tokens = shapeOf(getResult())[0];
  if (failed(verifyTokenVector(*this, "tokens", getTokens(), tokens)))
    return failure();
  return verifyActivation(*this, "result", getResult(), tokens, table[1]);
}

LogicalResult RmsNormOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  if (!(getEpsilon().convertToFloat() > 0.0f))
    return emitOpError() << "expected a positive epsilon, got "
                         << getEpsilon().convertToFloat();
  return verifyNorm(*this, "weight", getWeight(), shapeOf(getInput())[1]);
}

LogicalResult LinearOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())) ||
      failed(verifyRank2(*this, "result", getResult())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  ArrayRef<int64_t> out = shapeOf(getResult());
  if (!compatible(in[0], out[0]))
    return emitOpError() << "expected result tokens " << shapeString({in[0]})
                         << ", got " << shapeString({out[0]});
  return verifyProjection(*this, "weight", getWeight(), getScale(), out[1],
                          in[1]);
}

LogicalResult RopeOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t heads = getHeads(), headDim = getHeadDim();
  int64_t offset = getOffset(), ropeDim = getRopeDim();
  if (heads <= 0 || headDim <= 0)
    return emitOpError() << "expected positive heads and head_dim, got "
                         << heads << " and " << headDim;
  if (!compatible(in[1], heads * headDim))
    return emitOpError() << "expected heads x head_dim = " << heads * headDim
                         << " columns, got " << in[1];
  if (ropeDim <= 0 || ropeDim % 2 != 0)
    return emitOpError() << "expected a positive even rope_dim, got "
                         << ropeDim;
  if (offset < 0)
    return emitOpError() << "expected offset >= 0, got " << offset;
  if (offset + ropeDim > headDim)
    return emitOpError() << "expected offset + rope_dim <= head_dim ("
                         << headDim << "), got " << offset + ropeDim;
  if (!(getTheta().convertToFloat() > 0.0f))
    return emitOpError() << "expected a positive theta, got "
                         << getTheta().convertToFloat();
  return verifyTokenVector(*this, "positions", getPositions(), in[0]);
}

//===----------------------------------------------------------------------===//
// MlaAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult MlaAttentionOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t tokens = in[0], hidden = in[1];
  int64_t heads = getNumHeads(), qLora = getQLoraRank();
  int64_t kvLora = getKvLoraRank(), nope = getQkNopeHeadDim();
  int64_t rope = getQkRopeHeadDim(), vDim = getVHeadDim();

  if (qLora < 0)
    return emitOpError() << "expected q_lora_rank >= 0 (0 = no query "
                            "compression), got "
                         << qLora;
  if (heads <= 0 || kvLora <= 0 || nope <= 0 || vDim <= 0)
    return emitOpError() << "expected positive num_heads, kv_lora_rank, "
                            "qk_nope_head_dim and v_head_dim, got "
                         << heads << ", " << kvLora << ", " << nope << ", "
                         << vDim;
  if (rope <= 0 || rope % 2 != 0)
    return emitOpError() << "expected a positive even qk_rope_head_dim, got "
                         << rope;
  if (!(getSoftmaxScale().convertToFloat() > 0.0f))
    return emitOpError() << "expected a positive softmax_scale, got "
                         << getSoftmaxScale().convertToFloat();

  auto cache = cast<LatentCacheType>(getCache().getType());
  if (cache.getKvLoraRank() != kvLora || cache.getRopeDim() != rope)
    return emitOpError() << "expected cache !moe.latent_cache<" << kvLora
                         << ", " << rope << ">, got " << cache;
  if (getNewCache().getType() != cache)
    return emitOpError() << "expected new_cache of type " << cache << ", got "
                         << getNewCache().getType();

  if (failed(verifyTokenVector(*this, "positions", getPositions(), tokens)) ||
      failed(verifyTokenVector(*this, "seq_ids", getSeqIds(), tokens)) ||
      failed(verifyActivation(*this, "result", getResult(), tokens, hidden)))
    return failure();

  // Query path: q_a -> q_a_norm -> q_b when q_lora_rank > 0, else q_b alone.
  bool hasQa = static_cast<bool>(getQA());
  bool hasQaNorm = static_cast<bool>(getQANorm());
  if (qLora > 0 && (!hasQa || !hasQaNorm))
    return emitOpError() << "expected q_a and q_a_norm when q_lora_rank is "
                         << qLora << ", got " << (hasQa ? "" : "no ") << "q_a and "
                         << (hasQaNorm ? "" : "no ") << "q_a_norm";
  if (qLora == 0 && (hasQa || hasQaNorm || getQAScale()))
    return emitOpError()
           << "expected no q_a, q_a_scale or q_a_norm when q_lora_rank is 0, got "
           << (hasQa ? "q_a" : hasQaNorm ? "q_a_norm" : "q_a_scale");
  if (qLora > 0 &&
      (failed(verifyProjection(*this, "q_a", getQA(), getQAScale(), qLora,
                               hidden)) ||
       failed(verifyNorm(*this, "q_a_norm", getQANorm(), qLora))))
    return failure();
  if (failed(verifyProjection(*this, "q_b", getQB(), getQBScale(),
                              heads * (nope + rope), qLora > 0 ? qLora : hidden)))
    return failure();

  // Latent path: kv_a gives C latent + rope shared-key values.
  if (failed(verifyProjection(*this, "kv_a", getKvA(), getKvAScale(),
                              kvLora + rope, hidden)) ||
      failed(verifyNorm(*this, "kv_a_norm", getKvANorm(), kvLora)) ||
      failed(verifyProjection(*this, "kv_b", getKvB(), getKvBScale(),
                              heads * (nope + vDim), kvLora)) ||
      failed(verifyProjection(*this, "o_proj", getOProj(), getOProjScale(),
                              hidden, heads * vDim)))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

LogicalResult RouterOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  ArrayRef<int64_t> gate = shapeOf(getGate());
  if (gate.size() != 2)
    return emitOpError() << "expected a 2-D gate, got rank " << gate.size();
  if (!compatible(gate[1], in[1]))
    return emitOpError() << "expected gate columns " << in[1] << ", got "
                         << gate[1];
  int64_t experts = gate[0];
  if (getBias() && failed(expectShape(*this, "bias", getBias(), {experts})))
    return failure();

  int64_t k = getTopK(), groups = getNGroup(), kept = getTopkGroup();
  if (groups < 1)
    return emitOpError() << "expected n_group >= 1, got " << groups;
  if (kept < 1 || kept > groups)
    return emitOpError() << "expected 1 <= topk_group <= n_group (" << groups
                         << "), got " << kept;
  if (experts % groups != 0)
    return emitOpError() << "expected n_group to divide the " << experts
                         << " experts, got n_group = " << groups;
  int64_t perGroup = experts / groups;
  if (groups > 1 && getGroupScore() == GroupScore::top2_sum && perGroup < 2)
    return emitOpError() << "expected at least 2 experts per group for "
                            "top2_sum, got "
                         << perGroup;
  int64_t available = kept * perGroup;
  if (k < 1 || k > available)
    return emitOpError() << "expected 1 <= top_k <= " << available
                         << " experts in the kept groups, got " << k;
  if (!(getRoutedScalingFactor().convertToFloat() > 0.0f))
    return emitOpError() << "expected a positive routed_scaling_factor, got "
                         << getRoutedScalingFactor().convertToFloat();
  if (failed(expectShape(*this, "indices", getIndices(), {in[0], k})) ||
      failed(expectShape(*this, "weights", getWeights(), {in[0], k})))
    return failure();
  return success();
}

/// Verifies one SwiGLU's three projections for hidden size `hidden`; returns
/// its intermediate width through `width` (taken from gate).
static LogicalResult verifySwiglu(Operation *op, StringRef prefix, Value gate,
                                  Value gateScale, Value up, Value upScale,
                                  Value down, Value downScale, int64_t hidden) {
  ArrayRef<int64_t> g = shapeOf(gate);
  if (g.size() != 2)
    return op->emitOpError() << "expected " << prefix << "gate of rank 2, got rank "
                             << g.size();
  int64_t width = g[0];
  if (failed(verifyProjection(op, (prefix + "gate").str(), gate, gateScale,
                              width, hidden)) ||
      failed(verifyProjection(op, (prefix + "up").str(), up, upScale, width,
                              hidden)) ||
      failed(verifyProjection(op, (prefix + "down").str(), down, downScale,
                              hidden, width)))
    return failure();
  return success();
}

LogicalResult RoutedExpertsOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  if (failed(verifyActivation(*this, "result", getResult(), in[0], in[1])) ||
      failed(verifyRank2(*this, "indices", getIndices())))
    return failure();
  ArrayRef<int64_t> idx = shapeOf(getIndices());
  if (failed(expectShape(*this, "indices", getIndices(), {in[0], idx[1]})) ||
      failed(expectShape(*this, "weights", getWeights(), idx)))
    return failure();

  size_t experts = getGateWeights().size();
  if (experts == 0)
    return emitOpError() << "expected at least one expert, got 0";
  if (getUpWeights().size() != experts || getDownWeights().size() != experts)
    return emitOpError() << "expected " << experts
                         << " up and down weights, got "
                         << getUpWeights().size() << " and "
                         << getDownWeights().size();
  for (auto [name, scales] :
       {std::pair<StringRef, OperandRange>{"gate", getGateScales()},
        {"up", getUpScales()},
        {"down", getDownScales()}})
    if (!scales.empty() && scales.size() != experts)
      return emitOpError() << "expected 0 or " << experts << " " << name
                           << " scales, got " << scales.size();

  auto scaleAt = [](OperandRange scales, size_t e) -> Value {
    return scales.empty() ? Value() : scales[e];
  };
  int64_t width = ShapedType::kDynamic;
  for (size_t e = 0; e < experts; ++e) {
    std::string prefix = "expert " + std::to_string(e) + " ";
    if (failed(verifySwiglu(*this, prefix, getGateWeights()[e],
                            scaleAt(getGateScales(), e), getUpWeights()[e],
                            scaleAt(getUpScales(), e), getDownWeights()[e],
                            scaleAt(getDownScales(), e), in[1])))
      return failure();
    // Rank 2 is known from here on: verifySwiglu checked it.
    if (e == 0)
      width = shapeOf(getGateWeights()[0])[0];
    if (shapeOf(getGateWeights()[e])[0] != width)
      return emitOpError() << "expected every expert of width " << width
                           << ", got " << shapeOf(getGateWeights()[e])[0]
                           << " for expert " << e;
  }
  return success();
}

LogicalResult SwigluOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  if (failed(verifyActivation(*this, "result", getResult(), in[0], in[1])))
    return failure();
  return verifySwiglu(*this, "", getGate(), getGateScale(), getUp(),
                      getUpScale(), getDown(), getDownScale(), in[1]);
}

LogicalResult LogitsOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  ArrayRef<int64_t> head = shapeOf(getLmHead());
  if (head.size() != 2)
    return emitOpError() << "expected a 2-D lm_head, got rank " << head.size();
  if (!compatible(head[1], in[1]))
    return emitOpError() << "expected lm_head columns " << in[1] << ", got "
                         << head[1];
  return verifyActivation(*this, "result", getResult(), in[0], head[0]);
}

#define GET_OP_CLASSES
#include "moec/Dialect/Moe/IR/MoeOps.cpp.inc"
