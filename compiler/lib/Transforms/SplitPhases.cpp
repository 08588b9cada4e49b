//===- SplitPhases.cpp - @forward into the @prefill and @decode entries ----===//

#include "moec/Transforms/Passes.h"

#include "mlir/IR/SymbolTable.h"

namespace mlir::moe {
#define GEN_PASS_DEF_SPLITPHASESPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct SplitPhasesPass : public moe::impl::SplitPhasesPassBase<SplitPhasesPass> {
  using SplitPhasesPassBase::SplitPhasesPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    auto forward = symbols.lookup<func::FuncOp>("forward");
    if (!forward) {
      module.emitError() << "moe-split-phases: expected a func.func @forward, "
                            "got none";
      return signalPassFailure();
    }
    for (StringRef phase : {"prefill", "decode"})
      if (Operation *existing = symbols.lookup(phase)) {
        existing->emitError() << "moe-split-phases: expected no @" << phase
                              << " before the split, got one";
        return signalPassFailure();
      }
    // Both clones take @forward's place, in entry-point order.
    for (StringRef phase : {"prefill", "decode"}) {
      func::FuncOp clone = forward.clone();
      clone.setSymName(phase);
      module.getBody()->getOperations().insert(forward->getIterator(), clone);
    }
    forward.erase();
  }
};
} // namespace
