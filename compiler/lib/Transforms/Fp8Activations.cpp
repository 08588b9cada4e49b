//===- Fp8Activations.cpp - FP8 GEMMs with 1x128-quantized activations ----===//
//
// Sets `moe.activations = f8E4M3FN` on the step ops whose products read FP8
// block-scaled weights as DeepSeek's `linear()` does (Passes.td,
// Fp8ActivationsPass). The plan emitter turns it into the step's
// `activations: F8E4M3`.
//
//===----------------------------------------------------------------------===//

#include "moec/Transforms/Passes.h"

#include "mlir/IR/BuiltinAttributes.h"

namespace mlir::moe {
#define GEN_PASS_DEF_FP8ACTIVATIONSPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Whether any operand of `op` is an FP8 block-scaled weight (#moe.block_fp8).
bool hasFp8Weights(Operation *op) {
  for (Type t : op->getOperandTypes())
    if (getBlockFp8(t))
      return true;
  return false;
}

struct Fp8ActivationsPass : public moe::impl::Fp8ActivationsPassBase<Fp8ActivationsPass> {
  using Fp8ActivationsPassBase::Fp8ActivationsPassBase;

  void runOnOperation() override {
    const TypeAttr fp8 = TypeAttr::get(Float8E4M3FNType::get(&getContext()));
    int64_t marked = 0, unquantized = 0;
    getOperation().walk([&](Operation *op) {
      // The MLA core's products (head_linear, expanded_attention) multiply by
      // kv_b_proj dequantized, as DeepSeek's absorbed attention does.
      if (!isa<LinearOp, LogitsOp, SwigluOp, FusedSwigluOp, RoutedExpertsOp,
               FusedRoutedExpertsOp>(op))
        return;
      if (!hasFp8Weights(op)) {
        ++unquantized;
        return;
      }
      op->setAttr(kActivationsAttrName, fp8);
      ++marked;
    });
    if (report)
      getOperation().emitRemark() << "moe-fp8-activations: " << marked
                                  << " step(s) quantize their activations to e4m3 per "
                                     "token and 128 columns"
                                  << (unquantized ? ", " + std::to_string(unquantized) +
                                                        " without FP8 weights keep fp32"
                                                  : std::string());
  }
};

} // namespace
