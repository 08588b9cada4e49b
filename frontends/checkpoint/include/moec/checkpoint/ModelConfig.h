//===- ModelConfig.h - DeepSeek-V2/V3 model configuration -------*- C++ -*-===//
//
// The typed form of a Hugging Face config.json for DeepseekV2ForCausalLM and
// DeepseekV3ForCausalLM, following spec/deepseek-semantics.md section 1, plus
// the values derived from it (softmax scale, router behaviour, layer kinds).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_MODELCONFIG_H
#define MOEC_CHECKPOINT_MODELCONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moec::checkpoint {

/// The two supported model families.
enum class Architecture {
  DeepseekV2, ///< DeepseekV2ForCausalLM, model_type "deepseek_v2".
  DeepseekV3, ///< DeepseekV3ForCausalLM, model_type "deepseek_v3".
};

/// How router logits become expert scores (config key `scoring_func`).
enum class ScoringFunc {
  Softmax, ///< softmax over all routed experts (V2).
  Sigmoid, ///< independent sigmoid per expert (V3).
};

/// How the top-K experts are selected (config key `topk_method`).
enum class TopkMethod {
  Greedy,             ///< plain top-K, groups ignored (V2-Lite).
  GroupLimitedGreedy, ///< keep topk_group groups ranked by their max score
                      ///< (V2).
  NoauxTc, ///< add the correction bias, rank groups by top-2 sum (V3).
};

/// How a group of experts is ranked when groups are limited.
enum class GroupScore {
  None,    ///< no group limit.
  Max,     ///< the best expert score in the group.
  Top2Sum, ///< the sum of the two best (bias-corrected) scores in the group.
};

/// YaRN RoPE scaling parameters (config key `rope_scaling` with type "yarn").
struct YarnScaling {
  /// Context extension factor (`factor`).
  double Factor = 1.0;
  /// Context length the model was pre-trained with
  /// (`original_max_position_embeddings`).
  int64_t OriginalMaxPositionEmbeddings = 4096;
  /// Rotations per wavelength above which dims keep their frequency
  /// (`beta_fast`).
  double BetaFast = 32.0;
  /// Rotations per wavelength below which dims are fully interpolated
  /// (`beta_slow`).
  double BetaSlow = 1.0;
  /// `mscale`: only enters the cos/sin attention factor.
  double Mscale = 1.0;
  /// `mscale_all_dim`: enters the softmax scale as m^2.
  double MscaleAllDim = 0.0;
};

/// FP8 block quantisation of a checkpoint (config key `quantization_config`).
struct Fp8Quantization {
  /// Rows of one weight block (`weight_block_size[0]`); always 128.
  int64_t BlockRows = 128;
  /// Columns of one weight block (`weight_block_size[1]`); always 128.
  int64_t BlockCols = 128;
  /// `activation_scheme`; "dynamic" is the only accepted value.
  std::string ActivationScheme = "dynamic";
  /// `scale_fmt` when present (e.g. "ue8m0": activation scales are powers of
  /// 2).
  std::optional<std::string> ScaleFormat;
};

/// Every configuration value the compiler needs. Field comments name the
/// config.json key; defaults are those of Hugging Face's config classes.
struct ModelConfig {
  /// From `architectures[0]` / `model_type`.
  Architecture Arch = Architecture::DeepseekV3;
  /// `vocab_size` (required).
  int64_t VocabSize = 0;
  /// `hidden_size`, the model width D (required).
  int64_t HiddenSize = 0;
  /// `intermediate_size`: width of the dense MLP (required when a layer is
  /// dense).
  int64_t IntermediateSize = 0;
  /// `moe_intermediate_size`: width of one routed expert (required).
  int64_t MoeIntermediateSize = 0;
  /// `num_hidden_layers` (required); MTP layers come after these.
  int64_t NumHiddenLayers = 0;
  /// `first_k_dense_replace`: layers below this index use the dense MLP.
  int64_t FirstKDenseReplace = 0;
  /// `moe_layer_freq`: a layer at or past first_k_dense_replace is MoE when
  /// its index is a multiple of this (1 in every released model).
  int64_t MoeLayerFreq = 1;
  /// `num_attention_heads`, H (required).
  int64_t NumAttentionHeads = 0;
  /// `num_key_value_heads`; must equal H (MLA keeps one latent for all heads).
  int64_t NumKeyValueHeads = 0;
  /// `n_routed_experts`, E (required).
  int64_t NumRoutedExperts = 0;
  /// `n_shared_experts`, S (0: none).
  int64_t NumSharedExperts = 0;
  /// `num_experts_per_tok`, K (required).
  int64_t NumExpertsPerTok = 0;
  /// `n_group`: expert groups (1 when absent or null).
  int64_t NumGroups = 1;
  /// `topk_group`: groups kept per token (1 when absent or null).
  int64_t TopkGroup = 1;
  /// `scoring_func`.
  ScoringFunc Scoring = ScoringFunc::Softmax;
  /// `topk_method`.
  TopkMethod Topk = TopkMethod::Greedy;
  /// `routed_scaling_factor`: multiplies the routed expert weights.
  double RoutedScalingFactor = 1.0;
  /// `norm_topk_prob`: renormalise the K routing weights to sum to 1.
  bool NormTopkProb = false;
  /// `q_lora_rank`; std::nullopt (JSON null) means a single `q_proj`.
  std::optional<int64_t> QLoraRank;
  /// `kv_lora_rank`, the latent width C (required).
  int64_t KvLoraRank = 0;
  /// `qk_nope_head_dim` (required).
  int64_t QkNopeHeadDim = 0;
  /// `qk_rope_head_dim` (required, even).
  int64_t QkRopeHeadDim = 0;
  /// `v_head_dim` (required).
  int64_t VHeadDim = 0;
  /// `rope_theta`: the RoPE base.
  double RopeTheta = 10000.0;
  /// `rope_scaling`: std::nullopt (null) or YaRN.
  std::optional<YarnScaling> RopeScaling;
  /// `rms_norm_eps`.
  double RmsNormEps = 1e-6;
  /// `max_position_embeddings`.
  int64_t MaxPositionEmbeddings = 0;
  /// `tie_word_embeddings`; always false (checked).
  bool TieWordEmbeddings = false;
  /// `quantization_config`; std::nullopt for unquantised checkpoints.
  std::optional<Fp8Quantization> Quantization;

  /// Returns "DeepseekV2ForCausalLM" or "DeepseekV3ForCausalLM".
  llvm::StringRef architectureName() const;
  /// Returns "deepseek_v2" or "deepseek_v3".
  llvm::StringRef modelType() const;

  /// Returns qk_nope_head_dim + qk_rope_head_dim.
  int64_t qkHeadDim() const { return QkNopeHeadDim + QkRopeHeadDim; }
  /// Returns the number of outputs of q_proj / q_b_proj: H * qkHeadDim().
  int64_t queryWidth() const { return NumAttentionHeads * qkHeadDim(); }
  /// Returns the width of the shared-expert MLP: S * moe_intermediate_size.
  int64_t sharedExpertWidth() const {
    return NumSharedExperts * MoeIntermediateSize;
  }
  /// Returns E / n_group.
  int64_t expertsPerGroup() const { return NumRoutedExperts / NumGroups; }

  /// Returns true when layer \p Layer (< NumHiddenLayers) uses the MoE MLP.
  bool isMoeLayer(int64_t Layer) const;

  /// Returns how expert groups are ranked: greedy -> None,
  /// group_limited_greedy -> Max, noaux_tc -> Top2Sum.
  GroupScore groupScore() const;
  /// Returns true when routing drops groups (groupScore() != None and
  /// topk_group < n_group).
  bool hasGroupLimit() const;
  /// Returns true when each MoE layer has `mlp.gate.e_score_correction_bias`
  /// (topk_method noaux_tc).
  bool hasCorrectionBias() const;

  /// Returns the YaRN m^2 factor of the softmax scale (1 without YaRN):
  /// m = 0.1 * mscale_all_dim * ln(factor) + 1 when factor > 1 and
  /// mscale_all_dim != 0.
  double yarnSoftmaxFactor() const;
  /// Returns the attention softmax scale: qkHeadDim()^-0.5 *
  /// yarnSoftmaxFactor().
  double softmaxScale() const;
  /// Returns the qk_rope_head_dim / 2 rotation frequencies f'_j (radians per
  /// position) of spec section 4, YaRN applied, computed in fp32.
  std::vector<float> ropeFrequencies() const;
};

/// Parses config.json text. \p FileName prefixes every error, which names the
/// offending key(s), e.g. "ckpt/config.json: 'topk_group' (5) must not exceed
/// 'n_group' (4)". Checks types, required keys and contradictory values.
llvm::Expected<ModelConfig> parseModelConfig(llvm::StringRef JsonText,
                                             llvm::StringRef FileName);

/// Reads and parses the config.json at \p Path (see parseModelConfig).
llvm::Expected<ModelConfig> loadModelConfig(llvm::StringRef Path);

/// Checks the relations between fields of a config (the same checks
/// parseModelConfig runs after reading the keys). Errors name the keys and are
/// prefixed with \p FileName.
llvm::Error verifyModelConfig(const ModelConfig &Config,
                              llvm::StringRef FileName);

/// Serialises \p Config as a Hugging Face config.json (keys sorted, 2-space
/// indent, trailing newline); parseModelConfig reads it back unchanged.
std::string modelConfigToJson(const ModelConfig &Config);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_MODELCONFIG_H
