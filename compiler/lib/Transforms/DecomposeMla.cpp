//===- DecomposeMla.cpp - moe.mla_attention into step-level ops -----------===//
//
// Spec section 4, step by step: the query and latent projections, the split
// of kv_a's output into c and k_pe, RoPE, the cache update and the naive
// attention core, then o_proj. moe-absorb-mla may later rewrite the core.
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "StepNames.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_DECOMPOSEMLAPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct DecomposeMlaAttention : public OpRewritePattern<MlaAttentionOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MlaAttentionOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    auto inType = cast<RankedTensorType>(op.getInput().getType());
    int64_t tokens = inType.getDimSize(0);
    auto act = [&](int64_t width) {
      return RankedTensorType::get({tokens, width}, rewriter.getF32Type());
    };
    int64_t heads = op.getNumHeads(), nope = op.getQkNopeHeadDim();
    int64_t rope = op.getQkRopeHeadDim(), v = op.getVHeadDim();
    int64_t latent = op.getKvLoraRank(), qLora = op.getQLoraRank();
    FloatAttr eps = op.getRmsNormEpsAttr();
    Value x = op.getInput(), positions = op.getPositions();
    Value seqIds = op.getSeqIds();

    // Query: q_b(q_a_norm(q_a(x))), or q_proj(x).
    Value q;
    if (qLora > 0) {
      Value qa = LinearOp::create(rewriter, childLoc(loc, "q_a_proj"),
                                  act(qLora), x, op.getQA());
      qa = RmsNormOp::create(rewriter, childLoc(loc, "q_a_layernorm"),
                             qa.getType(), qa, op.getQANorm(), eps);
      q = LinearOp::create(rewriter, childLoc(loc, "q_b_proj"),
                           act(heads * (nope + rope)), qa, op.getQB());
    } else {
      q = LinearOp::create(rewriter, childLoc(loc, "q_proj"),
                           act(heads * (nope + rope)), x, op.getQB());
    }

    // Latent: c = kv_a_norm(kv[:C]), k_pe = kv[C:].
    Value kv = LinearOp::create(rewriter, childLoc(loc, "kv_a_proj_with_mqa"),
                                act(latent + rope), x, op.getKvA());
    Value c = SliceColumnsOp::create(rewriter, childLoc(loc, "c"), act(latent),
                                     kv, /*begin=*/int64_t{0}, /*width=*/latent);
    c = RmsNormOp::create(rewriter, childLoc(loc, "kv_a_layernorm"),
                          c.getType(), c, op.getKvANorm(), eps);
    Value pe = SliceColumnsOp::create(rewriter, childLoc(loc, "k_pe"),
                                      act(rope), kv, /*begin=*/latent,
                                      /*width=*/rope);

    // RoPE on every head's q_pe and on the one shared k_pe.
    auto ropeOp = [&](StringRef name, Value input, int64_t ropeHeads,
                      int64_t headDim, int64_t offset) -> Value {
      return RopeOp::create(rewriter, childLoc(loc, name), input.getType(),
                            input, positions, ropeHeads, headDim, offset, rope,
                            op.getRopeTheta(), op.getRopeLayout(),
                            op.getYarnAttr());
    };
    q = ropeOp("rope_q", q, heads, nope + rope, nope);
    pe = ropeOp("rope_k", pe, /*heads=*/1, rope, /*offset=*/0);

    // The cache update, then the naive core reading the updated cache.
    Value cache = CacheStoreOp::create(rewriter, childLoc(loc, "cache_store"),
                                       op.getCache().getType(), op.getCache(),
                                       c, pe, positions, seqIds);
    Value attn = ExpandedAttentionOp::create(
        rewriter, childLoc(loc, "attention"), act(heads * v), q, positions,
        seqIds, cache, op.getKvB(), heads, nope, rope, v, latent,
        op.getSoftmaxScale());
    Value out = LinearOp::create(rewriter, childLoc(loc, "o_proj"),
                                 op.getResult().getType(), attn, op.getOProj());
    rewriter.replaceOp(op, {out, cache});
    return success();
  }
};

struct DecomposeMlaPass
    : public moe::impl::DecomposeMlaPassBase<DecomposeMlaPass> {
  using DecomposeMlaPassBase::DecomposeMlaPassBase;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<DecomposeMlaAttention>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns)))) {
      getOperation().emitError()
          << "moe-decompose-mla: the rewrite did not converge";
      return signalPassFailure();
    }
    WalkResult left = getOperation().walk([](MlaAttentionOp op) {
      op.emitError() << "moe-decompose-mla: expected every moe.mla_attention "
                        "to be decomposed, got one left";
      return WalkResult::interrupt();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
