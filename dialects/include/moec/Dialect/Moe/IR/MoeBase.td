//===- MoeBase.td - moe dialect definition, enums and attributes -*- tablegen -*-===//

#ifndef MOE_BASE_TD
#define MOE_BASE_TD

include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/OpBase.td"

def Moe_Dialect : Dialect {
  let name = "moe";
  let cppNamespace = "::mlir::moe";
  let summary = "Model-level ops for DeepSeek-family Mixture-of-Experts transformers";
  let description = [{
    The `moe` dialect describes a DeepSeek-V2/V3 forward pass at the level a
    model author thinks in: checkpoint weights referenced by name, RMSNorm,
    linear projections (bf16/f16/f32 or FP8 e4m3 with 128x128 block scales),
    rotary embeddings with YaRN, Multi-head Latent Attention (MLA) over a
    compressed latent KV cache, the DeepSeekMoE router and routed experts, and
    the dense SwiGLU MLP.

    Activations are ranked tensors whose first dimension is the dynamic token
    count `T`: one function serves prefill (T = prompt length), decode (T = 1)
    and batched decode, with each token's position and sequence id passed as
    `tensor<?xi32>` operands. Weights have static shapes. Numerics follow
    `spec/deepseek-semantics.md`: compute is fp32, weights are dequantised on
    the fly.
  }];
  let useDefaultAttributePrinterParser = 1;
  let useDefaultTypePrinterParser = 1;
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

def Moe_AttentionForm : I32EnumAttr<"AttentionForm", "MLA evaluation form", [
    I32EnumAttrCase<"naive", 0>, I32EnumAttrCase<"absorbed", 1>]> {
  let cppNamespace = "::mlir::moe";
  let genSpecializedAttr = 0;
}
def Moe_AttentionFormAttr : EnumAttr<Moe_Dialect, Moe_AttentionForm, "attention_form"> {
  let assemblyFormat = "`<` $value `>`";
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

def Moe_BlockScaleLayoutAttr : Moe_Attr<"BlockScaleLayout", "block_scale"> {
  let summary = "FP8 block-scaled weight layout";
  let description = [{
    Describes an FP8 weight `W8 [out, in]` paired with an fp32 scale tensor
    `S [ceil(out/rows), ceil(in/cols)]`: `W[i,j] = W8[i,j] * S[i/rows, j/cols]`.
    DeepSeek-V3 checkpoints use `#moe.block_scale<128, 128>`.
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
    softmax scale is multiplied by `m^2`, `m = 0.1 * mscale_all_dim * ln(factor) + 1`.
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
    Example: `!moe.latent_cache<512, 64>` (576 values per token per layer).
  }];
  let parameters = (ins "int64_t":$kvLoraRank, "int64_t":$ropeDim);
  let assemblyFormat = "`<` $kvLoraRank `,` $ropeDim `>`";
  let genVerifyDecl = 1;
}

#endif // MOE_BASE_TD
