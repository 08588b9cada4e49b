//===- MoeOps.td - moe dialect operations ------------------*- tablegen -*-===//

#ifndef MOE_OPS_TD
#define MOE_OPS_TD

include "moec/Dialect/Moe/IR/MoeBase.td"
include "moec/Dialect/Moe/IR/MoeInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/CommonTypeConstraints.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

/// Activations: fp32, first dimension = tokens.
def Moe_Activation : RankedTensorOf<[F32]>;
/// Per-token int32 data: token ids, positions, sequence ids, expert indices.
def Moe_IndexTensor : RankedTensorOf<[I32]>;
/// A weight value: statically shaped; bf16, f16 or f32 without an encoding,
/// or f8E4M3FN carrying its block quantization (`#moe.block_fp8<br, bc>`).
def Moe_WeightTensor : Type<CPred<"::mlir::moe::isWeightType($_self)">,
    "statically shaped bf16, f16 or f32 tensor, or f8E4M3FN tensor with a "
    "#moe.block_fp8 encoding", "::mlir::RankedTensorType">;
/// A weight that the spec never quantises (embeddings, norms, router, lm_head).
def Moe_UnquantizedWeight : Type<CPred<"::mlir::moe::isUnquantizedWeightType($_self)">,
    "statically shaped bf16, f16 or f32 tensor without an encoding",
    "::mlir::RankedTensorType">;
/// An fp32 weight (the router's correction bias).
def Moe_F32Weight : Type<And<[CPred<"::mlir::moe::isUnquantizedWeightType($_self)">,
                              CPred<"::llvm::cast<::mlir::RankedTensorType>($_self).getElementType().isF32()">]>,
    "statically shaped f32 tensor without an encoding", "::mlir::RankedTensorType">;

/// A step-level op: one plan step of kind `kind` (docs/pipeline.md section 1).
class Moe_StepOp<string mnemonic, string kind, list<Trait> traits = []>
    : Moe_Op<mnemonic, !listconcat([Pure, Moe_StepOpInterface], traits)> {
  let extraClassDeclaration =
      "/// The plan step kind of this op (StepOpInterface).\n"
      "static ::llvm::StringRef getStepKind() { return \"" # kind # "\"; }";
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def Moe_WeightOp : Moe_Op<"weight", [Pure]> {
  let summary = "a named checkpoint tensor";
  let description = [{
    References one tensor of the source checkpoint by name. The plan emitter
    resolves the name to bytes; the IR carries only the name and type.
    A block-quantized weight (f8E4M3FN with a `#moe.block_fp8` encoding) also
    names its fp32 scale tensor `[ceil(rows/br), ceil(cols/bc)]`; there is no
    separate scale value.

    ```mlir
    %w = moe.weight "model.norm.weight" : tensor<7168xbf16>
    %q = moe.weight "model.layers.3.self_attn.q_b_proj.weight"
        scale "model.layers.3.self_attn.q_b_proj.weight_scale_inv"
        : tensor<24576x1536xf8E4M3FN, #moe.block_fp8<128, 128>>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<StrAttr>:$scale_name);
  let results = (outs Moe_WeightTensor:$weight);
  let assemblyFormat = "$name (`scale` $scale_name^)? attr-dict `:` type($weight)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Derived weights
//===----------------------------------------------------------------------===//

def Moe_SliceHeadsOp : Moe_Op<"slice_heads", [Pure]> {
  let summary = "per-head rows of a weight, as a [heads, size, cols] view";
  let description = [{
    Views `weight [heads * S, K]` as `heads` blocks of `S` rows and keeps rows
    `offset .. offset + size` of each: `result[h, r, :] = weight[h * S + offset + r, :]`.
    MLA absorption takes `W_UK` (offset 0, size nope) and `W_UV` (offset nope,
    size v) of `kv_b_proj` this way.

    The result is a view, not a copy: the plan describes it as a strided view
    of the stored weight (`row_stride = S`, `row_offset = offset`, `rows = size`),
    so it costs no bytes. Of a block-quantized weight the view keeps its
    parent's scale grid: element `[h, r, k]` is scaled by
    `scale[(h * S + offset + r) / br, k / bc]`, and the result type carries
    the parent's `#moe.block_fp8` encoding unchanged.

    ```mlir
    %w_uk = moe.slice_heads %kv_b {heads = 4 : i64, offset = 0 : i64, size = 16 : i64}
        : tensor<128x32xbf16> -> tensor<4x16x32xbf16>
    ```
  }];
  let arguments = (ins Moe_WeightTensor:$weight, I64Attr:$heads, I64Attr:$offset,
                       I64Attr:$size);
  let results = (outs Moe_WeightTensor:$result);
  let assemblyFormat = "$weight attr-dict `:` type($weight) `->` type($result)";
  let hasVerifier = 1;
}

def Moe_ConvertWeightOp : Moe_Op<"convert_weight", [Pure]> {
  let summary = "a weight converted to another float type";
  let description = [{
    Converts an unquantized weight element by element (bf16 and f16 widen to
    f32 exactly). The plan emitter packs the converted copy. The importer uses
    it for the router's correction bias, which the router reads in f32 (spec
    section 5) whatever dtype the checkpoint stores.

    ```mlir
    %b = moe.weight "model.layers.3.mlp.gate.e_score_correction_bias" : tensor<256xbf16>
    %b32 = moe.convert_weight %b : tensor<256xbf16> -> tensor<256xf32>
    ```
  }];
  let arguments = (ins Moe_UnquantizedWeight:$weight);
  let results = (outs Moe_UnquantizedWeight:$result);
  let assemblyFormat = "$weight attr-dict `:` type($weight) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Moe_QuantizeWeightOp : Moe_Op<"quantize_weight", [Pure]> {
  let summary = "a weight quantized to FP8 e4m3 with block scales";
  let description = [{
    The block-FP8 copy of an unquantized 2-D weight, made by DeepSeek-V3's
    recipe (spec section 3) for the result's `#moe.block_fp8<rows, cols>`
    blocks: per block, `s = float32(max(amax, 1e-12) / 448)` (with
    `scale = ue8m0`, rounded up to a power of two), codes `e4m3(w / s)`
    rounded to nearest-even. The plan emitter computes it while it packs the
    plan's weights and stores the codes as the weight and `s` as its scale
    tensor, under the names an FP8 checkpoint uses (`X.weight`,
    `X.weight_scale_inv`). `moe-quantize-fp8` inserts it.

    With an `i8` result and a `#moe.block_int8<rows, cols>` encoding it is the
    int8 recipe instead (`moe-quantize-int8`): `s = float32(max(amax, 1e-12) /
    127)`, codes `round-half-even(w / s)` in [-127, 127]. Its operand may then
    also be an FP8 weight (an FP8 checkpoint's, `#moe.block_fp8`): each value is
    dequantized with its block's scale first, `float32(e4m3 * scale_inv)`.

    ```mlir
    %w = moe.weight "model.layers.1.mlp.down_proj.weight" : tensor<256x512xbf16>
    %q = moe.quantize_weight %w {scale = #moe.fp8_scale<float>}
        : tensor<256x512xbf16> -> tensor<256x512xf8E4M3FN, #moe.block_fp8<128, 128>>
    ```
  }];
  let arguments = (ins Moe_WeightTensor:$weight,
                       DefaultValuedAttr<Moe_Fp8ScaleFormatAttr,
                                         "::mlir::moe::Fp8ScaleFormat::fp32">:$scale);
  let results = (outs Moe_WeightTensor:$result);
  let assemblyFormat = "$weight attr-dict `:` type($weight) `->` type($result)";
  let hasVerifier = 1;
}

def Moe_ConcatWeightsOp : Moe_Op<"concat_weights", [Pure]> {
  let summary = "2-D weights stacked row-wise into one";
  let description = [{
    The rows of each weight, one weight after the other: `[R1 + R2 + ..., K]`
    from `[R1, K]`, `[R2, K]`, ... of one element type and encoding. A product
    with it computes the products with each part side by side in one pass over
    the input (fusions use it: `moe-fuse-mla-input-proj`). For block-quantized
    weights every part but the last must have a multiple of the block's rows,
    so the scale grids stack too. The plan emitter writes the stacked copy
    while it packs the plan (codes and scales, each part's scales in its own
    rows of the grid); the checkpoint is not changed.

    With `interleave = U` the parts (all of the same rows R) take turns, U rows
    at a time: unit u holds rows `[u*U, u*U + n)` of each part in order,
    `n = min(U, R - u*U)`. A product over one unit's rows then gives matching
    rows of every part together (`moe-fuse-gate-up`: gate and up). Block-
    quantized parts need U and R in whole blocks.

    ```mlir
    %w = moe.concat_weights %q_a, %kv_a
        : tensor<128x256xbf16>, tensor<80x256xbf16> -> tensor<208x256xbf16>
    %gu = moe.concat_weights %gate, %up {interleave = 128 : i64}
        : tensor<512x256xbf16>, tensor<512x256xbf16> -> tensor<1024x256xbf16>
    ```
  }];
  let arguments = (ins Variadic<Moe_WeightTensor>:$weights,
                       OptionalAttr<I64Attr>:$interleave);
  let results = (outs Moe_WeightTensor:$result);
  let assemblyFormat = "$weights attr-dict `:` type($weights) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise and normalisation
//===----------------------------------------------------------------------===//

def Moe_EmbeddingOp : Moe_StepOp<"embedding", "embedding"> {
  let summary = "embedding lookup";
  let description = [{
    `result[t, :] = table[tokens[t], :]`, converted to fp32; not scaled.
    ```mlir
    %h = moe.embedding %table[%tokens] : tensor<1024x256xbf16>, tensor<?xi32> -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Moe_UnquantizedWeight:$table, Moe_IndexTensor:$tokens);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $table `[` $tokens `]` attr-dict `:` type($table) `,` type($tokens) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Moe_RmsNormOp : Moe_StepOp<"rms_norm", "rms_norm", [AllTypesMatch<["input", "result"]>]> {
  let summary = "RMSNorm over the last dimension";
  let description = [{
    `result = input * rsqrt(mean(input^2) + epsilon) * weight`, in fp32.
    ```mlir
    %n = moe.rms_norm %h, %w {epsilon = 1.0e-06 : f32} : tensor<?x256xf32>, tensor<256xbf16>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_UnquantizedWeight:$weight, F32Attr:$epsilon);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` type($input) `,` type($weight)";
  let hasVerifier = 1;
}

def Moe_AddOp : Moe_StepOp<"add", "add", [Commutative, SameOperandsAndResultType]> {
  let summary = "residual add";
  let description = [{
    ```mlir
    %h2 = moe.add %h, %attn : tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$lhs, Moe_Activation:$rhs);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Moe_AddRmsNormOp : Moe_StepOp<"add_rms_norm", "add_rms_norm",
    [AllTypesMatch<["lhs", "rhs", "sum", "result"]>]> {
  let summary = "residual add fused with the RMSNorm that reads it";
  let description = [{
    `sum = lhs + rhs` (the new residual stream) and
    `result = sum * rsqrt(mean(sum^2) + epsilon) * weight`, in one pass over the
    rows: what `moe.add` then `moe.rms_norm` of its result compute, the same
    bits. `moe-fuse-residual-norm` makes it.
    ```mlir
    %h2, %n = moe.add_rms_norm %h, %attn, %w {epsilon = 1.0e-06 : f32}
        : tensor<?x256xf32>, tensor<256xbf16>
    ```
  }];
  let arguments = (ins Moe_Activation:$lhs, Moe_Activation:$rhs,
                       Moe_UnquantizedWeight:$weight, F32Attr:$epsilon);
  let results = (outs Moe_Activation:$sum, Moe_Activation:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $weight attr-dict `:` type($lhs) `,` type($weight)
  }];
  let hasVerifier = 1;
}

def Moe_LinearOp : Moe_StepOp<"linear", "linear"> {
  let summary = "y = x W^T, W possibly block-quantized FP8";
  let description = [{
    `input [T, in]`, `weight [out, in]`, `result [T, out]`, fp32 accumulation.
    A block-quantized weight is dequantised on the fly with the scale tensor
    its `moe.weight` names: `W[i,j] = W8[i,j] * scale[i/br, j/bc]`.
    ```mlir
    %y = moe.linear %x, %w
        : tensor<?x300xf32>, tensor<200x300xf8E4M3FN, #moe.block_fp8<128, 128>> -> tensor<?x200xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_WeightTensor:$weight);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Moe_SliceColumnsOp : Moe_StepOp<"slice_columns", "slice_columns"> {
  let summary = "a contiguous range of columns of an activation";
  let description = [{
    `result[t, :] = input[t, begin : begin + width]`. MLA splits the output of
    `kv_a_proj_with_mqa` into the latent `c` and the shared rope key this way.
    ```mlir
    %c = moe.slice_columns %kv {begin = 0 : i64, width = 64 : i64}
        : tensor<?x80xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, I64Attr:$begin, I64Attr:$width);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

def Moe_RopeOp : Moe_StepOp<"rope", "rope", [AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding, optionally YaRN-scaled";
  let description = [{
    Views each row of `input` as `heads x head_dim` and rotates the
    `rope_dim` values starting at `offset` in every head by
    `positions[t] * f'_j` (spec section 4). `layout` names the pair order:
    `interleaved` (the checkpoint's) or `half` (after a compile-time permute).
    Every constant is an attribute: `theta` and `rope_dim` give the base
    frequencies, `yarn` (when present) their correction and the cos/sin
    attention factor (`YarnAttr::getAttentionFactor`). `head_dim` is the
    plan's `head_stride`.
    ```mlir
    %q2 = moe.rope %q, %pos {heads = 4 : i64, head_dim = 48 : i64, offset = 32 : i64,
        rope_dim = 16 : i64, theta = 1.0e+04 : f32, layout = #moe.rope_layout<interleaved>}
        : tensor<?x192xf32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_IndexTensor:$positions,
                       I64Attr:$heads, I64Attr:$head_dim, I64Attr:$offset,
                       I64Attr:$rope_dim, F32Attr:$theta, Moe_RopeLayoutAttr:$layout,
                       OptionalAttr<Moe_YarnAttr>:$yarn);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` type($input) `,` type($positions)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

def Moe_MlaAttentionOp : Moe_Op<"mla_attention", [Pure, AttrSizedOperandSegments]> {
  let summary = "Multi-head Latent Attention over the latent KV cache (model level)";
  let description = [{
    One whole MLA block (spec section 4), from the normalised hidden state to
    the `o_proj` output, with every weight as an operand:

    - query: `q_b(q_a_norm(q_a(x)))`, or `q_b(x)` when `q_lora_rank` is 0
      (the checkpoint's `q_proj`; then `q_a`/`q_a_norm` are absent);
    - latent: `kv_a(x)` gives `kv_lora_rank + rope` values; the first
      `kv_lora_rank` are normalised by `kv_a_norm` (c), the rest is `k_pe`;
    - RoPE on `q_pe` and `k_pe`; the new `c`/`k_pe` rows are appended to the
      cache at each token's position in its sequence; causal softmax attention
      scaled by `softmax_scale`; `o_proj` of the concatenated heads.

    The cache is a value: the op consumes `cache` and returns the updated one.

    This op is model level: it has no plan step. `moe-decompose-mla` lowers
    it to step-level ops (the naive core, `moe.expanded_attention`) and
    `moe-absorb-mla` chooses the evaluation form per entry function.
  }];
  let arguments = (ins
    Moe_Activation:$input, Moe_IndexTensor:$positions, Moe_IndexTensor:$seq_ids,
    Moe_LatentCacheType:$cache,
    Optional<Moe_WeightTensor>:$q_a, Optional<Moe_UnquantizedWeight>:$q_a_norm,
    Moe_WeightTensor:$q_b, Moe_WeightTensor:$kv_a, Moe_UnquantizedWeight:$kv_a_norm,
    Moe_WeightTensor:$kv_b, Moe_WeightTensor:$o_proj,
    I64Attr:$num_heads, I64Attr:$q_lora_rank, I64Attr:$kv_lora_rank,
    I64Attr:$qk_nope_head_dim, I64Attr:$qk_rope_head_dim, I64Attr:$v_head_dim,
    F32Attr:$softmax_scale, F32Attr:$rms_norm_eps, F32Attr:$rope_theta,
    Moe_RopeLayoutAttr:$rope_layout, OptionalAttr<Moe_YarnAttr>:$yarn);
  let results = (outs Moe_Activation:$result, Moe_LatentCacheType:$new_cache);
  let assemblyFormat = [{
    $input `,` $positions `,` $seq_ids `,` $cache
    (`q_a` `(` $q_a^ `)`)? (`q_a_norm` `(` $q_a_norm^ `)`)?
    `q_b` `(` $q_b `)` `kv_a` `(` $kv_a `)` `kv_a_norm` `(` $kv_a_norm `)`
    `kv_b` `(` $kv_b `)` `o_proj` `(` $o_proj `)`
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_CacheStoreOp : Moe_StepOp<"cache_store", "cache_store",
    [AllTypesMatch<["cache", "result"]>]> {
  let summary = "writes each token's latent and rope key rows into the cache";
  let description = [{
    Returns `cache` with, for every token `t`, row `positions[t]` of sequence
    `seq_ids[t]` set to `latent[t]` (the normalised `c`, C values) and
    `rope[t]` (the roped `k_pe`, R values). In the plan the cache is state
    (`latent` and `rope` rows); this op is its `cache_store` step.
    ```mlir
    %cache2 = moe.cache_store %cache, %c, %pe, %pos, %seq
        : !moe.latent_cache<64, 16>, tensor<?x64xf32>, tensor<?x16xf32>, tensor<?xi32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins Moe_LatentCacheType:$cache, Moe_Activation:$latent,
                       Moe_Activation:$rope, Moe_IndexTensor:$positions,
                       Moe_IndexTensor:$seq_ids);
  let results = (outs Moe_LatentCacheType:$result);
  let assemblyFormat = [{
    $cache `,` $latent `,` $rope `,` $positions `,` $seq_ids attr-dict `:`
    qualified(type($cache)) `,` type($latent) `,` type($rope) `,` type($positions) `,` type($seq_ids)
  }];
  let hasVerifier = 1;
}

def Moe_HeadLinearOp : Moe_StepOp<"head_linear", "head_linear"> {
  let summary = "one projection per head";
  let description = [{
    `weight [H, N, K]` holds one matrix per head. For head `h`, the input
    slice is `x_h = input[t, h * in_stride + in_offset : ... + in_width]`;
    without `transpose` `y_h = x_h W_h^T` (`in_width = K`, N outputs), with
    `transpose` `y_h = x_h W_h` (`in_width = N`, K outputs). The result is
    the heads' outputs side by side: `[T, H*N]`, or `[T, H*K]` with
    `transpose`. The weight is usually a `moe.slice_heads` view of
    `kv_b_proj` (`W_UK` transposed for the query, `W_UV` for the output).
    ```mlir
    %q_lat = moe.head_linear %q, %w_uk {heads = 4 : i64, in_stride = 24 : i64,
        in_offset = 0 : i64, in_width = 16 : i64, transpose = true}
        : tensor<?x96xf32>, tensor<4x16x32xbf16> -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_WeightTensor:$weight,
                       I64Attr:$heads, I64Attr:$in_stride, I64Attr:$in_offset,
                       I64Attr:$in_width, BoolAttr:$transpose);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Moe_LatentAttentionOp : Moe_StepOp<"latent_attention", "latent_attention"> {
  let summary = "the absorbed MLA core over the latent cache";
  let description = [{
    For head `h` of token `t`, over the rows `j <= positions[t]` of the
    token's sequence in `cache`:
    `score_j = (q_lat_h . c_j + q_pe_h . k_pe_j) * softmax_scale`, causal
    softmax `p`, `o_h = sum_j p_j c_j`. `q_lat_h` is
    `q_lat[t, h*C : (h+1)*C]`; `q_pe_h` is the `rope_dim` columns of `q` at
    `h * q_stride + q_rope_offset`. The result `[T, H*C]` is still latent:
    a `moe.head_linear` with `W_UV` expands it to `[T, H*v]`.
    ```mlir
    %o_lat = moe.latent_attention %q_lat, %q, %pos, %seq, %cache {heads = 4 : i64,
        latent_dim = 32 : i64, rope_dim = 8 : i64, q_stride = 24 : i64,
        q_rope_offset = 16 : i64, softmax_scale = 0.2 : f32}
        : (tensor<?x128xf32>, tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>,
           !moe.latent_cache<32, 8>) -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$q_lat, Moe_Activation:$q,
                       Moe_IndexTensor:$positions, Moe_IndexTensor:$seq_ids,
                       Moe_LatentCacheType:$cache,
                       I64Attr:$heads, I64Attr:$latent_dim, I64Attr:$rope_dim,
                       I64Attr:$q_stride, I64Attr:$q_rope_offset,
                       F32Attr:$softmax_scale);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $q_lat `,` $q `,` $positions `,` $seq_ids `,` $cache attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_ExpandedAttentionOp : Moe_StepOp<"expanded_attention", "expanded_attention"> {
  let summary = "the naive MLA core: the cache expanded through kv_b";
  let description = [{
    `q [T, H*(nope+rope)]` holds each head's `q_nope` then its roped `q_pe`.
    For every cached row `j <= positions[t]` of the token's sequence,
    `kv_b c_j` viewed as `[H, nope+v]` gives `k_nope` and `v` per head;
    `score_j = (q_nope_h . k_nope_j + q_pe_h . k_pe_j) * softmax_scale`,
    causal softmax, `o_h = sum_j p_j v_j`. Result `[T, H*v]`.
    `moe-absorb-mla` rewrites it into the absorbed form.
    ```mlir
    %o = moe.expanded_attention %q, %pos, %seq, %cache, %kv_b {heads = 4 : i64,
        nope_dim = 16 : i64, rope_dim = 8 : i64, v_dim = 16 : i64,
        latent_dim = 32 : i64, softmax_scale = 0.2 : f32}
        : (tensor<?x96xf32>, tensor<?xi32>, tensor<?xi32>, !moe.latent_cache<32, 8>,
           tensor<128x32xbf16>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$q, Moe_IndexTensor:$positions,
                       Moe_IndexTensor:$seq_ids, Moe_LatentCacheType:$cache,
                       Moe_WeightTensor:$kv_b,
                       I64Attr:$heads, I64Attr:$nope_dim, I64Attr:$rope_dim,
                       I64Attr:$v_dim, I64Attr:$latent_dim, F32Attr:$softmax_scale);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $q `,` $positions `,` $seq_ids `,` $cache `,` $kv_b attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

def Moe_MoeLayerOp : Moe_Op<"moe_layer", [Pure, AttrSizedOperandSegments]> {
  let summary = "a whole DeepSeekMoE layer: router, routed experts, shared experts (model level)";
  let description = [{
    One MoE feed-forward block (spec section 5), from the normalised hidden
    state `input [T, D]` to its output `[T, D]`:

    - the router of `moe.router` (`gate [E, D]`, the optional f32 correction
      `bias [E]`, and the same attributes): each token selects `top_k` of the
      `E` experts and their weights;
    - the selected experts' SwiGLUs, weighted and summed as in
      `moe.routed_experts`: expert `e` uses `gate_weights[e]`,
      `up_weights[e]`, `down_weights[e]` (E of each, all of one width);
    - when present, the shared experts: one SwiGLU of `shared_gate`,
      `shared_up`, `shared_down` (all three or none) on the same input,
      added to the routed sum.

    This op is model level: it has no plan step. `moe-decompose-moe` lowers
    it to `moe.router`, `moe.routed_experts` and, with shared experts,
    `moe.swiglu` + `moe.add`, named after the op's location (an op at
    `"model.layers.3.mlp"` gives steps `model.layers.3.mlp.gate`, `.experts`,
    `.shared_experts` and `.routed_plus_shared`).

    ```mlir
    %m = moe.moe_layer %f, %gate bias %b experts gate [%g0, %g1] up [%u0, %u1] down [%d0, %d1]
        shared gate(%sg) up(%su) down(%sd)
        {top_k = 1 : i64, n_group = 1 : i64, topk_group = 1 : i64,
         score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>,
         norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
        : (tensor<?x64xf32>, tensor<2x64xbf16>, tensor<2xf32>, tensor<32x64xbf16>, tensor<32x64xbf16>,
           tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>, tensor<64x32xbf16>,
           tensor<32x64xbf16>, tensor<32x64xbf16>, tensor<64x32xbf16>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_UnquantizedWeight:$gate,
                       Optional<Moe_F32Weight>:$bias,
                       Variadic<Moe_WeightTensor>:$gate_weights,
                       Variadic<Moe_WeightTensor>:$up_weights,
                       Variadic<Moe_WeightTensor>:$down_weights,
                       Optional<Moe_WeightTensor>:$shared_gate,
                       Optional<Moe_WeightTensor>:$shared_up,
                       Optional<Moe_WeightTensor>:$shared_down,
                       I64Attr:$top_k, I64Attr:$n_group, I64Attr:$topk_group,
                       Moe_ScoreFuncAttr:$score_func, Moe_GroupScoreAttr:$group_score,
                       BoolAttr:$norm_topk_prob, F32Attr:$routed_scaling_factor);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `,` $gate (`bias` $bias^)?
    `experts` `gate` `[` $gate_weights `]` `up` `[` $up_weights `]` `down` `[` $down_weights `]`
    (`shared` `gate` `(` $shared_gate^ `)` `up` `(` $shared_up `)` `down` `(` $shared_down `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_RouterOp : Moe_StepOp<"router", "router"> {
  let summary = "DeepSeekMoE router: scores, correction bias, group-limited top-k";
  let description = [{
    `logits = input gate^T`; `s = softmax|sigmoid(logits)`; selection uses
    `s + bias` (the V3 correction bias) restricted to the `topk_group` best of
    `n_group` groups (group score `max` or `top2_sum`, dropped groups masked
    with -inf; `bias` is f32, a `moe.convert_weight` when the checkpoint
    stores another dtype); weights are the unbiased `s` of the selected experts,
    renormalised when `norm_topk_prob`, then multiplied by
    `routed_scaling_factor`. Ties break toward the lower expert index.
    ```mlir
    %idx, %w = moe.router %f, %gate bias %b {top_k = 4 : i64, n_group = 4 : i64,
        topk_group = 2 : i64, score_func = #moe.score_func<sigmoid>,
        group_score = #moe.group_score<top2_sum>, norm_topk_prob = true,
        routed_scaling_factor = 2.5 : f32}
        : (tensor<?x256xf32>, tensor<16x256xbf16>, tensor<16xf32>) -> (tensor<?x4xi32>, tensor<?x4xf32>)
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_UnquantizedWeight:$gate,
                       Optional<Moe_F32Weight>:$bias,
                       I64Attr:$top_k, I64Attr:$n_group, I64Attr:$topk_group,
                       Moe_ScoreFuncAttr:$score_func, Moe_GroupScoreAttr:$group_score,
                       BoolAttr:$norm_topk_prob, F32Attr:$routed_scaling_factor);
  let results = (outs Moe_IndexTensor:$indices, Moe_Activation:$weights);
  let assemblyFormat = [{
    $input `,` $gate (`bias` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_RoutedExpertsOp : Moe_StepOp<"routed_experts", "moe_experts",
    [AttrSizedOperandSegments]> {
  let summary = "the selected experts' SwiGLUs, weighted and summed";
  let description = [{
    `result[t] = sum_k weights[t,k] * down_e(silu(gate_e(x)) * up_e(x))`,
    `e = indices[t,k]`. Expert `e` uses `gate_weights[e]`, `up_weights[e]`,
    `down_weights[e]`; only selected experts are computed. Block-quantized
    experts carry their quantization in their types.
    ```mlir
    %o = moe.routed_experts %f, %idx, %w gate [%g0, %g1] up [%u0, %u1] down [%d0, %d1]
        : (...) -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_IndexTensor:$indices,
                       Moe_Activation:$weights,
                       Variadic<Moe_WeightTensor>:$gate_weights,
                       Variadic<Moe_WeightTensor>:$up_weights,
                       Variadic<Moe_WeightTensor>:$down_weights);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `,` $indices `,` $weights
    `gate` `[` $gate_weights `]` `up` `[` $up_weights `]` `down` `[` $down_weights `]`
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_SwigluOp : Moe_StepOp<"swiglu", "swiglu_mlp"> {
  let summary = "dense SwiGLU MLP: down(silu(gate(x)) * up(x))";
  let description = [{
    The dense MLP of layers `< first_k_dense_replace`, and the shared experts
    (one SwiGLU of width `n_shared_experts * moe_intermediate_size`).
    ```mlir
    %o = moe.swiglu %f gate(%g) up(%u) down(%d)
        : (tensor<?x256xf32>, tensor<512x256xbf16>, tensor<512x256xbf16>, tensor<256x512xbf16>) -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_WeightTensor:$gate,
                       Moe_WeightTensor:$up, Moe_WeightTensor:$down);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `gate` `(` $gate `)` `up` `(` $up `)` `down` `(` $down `)`
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_FusedSwigluOp : Moe_StepOp<"fused_swiglu", "fused_swiglu_mlp"> {
  let summary = "SwiGLU MLP with gate and up in one interleaved weight";
  let description = [{
    `down(silu(g) * u)` where `g` and `u` come out of one product with
    `gate_up`, the gate and up weights stacked by
    `moe.concat_weights {interleave = gate_up_rows}` (`[2I, D]`); the
    `silu(g) * u` is that product's epilogue. `moe-fuse-gate-up` makes it from
    a `moe.swiglu`.
    ```mlir
    %gu = moe.concat_weights %g, %u {interleave = 128 : i64}
        : tensor<512x256xbf16>, tensor<512x256xbf16> -> tensor<1024x256xbf16>
    %o = moe.fused_swiglu %f gate_up(%gu) down(%d) {gate_up_rows = 128 : i64}
        : (tensor<?x256xf32>, tensor<1024x256xbf16>, tensor<256x512xbf16>) -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_WeightTensor:$gate_up,
                       Moe_WeightTensor:$down, I64Attr:$gate_up_rows);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `gate_up` `(` $gate_up `)` `down` `(` $down `)`
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_FusedRoutedExpertsOp : Moe_StepOp<"fused_routed_experts", "fused_moe_experts",
    [AttrSizedOperandSegments]> {
  let summary = "routed experts with each expert's gate and up in one weight";
  let description = [{
    `moe.routed_experts` whose experts are `moe.fused_swiglu`s: expert `e`
    uses `gate_up_weights[e]` (`[2I, D]`, interleaved by `gate_up_rows`) and
    `down_weights[e]`.
    ```mlir
    %o = moe.fused_routed_experts %f, %idx, %w gate_up [%gu0, %gu1] down [%d0, %d1]
        {gate_up_rows = 128 : i64} : (...) -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_IndexTensor:$indices,
                       Moe_Activation:$weights,
                       Variadic<Moe_WeightTensor>:$gate_up_weights,
                       Variadic<Moe_WeightTensor>:$down_weights,
                       I64Attr:$gate_up_rows);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `,` $indices `,` $weights
    `gate_up` `[` $gate_up_weights `]` `down` `[` $down_weights `]`
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_LogitsOp : Moe_StepOp<"logits", "linear"> {
  let summary = "output projection to vocabulary logits";
  let description = [{
    `result [T, vocab] = input lm_head^T` (lm_head is never quantised). It is
    a plan `linear` step; the op marks the model's output projection.
    ```mlir
    %l = moe.logits %n, %lm : tensor<?x256xf32>, tensor<1024x256xbf16> -> tensor<?x1024xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_WeightTensor:$lm_head);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `,` $lm_head attr-dict `:` type($input) `,` type($lm_head) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // MOE_OPS_TD
