//===- QuantizeFp8.cpp - block quantization of the linear weights --------===//
//
// Inserts `moe.quantize_weight` between each unquantized weight and its uses as
// the weight of a matrix product (Passes.td: QuantizeFp8Pass, to FP8 e4m3, and
// QuantizeInt8Pass, to int8; one body). The numbers are made later, by the plan
// emitter, with the recipes of moec/cpu/quantize.h.
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/FormatVariadic.h"

namespace mlir::moe {
#define GEN_PASS_DEF_QUANTIZEFP8PASS
#define GEN_PASS_DEF_QUANTIZEINT8PASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

bool isOneOf(Value v, ValueRange range) { return llvm::is_contained(range, v); }

/// Whether `use` reads its value as the weight of a matrix product, which
/// DeepSeek-V3 ships in FP8 (spec section 3).
bool isProductWeight(OpOperand &use, bool quantizeLmHead) {
  Operation *user = use.getOwner();
  Value v = use.get();
  if (auto op = dyn_cast<MlaAttentionOp>(user))
    return v == op.getQA() || v == op.getQB() || v == op.getKvA() || v == op.getKvB() ||
           v == op.getOProj();
  if (auto op = dyn_cast<MoeLayerOp>(user))
    return isOneOf(v, op.getGateWeights()) || isOneOf(v, op.getUpWeights()) ||
           isOneOf(v, op.getDownWeights()) || v == op.getSharedGate() ||
           v == op.getSharedUp() || v == op.getSharedDown();
  if (auto op = dyn_cast<LinearOp>(user))
    return v == op.getWeight();
  if (auto op = dyn_cast<LogitsOp>(user))
    return quantizeLmHead && v == op.getLmHead();
  if (isa<SwigluOp, RoutedExpertsOp, SliceHeadsOp>(user))
    return true; // every weight operand is a product's
  if (auto op = dyn_cast<ExpandedAttentionOp>(user))
    return v == op.getKvB();
  if (auto op = dyn_cast<HeadLinearOp>(user))
    return v == op.getWeight();
  return false; // embeddings, norms, the router, conversions, anything new
}

/// What one quantization pass makes of a weight.
struct QuantizeTarget {
  const char *pass;        ///< the pass's name, for messages
  const char *description; ///< what the codes are, for the report
  Type element;            ///< the codes' element type
  Attribute encoding;      ///< the block encoding
  int64_t codeBits;        ///< bits per code
};

/// Inserts moe.quantize_weight at every product use of each unquantized weight
/// (the passes' shared body). Returns failure after an error.
/// `requantizeFp8`: FP8 weights are quantized too (from their dequantized values).
LogicalResult quantizeWeights(func::FuncOp fn, const QuantizeTarget &target, int64_t block,
                              moe::Fp8ScaleFormat scale, bool quantizeLmHead, bool report,
                              bool requantizeFp8 = false) {
  MLIRContext *ctx = fn.getContext();
  auto scaleAttr = Fp8ScaleFormatAttr::get(ctx, scale);
  uint64_t count = 0, requantized = 0, bytesBefore = 0, bytesAfter = 0;
  bool failed = false;
  fn.walk([&](WeightOp weight) {
    auto type = cast<RankedTensorType>(weight.getWeight().getType());
    const bool fp8 = isa<Float8E4M3FNType>(type.getElementType()) && getBlockFp8(type);
    if (!isUnquantizedWeightType(type) && !(requantizeFp8 && fp8))
      return; // already quantized (an FP8 checkpoint's): never quantized twice
    SmallVector<OpOperand *> uses;
    for (OpOperand &use : weight.getWeight().getUses())
      if (isProductWeight(use, quantizeLmHead))
        uses.push_back(&use);
    if (uses.empty())
      return;
    if (type.getRank() != 2) {
      weight.emitError() << target.pass << ": cannot quantize '" << weight.getName()
                         << "': expected a 2-D weight, got " << type;
      failed = true;
      return;
    }
    auto quantizedType = RankedTensorType::get(type.getShape(), target.element, target.encoding);
    OpBuilder b(weight->getBlock(), std::next(weight->getIterator()));
    auto q = QuantizeWeightOp::create(b, weight.getLoc(), quantizedType, weight.getWeight(),
                                      scaleAttr);
    for (OpOperand *use : uses) {
      use->set(q.getResult());
      // A per-head view of a quantized weight is quantized: its rows keep the
      // parent's scale grid.
      if (auto slice = dyn_cast<SliceHeadsOp>(use->getOwner())) {
        auto sliceType = cast<RankedTensorType>(slice.getResult().getType());
        slice.getResult().setType(
            RankedTensorType::get(sliceType.getShape(), target.element, target.encoding));
      }
    }
    int64_t elements = type.getNumElements();
    int64_t blocks = ((type.getDimSize(0) + block - 1) / block) *
                     ((type.getDimSize(1) + block - 1) / block);
    ++count;
    requantized += fp8;
    bytesBefore += uint64_t(elements) * type.getElementTypeBitWidth() / 8;
    bytesAfter += uint64_t(elements) * uint64_t(target.codeBits) / 8 + uint64_t(blocks) * 4;
  });
  if (failed)
    return failure();
  if (report)
    fn.emitRemark() << llvm::formatv("{0}: {1} weights to {2} with {3}x{3} {4} scales{7}: {5} "
                                     "-> {6} bytes",
                                     target.pass, count, target.description, block,
                                     stringifyFp8ScaleFormat(scale), bytesBefore, bytesAfter,
                                     requantized ? llvm::formatv(" ({0} of them from FP8)",
                                                                 requantized)
                                                       .str()
                                                 : std::string());
  return success();
}

struct QuantizeFp8Pass : public moe::impl::QuantizeFp8PassBase<QuantizeFp8Pass> {
  using QuantizeFp8PassBase::QuantizeFp8PassBase;

  void runOnOperation() override {
    func::FuncOp fn = getOperation();
    if (block < 1) {
      fn.emitError() << "moe-quantize-fp8: block must be at least 1, got "
                     << static_cast<int64_t>(block);
      return signalPassFailure();
    }
    MLIRContext *ctx = &getContext();
    QuantizeTarget target{"moe-quantize-fp8", "FP8 e4m3", Float8E4M3FNType::get(ctx),
                          BlockFp8Attr::get(ctx, block, block), 8};
    if (failed(quantizeWeights(fn, target, block, scale, quantizeLmHead, report)))
      signalPassFailure();
  }
};

struct QuantizeInt8Pass : public moe::impl::QuantizeInt8PassBase<QuantizeInt8Pass> {
  using QuantizeInt8PassBase::QuantizeInt8PassBase;

  void runOnOperation() override {
    func::FuncOp fn = getOperation();
    if (block < 1) {
      fn.emitError() << "moe-quantize-int8: block must be at least 1, got "
                     << static_cast<int64_t>(block);
      return signalPassFailure();
    }
    MLIRContext *ctx = &getContext();
    QuantizeTarget target{"moe-quantize-int8", "int8", IntegerType::get(ctx, 8),
                          BlockInt8Attr::get(ctx, block, block), 8};
    if (failed(quantizeWeights(fn, target, block, Fp8ScaleFormat::fp32, quantizeLmHead,
                               report, requantizeFp8)))
      signalPassFailure();
  }
};

} // namespace
