//===- ModelConfig.cpp - Derived values and consistency checks ------------===//
#include "moec/checkpoint/ModelConfig.h"
#include "JsonFile.h"

#include <cmath>
#include <cstdio>

using namespace llvm;

namespace moec::checkpoint {

StringRef ModelConfig::architectureName() const {
  return Arch == Architecture::DeepseekV2 ? "DeepseekV2ForCausalLM"
                                          : "DeepseekV3ForCausalLM";
}

StringRef ModelConfig::modelType() const {
  return Arch == Architecture::DeepseekV2 ? "deepseek_v2" : "deepseek_v3";
}

bool ModelConfig::isMoeLayer(int64_t Layer) const {
  return Layer >= FirstKDenseReplace && MoeLayerFreq > 0 &&
         Layer % MoeLayerFreq == 0;
}

GroupScore ModelConfig::groupScore() const {
  switch (Topk) {
  case TopkMethod::Greedy:
    return GroupScore::None;
  case TopkMethod::GroupLimitedGreedy:
    return GroupScore::Max;
  case TopkMethod::NoauxTc:
    return GroupScore::Top2Sum;
  }
  return GroupScore::None;
}

bool ModelConfig::hasGroupLimit() const {
  return groupScore() != GroupScore::None && TopkGroup < NumGroups;
}

bool ModelConfig::hasCorrectionBias() const {
  return Topk == TopkMethod::NoauxTc;
}

double ModelConfig::yarnSoftmaxFactor() const {
  if (!RopeScaling || RopeScaling->MscaleAllDim == 0.0 ||
      RopeScaling->Factor <= 1.0)
    return 1.0;
  double M =
      0.1 * RopeScaling->MscaleAllDim * std::log(RopeScaling->Factor) + 1.0;
  return M * M;
}

double ModelConfig::softmaxScale() const {
  return yarnSoftmaxFactor() / std::sqrt(static_cast<double>(qkHeadDim()));
}

std::vector<float> ModelConfig::ropeFrequencies() const {
  int64_t Dim = QkRopeHeadDim;
  std::vector<float> Freqs(Dim / 2);
  float Theta = static_cast<float>(RopeTheta);
  for (int64_t J = 0; J < Dim / 2; ++J)
    Freqs[J] = 1.0f / std::pow(Theta, static_cast<float>(2 * J) / Dim);
  if (!RopeScaling)
    return Freqs;
  const YarnScaling &Yarn = *RopeScaling;
  auto CorrectionDim = [&](double Rotations) {
    return Dim *
           std::log(Yarn.OriginalMaxPositionEmbeddings /
                    (2 * M_PI * Rotations)) /
           (2 * std::log(RopeTheta));
  };
  double Low = std::max(std::floor(CorrectionDim(Yarn.BetaFast)), 0.0);
  double High = std::min(std::ceil(CorrectionDim(Yarn.BetaSlow)),
                         static_cast<double>(Dim - 1));
  if (Low == High)
    High += 0.001;
  float Factor = static_cast<float>(Yarn.Factor);
  for (int64_t J = 0; J < Dim / 2; ++J) {
    float Ramp = static_cast<float>((J - Low) / (High - Low));
    Ramp = std::min(std::max(Ramp, 0.0f), 1.0f);
    Freqs[J] = Freqs[J] * (1.0f - Ramp) + (Freqs[J] / Factor) * Ramp;
  }
  return Freqs;
}

namespace {
/// Formats a double for a message: 6 significant digits, no trailing zeros.
std::string num(double Value) {
  char Buffer[32];
  std::snprintf(Buffer, sizeof(Buffer), "%g", Value);
  return Buffer;
}

/// Largest accepted size or count: keeps every product of two in int64_t.
constexpr int64_t MaxDimension = (int64_t(1) << 31) - 1;
/// Refuse configs that describe more tensors than any real model has.
constexpr int64_t MaxTensorCount = 10'000'000;
} // namespace

Error verifyModelConfig(const ModelConfig &Config, StringRef FileName) {
  auto Fail = [&](const Twine &Message) {
    return fileError(FileName, Message);
  };

  struct Bounded {
    const char *Key;
    int64_t Value;
    int64_t Min;
  };
  bool HasDense = Config.NumHiddenLayers > 0 &&
                  (Config.FirstKDenseReplace > 0 || Config.MoeLayerFreq > 1);
  const Bounded Ranges[] = {
      {"vocab_size", Config.VocabSize, 1},
      {"hidden_size", Config.HiddenSize, 1},
      {"intermediate_size", Config.IntermediateSize, HasDense ? 1 : 0},
      {"moe_intermediate_size", Config.MoeIntermediateSize, 1},
      {"num_hidden_layers", Config.NumHiddenLayers, 1},
      {"first_k_dense_replace", Config.FirstKDenseReplace, 0},
      {"moe_layer_freq", Config.MoeLayerFreq, 1},
      {"num_attention_heads", Config.NumAttentionHeads, 1},
      {"num_key_value_heads", Config.NumKeyValueHeads, 1},
      {"n_routed_experts", Config.NumRoutedExperts, 1},
      {"n_shared_experts", Config.NumSharedExperts, 0},
      {"num_experts_per_tok", Config.NumExpertsPerTok, 1},
      {"n_group", Config.NumGroups, 1},
      {"topk_group", Config.TopkGroup, 1},
      {"q_lora_rank", Config.QLoraRank.value_or(1), 1},
      {"kv_lora_rank", Config.KvLoraRank, 1},
      {"qk_nope_head_dim", Config.QkNopeHeadDim, 1},
      {"qk_rope_head_dim", Config.QkRopeHeadDim, 2},
      {"v_head_dim", Config.VHeadDim, 1},
      {"max_position_embeddings", Config.MaxPositionEmbeddings, 1},
  };
  for (const Bounded &Range : Ranges) {
    if (Range.Value < Range.Min)
      return Fail("'" + Twine(Range.Key) + "' (" + Twine(Range.Value) +
                  ") must be at least " + Twine(Range.Min));
    if (Range.Value > MaxDimension)
      return Fail("'" + Twine(Range.Key) + "' (" + Twine(Range.Value) +
                  ") is larger than " + Twine(MaxDimension));
  }

  if (Config.FirstKDenseReplace > Config.NumHiddenLayers)
    return Fail("'first_k_dense_replace' (" + Twine(Config.FirstKDenseReplace) +
                ") exceeds 'num_hidden_layers' (" +
                Twine(Config.NumHiddenLayers) + ")");
  if (Config.QkRopeHeadDim % 2 != 0)
    return Fail("'qk_rope_head_dim' (" + Twine(Config.QkRopeHeadDim) +
                ") must be even (RoPE rotates pairs)");
  if (Config.NumKeyValueHeads != Config.NumAttentionHeads)
    return Fail("'num_key_value_heads' (" + Twine(Config.NumKeyValueHeads) +
                ") must equal 'num_attention_heads' (" +
                Twine(Config.NumAttentionHeads) + ") in MLA");
  if (Config.TopkGroup > Config.NumGroups)
    return Fail("'topk_group' (" + Twine(Config.TopkGroup) +
                ") must not exceed 'n_group' (" + Twine(Config.NumGroups) +
                ")");
  if (Config.NumRoutedExperts % Config.NumGroups != 0)
    return Fail("'n_routed_experts' (" + Twine(Config.NumRoutedExperts) +
                ") is not a multiple of 'n_group' (" + Twine(Config.NumGroups) +
                ")");
  if (Config.NumExpertsPerTok > Config.NumRoutedExperts)
    return Fail("'num_experts_per_tok' (" + Twine(Config.NumExpertsPerTok) +
                ") exceeds 'n_routed_experts' (" +
                Twine(Config.NumRoutedExperts) + ")");
  if (Config.groupScore() != GroupScore::None) {
    int64_t Kept = Config.TopkGroup * Config.expertsPerGroup();
    if (Config.NumExpertsPerTok > Kept)
      return Fail("'num_experts_per_tok' (" + Twine(Config.NumExpertsPerTok) +
                  ") exceeds the experts in the kept groups: 'topk_group' (" +
                  Twine(Config.TopkGroup) +
                  ") x 'n_routed_experts'/'n_group' (" +
                  Twine(Config.expertsPerGroup()) + ") = " + Twine(Kept));
  }
  if (Config.groupScore() == GroupScore::Top2Sum &&
      Config.expertsPerGroup() < 2)
    return Fail("'topk_method' noaux_tc ranks groups by their top-2 sum, but "
                "'n_routed_experts'/'n_group' is " +
                Twine(Config.expertsPerGroup()));
  if (Config.TieWordEmbeddings)
    return Fail(
        "'tie_word_embeddings' is true; DeepSeek models have a separate "
        "lm_head");
  if (!(Config.RopeTheta > 1.0) || !std::isfinite(Config.RopeTheta))
    return Fail("'rope_theta' (" + num(Config.RopeTheta) +
                ") must be a finite number greater than 1");
  if (!(Config.RmsNormEps > 0.0) || !std::isfinite(Config.RmsNormEps))
    return Fail("'rms_norm_eps' (" + num(Config.RmsNormEps) +
                ") must be a finite positive number");
  if (!std::isfinite(Config.RoutedScalingFactor) ||
      !(Config.RoutedScalingFactor > 0))
    return Fail("'routed_scaling_factor' (" + num(Config.RoutedScalingFactor) +
                ") must be a finite positive number");

  if (Config.RopeScaling) {
    const YarnScaling &Yarn = *Config.RopeScaling;
    if (!std::isfinite(Yarn.Factor) || !(Yarn.Factor > 0))
      return Fail("'rope_scaling.factor' (" + num(Yarn.Factor) +
                  ") must be a finite positive number");
    if (Yarn.OriginalMaxPositionEmbeddings < 1)
      return Fail("'rope_scaling.original_max_position_embeddings' (" +
                  Twine(Yarn.OriginalMaxPositionEmbeddings) +
                  ") must be positive");
    if (!(Yarn.BetaSlow > 0) || !std::isfinite(Yarn.BetaFast) ||
        !(Yarn.BetaFast > Yarn.BetaSlow))
      return Fail("'rope_scaling.beta_fast' (" + num(Yarn.BetaFast) +
                  ") must be greater than 'rope_scaling.beta_slow' (" +
                  num(Yarn.BetaSlow) + "), which must be positive");
    if (!std::isfinite(Yarn.Mscale) || !std::isfinite(Yarn.MscaleAllDim))
      return Fail(
          "'rope_scaling.mscale' and 'rope_scaling.mscale_all_dim' must "
          "be finite");
  }

  if (Config.Quantization && (Config.Quantization->BlockRows != 128 ||
                              Config.Quantization->BlockCols != 128))
    return Fail("'quantization_config.weight_block_size' is [" +
                Twine(Config.Quantization->BlockRows) + ", " +
                Twine(Config.Quantization->BlockCols) +
                "]; only [128, 128] is supported");

  // Per layer: about 20 fixed tensors plus 3 (or 6 with FP8 scales) per expert.
  int64_t PerLayer = 20 + 6 * Config.NumRoutedExperts;
  if (Config.NumHiddenLayers > MaxTensorCount / PerLayer)
    return Fail("'num_hidden_layers' (" + Twine(Config.NumHiddenLayers) +
                ") x 'n_routed_experts' (" + Twine(Config.NumRoutedExperts) +
                ") describes more than " + Twine(MaxTensorCount) + " tensors");
  return Error::success();
}

} // namespace moec::checkpoint
