//===- AbsorbMla.cpp - the naive MLA core into the absorbed one -----------===//
//
// Spec section 4: with kv_b viewed as [H, nope+v, C], W_UK = rows 0..nope and
// W_UV = rows nope..nope+v of each head. q_lat[h] = q_nope[h] W_UK[h] and
// o[h] = o_lat[h] W_UV[h]^T, so attention reads only the latent cache.
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "StepNames.h"

#include "moec/Transforms/MlaCostModel.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/Support/FormatVariadic.h"

#include <optional>

namespace mlir::moe {
#define GEN_PASS_DEF_ABSORBMLAPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct AbsorbExpandedAttention : public OpRewritePattern<ExpandedAttentionOp> {
  AbsorbExpandedAttention(MLIRContext *ctx, bool report)
      : OpRewritePattern(ctx), report(report) {}

  LogicalResult matchAndRewrite(ExpandedAttentionOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    int64_t heads = op.getHeads(), nope = op.getNopeDim();
    int64_t rope = op.getRopeDim(), v = op.getVDim();
    int64_t latent = op.getLatentDim();
    int64_t tokens = cast<RankedTensorType>(op.getQ().getType()).getDimSize(0);
    auto act = [&](int64_t width) {
      return RankedTensorType::get({tokens, width}, rewriter.getF32Type());
    };
    // Per-head views of kv_b keep its element type and block quantization.
    auto kvB = cast<RankedTensorType>(op.getKvB().getType());
    auto headView = [&](StringRef name, int64_t offset, int64_t size) -> Value {
      auto type = RankedTensorType::get({heads, size, latent},
                                        kvB.getElementType(), kvB.getEncoding());
      return SliceHeadsOp::create(rewriter, siblingLoc(loc, name), type,
                                  op.getKvB(), heads, offset, size);
    };

    // q_lat[h] = q_nope[h] W_UK[h]: [T, H*C].
    Value wUk = headView("w_uk", /*offset=*/0, /*size=*/nope);
    Value qLat = HeadLinearOp::create(
        rewriter, siblingLoc(loc, "q_absorb"), act(heads * latent), op.getQ(),
        wUk, heads, /*in_stride=*/nope + rope, /*in_offset=*/int64_t{0},
        /*in_width=*/nope, /*transpose=*/true);
    Value oLat = LatentAttentionOp::create(
        rewriter, loc, act(heads * latent), qLat, op.getQ(), op.getPositions(),
        op.getSeqIds(), op.getCache(), heads, latent, rope,
        /*q_stride=*/nope + rope, /*q_rope_offset=*/nope, op.getSoftmaxScale());
    // o[h] = o_lat[h] W_UV[h]^T: [T, H*v].
    Value wUv = headView("w_uv", /*offset=*/nope, /*size=*/v);
    Value out = HeadLinearOp::create(
        rewriter, siblingLoc(loc, "v_up"), op.getResult().getType(), oLat, wUv,
        heads, /*in_stride=*/latent, /*in_offset=*/int64_t{0},
        /*in_width=*/latent, /*transpose=*/false);
    if (report)
      op.emitRemark() << "moe-absorb-mla: naive -> absorbed (attention reads "
                         "only the latent cache: "
                      << latent + rope << " values per token)";
    rewriter.replaceOp(op, out);
    return success();
  }

  bool report;
};

/// The cost model's view of one naive MLA core.
MlaShape shapeOf(ExpandedAttentionOp op) {
  MlaShape shape;
  shape.heads = op.getHeads();
  shape.nopeDim = op.getNopeDim();
  shape.ropeDim = op.getRopeDim();
  shape.vDim = op.getVDim();
  shape.latentDim = op.getLatentDim();
  auto kvB = cast<RankedTensorType>(op.getKvB().getType());
  shape.kvBBytes = double(kvB.getNumElements()) *
                   double(kvB.getElementType().getIntOrFloatBitWidth()) / 8;
  shape.cacheBytes = double(
      cast<LatentCacheType>(op.getCache().getType()).getElementType().getIntOrFloatBitWidth() / 8);
  return shape;
}

/// Batches beyond this many tokens are not considered (plans hold far fewer).
constexpr int64_t kMaxBatch = 16384;

struct AbsorbMlaPass : public moe::impl::AbsorbMlaPassBase<AbsorbMlaPass> {
  using AbsorbMlaPassBase::AbsorbMlaPassBase;

  /// form=auto: the form of `fn` (naive or absorbed) from the cost model; for a
  /// function other than @decode that gets the naive form, records the batch
  /// size from which it is cheaper on the module.
  AttentionForm chooseForm(func::FuncOp fn) {
    MlaMachine machine;
    machine.peakGflops = peakGflops;
    machine.bandwidthGBs = bandwidthGbs;
    SmallVector<MlaShape> shapes;
    fn.walk([&](ExpandedAttentionOp op) { shapes.push_back(shapeOf(op)); });
    if (shapes.empty())
      return AttentionForm::absorbed; // nothing to rewrite
    // Layers share their shape; the cost model runs once per distinct shape.
    int64_t threshold = 0;
    bool everyLayer = true, decodeNaive = true;
    std::optional<MlaShape> last;
    for (const MlaShape &s : shapes) {
      if (last && last->heads == s.heads && last->nopeDim == s.nopeDim &&
          last->ropeDim == s.ropeDim && last->vDim == s.vDim &&
          last->latentDim == s.latentDim && last->kvBBytes == s.kvBBytes &&
          last->cacheBytes == s.cacheBytes)
        continue;
      last = s;
      int64_t t = naivePrefillThreshold(s, machine, contextTokens, kMaxBatch);
      everyLayer &= t > 0;
      threshold = std::max(threshold, t);
      decodeNaive &= mlaCost(s, true, 1, contextTokens, machine).seconds <=
                     mlaCost(s, false, 1, contextTokens, machine).seconds;
    }
    if (!everyLayer)
      threshold = 0;
    const bool isDecode = fn.getSymName() == "decode";
    AttentionForm chosen = isDecode ? (decodeNaive ? AttentionForm::naive
                                                   : AttentionForm::absorbed)
                                    : (threshold > 0 ? AttentionForm::naive
                                                     : AttentionForm::absorbed);
    if (!isDecode && threshold > 0)
      getOperation()->setAttr(kPrefillMinTokensAttr,
                              IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                               threshold));
    else if (!isDecode)
      getOperation()->removeAttr(kPrefillMinTokensAttr);
    if (report) {
      std::string why =
          threshold > 0
              ? llvm::formatv("from {0} new tokens on the naive form is cheaper for "
                              "every context up to {1} cached tokens",
                              threshold, contextTokens)
                    .str()
              : llvm::formatv("the naive form is not cheaper for every context up to "
                              "{0} cached tokens at any batch up to {1} tokens",
                              contextTokens, kMaxBatch)
                    .str();
      fn.emitRemark() << "moe-absorb-mla: form=auto chose "
                      << stringifyAttentionForm(chosen) << " for @" << fn.getSymName()
                      << " (" << why << "; roofline "
                      << llvm::formatv("{0:f1} GFLOP/s, {1:f1} GB/s", double(peakGflops), double(bandwidthGbs))
                      << "); per MLA layer:\n"
                      << formatMlaCostTable(mlaCostTable(shapes.front(), machine,
                                                         contextTokens));
    }
    return chosen;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (form == AttentionForm::automatic &&
        (contextTokens < 0 || !(peakGflops > 0) || !(bandwidthGbs > 0))) {
      module.emitError() << "moe-absorb-mla: expected context-tokens >= 0 and positive "
                            "peak-gflops and bandwidth-gbs, got "
                         << llvm::formatv("{0}, {1}, {2}", int64_t(contextTokens),
                                          double(peakGflops), double(bandwidthGbs));
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> targets;
    if (function.empty()) {
      llvm::append_range(targets, module.getOps<func::FuncOp>());
    } else if (auto fn = module.lookupSymbol<func::FuncOp>(function)) {
      targets.push_back(fn);
    } else {
      module.emitError() << "moe-absorb-mla: expected a function @" << function
                         << ", got none";
      return signalPassFailure();
    }

    RewritePatternSet patterns(&getContext());
    patterns.add<AbsorbExpandedAttention>(&getContext(), report);
    FrozenRewritePatternSet frozen(std::move(patterns));
    for (func::FuncOp fn : targets) {
      AttentionForm chosen = form == AttentionForm::automatic ? chooseForm(fn) : form;
      if (chosen == AttentionForm::naive)
        continue;
      if (failed(applyPatternsGreedily(fn, frozen))) {
        fn.emitError() << "moe-absorb-mla: the rewrite did not converge";
        return signalPassFailure();
      }
      WalkResult left = fn.walk([](ExpandedAttentionOp op) {
        op.emitError() << "moe-absorb-mla: expected every "
                          "moe.expanded_attention to be absorbed, got one left";
        return WalkResult::interrupt();
      });
      if (left.wasInterrupted())
        return signalPassFailure();
    }
  }
};

} // namespace
