//===- AbsorbMla.cpp - the naive MLA core into the absorbed one -----------===//
//
// Spec section 4: with kv_b viewed as [H, nope+v, C], W_UK = rows 0..nope and
// W_UV = rows nope..nope+v of each head. q_lat[h] = q_nope[h] W_UK[h] and
// o[h] = o_lat[h] W_UV[h]^T, so attention reads only the latent cache.
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "StepNames.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

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

struct AbsorbMlaPass : public moe::impl::AbsorbMlaPassBase<AbsorbMlaPass> {
  using AbsorbMlaPassBase::AbsorbMlaPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
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
    if (form == AttentionForm::naive)
      return;

    RewritePatternSet patterns(&getContext());
    patterns.add<AbsorbExpandedAttention>(&getContext(), report);
    FrozenRewritePatternSet frozen(std::move(patterns));
    for (func::FuncOp fn : targets) {
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
