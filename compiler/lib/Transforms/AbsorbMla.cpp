//===- AbsorbMla.cpp - choose the MLA evaluation form ---------------------===//

#include "moec/Transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"

namespace mlir::moe {
#define GEN_PASS_DEF_ABSORBMLAPASS
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {
struct AbsorbMlaPass : public moe::impl::AbsorbMlaPassBase<AbsorbMlaPass> {
  using AbsorbMlaPassBase::AbsorbMlaPassBase;

  void runOnOperation() override {
    std::optional<AttentionForm> wanted = symbolizeAttentionForm(form);
    if (!wanted) {
      getOperation()->emitError()
          << "moe-absorb-mla: expected form 'absorbed' or 'naive', got '"
          << form << "'";
      return signalPassFailure();
    }
    auto attr = AttentionFormAttr::get(&getContext(), *wanted);
    getOperation()->walk([&](MlaAttentionOp op) {
      if (op.getForm() == *wanted)
        return;
      op.setFormAttr(attr);
      ++numChanged;
    });
  }
};
} // namespace
