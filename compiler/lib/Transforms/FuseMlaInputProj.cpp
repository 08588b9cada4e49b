//===- FuseMlaInputProj.cpp - q_a/q and kv_a projections into one linear --===//
//
// The two moe.linear that project MLA's normalised input (`q_a_proj` or
// `q_proj`, and `kv_a_proj_with_mqa`) become one over moe.concat_weights of
// their weights, and two moe.slice_columns of its result (Passes.td,
// FuseMlaInputProjPass).
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "StepNames.h"

#include "mlir/IR/Dominance.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_FUSEMLAINPUTPROJPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

StringRef stepNameOf(Operation *op) {
  if (auto named = dyn_cast<NameLoc>(op->getLoc()))
    return named.getName().getValue();
  return {};
}

/// True when the step is named `leaf` or `<module>.<leaf>`.
bool isNamed(Operation *op, StringRef leaf) {
  StringRef name = stepNameOf(op);
  return name == leaf || (name.ends_with(leaf) && name.drop_back(leaf.size()).ends_with("."));
}

bool isQueryProj(LinearOp op) { return isNamed(op, "q_a_proj") || isNamed(op, "q_proj"); }

bool isLatentProj(LinearOp op) { return isNamed(op, "kv_a_proj_with_mqa"); }

/// The kv_a_proj_with_mqa that reads the same input as `query`, in its block.
LinearOp latentSibling(LinearOp query) {
  for (Operation *user : query.getInput().getUsers())
    if (auto linear = dyn_cast<LinearOp>(user);
        linear && linear != query && isLatentProj(linear) &&
        linear->getBlock() == query->getBlock())
      return linear;
  return {};
}

/// Why the two projections' weights cannot be stacked into one, or an empty
/// string when they can.
std::string whyNotStackable(LinearOp query, LinearOp latent) {
  auto wq = cast<RankedTensorType>(query.getWeight().getType());
  auto wkv = cast<RankedTensorType>(latent.getWeight().getType());
  std::string why;
  llvm::raw_string_ostream os(why);
  if (wq.getElementType() != wkv.getElementType() || wq.getEncoding() != wkv.getEncoding())
    os << "the weights' types " << wq << " and " << wkv << " differ";
  else if (ScaleBlock block = getScaleBlock(wq); block && wq.getDimSize(0) % block.getRows())
    os << "the query projection's " << wq.getDimSize(0) << " rows are not whole "
       << block.getRows() << "-row scale blocks";
  return why;
}

struct FuseInputProjections : public OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LinearOp query, PatternRewriter &rewriter) const override {
    if (!isQueryProj(query))
      return rewriter.notifyMatchFailure(query, "not an MLA query projection");
    LinearOp latent = latentSibling(query);
    if (!latent)
      return rewriter.notifyMatchFailure(query, "no kv_a_proj_with_mqa on the same input");
    if (std::string why = whyNotStackable(query, latent); !why.empty())
      return rewriter.notifyMatchFailure(query, why);
    auto wq = cast<RankedTensorType>(query.getWeight().getType());
    auto wkv = cast<RankedTensorType>(latent.getWeight().getType());
    // The fused linear goes where the first of the two was; the other's weight
    // (a moe.weight, maybe under a moe.quantize_weight: no operands but the
    // weight) moves up when it is defined after that point.
    Operation *first = query->isBeforeInBlock(latent) ? query : latent;
    SmallVector<Operation *> chain;
    for (Value v : {query.getWeight(), latent.getWeight()}) {
      Operation *def = v.getDefiningOp();
      while (def && def->getBlock() == first->getBlock() && first->isBeforeInBlock(def)) {
        if (!isa<WeightOp, QuantizeWeightOp, ConvertWeightOp>(def))
          return rewriter.notifyMatchFailure(query, "a weight is computed after the input");
        chain.push_back(def);
        def = def->getNumOperands() ? def->getOperand(0).getDefiningOp() : nullptr;
      }
    }
    for (Operation *def : llvm::reverse(chain))
      rewriter.modifyOpInPlace(def, [&] { def->moveBefore(first); });

    rewriter.setInsertionPoint(first);
    const int64_t qRows = wq.getDimSize(0), kvRows = wkv.getDimSize(0);
    auto stacked = RankedTensorType::get({qRows + kvRows, wq.getDimSize(1)},
                                         wq.getElementType(), wq.getEncoding());
    Location weightsLoc =
        rewriter.getFusedLoc({query.getWeight().getLoc(), latent.getWeight().getLoc()});
    Value weights = ConcatWeightsOp::create(rewriter, weightsLoc, stacked,
                                            ValueRange{query.getWeight(), latent.getWeight()});
    int64_t tokens = cast<RankedTensorType>(query.getResult().getType()).getDimSize(0);
    auto act = [&](int64_t width) {
      return RankedTensorType::get({tokens, width}, rewriter.getF32Type());
    };
    // Named beside the two it replaces, with both of their locations inside.
    Location both = rewriter.getFusedLoc({query.getLoc(), latent.getLoc()});
    Location loc = siblingLoc(query.getLoc(), "q_kv_a_proj");
    if (auto named = dyn_cast<NameLoc>(loc))
      loc = NameLoc::get(named.getName(), both);
    Value fused = LinearOp::create(rewriter, loc, act(qRows + kvRows), query.getInput(), weights);
    Value q = SliceColumnsOp::create(rewriter, query.getLoc(), act(qRows), fused,
                                     /*begin=*/int64_t{0}, /*width=*/qRows);
    Value kv = SliceColumnsOp::create(rewriter, latent.getLoc(), act(kvRows), fused,
                                      /*begin=*/qRows, /*width=*/kvRows);
    rewriter.replaceOp(query, q);
    rewriter.replaceOp(latent, kv);
    return success();
  }
};

struct FuseMlaInputProjPass
    : public moe::impl::FuseMlaInputProjPassBase<FuseMlaInputProjPass> {
  using FuseMlaInputProjPassBase::FuseMlaInputProjPassBase;

  void runOnOperation() override {
    auto countFused = [&] {
      int64_t n = 0;
      getOperation().walk([&](ConcatWeightsOp op) {
        n += llvm::any_of(op->getUsers(), [](Operation *u) { return isa<LinearOp>(u); });
      });
      return n;
    };
    const int64_t before = report ? countFused() : 0;
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseInputProjections>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns)))) {
      getOperation().emitError() << "moe-fuse-mla-input-proj: the rewrite did not converge";
      return signalPassFailure();
    }
    if (!report)
      return;
    // What stayed unfused, and why (once per pair, after the rewrite).
    getOperation().walk([&](LinearOp query) {
      if (!isQueryProj(query))
        return;
      if (LinearOp latent = latentSibling(query))
        query.emitRemark() << "moe-fuse-mla-input-proj: not fused: "
                           << whyNotStackable(query, latent);
    });
    getOperation().emitRemark() << "moe-fuse-mla-input-proj: " << countFused() - before
                                  << " pair(s) of MLA input projections fused into one linear";
  }
};

} // namespace
