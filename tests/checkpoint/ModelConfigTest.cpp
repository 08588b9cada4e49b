//===- ModelConfigTest.cpp - config.json parsing, defaults, derived values ===//
#include "moec/checkpoint/ModelConfig.h"
#include "TestUtil.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

using namespace moec::checkpoint;
using namespace moec::checkpoint::test;
using json = nlohmann::json;

namespace {

/// DeepSeek-V3's released config.json (the keys the compiler reads).
const char *V3Config = R"({
  "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
  "vocab_size": 129280, "hidden_size": 7168, "intermediate_size": 18432,
  "moe_intermediate_size": 2048, "num_hidden_layers": 61, "first_k_dense_replace": 3,
  "num_attention_heads": 128, "num_key_value_heads": 128, "n_routed_experts": 256,
  "n_shared_experts": 1, "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4,
  "scoring_func": "sigmoid", "topk_method": "noaux_tc", "routed_scaling_factor": 2.5,
  "norm_topk_prob": true, "q_lora_rank": 1536, "kv_lora_rank": 512,
  "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
  "rope_theta": 10000, "rms_norm_eps": 1e-06, "max_position_embeddings": 163840,
  "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                   "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
  "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3",
                          "quant_method": "fp8", "weight_block_size": [128, 128]},
  "tie_word_embeddings": false, "hidden_act": "silu", "attention_bias": false,
  "moe_layer_freq": 1, "torch_dtype": "bfloat16"
})";

/// DeepSeek-V2-Lite's released config.json (the keys the compiler reads).
const char *V2LiteConfig = R"({
  "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
  "vocab_size": 102400, "hidden_size": 2048, "intermediate_size": 10944,
  "moe_intermediate_size": 1408, "num_hidden_layers": 27, "first_k_dense_replace": 1,
  "num_attention_heads": 16, "num_key_value_heads": 16, "n_routed_experts": 64,
  "n_shared_experts": 2, "num_experts_per_tok": 6, "n_group": 1, "topk_group": 1,
  "scoring_func": "softmax", "topk_method": "greedy", "routed_scaling_factor": 1.0,
  "norm_topk_prob": false, "q_lora_rank": null, "kv_lora_rank": 512,
  "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
  "rope_theta": 10000, "rms_norm_eps": 1e-06, "max_position_embeddings": 163840,
  "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                   "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707},
  "tie_word_embeddings": false
})";

/// Parses the small V3 config with \p Key set to \p Value (null erases it).
llvm::Expected<ModelConfig> parseEdited(const std::string &Key,
                                        const json &Value, bool Erase = false) {
  json Config = json::parse(smallV3ConfigJson());
  if (Erase)
    Config.erase(Key);
  else
    Config[Key] = Value;
  return parseModelConfig(Config.dump(), "ckpt/config.json");
}

/// Returns the error of parsing the small V3 config patched with \p Edits.
std::string patchError(const json &Edits) {
  json Config = json::parse(smallV3ConfigJson());
  Config.merge_patch(Edits);
  llvm::Expected<ModelConfig> Parsed =
      parseModelConfig(Config.dump(), "ckpt/config.json");
  return errorText(Parsed);
}

std::string editError(const std::string &Key, const json &Value) {
  llvm::Expected<ModelConfig> Config = parseEdited(Key, Value);
  return errorText(Config);
}

TEST(ModelConfigTest, ParsesDeepSeekV3) {
  llvm::Expected<ModelConfig> Config =
      parseModelConfig(V3Config, "v3/config.json");
  ASSERT_TRUE(bool(Config)) << errorText(Config);
  EXPECT_EQ(Config->Arch, Architecture::DeepseekV3);
  EXPECT_EQ(Config->HiddenSize, 7168);
  EXPECT_EQ(Config->NumRoutedExperts, 256);
  EXPECT_EQ(Config->QLoraRank, std::optional<int64_t>(1536));
  EXPECT_EQ(Config->Scoring, ScoringFunc::Sigmoid);
  EXPECT_EQ(Config->groupScore(), GroupScore::Top2Sum);
  EXPECT_TRUE(Config->hasGroupLimit());
  EXPECT_TRUE(Config->hasCorrectionBias());
  EXPECT_FALSE(Config->isMoeLayer(2));
  EXPECT_TRUE(Config->isMoeLayer(3));
  EXPECT_EQ(Config->qkHeadDim(), 192);
  EXPECT_EQ(Config->sharedExpertWidth(), 2048);
  ASSERT_TRUE(Config->Quantization.has_value());
  EXPECT_EQ(Config->Quantization->BlockRows, 128);
  ASSERT_TRUE(Config->RopeScaling.has_value());
  EXPECT_DOUBLE_EQ(Config->RopeScaling->Factor, 40.0);
  // Spec section 4: V3 m^2 = 1.87385, scale 0.135234.
  EXPECT_NEAR(Config->yarnSoftmaxFactor(), 1.87385, 1e-5);
  EXPECT_NEAR(Config->softmaxScale(), 0.135234, 1e-6);
}

TEST(ModelConfigTest, ParsesDeepSeekV2Lite) {
  llvm::Expected<ModelConfig> Config =
      parseModelConfig(V2LiteConfig, "v2/config.json");
  ASSERT_TRUE(bool(Config)) << errorText(Config);
  EXPECT_EQ(Config->Arch, Architecture::DeepseekV2);
  EXPECT_FALSE(Config->QLoraRank.has_value());
  EXPECT_EQ(Config->Topk, TopkMethod::Greedy);
  EXPECT_EQ(Config->groupScore(), GroupScore::None);
  EXPECT_FALSE(Config->hasGroupLimit());
  EXPECT_FALSE(Config->hasCorrectionBias());
  EXPECT_FALSE(Config->Quantization.has_value());
  EXPECT_EQ(Config->sharedExpertWidth(), 2816);
  // mscale_all_dim 0.707: m^2 = 1.58963; scale = 1.58963 / sqrt(192).
  EXPECT_NEAR(Config->yarnSoftmaxFactor(), 1.58963, 1e-5);
  EXPECT_NEAR(Config->softmaxScale(), 1.58963 / std::sqrt(192.0), 1e-6);
}

TEST(ModelConfigTest, GroupLimitedGreedyRanksGroupsByMax) {
  llvm::Expected<ModelConfig> Config =
      parseEdited("topk_method", "group_limited_greedy");
  ASSERT_TRUE(bool(Config)) << errorText(Config);
  EXPECT_EQ(Config->groupScore(), GroupScore::Max);
  EXPECT_FALSE(Config->hasCorrectionBias());
}

TEST(ModelConfigTest, AppliesConfigClassDefaults) {
  // Only the required keys: the rest take DeepseekV3Config's defaults.
  json Minimal = {{"architectures", {"DeepseekV3ForCausalLM"}},
                  {"vocab_size", 64},
                  {"hidden_size", 32},
                  {"intermediate_size", 48},
                  {"moe_intermediate_size", 16},
                  {"num_hidden_layers", 4},
                  {"num_attention_heads", 2},
                  {"n_routed_experts", 16},
                  {"num_experts_per_tok", 4},
                  {"kv_lora_rank", 16},
                  {"qk_nope_head_dim", 8},
                  {"qk_rope_head_dim", 4},
                  {"v_head_dim", 8}};
  llvm::Expected<ModelConfig> Config =
      parseModelConfig(Minimal.dump(), "config.json");
  ASSERT_TRUE(bool(Config)) << errorText(Config);
  EXPECT_EQ(Config->FirstKDenseReplace, 3);
  EXPECT_EQ(Config->NumSharedExperts, 1);
  EXPECT_EQ(Config->NumGroups, 8);
  EXPECT_EQ(Config->TopkGroup, 4);
  EXPECT_EQ(Config->QLoraRank, std::optional<int64_t>(1536));
  EXPECT_EQ(Config->Topk, TopkMethod::NoauxTc);
  EXPECT_EQ(Config->NumKeyValueHeads, 2);
  EXPECT_DOUBLE_EQ(Config->RoutedScalingFactor, 2.5);
  EXPECT_TRUE(Config->NormTopkProb);
  EXPECT_FALSE(Config->RopeScaling.has_value());
  EXPECT_DOUBLE_EQ(Config->softmaxScale(), 1.0 / std::sqrt(12.0));

  // The same keys as a V2 model take DeepseekV2Config's defaults.
  Minimal["architectures"] = {"DeepseekV2ForCausalLM"};
  Config = parseModelConfig(Minimal.dump(), "config.json");
  ASSERT_TRUE(bool(Config)) << errorText(Config);
  EXPECT_EQ(Config->FirstKDenseReplace, 0);
  EXPECT_EQ(Config->NumSharedExperts, 0);
  EXPECT_EQ(Config->NumGroups, 1);
  EXPECT_EQ(Config->Topk, TopkMethod::Greedy);
  EXPECT_EQ(Config->Scoring, ScoringFunc::Softmax);
  EXPECT_FALSE(Config->NormTopkProb);
}

TEST(ModelConfigTest, NullQLoraRankMeansSingleQProj) {
  llvm::Expected<ModelConfig> Config = parseEdited("q_lora_rank", nullptr);
  ASSERT_TRUE(bool(Config)) << errorText(Config);
  EXPECT_FALSE(Config->QLoraRank.has_value());
  Config = parseEdited("q_lora_rank", nullptr, /*Erase=*/true);
  ASSERT_TRUE(bool(Config)) << errorText(Config);
  EXPECT_EQ(Config->QLoraRank, std::optional<int64_t>(1536));
}

TEST(ModelConfigTest, RopeFrequenciesFollowYarn) {
  json Config = json::parse(smallV3ConfigJson());
  Config["qk_rope_head_dim"] = 16;
  llvm::Expected<ModelConfig> Plain =
      parseModelConfig(Config.dump(), "config.json");
  ASSERT_TRUE(bool(Plain)) << errorText(Plain);
  std::vector<float> Base = Plain->ropeFrequencies();
  ASSERT_EQ(Base.size(), 8u);
  for (int J = 0; J < 8; ++J)
    EXPECT_FLOAT_EQ(Base[J], std::pow(10000.0f, -2.0f * J / 16));

  // d 16, orig 128, theta 1e4: cd(32) < 0 -> low 0; cd(1) = 2.62 -> high 3.
  Config["rope_scaling"] = {{"type", "yarn"},
                            {"factor", 4.0},
                            {"original_max_position_embeddings", 128},
                            {"beta_fast", 32},
                            {"beta_slow", 1},
                            {"mscale", 1.0},
                            {"mscale_all_dim", 1.0}};
  llvm::Expected<ModelConfig> Yarn =
      parseModelConfig(Config.dump(), "config.json");
  ASSERT_TRUE(bool(Yarn)) << errorText(Yarn);
  std::vector<float> Scaled = Yarn->ropeFrequencies();
  EXPECT_FLOAT_EQ(Scaled[0], Base[0]);
  float Ramp1 = 1.0f / 3.0f;
  EXPECT_FLOAT_EQ(Scaled[1], Base[1] * (1 - Ramp1) + Base[1] / 4 * Ramp1);
  for (int J = 3; J < 8; ++J)
    EXPECT_FLOAT_EQ(Scaled[J], Base[J] / 4);
}

TEST(ModelConfigTest, JsonRoundTrip) {
  llvm::Expected<ModelConfig> Config =
      parseModelConfig(V3Config, "v3/config.json");
  ASSERT_TRUE(bool(Config)) << errorText(Config);
  llvm::Expected<ModelConfig> Again =
      parseModelConfig(modelConfigToJson(*Config), "again.json");
  ASSERT_TRUE(bool(Again)) << errorText(Again);
  EXPECT_EQ(modelConfigToJson(*Again), modelConfigToJson(*Config));
  EXPECT_EQ(Again->MaxPositionEmbeddings, 163840);
  EXPECT_DOUBLE_EQ(Again->RopeScaling->MscaleAllDim, 1.0);
  EXPECT_DOUBLE_EQ(Again->RmsNormEps, 1e-6);
  EXPECT_TRUE(Again->Quantization.has_value());
}

TEST(ModelConfigErrorTest, MalformedJson) {
  llvm::Expected<ModelConfig> Config =
      parseModelConfig("{\"hidden_size\": 12,", "ckpt/config.json");
  EXPECT_TRUE(llvm::StringRef(errorText(Config))
                  .starts_with("ckpt/config.json: malformed JSON"));
}

TEST(ModelConfigErrorTest, UnknownArchitecture) {
  EXPECT_EQ(editError("architectures", {"LlamaForCausalLM"}),
            "ckpt/config.json: unsupported architecture 'LlamaForCausalLM' "
            "(expected DeepseekV2ForCausalLM or DeepseekV3ForCausalLM)");
  EXPECT_EQ(editError("model_type", "llama"),
            "ckpt/config.json: unsupported model_type 'llama' (expected "
            "deepseek_v2 or deepseek_v3)");
}

TEST(ModelConfigErrorTest, StringsFromTheFileAreEscaped) {
  EXPECT_EQ(editError("model_type", "llama\nok"),
            "ckpt/config.json: unsupported model_type 'llama\\x0Aok' (expected "
            "deepseek_v2 or deepseek_v3)");
  EXPECT_EQ(editError("hidden_act", "gelu\x7f\xc3\xa9"),
            "ckpt/config.json: key 'hidden_act' is 'gelu\\x7F\\xC3\\xA9'; DeepSeek "
            "MLPs use silu");
}

TEST(ModelConfigErrorTest, MissingRequiredKey) {
  llvm::Expected<ModelConfig> Config =
      parseEdited("hidden_size", 0, /*Erase=*/true);
  EXPECT_EQ(errorText(Config),
            "ckpt/config.json: missing required key 'hidden_size'");
}

TEST(ModelConfigErrorTest, WrongJsonType) {
  EXPECT_EQ(
      editError("hidden_size", "32"),
      "ckpt/config.json: key 'hidden_size' must be an integer, got string");
  EXPECT_EQ(editError("num_hidden_layers", 2.5),
            "ckpt/config.json: key 'num_hidden_layers' must be an integer, got "
            "number");
  EXPECT_EQ(
      editError("norm_topk_prob", 1),
      "ckpt/config.json: key 'norm_topk_prob' must be a boolean, got integer");
  EXPECT_EQ(editError("rope_scaling", "yarn"),
            "ckpt/config.json: key 'rope_scaling' must be an object or null, "
            "got string");
  EXPECT_EQ(editError("rope_scaling", {{"type", "yarn"}, {"factor", "4"}}),
            "ckpt/config.json: key 'rope_scaling.factor' must be a number, got "
            "string");
}

TEST(ModelConfigErrorTest, RopeKeysMoecDoesNotReadAreRefused) {
  EXPECT_EQ(editError("rope_interleave", false),
            "ckpt/config.json: key 'rope_interleave' is false; moec expects the "
            "checkpoint's interleaved rope dims");
  EXPECT_EQ(editError("rope_parameters", {{"rope_theta", 10000.0}}),
            "ckpt/config.json: key 'rope_parameters' is not supported; give "
            "'rope_theta' and 'rope_scaling' instead");
  // The default (interleaved) is accepted when spelled out.
  EXPECT_EQ(editError("rope_interleave", true), "<success>");
}

TEST(ModelConfigErrorTest, ContradictoryValues) {
  EXPECT_EQ(editError("topk_group", 3),
            "ckpt/config.json: 'topk_group' (3) must not exceed 'n_group' (2)");
  EXPECT_EQ(editError("n_routed_experts", 5),
            "ckpt/config.json: 'n_routed_experts' (5) is not a multiple of "
            "'n_group' (2)");
  EXPECT_EQ(
      editError("num_experts_per_tok", 3),
      "ckpt/config.json: 'num_experts_per_tok' (3) exceeds the experts in the "
      "kept groups: 'topk_group' (1) x 'n_routed_experts'/'n_group' (2) = 2");
  EXPECT_EQ(editError("first_k_dense_replace", 3),
            "ckpt/config.json: 'first_k_dense_replace' (3) exceeds "
            "'num_hidden_layers' (2)");
  EXPECT_EQ(
      editError("qk_rope_head_dim", 5),
      "ckpt/config.json: 'qk_rope_head_dim' (5) must be even (RoPE rotates "
      "pairs)");
  EXPECT_EQ(editError("num_key_value_heads", 1),
            "ckpt/config.json: 'num_key_value_heads' (1) must equal "
            "'num_attention_heads' (2) in MLA");
  EXPECT_EQ(
      editError("tie_word_embeddings", true),
      "ckpt/config.json: 'tie_word_embeddings' is true; DeepSeek models have "
      "a separate lm_head");
  EXPECT_EQ(
      patchError({{"n_group", 4}, {"num_experts_per_tok", 1}}),
      "ckpt/config.json: 'topk_method' noaux_tc ranks groups by their top-2 "
      "sum, but 'n_routed_experts'/'n_group' is 1");
  EXPECT_EQ(editError("hidden_size", -4),
            "ckpt/config.json: 'hidden_size' (-4) must be at least 1");
  EXPECT_EQ(
      editError("rope_scaling", {{"type", "yarn"},
                                 {"factor", 4.0},
                                 {"beta_fast", 1},
                                 {"beta_slow", 32}}),
      "ckpt/config.json: 'rope_scaling.beta_fast' (1) must be greater than "
      "'rope_scaling.beta_slow' (32), which must be positive");
}

TEST(ModelConfigErrorTest, UnsupportedChoices) {
  EXPECT_EQ(editError("topk_method", "top_p"),
            "ckpt/config.json: key 'topk_method' is 'top_p'; expected greedy, "
            "group_limited_greedy or noaux_tc");
  EXPECT_EQ(
      editError("scoring_func", "relu"),
      "ckpt/config.json: key 'scoring_func' is 'relu'; expected softmax or "
      "sigmoid");
  EXPECT_EQ(editError("rope_scaling", {{"type", "linear"}, {"factor", 2.0}}),
            "ckpt/config.json: unsupported 'rope_scaling.type' 'linear' (only "
            "yarn is supported)");
  EXPECT_EQ(
      editError("hidden_act", "gelu"),
      "ckpt/config.json: key 'hidden_act' is 'gelu'; DeepSeek MLPs use silu");
}

TEST(ModelConfigErrorTest, Fp8BlockSizeMustBe128) {
  json Quant = {{"quant_method", "fp8"},
                {"fmt", "e4m3"},
                {"activation_scheme", "dynamic"},
                {"weight_block_size", {64, 64}}};
  EXPECT_EQ(
      editError("quantization_config", Quant),
      "ckpt/config.json: 'quantization_config.weight_block_size' is [64, 64]; "
      "only [128, 128] is supported");
  Quant["weight_block_size"] = {128, 128};
  Quant["quant_method"] = "awq";
  EXPECT_EQ(
      editError("quantization_config", Quant),
      "ckpt/config.json: key 'quantization_config.quant_method' is 'awq'; "
      "only fp8 is supported");
}

TEST(ModelConfigErrorTest, MissingFile) {
  llvm::Expected<ModelConfig> Config =
      loadModelConfig("/nonexistent/config.json");
  EXPECT_TRUE(llvm::StringRef(errorText(Config))
                  .starts_with("/nonexistent/config.json: cannot read file:"));
}

} // namespace
