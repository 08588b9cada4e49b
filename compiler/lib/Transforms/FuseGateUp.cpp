//===- FuseGateUp.cpp - a SwiGLU's gate and up projections as one ---------===//
//
// moe.swiglu and moe.routed_experts become moe.fused_swiglu and
// moe.fused_routed_experts over moe.concat_weights {interleave} of each
// SwiGLU's gate and up weights (Passes.td, FuseGateUpPass).
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_FUSEGATEUPPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Why gate and up of one SwiGLU cannot be stacked by `rows`-row units, or an
/// empty string when they can.
std::string whyNotStackable(Value gate, Value up, int64_t rows) {
  auto g = cast<RankedTensorType>(gate.getType());
  auto u = cast<RankedTensorType>(up.getType());
  std::string why;
  llvm::raw_string_ostream os(why);
  if (g != u) {
    os << "the gate and up weights' types " << g << " and " << u << " differ";
    return why;
  }
  if (ScaleBlock block = getScaleBlock(g);
      block && (rows % block.getRows() != 0 || g.getDimSize(0) % block.getRows() != 0))
    os << "the " << g.getDimSize(0) << " gate rows and the " << rows
       << "-row unit are not whole " << block.getRows() << "-row scale blocks";
  return why;
}

/// moe.concat_weights {interleave = rows} of gate and up, before `at`.
Value stackGateUp(PatternRewriter &rewriter, Operation *at, Value gate, Value up,
                  int64_t rows) {
  auto g = cast<RankedTensorType>(gate.getType());
  auto stacked = RankedTensorType::get({2 * g.getDimSize(0), g.getDimSize(1)},
                                       g.getElementType(), g.getEncoding());
  rewriter.setInsertionPoint(at);
  auto concat = ConcatWeightsOp::create(rewriter,
                                        rewriter.getFusedLoc({gate.getLoc(), up.getLoc()}),
                                        stacked, ValueRange{gate, up});
  concat.setInterleave(rows);
  return concat.getResult();
}

struct FuseSwiglu : public OpRewritePattern<SwigluOp> {
  FuseSwiglu(MLIRContext *ctx, int64_t rows) : OpRewritePattern(ctx), rows(rows) {}

  LogicalResult matchAndRewrite(SwigluOp op, PatternRewriter &rewriter) const override {
    if (std::string why = whyNotStackable(op.getGate(), op.getUp(), rows); !why.empty())
      return rewriter.notifyMatchFailure(op, why);
    Value gateUp = stackGateUp(rewriter, op, op.getGate(), op.getUp(), rows);
    rewriter.replaceOpWithNewOp<FusedSwigluOp>(op, op.getType(), op.getInput(), gateUp,
                                               op.getDown(), rows);
    return success();
  }

  int64_t rows;
};

struct FuseRoutedExperts : public OpRewritePattern<RoutedExpertsOp> {
  FuseRoutedExperts(MLIRContext *ctx, int64_t rows) : OpRewritePattern(ctx), rows(rows) {}

  LogicalResult matchAndRewrite(RoutedExpertsOp op,
                                PatternRewriter &rewriter) const override {
    // All experts or none: one step kind holds them all.
    for (auto [e, gate, up] : llvm::enumerate(op.getGateWeights(), op.getUpWeights()))
      if (std::string why = whyNotStackable(gate, up, rows); !why.empty())
        return rewriter.notifyMatchFailure(op, "expert " + std::to_string(e) + ": " + why);
    SmallVector<Value> gateUps;
    for (auto [gate, up] : llvm::zip_equal(op.getGateWeights(), op.getUpWeights()))
      gateUps.push_back(stackGateUp(rewriter, op, gate, up, rows));
    rewriter.replaceOpWithNewOp<FusedRoutedExpertsOp>(
        op, op.getType(), op.getInput(), op.getIndices(), op.getWeights(), gateUps,
        op.getDownWeights(), rows);
    return success();
  }

  int64_t rows;
};

struct FuseGateUpPass : public moe::impl::FuseGateUpPassBase<FuseGateUpPass> {
  using FuseGateUpPassBase::FuseGateUpPassBase;

  void runOnOperation() override {
    if (rows < 1) {
      getOperation().emitError() << "moe-fuse-gate-up: rows must be at least 1, got " << int64_t(rows);
      return signalPassFailure();
    }
    auto count = [&] {
      int64_t n = 0;
      getOperation().walk([&](Operation *op) {
        n += isa<FusedSwigluOp, FusedRoutedExpertsOp>(op);
      });
      return n;
    };
    const int64_t before = report ? count() : 0;
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseSwiglu, FuseRoutedExperts>(&getContext(), rows);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns)))) {
      getOperation().emitError() << "moe-fuse-gate-up: the rewrite did not converge";
      return signalPassFailure();
    }
    if (!report)
      return;
    // What stayed unfused, and why (once per op, after the rewrite).
    getOperation().walk([&](Operation *op) {
      if (auto swiglu = dyn_cast<SwigluOp>(op)) {
        std::string why = whyNotStackable(swiglu.getGate(), swiglu.getUp(), rows);
        op->emitRemark() << "moe-fuse-gate-up: not fused: " << why;
      } else if (auto experts = dyn_cast<RoutedExpertsOp>(op)) {
        for (auto [e, gate, up] :
             llvm::enumerate(experts.getGateWeights(), experts.getUpWeights()))
          if (std::string why = whyNotStackable(gate, up, rows); !why.empty()) {
            op->emitRemark() << "moe-fuse-gate-up: not fused: expert " << e << ": " << why;
            break;
          }
      }
    });
    getOperation().emitRemark() << "moe-fuse-gate-up: " << count() - before
                                  << " SwiGLU step(s) fused (gate and up as one product)";
  }
};

} // namespace
