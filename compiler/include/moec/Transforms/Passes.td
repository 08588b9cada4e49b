//===- Passes.td - moec transformation passes --------------*- tablegen -*-===//

#ifndef MOEC_TRANSFORMS_PASSES_TD
#define MOEC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def AbsorbMlaPass : Pass<"moe-absorb-mla"> {
  let summary = "Choose the evaluation form of every MLA attention op";
  let description = [{
    MLA has two forms that compute the same function (spec section 4). The
    naive form expands `kv_b_proj` over every cached latent row: cheap when
    many query tokens share the expansion (prefill). The absorbed form folds
    `W_UK` into the query and `W_UV` into the output, so attention reads only
    the 576-value latent cache per token: the memory-bound decode wins.

    This pass sets `form` on every `moe.mla_attention` it finds to the form
    named by its option. With `report`, it emits a remark at each op it
    changed, saying what changed and why.

    Before:
    ```mlir
    %o, %c = moe.mla_attention ... {form = #moe.attention_form<naive>, ...}
    ```
    After `-moe-absorb-mla`:
    ```mlir
    %o, %c = moe.mla_attention ... {form = #moe.attention_form<absorbed>, ...}
    ```
  }];
  let options = [
    Option<"form", "form", "std::string", /*default=*/"\"absorbed\"",
           "Form to select: 'absorbed' (decode) or 'naive' (prefill)">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark at every op whose form changed">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

#endif // MOEC_TRANSFORMS_PASSES_TD
