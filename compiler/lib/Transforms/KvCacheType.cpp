//===- KvCacheType.cpp - the element type of the latent KV cache ----------===//
//
// The cache is threaded through the IR as SSA values of !moe.latent_cache: the
// function arguments, the results of the attention and cache_store ops that
// update it, and the function results. Retyping every one of them (and the
// function types) keeps the IR verified; the plan emitter then declares the
// states with the chosen dtype.
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_KVCACHETYPEPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct KvCacheTypePass : public moe::impl::KvCacheTypePassBase<KvCacheTypePass> {
  using KvCacheTypePassBase::KvCacheTypePassBase;

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    const Type stored = element == KvCacheElement::bf16  ? Type(BFloat16Type::get(ctx))
                        : element == KvCacheElement::fp8 ? Type(Float8E4M3FNType::get(ctx))
                                                         : Type(Float32Type::get(ctx));
    auto retype = [&](Type t) -> Type {
      if (auto cache = dyn_cast<LatentCacheType>(t))
        return LatentCacheType::get(ctx, cache.getKvLoraRank(), cache.getRopeDim(), stored);
      return t;
    };
    auto retypeValue = [&](Value v) {
      Type t = retype(v.getType());
      if (t != v.getType())
        v.setType(t);
    };
    getOperation().walk([&](Operation *op) {
      for (Region &region : op->getRegions())
        for (Block &block : region)
          for (BlockArgument arg : block.getArguments())
            retypeValue(arg);
      for (Value result : op->getResults())
        retypeValue(result);
    });
    getOperation().walk([&](func::FuncOp fn) {
      FunctionType type = fn.getFunctionType();
      SmallVector<Type> inputs, results;
      for (Type t : type.getInputs())
        inputs.push_back(retype(t));
      for (Type t : type.getResults())
        results.push_back(retype(t));
      fn.setFunctionType(FunctionType::get(ctx, inputs, results));
    });
  }
};
} // namespace
