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

  /// Rejects a bad option once, before any op is touched.
  LogicalResult initialize(MLIRContext *ctx) override {
    wanted = symbolizeAttentionForm(form);
    if (!wanted)
      return emitError(UnknownLoc::get(ctx))
             << "moe-absorb-mla: expected form 'absorbed' or 'naive', got '"
             << form << "'";
    return success();
  }

  void runOnOperation() override {
    auto attr = AttentionFormAttr::get(&getContext(), *wanted);
    getOperation()->walk([&](MlaAttentionOp op) {
      if (op.getForm() == *wanted)
        return;
      AttentionForm previous = op.getForm();
      op.setFormAttr(attr);
      if (report)
        op.emitRemark() << "moe-absorb-mla: form " << stringifyAttentionForm(previous)
                        << " -> " << form
                        << (*wanted == AttentionForm::absorbed
                                ? " (attention reads only the latent cache: "
                                  "kv_lora_rank + rope values per token)"
                                : " (kv_b expanded once per cached token)");
    });
  }

  std::optional<AttentionForm> wanted;
};
} // namespace
