//===- DecomposeMoe.cpp - moe.moe_layer into step-level ops ---------------===//
//
// Spec section 5, step by step: the router, the selected experts' weighted
// SwiGLUs, and the shared experts' SwiGLU added to them. The steps keep the
// names the checkpoint modules give them (".gate", ".experts", ...).
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "StepNames.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_DECOMPOSEMOEPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct DecomposeMoeLayer : public OpRewritePattern<MoeLayerOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MoeLayerOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value x = op.getInput();
    int64_t tokens = cast<RankedTensorType>(x.getType()).getDimSize(0);
    int64_t k = op.getTopK();
    auto indicesType =
        RankedTensorType::get({tokens, k}, rewriter.getI32Type());
    auto weightsType =
        RankedTensorType::get({tokens, k}, rewriter.getF32Type());

    auto router = RouterOp::create(
        rewriter, childLoc(loc, "gate"), TypeRange{indicesType, weightsType}, x,
        op.getGate(), op.getBias(), op.getTopKAttr(), op.getNGroupAttr(),
        op.getTopkGroupAttr(), op.getScoreFuncAttr(), op.getGroupScoreAttr(),
        op.getNormTopkProbAttr(), op.getRoutedScalingFactorAttr());
    Type resultType = op.getResult().getType();
    Value routed = RoutedExpertsOp::create(
        rewriter, childLoc(loc, "experts"), resultType, x, router.getIndices(),
        router.getWeights(), op.getGateWeights(), op.getUpWeights(),
        op.getDownWeights());
    if (!op.getSharedGate()) {
      rewriter.replaceOp(op, routed);
      return success();
    }
    // The verifier guarantees all three shared weights when one is present.
    Value shared = SwigluOp::create(rewriter, childLoc(loc, "shared_experts"),
                                    resultType, x, op.getSharedGate(),
                                    op.getSharedUp(), op.getSharedDown());
    Value sum = AddOp::create(rewriter, childLoc(loc, "routed_plus_shared"),
                              routed, shared);
    rewriter.replaceOp(op, sum);
    return success();
  }
};

struct DecomposeMoePass
    : public moe::impl::DecomposeMoePassBase<DecomposeMoePass> {
  using DecomposeMoePassBase::DecomposeMoePassBase;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<DecomposeMoeLayer>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns)))) {
      getOperation().emitError()
          << "moe-decompose-moe: the rewrite did not converge";
      return signalPassFailure();
    }
    WalkResult left = getOperation().walk([](MoeLayerOp op) {
      op.emitError() << "moe-decompose-moe: expected every moe.moe_layer to "
                        "be decomposed, got one left";
      return WalkResult::interrupt();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
