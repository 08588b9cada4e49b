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
#include "llvm/ADT/StringExtras.h"
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

/// Checks that `v` has the expected shape; `what` names it in the message.
static LogicalResult expectShape(Operation *op, StringRef what, Value v,
                                 ArrayRef<int64_t> want) {
  if (!compatible(shapeOf(v), want))
    return op->emitOpError() << "expected " << what << " shape "
                             << shapeString(want) << ", got "
                             << shapeString(shapeOf(v));
  return success();
}

/// Verifies a projection weight [rows, cols]. A dynamic expected extent is
/// not checked. Quantization is in the weight's type and needs no check here.
static LogicalResult verifyProjection(Operation *op, StringRef what,
                                      Value weight, int64_t rows, int64_t cols) {
  return expectShape(op, what, weight, {rows, cols});
}

/// Verifies that an integer attribute is positive.
static LogicalResult expectPositive(Operation *op, StringRef what,
                                    int64_t value) {
  if (value <= 0)
    return op->emitOpError() << "expected a positive " << what << ", got "
                             << value;
  return success();
}

/// Verifies that a float attribute is positive.
static LogicalResult expectPositive(Operation *op, StringRef what,
                                    APFloat value) {
  if (!(value.convertToFloat() > 0.0f))
    return op->emitOpError() << "expected a positive " << what << ", got "
                             << value.convertToFloat();
  return success();
}

/// Verifies that `cache` is !moe.latent_cache<latent, rope>.
static LogicalResult verifyCache(Operation *op, Value cache, int64_t latent,
                                 int64_t rope) {
  auto type = cast<LatentCacheType>(cache.getType());
  if (type.getKvLoraRank() != latent || type.getRopeDim() != rope)
    return op->emitOpError() << "expected cache !moe.latent_cache<" << latent
                             << ", " << rope << ">, got " << type;
  return success();
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
  if (getName().empty())
    return emitOpError() << "expected a non-empty tensor name, got \"\"";
  ScaleBlock block = getScaleBlock(getWeight().getType());
  std::optional<StringRef> scale = getScaleName();
  if (block && !scale)
    return emitOpError() << "expected a scale name for block-quantized weight '"
                         << getName() << "', got none";
  if (!block && scale)
    return emitOpError() << "expected no scale name for unquantized weight '"
                         << getName() << "', got '" << *scale << "'";
  if (scale && scale->empty())
    return emitOpError() << "expected a non-empty scale name, got \"\"";
  if (block && getWeight().getType().getRank() != 2)
    return emitOpError() << "expected a rank-2 block-quantized weight, got rank "
                         << getWeight().getType().getRank();
  return success();
}

//===----------------------------------------------------------------------===//
// Derived weights
//===----------------------------------------------------------------------===//

LogicalResult SliceHeadsOp::verify() {
  RankedTensorType in = getWeight().getType();
  if (in.getRank() != 2)
    return emitOpError() << "expected a rank-2 weight, got rank "
                         << in.getRank();
  int64_t heads = getHeads(), offset = getOffset(), size = getSize();
  if (failed(expectPositive(*this, "heads", heads)) ||
      failed(expectPositive(*this, "size", size)))
    return failure();
  int64_t rows = in.getDimSize(0);
  if (rows % heads != 0)
    return emitOpError() << "expected heads to divide the " << rows
                         << " weight rows, got heads = " << heads;
  int64_t perHead = rows / heads;
  if (offset < 0 || offset + size > perHead)
    return emitOpError() << "expected 0 <= offset and offset + size <= "
                         << perHead << " rows per head, got offset " << offset
                         << " and size " << size;
  RankedTensorType out = getResult().getType();
  if (failed(expectShape(*this, "result", getResult(),
                         {heads, size, in.getDimSize(1)})))
    return failure();
  if (out.getElementType() != in.getElementType() ||
      out.getEncoding() != in.getEncoding())
    return emitOpError() << "expected the result to keep the weight's element "
                            "type and encoding, got "
                         << out << " from " << in;
  return success();
}

LogicalResult ConvertWeightOp::verify() {
  RankedTensorType in = getWeight().getType();
  RankedTensorType out = getResult().getType();
  if (in.getShape() != out.getShape())
    return emitOpError() << "expected result shape " << shapeString(in.getShape())
                         << ", got " << shapeString(out.getShape());
  return success();
}

LogicalResult QuantizeWeightOp::verify() {
  RankedTensorType in = getWeight().getType();
  RankedTensorType out = getResult().getType();
  if (in.getRank() != 2)
    return emitOpError() << "expected a 2-D weight, got rank " << in.getRank();
  if (in.getShape() != out.getShape())
    return emitOpError() << "expected result shape " << shapeString(in.getShape())
                         << ", got " << shapeString(out.getShape());
  const bool fp8 = isa<Float8E4M3FNType>(out.getElementType()) && getBlockFp8(out);
  const bool int8 = out.getElementType().isSignlessInteger(8) && getScaleBlock(out).int8;
  if (!fp8 && !int8)
    return emitOpError() << "expected an f8E4M3FN result with a #moe.block_fp8 encoding or an "
                            "i8 result with a #moe.block_int8 encoding, got "
                         << out;
  if (int8 && getScale() != Fp8ScaleFormat::fp32)
    return emitOpError() << "expected float scales for an i8 result, got "
                         << stringifyFp8ScaleFormat(getScale());
  // A quantized operand is requantized: an FP8 weight to int8, nothing else.
  if (!isUnquantizedWeightType(in) &&
      !(int8 && isa<Float8E4M3FNType>(in.getElementType()) && getBlockFp8(in)))
    return emitOpError() << "expected an unquantized weight, or an FP8 one requantized to "
                            "int8, got "
                         << in << " -> " << out;
  return success();
}

LogicalResult ConcatWeightsOp::verify() {
  if (getWeights().size() < 2)
    return emitOpError() << "expected at least 2 weights, got " << getWeights().size();
  RankedTensorType out = getResult().getType();
  auto first = cast<RankedTensorType>(getWeights()[0].getType());
  ScaleBlock block = getScaleBlock(first);
  std::optional<int64_t> interleave = getInterleave();
  if (interleave) {
    if (*interleave <= 0)
      return emitOpError() << "expected a positive interleave, got " << *interleave;
    if (block && *interleave % block.getRows() != 0)
      return emitOpError() << "expected an interleave of whole " << block.getRows()
                           << "-row scale blocks, got " << *interleave;
  }
  int64_t rows = 0;
  for (auto [i, v] : llvm::enumerate(getWeights())) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getRank() != 2)
      return emitOpError() << "expected 2-D weights, got rank " << t.getRank()
                           << " for weight " << i;
    if (t.getDimSize(1) != first.getDimSize(1) ||
        t.getElementType() != first.getElementType() || t.getEncoding() != first.getEncoding())
      return emitOpError() << "expected every weight to have " << first.getDimSize(1)
                           << " columns and the type of the first, got " << t
                           << " for weight " << i;
    if (interleave && t.getDimSize(0) != first.getDimSize(0))
      return emitOpError() << "expected interleaved weights of " << first.getDimSize(0)
                           << " rows each, got " << t.getDimSize(0) << " for weight " << i;
    if (block && (interleave || i + 1 < getWeights().size()) &&
        t.getDimSize(0) % block.getRows() != 0)
      return emitOpError() << "expected weight " << i << " to have a multiple of the "
                           << block.getRows() << "-row scale block, got "
                           << t.getDimSize(0) << " rows";
    rows += t.getDimSize(0);
  }
  if (out.getRank() != 2 || out.getDimSize(0) != rows ||
      out.getDimSize(1) != first.getDimSize(1) ||
      out.getElementType() != first.getElementType() || out.getEncoding() != first.getEncoding())
    return emitOpError() << "expected the result " << rows << "x" << first.getDimSize(1)
                         << " with the weights' element type and encoding, got " << out;
  return success();
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

LogicalResult AddRmsNormOp::verify() {
  if (failed(verifyRank2(*this, "lhs", getLhs())))
    return failure();
  if (!(getEpsilon().convertToFloat() > 0.0f))
    return emitOpError() << "expected a positive epsilon, got "
                         << getEpsilon().convertToFloat();
  return verifyNorm(*this, "weight", getWeight(), shapeOf(getLhs())[1]);
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
  return verifyProjection(*this, "weight", getWeight(), out[1], in[1]);
}

LogicalResult SliceColumnsOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t begin = getBegin(), width = getWidth();
  if (failed(expectPositive(*this, "width", width)))
    return failure();
  if (begin < 0 || (!ShapedType::isDynamic(in[1]) && begin + width > in[1]))
    return emitOpError() << "expected 0 <= begin and begin + width <= " << in[1]
                         << " columns, got begin " << begin << " and width "
                         << width;
  return verifyActivation(*this, "result", getResult(), in[0], width);
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

  if (failed(verifyCache(*this, getCache(), kvLora, rope)))
    return failure();
  auto cache = cast<LatentCacheType>(getCache().getType());
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
  if (qLora == 0 && (hasQa || hasQaNorm))
    return emitOpError()
           << "expected no q_a or q_a_norm when q_lora_rank is 0, got "
           << (hasQa ? "q_a" : "q_a_norm");
  if (qLora > 0 &&
      (failed(verifyProjection(*this, "q_a", getQA(), qLora, hidden)) ||
       failed(verifyNorm(*this, "q_a_norm", getQANorm(), qLora))))
    return failure();
  if (failed(verifyProjection(*this, "q_b", getQB(), heads * (nope + rope),
                              qLora > 0 ? qLora : hidden)))
    return failure();

  // Latent path: kv_a gives C latent + rope shared-key values.
  if (failed(verifyProjection(*this, "kv_a", getKvA(), kvLora + rope, hidden)) ||
      failed(verifyNorm(*this, "kv_a_norm", getKvANorm(), kvLora)) ||
      failed(verifyProjection(*this, "kv_b", getKvB(), heads * (nope + vDim),
                              kvLora)) ||
      failed(verifyProjection(*this, "o_proj", getOProj(), hidden,
                              heads * vDim)))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// Step-level attention
//===----------------------------------------------------------------------===//

LogicalResult CacheStoreOp::verify() {
  auto cache = cast<LatentCacheType>(getCache().getType());
  if (failed(verifyRank2(*this, "latent", getLatent())))
    return failure();
  int64_t tokens = shapeOf(getLatent())[0];
  if (failed(verifyActivation(*this, "latent", getLatent(), tokens,
                              cache.getKvLoraRank())) ||
      failed(verifyActivation(*this, "rope", getRope(), tokens,
                              cache.getRopeDim())) ||
      failed(verifyTokenVector(*this, "positions", getPositions(), tokens)) ||
      failed(verifyTokenVector(*this, "seq_ids", getSeqIds(), tokens)))
    return failure();
  return success();
}

LogicalResult HeadLinearOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())) ||
      failed(verifyRank2(*this, "result", getResult())))
    return failure();
  ArrayRef<int64_t> w = shapeOf(getWeight());
  if (w.size() != 3)
    return emitOpError() << "expected a rank-3 [heads, N, K] weight, got rank "
                         << w.size();
  int64_t heads = getHeads(), stride = getInStride();
  int64_t offset = getInOffset(), width = getInWidth();
  if (failed(expectPositive(*this, "heads", heads)) ||
      failed(expectPositive(*this, "in_width", width)))
    return failure();
  if (w[0] != heads)
    return emitOpError() << "expected " << heads << " weight heads, got "
                         << w[0];
  if (offset < 0 || offset + width > stride)
    return emitOpError() << "expected 0 <= in_offset and in_offset + in_width "
                            "<= in_stride ("
                         << stride << "), got " << offset << " + " << width;
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t needed = (heads - 1) * stride + offset + width;
  if (!ShapedType::isDynamic(in[1]) && in[1] < needed)
    return emitOpError() << "expected at least " << needed
                         << " input columns for " << heads << " heads, got "
                         << in[1];
  bool transpose = getTranspose();
  int64_t contracted = transpose ? w[1] : w[2];
  int64_t produced = transpose ? w[2] : w[1];
  if (width != contracted)
    return emitOpError() << "expected in_width = " << contracted
                         << (transpose ? " (weight dim 1, transposed)"
                                       : " (weight dim 2)")
                         << ", got " << width;
  return verifyActivation(*this, "result", getResult(), in[0],
                          heads * produced);
}

/// Checks the query layout of an attention core: `heads` heads of `stride`
/// columns in `q`, each with `rope` rope columns at `ropeOffset`.
static LogicalResult verifyQueryLayout(Operation *op, Value q, int64_t heads,
                                       int64_t stride, int64_t ropeOffset,
                                       int64_t rope) {
  if (ropeOffset < 0 || ropeOffset + rope > stride)
    return op->emitOpError()
           << "expected 0 <= q_rope_offset and q_rope_offset + rope_dim <= "
              "q_stride ("
           << stride << "), got " << ropeOffset << " + " << rope;
  return expectShape(op, "q", q, {shapeOf(q)[0], heads * stride});
}

LogicalResult LatentAttentionOp::verify() {
  if (failed(verifyRank2(*this, "q_lat", getQLat())) ||
      failed(verifyRank2(*this, "q", getQ())))
    return failure();
  int64_t heads = getHeads(), latent = getLatentDim(), rope = getRopeDim();
  if (failed(expectPositive(*this, "heads", heads)) ||
      failed(expectPositive(*this, "softmax_scale", getSoftmaxScale())) ||
      failed(verifyCache(*this, getCache(), latent, rope)))
    return failure();
  int64_t tokens = shapeOf(getQLat())[0];
  if (failed(verifyActivation(*this, "q_lat", getQLat(), tokens,
                              heads * latent)) ||
      failed(verifyActivation(*this, "q", getQ(), tokens, shapeOf(getQ())[1])) ||
      failed(verifyQueryLayout(*this, getQ(), heads, getQStride(),
                               getQRopeOffset(), rope)) ||
      failed(verifyTokenVector(*this, "positions", getPositions(), tokens)) ||
      failed(verifyTokenVector(*this, "seq_ids", getSeqIds(), tokens)))
    return failure();
  return verifyActivation(*this, "result", getResult(), tokens, heads * latent);
}

LogicalResult ExpandedAttentionOp::verify() {
  if (failed(verifyRank2(*this, "q", getQ())))
    return failure();
  int64_t heads = getHeads(), nope = getNopeDim(), rope = getRopeDim();
  int64_t v = getVDim(), latent = getLatentDim();
  if (failed(expectPositive(*this, "heads", heads)) ||
      failed(expectPositive(*this, "nope_dim", nope)) ||
      failed(expectPositive(*this, "v_dim", v)) ||
      failed(expectPositive(*this, "softmax_scale", getSoftmaxScale())) ||
      failed(verifyCache(*this, getCache(), latent, rope)))
    return failure();
  int64_t tokens = shapeOf(getQ())[0];
  if (failed(verifyActivation(*this, "q", getQ(), tokens,
                              heads * (nope + rope))) ||
      failed(verifyTokenVector(*this, "positions", getPositions(), tokens)) ||
      failed(verifyTokenVector(*this, "seq_ids", getSeqIds(), tokens)) ||
      failed(verifyProjection(*this, "kv_b", getKvB(), heads * (nope + v),
                              latent)))
    return failure();
  return verifyActivation(*this, "result", getResult(), tokens, heads * v);
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

/// Verifies a router's gate, bias and attributes for an input of `hidden`
/// columns; returns the expert count (the gate's rows). moe.router and the
/// router of moe.moe_layer share it, so the two accept the same routers.
static FailureOr<int64_t> verifyRouting(Operation *op, int64_t hidden,
                                        Value gateValue, Value bias, int64_t k,
                                        int64_t groups, int64_t kept,
                                        GroupScore groupScore,
                                        APFloat scalingFactor) {
  ArrayRef<int64_t> gate = shapeOf(gateValue);
  if (gate.size() != 2)
    return op->emitOpError() << "expected a 2-D gate, got rank " << gate.size();
  if (!compatible(gate[1], hidden))
    return op->emitOpError() << "expected gate columns " << hidden << ", got "
                             << gate[1];
  int64_t experts = gate[0];
  if (bias && failed(expectShape(op, "bias", bias, {experts})))
    return failure();

  if (groups < 1)
    return op->emitOpError() << "expected n_group >= 1, got " << groups;
  if (kept < 1 || kept > groups)
    return op->emitOpError() << "expected 1 <= topk_group <= n_group ("
                             << groups << "), got " << kept;
  if (experts % groups != 0)
    return op->emitOpError() << "expected n_group to divide the " << experts
                             << " experts, got n_group = " << groups;
  int64_t perGroup = experts / groups;
  if (groups > 1 && groupScore == GroupScore::top2_sum && perGroup < 2)
    return op->emitOpError() << "expected at least 2 experts per group for "
                                "top2_sum, got "
                             << perGroup;
  int64_t available = kept * perGroup;
  if (k < 1 || k > available)
    return op->emitOpError() << "expected 1 <= top_k <= " << available
                             << " experts in the kept groups, got " << k;
  if (!(scalingFactor.convertToFloat() > 0.0f))
    return op->emitOpError()
           << "expected a positive routed_scaling_factor, got "
           << scalingFactor.convertToFloat();
  return experts;
}

LogicalResult RouterOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t k = getTopK();
  if (failed(verifyRouting(*this, in[1], getGate(), getBias(), k, getNGroup(),
                           getTopkGroup(), getGroupScore(),
                           getRoutedScalingFactor())))
    return failure();
  if (failed(expectShape(*this, "indices", getIndices(), {in[0], k})) ||
      failed(expectShape(*this, "weights", getWeights(), {in[0], k})))
    return failure();
  return success();
}

/// Verifies one SwiGLU's three projections for hidden size `hidden`; the
/// intermediate width is taken from gate.
static LogicalResult verifySwiglu(Operation *op, StringRef prefix, Value gate,
                                  Value up, Value down, int64_t hidden) {
  ArrayRef<int64_t> g = shapeOf(gate);
  if (g.size() != 2)
    return op->emitOpError() << "expected " << prefix << "gate of rank 2, got rank "
                             << g.size();
  int64_t width = g[0];
  if (failed(verifyProjection(op, (prefix + "gate").str(), gate, width,
                              hidden)) ||
      failed(verifyProjection(op, (prefix + "up").str(), up, width, hidden)) ||
      failed(verifyProjection(op, (prefix + "down").str(), down, hidden,
                              width)))
    return failure();
  return success();
}

/// Verifies the routed experts' weights for hidden size `hidden`: as many up
/// and down weights as gate weights, each expert a SwiGLU, all of one width.
static LogicalResult verifyExperts(Operation *op, ValueRange gates,
                                   ValueRange ups, ValueRange downs,
                                   int64_t hidden) {
  size_t experts = gates.size();
  if (experts == 0)
    return op->emitOpError() << "expected at least one expert, got 0";
  if (ups.size() != experts || downs.size() != experts)
    return op->emitOpError() << "expected " << experts
                             << " up and down weights, got " << ups.size()
                             << " and " << downs.size();
  int64_t width = ShapedType::kDynamic;
  for (size_t e = 0; e < experts; ++e) {
    std::string prefix = "expert " + std::to_string(e) + " ";
    if (failed(verifySwiglu(op, prefix, gates[e], ups[e], downs[e], hidden)))
      return failure();
    // Rank 2 is known from here on: verifySwiglu checked it.
    if (e == 0)
      width = shapeOf(gates[0])[0];
    if (shapeOf(gates[e])[0] != width)
      return op->emitOpError() << "expected every expert of width " << width
                               << ", got " << shapeOf(gates[e])[0]
                               << " for expert " << e;
  }
  return success();
}

/// The activations of a routed-experts op: input and result [T, D], the
/// router's indices and weights [T, K].
static LogicalResult verifyRoutedActivations(Operation *op, Value input, Value result,
                                             Value indices, Value weights) {
  if (failed(verifyRank2(op, "input", input)))
    return failure();
  ArrayRef<int64_t> in = shapeOf(input);
  if (failed(verifyActivation(op, "result", result, in[0], in[1])) ||
      failed(verifyRank2(op, "indices", indices)))
    return failure();
  ArrayRef<int64_t> idx = shapeOf(indices);
  if (failed(expectShape(op, "indices", indices, {in[0], idx[1]})) ||
      failed(expectShape(op, "weights", weights, idx)))
    return failure();
  return success();
}

LogicalResult RoutedExpertsOp::verify() {
  if (failed(verifyRoutedActivations(*this, getInput(), getResult(), getIndices(),
                                     getWeights())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  return verifyExperts(*this, getGateWeights(), getUpWeights(),
                       getDownWeights(), in[1]);
}

LogicalResult MoeLayerOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  if (failed(verifyActivation(*this, "result", getResult(), in[0], in[1])))
    return failure();
  FailureOr<int64_t> experts =
      verifyRouting(*this, in[1], getGate(), getBias(), getTopK(), getNGroup(),
                    getTopkGroup(), getGroupScore(), getRoutedScalingFactor());
  if (failed(experts))
    return failure();
  if (static_cast<int64_t>(getGateWeights().size()) != *experts)
    return emitOpError() << "expected " << *experts
                         << " experts (the gate's rows), got "
                         << getGateWeights().size();
  if (failed(verifyExperts(*this, getGateWeights(), getUpWeights(),
                           getDownWeights(), in[1])))
    return failure();

  // The shared experts are one SwiGLU: its three weights come together.
  SmallVector<StringRef, 3> shared;
  if (getSharedGate())
    shared.push_back("shared_gate");
  if (getSharedUp())
    shared.push_back("shared_up");
  if (getSharedDown())
    shared.push_back("shared_down");
  if (shared.empty())
    return success();
  if (shared.size() != 3)
    return emitOpError() << "expected shared_gate, shared_up and shared_down "
                            "together or none of them, got only "
                         << llvm::join(shared, " and ");
  return verifySwiglu(*this, "shared ", getSharedGate(), getSharedUp(),
                      getSharedDown(), in[1]);
}

LogicalResult SwigluOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  if (failed(verifyActivation(*this, "result", getResult(), in[0], in[1])))
    return failure();
  return verifySwiglu(*this, "", getGate(), getUp(), getDown(), in[1]);
}

/// Verifies a fused SwiGLU's weights for hidden size `hidden`: gate_up [2I, D]
/// interleaved by `unit` rows (whole scale blocks when block-quantized, as is I)
/// and down [D, I]. Returns I.
static FailureOr<int64_t> verifyGateUp(Operation *op, StringRef prefix, Value gateUp,
                                       Value down, int64_t hidden, int64_t unit) {
  if (failed(expectPositive(op, "gate_up_rows", unit)))
    return failure();
  ArrayRef<int64_t> gu = shapeOf(gateUp);
  if (gu.size() != 2 || gu[0] % 2 != 0)
    return op->emitOpError() << "expected " << prefix
                             << "gate_up of an even number of rows (gate and up), got "
                             << gateUp.getType();
  const int64_t inner = gu[0] / 2;
  if (ScaleBlock block = getScaleBlock(cast<RankedTensorType>(gateUp.getType()));
      block && (unit % block.getRows() != 0 || inner % block.getRows() != 0))
    return op->emitOpError() << "expected " << prefix << "gate_up_rows (" << unit
                             << ") and the inner width (" << inner << ") in whole "
                             << block.getRows() << "-row scale blocks";
  if (failed(verifyProjection(op, (prefix + "gate_up").str(), gateUp, 2 * inner, hidden)) ||
      failed(verifyProjection(op, (prefix + "down").str(), down, hidden, inner)))
    return failure();
  return inner;
}

LogicalResult FusedSwigluOp::verify() {
  if (failed(verifyRank2(*this, "input", getInput())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  if (failed(verifyActivation(*this, "result", getResult(), in[0], in[1])))
    return failure();
  return verifyGateUp(*this, "", getGateUp(), getDown(), in[1], getGateUpRows());
}

LogicalResult FusedRoutedExpertsOp::verify() {
  if (failed(verifyRoutedActivations(*this, getInput(), getResult(), getIndices(),
                                     getWeights())))
    return failure();
  ArrayRef<int64_t> in = shapeOf(getInput());
  const size_t experts = getGateUpWeights().size();
  if (experts == 0)
    return emitOpError() << "expected at least one expert, got 0";
  if (getDownWeights().size() != experts)
    return emitOpError() << "expected " << experts << " down weights, got "
                         << getDownWeights().size();
  int64_t width = 0;
  for (size_t e = 0; e < experts; ++e) {
    FailureOr<int64_t> inner =
        verifyGateUp(*this, "expert " + std::to_string(e) + " ", getGateUpWeights()[e],
                     getDownWeights()[e], in[1], getGateUpRows());
    if (failed(inner))
      return failure();
    if (e == 0)
      width = *inner;
    if (*inner != width)
      return emitOpError() << "expected every expert of width " << width << ", got "
                           << *inner << " for expert " << e;
  }
  return success();
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
