//===- FuseResidualNorm.cpp - residual add + RMSNorm into one step -------===//
//
// `moe.rms_norm` of a `moe.add` becomes `moe.add_rms_norm`, which writes the new
// residual stream and the normalised activations in one pass over the rows
// (Passes.td, FuseResidualNormPass).
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_FUSERESIDUALNORMPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct FuseAddIntoRmsNorm : public OpRewritePattern<RmsNormOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RmsNormOp norm, PatternRewriter &rewriter) const override {
    auto add = norm.getInput().getDefiningOp<AddOp>();
    if (!add)
      return rewriter.notifyMatchFailure(norm, "the input is not a moe.add");
    // The fused step takes the add's place (its operands are ready there, and the
    // add's other users come after it) and is named after it: its first result is
    // the residual stream the add made. A norm weight defined between the two (a
    // moe.weight has no operands) moves up with it.
    Operation *weight = norm.getWeight().getDefiningOp();
    if (weight && weight->getBlock() == add->getBlock() && add->isBeforeInBlock(weight)) {
      if (weight->getNumOperands() != 0 || !isa<WeightOp>(weight))
        return rewriter.notifyMatchFailure(norm, "the norm weight is computed after the add");
      rewriter.modifyOpInPlace(weight, [&] { weight->moveBefore(add); });
    }
    rewriter.setInsertionPoint(add);
    // Named like every step (a NameLoc), after the add; both original locations
    // stay inside it.
    Location both = rewriter.getFusedLoc({add.getLoc(), norm.getLoc()});
    Location loc = both;
    if (auto named = dyn_cast<NameLoc>(add.getLoc()))
      loc = NameLoc::get(named.getName(), both);
    auto fused = AddRmsNormOp::create(rewriter, loc, add.getType(), norm.getType(),
                                      add.getLhs(), add.getRhs(), norm.getWeight(),
                                      norm.getEpsilonAttr());
    rewriter.replaceOp(norm, fused.getResult());
    rewriter.replaceOp(add, fused.getSum());
    return success();
  }
};

struct FuseResidualNormPass
    : public moe::impl::FuseResidualNormPassBase<FuseResidualNormPass> {
  using FuseResidualNormPassBase::FuseResidualNormPassBase;

  void runOnOperation() override {
    auto countFused = [&] {
      int64_t n = 0;
      getOperation().walk([&](AddRmsNormOp) { ++n; });
      return n;
    };
    const int64_t before = report ? countFused() : 0;
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseAddIntoRmsNorm>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns)))) {
      getOperation().emitError() << "moe-fuse-residual-norm: the rewrite did not converge";
      return signalPassFailure();
    }
    if (report)
      getOperation().emitRemark() << "moe-fuse-residual-norm: " << countFused() - before
                                  << " residual add(s) fused with the RMSNorm after them";
  }
};

} // namespace
