//===- MoeOps.td - moe dialect operations ------------------*- tablegen -*-===//

#ifndef MOE_OPS_TD
#define MOE_OPS_TD

include "moec/Dialect/Moe/IR/MoeBase.td"
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
/// A stored weight: bf16, f16, f32 or FP8 e4m3. Weights have static shapes.
def Moe_WeightTensor : StaticShapeTensorOf<[BF16, F16, F32, F8E4M3FN]>;
/// A weight that the spec never quantises (embeddings, norms, router, lm_head).
def Moe_UnquantizedWeight : StaticShapeTensorOf<[BF16, F16, F32]>;
/// An FP8 block scale tensor (the checkpoint's `weight_scale_inv`).
def Moe_ScaleTensor : StaticShapeTensorOf<[F32]>;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def Moe_WeightOp : Moe_Op<"weight", [Pure]> {
  let summary = "a named checkpoint tensor";
  let description = [{
    References one tensor of the source checkpoint by name. The plan emitter
    resolves the name to bytes; the IR carries only the name and type.
    An FP8 weight also names its block-scale tensor and the block layout, and
    then has a second result, the fp32 scale tensor.

    ```mlir
    %w = moe.weight "model.norm.weight" : tensor<7168xbf16>
    %q, %qs = moe.weight "model.layers.3.self_attn.q_b_proj.weight"
        scale "model.layers.3.self_attn.q_b_proj.weight_scale_inv"
        layout <128, 128>
        : tensor<24576x1536xf8E4M3FN>, tensor<192x12xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<StrAttr>:$scale_name,
                       OptionalAttr<Moe_BlockScaleLayoutAttr>:$layout);
  let results = (outs Moe_WeightTensor:$weight, Optional<Moe_ScaleTensor>:$scale);
  let assemblyFormat = [{
    $name (`scale` $scale_name^)? (`layout` $layout^)? attr-dict `:` type($weight) (`,` type($scale)^)?
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise and normalisation
//===----------------------------------------------------------------------===//

def Moe_EmbeddingOp : Moe_Op<"embedding", [Pure]> {
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

def Moe_RmsNormOp : Moe_Op<"rms_norm", [Pure, AllTypesMatch<["input", "result"]>]> {
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

def Moe_AddOp : Moe_Op<"add", [Pure, Commutative, SameOperandsAndResultType]> {
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

def Moe_LinearOp : Moe_Op<"linear", [Pure]> {
  let summary = "y = x W^T, W possibly FP8 with block scales";
  let description = [{
    `input [T, in]`, `weight [out, in]`, `result [T, out]`, fp32 accumulation.
    An FP8 weight takes its block-scale tensor `[ceil(out/128), ceil(in/128)]`;
    dequantisation multiplies: `W[i,j] = W8[i,j] * scale[i/128, j/128]`.
    ```mlir
    %y = moe.linear %x, %w scale %s
        : tensor<?x300xf32>, tensor<200x300xf8E4M3FN>, tensor<2x3xf32> -> tensor<?x200xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_WeightTensor:$weight,
                       Optional<Moe_ScaleTensor>:$scale);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight (`scale` $scale^)? attr-dict `:` type($input) `,` type($weight)
    (`,` type($scale)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def Moe_RopeOp : Moe_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary position embedding, optionally YaRN-scaled";
  let description = [{
    Views each row of `input` as `heads x head_dim` and rotates the
    `rope_dim` values starting at `offset` in every head by
    `positions[t] * f'_j` (spec section 4). `layout` names the pair order:
    `interleaved` (the checkpoint's) or `half` (after a compile-time permute).
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
  let summary = "Multi-head Latent Attention over the latent KV cache";
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

    `form` chooses how it is evaluated: `naive` expands `kv_b` per cached
    token, `absorbed` folds `W_UK`/`W_UV` into the query and output (the same
    function, cheaper at decode). FP8 weights carry `*_scale` operands.

    The cache is a value: the op consumes `cache` and returns the updated one.
  }];
  let arguments = (ins
    Moe_Activation:$input, Moe_IndexTensor:$positions, Moe_IndexTensor:$seq_ids,
    Moe_LatentCacheType:$cache,
    Optional<Moe_WeightTensor>:$q_a, Optional<Moe_ScaleTensor>:$q_a_scale,
    Optional<Moe_UnquantizedWeight>:$q_a_norm,
    Moe_WeightTensor:$q_b, Optional<Moe_ScaleTensor>:$q_b_scale,
    Moe_WeightTensor:$kv_a, Optional<Moe_ScaleTensor>:$kv_a_scale,
    Moe_UnquantizedWeight:$kv_a_norm,
    Moe_WeightTensor:$kv_b, Optional<Moe_ScaleTensor>:$kv_b_scale,
    Moe_WeightTensor:$o_proj, Optional<Moe_ScaleTensor>:$o_proj_scale,
    I64Attr:$num_heads, I64Attr:$q_lora_rank, I64Attr:$kv_lora_rank,
    I64Attr:$qk_nope_head_dim, I64Attr:$qk_rope_head_dim, I64Attr:$v_head_dim,
    F32Attr:$softmax_scale, F32Attr:$rms_norm_eps, F32Attr:$rope_theta,
    Moe_RopeLayoutAttr:$rope_layout, OptionalAttr<Moe_YarnAttr>:$yarn,
    Moe_AttentionFormAttr:$form);
  let results = (outs Moe_Activation:$result, Moe_LatentCacheType:$new_cache);
  let assemblyFormat = [{
    $input `,` $positions `,` $seq_ids `,` $cache
    (`q_a` `(` $q_a^ `)`)? (`q_a_scale` `(` $q_a_scale^ `)`)? (`q_a_norm` `(` $q_a_norm^ `)`)?
    `q_b` `(` $q_b `)` (`q_b_scale` `(` $q_b_scale^ `)`)?
    `kv_a` `(` $kv_a `)` (`kv_a_scale` `(` $kv_a_scale^ `)`)?
    `kv_a_norm` `(` $kv_a_norm `)`
    `kv_b` `(` $kv_b `)` (`kv_b_scale` `(` $kv_b_scale^ `)`)?
    `o_proj` `(` $o_proj `)` (`o_proj_scale` `(` $o_proj_scale^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Mixture of experts
//===----------------------------------------------------------------------===//

def Moe_RouterOp : Moe_Op<"router", [Pure]> {
  let summary = "DeepSeekMoE router: scores, correction bias, group-limited top-k";
  let description = [{
    `logits = input gate^T`; `s = softmax|sigmoid(logits)`; selection uses
    `s + bias` (the V3 correction bias) restricted to the `topk_group` best of
    `n_group` groups (group score `max` or `top2_sum`, dropped groups masked
    with -inf); weights are the unbiased `s` of the selected experts,
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
                       Optional<StaticShapeTensorOf<[F32]>>:$bias,
                       I64Attr:$top_k, I64Attr:$n_group, I64Attr:$topk_group,
                       Moe_ScoreFuncAttr:$score_func, Moe_GroupScoreAttr:$group_score,
                       BoolAttr:$norm_topk_prob, F32Attr:$routed_scaling_factor);
  let results = (outs Moe_IndexTensor:$indices, Moe_Activation:$weights);
  let assemblyFormat = [{
    $input `,` $gate (`bias` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_RoutedExpertsOp : Moe_Op<"routed_experts", [Pure, AttrSizedOperandSegments]> {
  let summary = "the selected experts' SwiGLUs, weighted and summed";
  let description = [{
    `result[t] = sum_k weights[t,k] * down_e(silu(gate_e(x)) * up_e(x))`,
    `e = indices[t,k]`. Expert `e` uses `gate_weights[e]`, `up_weights[e]`,
    `down_weights[e]`; only selected experts are computed. FP8 experts list
    their block scales in the same order.
    ```mlir
    %o = moe.routed_experts %f, %idx, %w gate [%g0, %g1] up [%u0, %u1] down [%d0, %d1]
        : (...) -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_IndexTensor:$indices,
                       Moe_Activation:$weights,
                       Variadic<Moe_WeightTensor>:$gate_weights,
                       Variadic<Moe_WeightTensor>:$up_weights,
                       Variadic<Moe_WeightTensor>:$down_weights,
                       Variadic<Moe_ScaleTensor>:$gate_scales,
                       Variadic<Moe_ScaleTensor>:$up_scales,
                       Variadic<Moe_ScaleTensor>:$down_scales);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `,` $indices `,` $weights
    `gate` `[` $gate_weights `]` `up` `[` $up_weights `]` `down` `[` $down_weights `]`
    (`gate_scales` `[` $gate_scales^ `]`)? (`up_scales` `[` $up_scales^ `]`)?
    (`down_scales` `[` $down_scales^ `]`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_SwigluOp : Moe_Op<"swiglu", [Pure, AttrSizedOperandSegments]> {
  let summary = "dense SwiGLU MLP: down(silu(gate(x)) * up(x))";
  let description = [{
    The dense MLP of layers `< first_k_dense_replace`, and the shared experts
    (one SwiGLU of width `n_shared_experts * moe_intermediate_size`).
    ```mlir
    %o = moe.swiglu %f gate(%g) up(%u) down(%d)
        : (tensor<?x256xf32>, tensor<512x256xbf16>, tensor<512x256xbf16>, tensor<256x512xbf16>) -> tensor<?x256xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input,
                       Moe_WeightTensor:$gate, Optional<Moe_ScaleTensor>:$gate_scale,
                       Moe_WeightTensor:$up, Optional<Moe_ScaleTensor>:$up_scale,
                       Moe_WeightTensor:$down, Optional<Moe_ScaleTensor>:$down_scale);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `gate` `(` $gate `)` (`gate_scale` `(` $gate_scale^ `)`)?
    `up` `(` $up `)` (`up_scale` `(` $up_scale^ `)`)?
    `down` `(` $down `)` (`down_scale` `(` $down_scale^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Moe_LogitsOp : Moe_Op<"logits", [Pure]> {
  let summary = "output projection to vocabulary logits";
  let description = [{
    `result [T, vocab] = input lm_head^T` (lm_head is never quantised).
    ```mlir
    %l = moe.logits %n, %lm : tensor<?x256xf32>, tensor<1024x256xbf16> -> tensor<?x1024xf32>
    ```
  }];
  let arguments = (ins Moe_Activation:$input, Moe_UnquantizedWeight:$lm_head);
  let results = (outs Moe_Activation:$result);
  let assemblyFormat = [{
    $input `,` $lm_head attr-dict `:` type($input) `,` type($lm_head) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // MOE_OPS_TD
