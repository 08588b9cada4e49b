//===- MoeBase.td - moe dialect definition, enums and attributes -*- tablegen -*-===//

#ifndef MOE_BASE_TD
#define MOE_BASE_TD

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"
include "mlir/IR/TensorEncoding.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mlir::moe";
  let summary = "Model-level ops for DeepSeek-family Mixture-of-Experts transformers";
  let description = [{
    The `moe` dialect describes a DeepSeek-V2/V3 forward pass at the level a
    model author thinks in: checkpoint weights referenced by name, RMSNorm,
    linear projections (bf16/f16/f32, or FP8 e4m3 whose tensor type carries
    its block quantization: `#moe.block_fp8<128, 128>`),
    rotary embeddings with YaRN, Multi-head Latent Attention (MLA) over a
    compressed latent KV cache, the DeepSeekMoE router and routed experts, and
    the dense SwiGLU MLP.

    The dialect has two levels (docs/pipeline.md section 1). A frontend
    produces **model-level** ops (`moe.mla_attention`); passes lower them to
    **step-level** ops, which implement `StepOpInterface` and map one to one
    onto plan steps. Weight values come from `moe.weight` (a checkpoint
    tensor) and the derived-weight ops `moe.slice_heads` and
    `moe.convert_weight`.

    Activations are ranked tensors whose first dimension is the dynamic token
    count `T`: one function serves prefill (T = prompt length), decode (T = 1)
    and batched decode, with each token's position and sequence id passed as
    `tensor<?xi32>` operands. Weights have static shapes. Numerics follow
    `spec/deepseek-semantics.md`: compute is fp32, weights are dequantised on
    the fly.
  }];
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
  // `moe.model_config` and `moe.source` on the module (see MoeDialect.h).
  let hasOperationAttrVerify = 1;
}

class Moe_Op<string mnemonic, list<Trait> traits = []> :
    Op<Moe_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def Moe_ScoreFunc : I32EnumAttr<"ScoreFunc", "router scoring function", [
    I32EnumAttrCase<"softmax", 0>, I32EnumAttrCase<"sigmoid", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}
def Moe_ScoreFuncAttr : EnumAttr<Moe_Dialect, Moe_ScoreFunc, "score_func"> {
  let assemblyFormat = "`<` $value `>`";
}

def Moe_GroupScore : I32EnumAttr<"GroupScore", "expert group score", [
    I32EnumAttrCase<"max", 0>, I32EnumAttrCase<"top2_sum", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}
def Moe_GroupScoreAttr : EnumAttr<Moe_Dialect, Moe_GroupScore, "group_score"> {
  let assemblyFormat = "`<` $value `>`";
}

def Moe_RopeLayout : I32EnumAttr<"RopeLayout", "pair order of rotated dims", [
    I32EnumAttrCase<"interleaved", 0>, I32EnumAttrCase<"half", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}
def Moe_RopeLayoutAttr : EnumAttr<Moe_Dialect, Moe_RopeLayout, "rope_layout"> {
  let assemblyFormat = "`<` $value `>`";
}

def Moe_Fp8ScaleFormat : I32EnumAttr<"Fp8ScaleFormat", "how a block-FP8 scale is stored", [
    I32EnumAttrCase<"fp32", 0, "float">, I32EnumAttrCase<"ue8m0", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}
def Moe_Fp8ScaleFormatAttr : EnumAttr<Moe_Dialect, Moe_Fp8ScaleFormat, "fp8_scale"> {
  let assemblyFormat = "`<` $value `>`";
}

/// What `moe-quantize-fp8` quantizes (its `mode` option; `none` leaves the
/// weights as they are, so the pipeline can always run the pass).
def Moe_QuantizeMode : I32EnumAttr<"QuantizeMode", "weight quantization", [
    I32EnumAttrCase<"none", 0>, I32EnumAttrCase<"fp8", 1>, I32EnumAttrCase<"int8", 2>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

/// The element type of the latent KV cache (`moe-kv-cache-type`'s option and the
/// `kv-cache` option of the `moe-compile` pipeline).
def Moe_KvCacheElement : I32EnumAttr<"KvCacheElement", "KV cache element type", [
    I32EnumAttrCase<"f32", 0>, I32EnumAttrCase<"bf16", 1>, I32EnumAttrCase<"fp8", 2>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

/// Not an attribute of any op: the `activations` option of the `moe-compile`
/// pipeline (moe-bf16-activations, moe-fp8-activations).
def Moe_ActivationElement : I32EnumAttr<"ActivationElement",
    "element type of the matrix products' activations", [
    I32EnumAttrCase<"f32", 0>, I32EnumAttrCase<"bf16", 1>, I32EnumAttrCase<"fp8", 2>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

/// Not an attribute of any op: the `form` option of `moe-absorb-mla` and the
/// `*-mla-form` options of the `moe-compile` pipeline choose it per phase.
def Moe_AttentionForm : I32EnumAttr<"AttentionForm", "MLA evaluation form", [
    I32EnumAttrCase<"naive", 0>, I32EnumAttrCase<"absorbed", 1>,
    // Chosen per entry function by moe-absorb-mla's cost model (`auto` is a C++
    // keyword, hence the symbol).
    I32EnumAttrCase<"automatic", 2, "auto">]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

class Moe_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<Moe_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

/// A float parameter printed and parsed as a plain number.
class Moe_F64Parameter<string desc> : APFloatParameter<desc> {
  let parser = [{ [&]() -> ::mlir::FailureOr<::llvm::APFloat> {
    double v;
    if ($_parser.parseFloat(v)) return ::mlir::failure();
    return ::llvm::APFloat(v); }() }];
  let printer = [{ $_printer << $_self.convertToDouble() }];
}

def Moe_BlockFp8Attr : Moe_Attr<"BlockFp8", "block_fp8",
    [DeclareAttrInterfaceMethods<VerifiableTensorEncoding>]> {
  let summary = "tensor encoding of an FP8 e4m3 weight with block scales";
  let description = [{
    The encoding of a block-quantized weight type: an f8E4M3FN tensor
    `W8 [out, in]` whose values are multiplied by an fp32 scale tensor
    `S [ceil(out/rows), ceil(in/cols)]`, `W[i,j] = W8[i,j] * S[i/rows, j/cols]`.
    The scale tensor is named by the `moe.weight` that produces the value.

    ```mlir
    tensor<256x512xf8E4M3FN, #moe.block_fp8<128, 128>>
    ```

    DeepSeek-V3 checkpoints use 128x128 blocks. A rank-3 tensor with this
    encoding is a per-head view made by `moe.slice_heads`: its rows are rows
    of the parent weight and keep the parent's scale grid. Only f8E4M3FN
    tensors of rank 2 or 3 may carry it, and every f8E4M3FN weight must.
  }];
  let parameters = (ins "int64_t":$rows, "int64_t":$cols);
  let assemblyFormat = "`<` $rows `,` $cols `>`";
  let genVerifyDecl = 1;
}

def Moe_BlockInt8Attr : Moe_Attr<"BlockInt8", "block_int8",
    [DeclareAttrInterfaceMethods<VerifiableTensorEncoding>]> {
  let summary = "tensor encoding of a signed int8 weight with block scales";
  let description = [{
    The int8 counterpart of `#moe.block_fp8`: an i8 tensor `W8 [out, in]` of
    signed codes in [-127, 127] whose values are multiplied by an fp32 scale
    tensor `S [ceil(out/rows), ceil(in/cols)]`, `W[i,j] = W8[i,j] * S[i/rows, j/cols]`.
    Made by `moe-quantize-int8`; a matrix product with such a weight quantizes
    its activations to int8 too, per token and 128 columns (W8A8; see
    moec/cpu/kernels.h).

    ```mlir
    tensor<256x512xi8, #moe.block_int8<128, 128>>
    ```

    Rank 3 is a per-head view made by `moe.slice_heads`, as for
    `#moe.block_fp8`. Only i8 tensors of rank 2 or 3 may carry it.
  }];
  let parameters = (ins "int64_t":$rows, "int64_t":$cols);
  let assemblyFormat = "`<` $rows `,` $cols `>`";
  let genVerifyDecl = 1;
}

def Moe_YarnAttr : Moe_Attr<"Yarn", "yarn"> {
  let summary = "YaRN rope scaling parameters";
  let description = [{
    The `rope_scaling` block of a checkpoint's config.json with type `yarn`.
    Frequencies are interpolated between `f_j` and `f_j / factor` by a linear
    ramp between the correction dims of `beta_fast` and `beta_slow`; the
    softmax scale is multiplied by `m^2`, `m = 0.1 * mscale_all_dim * ln(factor) + 1`,
    and cos/sin by the attention factor `mscale(factor, mscale) /
    mscale(factor, mscale_all_dim)` (spec section 4).
  }];
  let parameters = (ins
    Moe_F64Parameter<"scaling factor">:$factor,
    "int64_t":$originalMaxPositions,
    Moe_F64Parameter<"beta_fast">:$betaFast,
    Moe_F64Parameter<"beta_slow">:$betaSlow,
    Moe_F64Parameter<"mscale">:$mscale,
    Moe_F64Parameter<"mscale_all_dim">:$mscaleAllDim);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The factor that multiplies cos and sin:
    /// mscale(factor, mscale) / mscale(factor, mscale_all_dim), with
    /// mscale(f, m) = 0.1 * m * ln(f) + 1 (1 when f <= 1).
    double getAttentionFactor() const;
    /// m^2, the factor of the softmax scale: m = mscale(factor, mscale_all_dim).
    double getSoftmaxFactor() const;
  }];
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

def Moe_LatentCacheType : TypeDef<Moe_Dialect, "LatentCache"> {
  let mnemonic = "latent_cache";
  let summary = "one layer's MLA latent KV cache state";
  let description = [{
    The KV cache state of one MLA layer across all sequences: per token, the
    normalised latent `c` (`kv_lora_rank` values) and the roped shared key
    `k_pe` (`rope` values). Attention consumes a cache value and produces the
    updated one, so cache state flows through the IR as SSA values.
    The optional element type says how the rows are stored: `f32` (the
    default, omitted when printed), `bf16` or `f8E4M3FN` (each value rounded
    to nearest even when it is stored, e4m3 saturating at +-448 with no
    scale; attention widens it back exactly). The values attention computes
    with are the stored ones.
    Example: `!moe.latent_cache<512, 64>` (576 f32 values per token per
    layer), `!moe.latent_cache<512, 64, bf16>` (the same in 1152 bytes).
  }];
  let parameters = (ins "int64_t":$kvLoraRank, "int64_t":$ropeDim,
      DefaultValuedParameter<"::mlir::Type", "::mlir::Float32Type::get($_ctxt)">:$elementType);
  let builders = [
    TypeBuilder<(ins "int64_t":$kvLoraRank, "int64_t":$ropeDim), [{
      return $_get($_ctxt, kvLoraRank, ropeDim, ::mlir::Float32Type::get($_ctxt));
    }]>
  ];
  let skipDefaultBuilders = 0;
  let assemblyFormat = "`<` $kvLoraRank `,` $ropeDim (`,` $elementType^)? `>`";
  let genVerifyDecl = 1;
}

#endif // MOE_BASE_TD
