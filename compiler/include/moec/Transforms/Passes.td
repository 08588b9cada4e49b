//===- Passes.td - moec transformation passes --------------*- tablegen -*-===//
//
// The passes of the `moe-compile` pipeline (docs/pipeline.md section 2). Each
// has a lit test named after its flag in tests/lit/Transforms/.
//
//===----------------------------------------------------------------------===//

#ifndef MOEC_TRANSFORMS_PASSES_TD
#define MOEC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def SplitPhasesPass : Pass<"moe-split-phases", "::mlir::ModuleOp"> {
  let summary = "Clone @forward into the plan's entry points @prefill and @decode";
  let description = [{
    A plan has two entry points: `prefill` (any batch) and `decode` (every
    token is the next one of a distinct sequence). This pass clones the
    frontend's `@forward` into `@prefill` and `@decode` and erases it, so the
    passes after it may lower each phase differently (e.g. the MLA form of
    `moe-absorb-mla{function=...}`). It fails, with an error at the module,
    when there is no `@forward` or a `@prefill`/`@decode` already exists.

    Before:
    ```mlir
    func.func @forward(%tokens: tensor<?xi32>, ...) -> ... { ... }
    ```
    After `-moe-split-phases`:
    ```mlir
    func.func @prefill(%tokens: tensor<?xi32>, ...) -> ... { ... }
    func.func @decode(%tokens: tensor<?xi32>, ...) -> ... { ... }
    ```
  }];
  let dependentDialects = ["::mlir::func::FuncDialect"];
}

def KvCacheTypePass : Pass<"moe-kv-cache-type", "::mlir::ModuleOp"> {
  let summary = "Choose the element type the latent KV cache is stored in";
  let description = [{
    Rewrites every `!moe.latent_cache` of the module (function arguments and
    results, and the cache values the attention ops thread through) to the
    chosen element type. The cache is the one piece of state that grows with
    the context: per token and layer it holds kv_lora_rank + rope values (576
    for DeepSeek-V3), so `bf16` halves what decode reads from it and what a
    server must keep per sequence. Each value is rounded to nearest even when
    it is stored; attention widens it back exactly, so its numerics are those
    of the fp32 model with c and k_pe rounded to bf16 (tests/golden/
    emulate_kv_cache.py). `fp8` stores e4m3 (`f8E4M3FN`) the same way,
    saturating at +-448 with no scale (c is RMS-normalised; k_pe must stay in
    range): a quarter of f32's bytes. `f32` keeps the exact path.

    Before:
    ```mlir
    func.func @forward(..., %cache: !moe.latent_cache<512, 64>) -> (..., !moe.latent_cache<512, 64>)
    ```
    After `-moe-kv-cache-type='element=bf16'`:
    ```mlir
    func.func @forward(..., %cache: !moe.latent_cache<512, 64, bf16>) -> (..., !moe.latent_cache<512, 64, bf16>)
    ```
  }];
  let options = [
    Option<"element", "element", "::mlir::moe::KvCacheElement",
           /*default=*/"::mlir::moe::KvCacheElement::bf16",
           "How the cache's values are stored",
           [{::llvm::cl::values(
             clEnumValN(::mlir::moe::KvCacheElement::f32, "f32",
                        "float32: the exact path"),
             clEnumValN(::mlir::moe::KvCacheElement::bf16, "bf16",
                        "bfloat16, rounded to nearest even: half the bytes"),
             clEnumValN(::mlir::moe::KvCacheElement::fp8, "fp8",
                        "float8 e4m3, rounded to nearest even, saturating at +-448, "
                        "no scale: a quarter of the bytes"))}]>
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def QuantizeFp8Pass : Pass<"moe-quantize-fp8", "::mlir::func::FuncOp"> {
  let summary = "Quantize the linear weights to FP8 e4m3 with 128x128 block scales";
  let description = [{
    Makes the weights DeepSeek-V3 ships in FP8 block-quantized (spec section
    3): every unquantized 2-D weight that a matrix product reads (the MLA
    projections `q_a`/`q`, `q_b`, `kv_a`, `kv_b`, `o_proj`; the dense, shared
    and routed experts' gate/up/down; `moe.linear`, `moe.swiglu`,
    `moe.routed_experts`, `moe.expanded_attention`, `moe.head_linear` and
    `moe.slice_heads` of such a weight) is replaced, at those uses, by a
    `moe.quantize_weight` of it whose type carries `#moe.block_fp8<B, B>`.
    Not quantized: the embedding table, norms, the router's gate and
    correction bias, and `lm_head` unless `quantize-lm-head`. A weight that is
    already FP8 (an FP8 checkpoint's) is left alone, so quantizing twice
    changes nothing. Compute ops and their count stay the same; only the
    weight types change (and a `moe.slice_heads` of a quantized weight takes
    the quantized type). The plan emitter computes the codes and scales while
    it packs the plan's weights.

    With `report`, each function gets a remark with the number of weights
    quantized and their bytes before and after. Errors: a weight to quantize
    that is not 2-D; a block size below 1.

    Before:
    ```mlir
    %w = moe.weight "model.layers.1.mlp.down_proj.weight" : tensor<256x512xbf16>
    %y = moe.linear %x, %w : tensor<?x512xf32>, tensor<256x512xbf16> -> tensor<?x256xf32>
    ```
    After `-moe-quantize-fp8`:
    ```mlir
    %w = moe.weight "model.layers.1.mlp.down_proj.weight" : tensor<256x512xbf16>
    %q = moe.quantize_weight %w {scale = #moe.fp8_scale<float>}
        : tensor<256x512xbf16> -> tensor<256x512xf8E4M3FN, #moe.block_fp8<128, 128>>
    %y = moe.linear %x, %q : tensor<?x512xf32>,
        tensor<256x512xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x256xf32>
    ```
  }];
  let options = [
    Option<"quantizeLmHead", "quantize-lm-head", "bool", /*default=*/"false",
           "Quantize lm_head too (DeepSeek keeps it in bf16)">,
    Option<"scale", "scale", "::mlir::moe::Fp8ScaleFormat",
           /*default=*/"::mlir::moe::Fp8ScaleFormat::fp32",
           "How block scales are stored",
           [{::llvm::cl::values(
             clEnumValN(::mlir::moe::Fp8ScaleFormat::fp32, "float",
                        "amax / 448 as a float32 (DeepSeek-V3, R1)"),
             clEnumValN(::mlir::moe::Fp8ScaleFormat::ue8m0, "ue8m0",
                        "rounded up to a power of two (DeepSeek-V3.1)"))}]>,
    Option<"block", "block", "int64_t", /*default=*/"128",
           "Side of the square scale block">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark per function with what was quantized">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def QuantizeInt8Pass : Pass<"moe-quantize-int8", "::mlir::func::FuncOp"> {
  let summary = "Quantize the linear weights to int8 with 128x128 block scales (W8A8)";
  let description = [{
    The int8 counterpart of `moe-quantize-fp8`, for CPUs: the same weights
    (every unquantized 2-D weight a matrix product reads; not the embedding,
    norms, router, or `lm_head` unless `quantize-lm-head`) are replaced at
    those uses by a `moe.quantize_weight` whose type is
    `tensor<..xi8, #moe.block_int8<B, B>>`: signed codes in [-127, 127] with a
    float32 scale per B x B block, `scale = amax / 127`, `code =
    round-half-even(w / scale)` (moec/cpu/quantize.h). A product with such a
    weight quantizes its activations to int8 as well, per token and 128
    columns, and multiplies in integers (W8A8: moec/cpu/kernels.h). A weight
    that is already FP8 (an FP8 checkpoint's) is requantized: dequantized with
    its block scales to float32, then quantized by the same recipe (with
    `requantize-fp8=false` it is left FP8).

    With `report`, each function gets a remark with the number of weights
    quantized and their bytes before and after. Errors: a weight to quantize
    that is not 2-D; a block size below 1.

    After `-moe-quantize-int8`:
    ```mlir
    %w = moe.weight "model.layers.1.mlp.down_proj.weight" : tensor<256x512xbf16>
    %q = moe.quantize_weight %w {scale = #moe.fp8_scale<float>}
        : tensor<256x512xbf16> -> tensor<256x512xi8, #moe.block_int8<128, 128>>
    %y = moe.linear %x, %q : tensor<?x512xf32>,
        tensor<256x512xi8, #moe.block_int8<128, 128>> -> tensor<?x256xf32>
    ```
  }];
  let options = [
    Option<"quantizeLmHead", "quantize-lm-head", "bool", /*default=*/"false",
           "Quantize lm_head too">,
    Option<"block", "block", "int64_t", /*default=*/"128",
           "Side of the square scale block">,
    Option<"requantizeFp8", "requantize-fp8", "bool", /*default=*/"true",
           "Requantize FP8 weights (an FP8 checkpoint's) to int8 too">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark per function with what was quantized">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def Bf16ActivationsPass : Pass<"moe-bf16-activations", "::mlir::func::FuncOp"> {
  let summary = "Let the matrix products take bf16 activations";
  let description = [{
    Marks every step op that multiplies by weights (`moe.linear`, `moe.logits`,
    `moe.head_linear`, `moe.expanded_attention`, the SwiGLU MLPs and the routed
    experts) with `moe.activations = bf16`: its products round their input
    activations to bfloat16 (nearest even) and multiply the rounded values with
    fp32 sums. That is a numeric mode (tests/golden/emulate_bf16_acts.py), not
    the exact model: a CPU with AMX-BF16 then multiplies bf16 weights on its
    tile unit at prefill (the `avx512-amx` kernel level, about 5x its FMA path).
    Ops whose weights are int8 (`#moe.block_int8`) are left alone: they quantize
    their activations to int8 already. The router, attention and norms keep
    fp32. It runs last in `moe-compile{activations=bf16}`, on the step-level
    ops. With `report`, each function gets a remark with the count.

    Before:
    ```mlir
    %y = moe.linear %x, %w : tensor<?x256xf32>, tensor<512x256xbf16> -> tensor<?x512xf32>
    ```
    After `-moe-bf16-activations`:
    ```mlir
    %y = moe.linear %x, %w {moe.activations = bf16}
        : tensor<?x256xf32>, tensor<512x256xbf16> -> tensor<?x512xf32>
    ```
  }];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark per function with the number of products marked">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def Fp8ActivationsPass : Pass<"moe-fp8-activations", "::mlir::func::FuncOp"> {
  let summary = "Quantize the FP8 products' activations to e4m3 per token and 128 columns";
  let description = [{
    DeepSeek's FP8 GEMM (spec section 3): a product with FP8 block-scaled weights
    quantizes its input activations per token and per 128 consecutive columns,
    `s = max(amax, 1e-4) / 448` (float32), `q = e4m3(x / s)` (nearest even,
    saturating), and sums `q * w` in fp32 per 128-wide block, each block's sum
    multiplied by the activation and the weight scale. Marks the ops DeepSeek
    runs through that GEMM (`moe.linear`, `moe.logits`, the SwiGLU MLPs and
    the routed experts, fused or not) when they read `#moe.block_fp8` weights
    with `moe.activations = f8E4M3FN`; ops with other weights keep fp32
    activations, and the MLA core's products (`moe.head_linear`,
    `moe.expanded_attention`) multiply by `kv_b_proj` dequantized, as
    DeepSeek's absorbed attention does. A numeric mode: what a Hopper GPU's
    FP8 tensor cores compute; the CPU backend emulates it (the quantized
    values, dequantized, in its fp32 products). It runs last in
    `moe-compile{activations=fp8}`. With `report`, each function gets a remark
    with the count.

    Before:
    ```mlir
    %y = moe.linear %x, %w : tensor<?x256xf32>,
        tensor<512x256xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x512xf32>
    ```
    After `-moe-fp8-activations`:
    ```mlir
    %y = moe.linear %x, %w {moe.activations = f8E4M3FN} : tensor<?x256xf32>,
        tensor<512x256xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x512xf32>
    ```
  }];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark per function with the number of products marked">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def FuseResidualNormPass : Pass<"moe-fuse-residual-norm", "::mlir::func::FuncOp"> {
  let summary = "Fuse each residual add with the RMSNorm that reads it";
  let description = [{
    A decoder layer adds its attention (or MLP) output to the residual stream
    and normalises the sum for the next block. This pass rewrites
    `moe.rms_norm` of a `moe.add` into one `moe.add_rms_norm` that writes both
    the sum (the residual stream, for every other use of the add) and the
    normalised rows, so the rows are read once instead of three times. The
    numbers are the same bits. The fused step is named after the add (plan step
    names: `model.layers.N.attn_residual`, `model.layers.N.mlp_residual`); its
    location keeps both names. With `report`, each function gets a remark with
    the number of fusions.

    Before:
    ```mlir
    %h2 = moe.add %h, %attn : tensor<?x256xf32>
    %n = moe.rms_norm %h2, %w {epsilon = 1.0e-06 : f32} : tensor<?x256xf32>, tensor<256xbf16>
    ```
    After `-moe-fuse-residual-norm`:
    ```mlir
    %h2, %n = moe.add_rms_norm %h, %attn, %w {epsilon = 1.0e-06 : f32}
        : tensor<?x256xf32>, tensor<256xbf16>
    ```
  }];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark per function with the number of fusions">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def FuseMlaInputProjPass : Pass<"moe-fuse-mla-input-proj", "::mlir::func::FuncOp"> {
  let summary = "Fuse MLA's two input projections into one linear over stacked weights";
  let description = [{
    MLA reads the normalised hidden state twice: `q_a_proj` (or `q_proj`
    without q_lora) and `kv_a_proj_with_mqa`. This pass stacks their weights
    with `moe.concat_weights` (the plan emitter writes the stacked copy while
    it packs the plan) and replaces the two `moe.linear`s with one, named
    `...self_attn.q_kv_a_proj`, followed by `moe.slice_columns` of its query
    and latent parts (named like the linears they replace; the canonicalizer
    folds the latent slice into the `c` and `k_pe` slices after it). One pass
    over the input instead of two, one matrix product with more rows to share
    between threads. The numbers are the same bits.

    The two linears must read the same value, have weights of one element type
    and encoding, and, block-quantized, a query part with a multiple of the
    block's rows (otherwise the scale grids would not stack): then they are
    left alone, with a remark under `report`. With `report`, each function
    gets a remark with the number of fusions.

    Before:
    ```mlir
    %q = moe.linear %x, %wq : tensor<?x256xf32>, tensor<128x256xbf16> -> tensor<?x128xf32>
    %kv = moe.linear %x, %wkv : tensor<?x256xf32>, tensor<80x256xbf16> -> tensor<?x80xf32>
    ```
    After `-moe-fuse-mla-input-proj`:
    ```mlir
    %w = moe.concat_weights %wq, %wkv : tensor<128x256xbf16>, tensor<80x256xbf16> -> tensor<208x256xbf16>
    %qkv = moe.linear %x, %w : tensor<?x256xf32>, tensor<208x256xbf16> -> tensor<?x208xf32>
    %q = moe.slice_columns %qkv {begin = 0 : i64, width = 128 : i64} : tensor<?x208xf32> -> tensor<?x128xf32>
    %kv = moe.slice_columns %qkv {begin = 128 : i64, width = 80 : i64} : tensor<?x208xf32> -> tensor<?x80xf32>
    ```
  }];
  let options = [
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark per function with the number of fusions">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def FuseGateUpPass : Pass<"moe-fuse-gate-up", "::mlir::func::FuncOp"> {
  let summary = "Fuse each SwiGLU's gate and up projections into one product";
  let description = [{
    Every SwiGLU computes `silu(x gate^T) * (x up^T)`: two products over the
    same input. This pass stacks each SwiGLU's gate and up weights into one with
    `moe.concat_weights {interleave = rows}` (unit u: `rows` gate rows, then the
    same up rows; the plan emitter writes the stacked copy while it packs the
    plan, the checkpoint is not changed) and rewrites

    - `moe.swiglu` (dense MLPs, shared experts) to `moe.fused_swiglu`,
    - `moe.routed_experts` to `moe.fused_routed_experts` (every expert),

    whose kernels make one product over a unit's stacked rows and take
    `silu(g) * u` as its epilogue: one pass over the input and one weight stream
    per unit instead of two. The numbers are the same bits.

    Block-quantized weights need `rows` and the inner width in whole scale
    blocks (each block must hold rows of one projection); otherwise the op is
    left alone, with a remark under `report`. With `report`, each function gets
    a remark with the number of fusions.

    Before:
    ```mlir
    %o = moe.swiglu %x gate(%g) up(%u) down(%d)
        : (tensor<?x256xf32>, tensor<512x256xbf16>, tensor<512x256xbf16>, tensor<256x512xbf16>) -> tensor<?x256xf32>
    ```
    After `-moe-fuse-gate-up`:
    ```mlir
    %gu = moe.concat_weights %g, %u {interleave = 128 : i64}
        : tensor<512x256xbf16>, tensor<512x256xbf16> -> tensor<1024x256xbf16>
    %o = moe.fused_swiglu %x gate_up(%gu) down(%d) {gate_up_rows = 128 : i64}
        : (tensor<?x256xf32>, tensor<1024x256xbf16>, tensor<256x512xbf16>) -> tensor<?x256xf32>
    ```
  }];
  let options = [
    Option<"rows", "rows", "int64_t", /*default=*/"128",
           "Rows of gate, then of up, per interleave unit (a multiple of the FP8 "
           "scale block for block-quantized weights)">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark per function with the number of fusions">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def DecomposeMlaPass : Pass<"moe-decompose-mla", "::mlir::func::FuncOp"> {
  let summary = "Lower moe.mla_attention to step-level ops (the naive form)";
  let description = [{
    Rewrites every model-level `moe.mla_attention` (spec section 4) into the
    step-level ops the plan runs, one per step:

    - query: `moe.linear` q_a_proj, `moe.rms_norm` q_a_layernorm,
      `moe.linear` q_b_proj; or `moe.linear` q_proj when `q_lora_rank` is 0;
    - latent: `moe.linear` kv_a_proj_with_mqa, `moe.slice_columns` c
      (columns `0..C`), `moe.rms_norm` kv_a_layernorm, `moe.slice_columns`
      k_pe (columns `C..C+R`);
    - `moe.rope` on q (`heads = H`, `head_dim = nope + rope`, `offset = nope`)
      and on k_pe (`heads = 1`, `head_dim = R`, `offset = 0`) with the op's
      theta, YaRN and layout;
    - `moe.cache_store` of c and k_pe (its result replaces `new_cache`);
    - `moe.expanded_attention` (the naive core, reading `kv_b`);
    - `moe.linear` o_proj (replaces `result`).

    New ops are named after the checkpoint modules: an op located at
    `"model.layers.3.self_attn"` gives steps `model.layers.3.self_attn.q_a_proj`,
    `...kv_a_layernorm`, `...rope_q`, `...attention`, ... (plan step names).

    Before:
    ```mlir
    %o, %c1 = moe.mla_attention %x, %pos, %seq, %c0 q_b(%qb) kv_a(%kva)
        kv_a_norm(%kvan) kv_b(%kvb) o_proj(%o) {...} : ...
    ```
    After `-moe-decompose-mla`:
    ```mlir
    %q = moe.linear %x, %qb : ...
    %kv = moe.linear %x, %kva : ...
    %c = moe.slice_columns %kv {begin = 0 : i64, width = 32 : i64} : ...
    %cn = moe.rms_norm %c, %kvan {epsilon = ...} : ...
    %pe = moe.slice_columns %kv {begin = 32 : i64, width = 8 : i64} : ...
    %qr = moe.rope %q, %pos {heads = 4 : i64, head_dim = 24 : i64, offset = 16 : i64, ...} : ...
    %per = moe.rope %pe, %pos {heads = 1 : i64, head_dim = 8 : i64, offset = 0 : i64, ...} : ...
    %c1 = moe.cache_store %c0, %cn, %per, %pos, %seq : ...
    %a = moe.expanded_attention %qr, %pos, %seq, %c1, %kvb {...} : ...
    %o = moe.linear %a, %o : ...
    ```
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def DecomposeMoePass : Pass<"moe-decompose-moe", "::mlir::func::FuncOp"> {
  let summary = "Lower moe.moe_layer to step-level ops (router, experts, shared experts)";
  let description = [{
    Rewrites every model-level `moe.moe_layer` (spec section 5) into the
    step-level ops the plan runs, one per step:

    - `moe.router` of the input with the op's gate, optional correction bias
      and routing attributes (top_k, n_group, topk_group, score_func,
      group_score, norm_topk_prob, routed_scaling_factor);
    - `moe.routed_experts` of the input with the router's indices and
      weights and every expert's gate/up/down weights;
    - with shared experts, `moe.swiglu` of the same input with the shared
      weights, and `moe.add` of the routed and shared outputs (it replaces
      `result`; without shared experts the routed output does).

    New ops are named after the checkpoint modules: an op located at
    `"model.layers.3.mlp"` gives steps `model.layers.3.mlp.gate`,
    `model.layers.3.mlp.experts`, `model.layers.3.mlp.shared_experts` and
    `model.layers.3.mlp.routed_plus_shared` (plan step names).

    Before:
    ```mlir
    %m = moe.moe_layer %f, %gate bias %b experts gate [%g0, %g1] up [%u0, %u1] down [%d0, %d1]
        shared gate(%sg) up(%su) down(%sd) {top_k = 1 : i64, ...} : ...
    ```
    After `-moe-decompose-moe`:
    ```mlir
    %idx, %w = moe.router %f, %gate bias %b {top_k = 1 : i64, ...} : ...
    %r = moe.routed_experts %f, %idx, %w gate [%g0, %g1] up [%u0, %u1] down [%d0, %d1] : ...
    %s = moe.swiglu %f gate(%sg) up(%su) down(%sd) : ...
    %m = moe.add %r, %s : tensor<?x64xf32>
    ```
  }];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

def AbsorbMlaPass : Pass<"moe-absorb-mla", "::mlir::ModuleOp"> {
  let summary = "Choose the MLA evaluation form: rewrite the naive core into the absorbed one";
  let description = [{
    MLA has two forms that compute the same function (spec section 4). The
    naive form (`moe.expanded_attention`) expands `kv_b_proj` over every
    cached latent row: cheap when many query tokens share the expansion
    (prefill). The absorbed form folds `W_UK` into the query and `W_UV` into
    the output, so attention reads only the latent cache (C + R values per
    token): the memory-bound decode wins.

    With `form=absorbed`, each `moe.expanded_attention` of the selected
    function (`function=NAME`; every function when empty) becomes:
    `moe.slice_heads` of kv_b (`W_UK`, rows `0..nope` of each head),
    `moe.head_linear` of q with it transposed (q_lat `[T, H*C]`),
    `moe.latent_attention`, `moe.slice_heads` of kv_b (`W_UV`, rows
    `nope..nope+v`), and `moe.head_linear` of the latent output with it
    (`[T, H*v]`). With `form=naive` it changes nothing. With `report`, it
    emits a remark at each op it rewrote, saying what changed and why. A
    `function` that does not exist is an error.

    With `form=auto`, a cost model (FLOPs and bytes of each form as functions
    of the new tokens T and the cached tokens P, a roofline of `peak-gflops`
    and `bandwidth-gbs`; compiler/include/moec/Transforms/MlaCostModel.h)
    chooses per function. It finds the smallest batch from which the naive
    form is cheaper for every context up to `context-tokens` (the expansion of
    kv_b costs per cached row, the absorbed attention per query and row, so
    large batches favour the naive form). `@decode`, which runs single tokens
    and batches below that size, gets the form cheaper for one token at the
    longest context (absorbed); every other function (`@prefill`) gets the
    naive form when such a size exists, and the module gets the attribute
    `moe.prefill_min_tokens = N : i64`: the plan records it and the runtime
    runs `@prefill` for batches of at least N tokens, `@decode` for smaller
    ones. With `report`, each function gets a remark with the choice, the
    threshold and the cost model's table.

    Before:
    ```mlir
    %a = moe.expanded_attention %q, %pos, %seq, %cache, %kv_b {heads = 4 : i64,
        nope_dim = 16 : i64, rope_dim = 8 : i64, v_dim = 16 : i64, latent_dim = 32 : i64, ...}
    ```
    After `-moe-absorb-mla`:
    ```mlir
    %w_uk = moe.slice_heads %kv_b {heads = 4 : i64, offset = 0 : i64, size = 16 : i64}
    %q_lat = moe.head_linear %q, %w_uk {heads = 4 : i64, in_stride = 24 : i64,
        in_offset = 0 : i64, in_width = 16 : i64, transpose = true}
    %o_lat = moe.latent_attention %q_lat, %q, %pos, %seq, %cache {heads = 4 : i64,
        latent_dim = 32 : i64, rope_dim = 8 : i64, q_stride = 24 : i64, q_rope_offset = 16 : i64, ...}
    %w_uv = moe.slice_heads %kv_b {heads = 4 : i64, offset = 16 : i64, size = 16 : i64}
    %a = moe.head_linear %o_lat, %w_uv {heads = 4 : i64, in_stride = 32 : i64,
        in_offset = 0 : i64, in_width = 32 : i64, transpose = false}
    ```
  }];
  let options = [
    Option<"form", "form", "::mlir::moe::AttentionForm",
           /*default=*/"::mlir::moe::AttentionForm::absorbed",
           "MLA form to select",
           [{::llvm::cl::values(
             clEnumValN(::mlir::moe::AttentionForm::absorbed, "absorbed",
                        "attention over the latent cache (decode)"),
             clEnumValN(::mlir::moe::AttentionForm::naive, "naive",
                        "kv_b expanded per cached token (prefill)"),
             clEnumValN(::mlir::moe::AttentionForm::automatic, "auto",
                        "chosen per function by the cost model"))}]>,
    Option<"function", "function", "std::string", /*default=*/"\"\"",
           "Only rewrite this function (empty: every function)">,
    Option<"contextTokens", "context-tokens", "int64_t", /*default=*/"4096",
           "form=auto: the longest context (cached tokens) the choice must hold for">,
    Option<"peakGflops", "peak-gflops", "double", /*default=*/"100",
           "form=auto: the roofline's FLOP/s, in 1e9">,
    Option<"bandwidthGbs", "bandwidth-gbs", "double", /*default=*/"20",
           "form=auto: the roofline's memory bandwidth, in GB/s">,
    Option<"report", "report", "bool", /*default=*/"false",
           "Emit a remark at every op rewritten">
  ];
  let dependentDialects = ["::mlir::moe::MoeDialect"];
}

#endif // MOEC_TRANSFORMS_PASSES_TD
