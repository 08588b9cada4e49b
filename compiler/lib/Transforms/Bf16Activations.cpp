//===- Bf16Activations.cpp - matrix products with bf16 activations --------===//
//
// Sets `moe.activations = bf16` on every step op that multiplies by weights,
// except those with int8 weights (Passes.td, Bf16ActivationsPass). The plan
// emitter turns it into the step's `activations: BF16`.
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "mlir/IR/BuiltinAttributes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_BF16ACTIVATIONSPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Whether any weight operand of `op` holds int8 codes (#moe.block_int8).
bool hasInt8Weights(Operation *op) {
  for (Type t : op->getOperandTypes())
    if (auto tensor = dyn_cast<RankedTensorType>(t))
      if (isa_and_nonnull<BlockInt8Attr>(tensor.getEncoding()))
        return true;
  return false;
}

struct Bf16ActivationsPass : public moe::impl::Bf16ActivationsPassBase<Bf16ActivationsPass> {
  using Bf16ActivationsPassBase::Bf16ActivationsPassBase;

  void runOnOperation() override {
    const TypeAttr bf16 = TypeAttr::get(BFloat16Type::get(&getContext()));
    int64_t marked = 0, int8 = 0;
    getOperation().walk([&](Operation *op) {
      if (!multipliesWeights(op))
        return;
      if (hasInt8Weights(op)) {
        ++int8;
        return;
      }
      op->setAttr(kActivationsAttrName, bf16);
      ++marked;
    });
    if (report)
      getOperation().emitRemark() << "moe-bf16-activations: " << marked
                                  << " step(s) take bf16 activations"
                                  << (int8 ? ", " + std::to_string(int8) +
                                                 " with int8 weights keep W8A8"
                                           : std::string());
  }
};

} // namespace
