//===- ValidateTest.cpp - Checking checkpoints against their config -------===//
#include "moec/checkpoint/Validate.h"
#include "TestUtil.h"
#include "moec/checkpoint/TensorManifest.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

using namespace moec::checkpoint;
using namespace moec::checkpoint::test;
using json = nlohmann::json;

namespace {

/// Opens \p Dir and validates it; returns the error text ("" on success) and
/// stores the notes.
std::string validate(const TempDir &Dir,
                     std::vector<std::string> *Notes = nullptr) {
  auto Ckpt = Checkpoint::open(Dir.path());
  if (!Ckpt)
    return "open failed: " + errorText(Ckpt);
  auto Result = validateCheckpoint(**Ckpt);
  if (!Result)
    return errorText(Result);
  if (Notes)
    *Notes = *Result;
  return "";
}

/// The small V3 config with an FP8 quantization_config.
std::string fp8ConfigJson() {
  json Config = json::parse(smallV3ConfigJson());
  Config["quantization_config"] = {{"quant_method", "fp8"},
                                   {"fmt", "e4m3"},
                                   {"activation_scheme", "dynamic"},
                                   {"weight_block_size", {128, 128}}};
  return Config.dump();
}

const char *GateName = "model.layers.1.mlp.gate.weight";
const char *QbName = "model.layers.1.self_attn.q_b_proj.weight";

TEST(ManifestTest, ListsSpecTensorsForV3) {
  ModelConfig Config = smallV3Config();
  std::vector<ExpectedTensor> All = expectedTensors(Config);
  auto Find = [&](const std::string &Name) -> const ExpectedTensor * {
    for (const ExpectedTensor &Tensor : All)
      if (Tensor.Name == Name)
        return &Tensor;
    return nullptr;
  };
  // 3 global; per layer 9 attention + norms, then dense 3 or gate, bias,
  // 4x3, 3.
  EXPECT_EQ(All.size(), 3u + 9 + 3 + 9 + 2 + 12 + 3);
  ASSERT_NE(Find(GateName), nullptr);
  EXPECT_EQ(Find(GateName)->Shape, (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(Find(GateName)->Role, TensorRole::RouterGate);
  EXPECT_EQ(Find("model.layers.1.mlp.gate.e_score_correction_bias")->Role,
            TensorRole::RouterBias);
  EXPECT_EQ(Find(QbName)->Shape, (std::vector<int64_t>{24, 24}));
  EXPECT_EQ(Find("model.layers.0.self_attn.kv_a_proj_with_mqa.weight")->Shape,
            (std::vector<int64_t>{20, 32}));
  EXPECT_EQ(Find("model.layers.0.self_attn.kv_b_proj.weight")->Shape,
            (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(Find("model.layers.0.self_attn.o_proj.weight")->Shape,
            (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(Find("model.layers.0.mlp.down_proj.weight")->Shape,
            (std::vector<int64_t>{32, 48}));
  EXPECT_EQ(Find("model.layers.1.mlp.experts.3.up_proj.weight")->Shape,
            (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(Find("model.layers.1.mlp.shared_experts.down_proj.weight")->Shape,
            (std::vector<int64_t>{32, 16}));
  EXPECT_EQ(Find("model.layers.0.mlp.gate.weight"), nullptr);
  EXPECT_EQ(Find("model.layers.0.self_attn.q_proj.weight"), nullptr);
}

TEST(ManifestTest, V2WithoutQLoraUsesQProjAndNoBias) {
  json Edited = json::parse(smallV3ConfigJson());
  Edited["architectures"] = {"DeepseekV2ForCausalLM"};
  Edited["model_type"] = "deepseek_v2";
  Edited["q_lora_rank"] = nullptr;
  Edited["topk_method"] = "greedy";
  Edited["scoring_func"] = "softmax";
  auto Config = parseModelConfig(Edited.dump(), "config.json");
  ASSERT_TRUE(bool(Config)) << errorText(Config);
  std::vector<std::string> Names;
  for (const ExpectedTensor &Tensor : expectedTensors(*Config))
    Names.push_back(Tensor.Name);
  auto Has = [&](const std::string &Name) {
    return std::find(Names.begin(), Names.end(), Name) != Names.end();
  };
  EXPECT_TRUE(Has("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_FALSE(Has("model.layers.0.self_attn.q_a_proj.weight"));
  EXPECT_FALSE(Has("model.layers.0.self_attn.q_a_layernorm.weight"));
  EXPECT_FALSE(Has("model.layers.1.mlp.gate.e_score_correction_bias"));
  EXPECT_TRUE(Has(GateName));
}

TEST(ManifestTest, Helpers) {
  EXPECT_EQ(blockScaleShape(129, 256), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(blockScaleShape(128, 7168), (std::vector<int64_t>{1, 56}));
  EXPECT_EQ(scaleNameFor("a.weight"), "a.weight_scale_inv");
  EXPECT_EQ(layerIndexOf("model.layers.61.eh_proj.weight"),
            std::optional<int64_t>(61));
  EXPECT_EQ(layerIndexOf("model.layers.x.weight"), std::nullopt);
  EXPECT_EQ(layerIndexOf("model.norm.weight"), std::nullopt);
}

TEST(ValidateTest, CompleteCheckpointPasses) {
  TempDir Dir;
  writeCheckpoint(Dir, smallV3ConfigJson(), manifestTensors(smallV3Config()));
  std::vector<std::string> Notes{"sentinel"};
  EXPECT_EQ(validate(Dir, &Notes), "");
  EXPECT_TRUE(Notes.empty());
}

TEST(ValidateTest, MissingTensor) {
  TempDir Dir;
  TensorSet Tensors = manifestTensors(smallV3Config());
  Tensors.remove(GateName);
  writeCheckpoint(Dir, smallV3ConfigJson(), Tensors);
  EXPECT_EQ(validate(Dir),
            Dir.file("model.safetensors") +
                ": missing tensor 'model.layers.1.mlp.gate.weight' "
                "(expected shape [4, 32])");
}

TEST(ValidateTest, MissingCorrectionBias) {
  TempDir Dir;
  TensorSet Tensors = manifestTensors(smallV3Config());
  Tensors.remove("model.layers.1.mlp.gate.e_score_correction_bias");
  writeCheckpoint(Dir, smallV3ConfigJson(), Tensors, /*NumShards=*/2);
  EXPECT_EQ(
      validate(Dir),
      Dir.file("model.safetensors.index.json") +
          ": missing tensor 'model.layers.1.mlp.gate.e_score_correction_bias' "
          "(expected shape [4])");
}

TEST(ValidateTest, UnexpectedShapeNamesTheShard) {
  TempDir Dir;
  TensorSet Tensors = manifestTensors(smallV3Config());
  Tensors.retype(GateName, DType::BF16, {4, 16});
  writeCheckpoint(Dir, smallV3ConfigJson(), Tensors, /*NumShards=*/2);
  auto Ckpt = Checkpoint::open(Dir.path());
  ASSERT_TRUE(bool(Ckpt)) << errorText(Ckpt);
  std::string Shard = (*Ckpt)->lookup(GateName)->FilePath;
  EXPECT_NE(Shard, Dir.file("model.safetensors"));
  EXPECT_EQ(validate(Dir), Shard + ": tensor 'model.layers.1.mlp.gate.weight': "
                                   "expected shape [4, 32], got [4, 16]");
}

TEST(ValidateTest, Fp8NotAllowedOutsideProjections) {
  TempDir Dir;
  TensorSet Tensors = manifestTensors(smallV3Config());
  Tensors.retype(GateName, DType::F8_E4M3, {4, 32});
  writeCheckpoint(Dir, fp8ConfigJson(), Tensors);
  EXPECT_EQ(validate(Dir),
            Dir.file("model.safetensors") +
                ": tensor 'model.layers.1.mlp.gate.weight': dtype "
                "F8_E4M3 is not allowed here (expected BF16, F16 or "
                "F32: only projections are quantised)");
}

TEST(ValidateTest, Fp8NeedsQuantizationConfig) {
  TempDir Dir;
  TensorSet Tensors = manifestTensors(smallV3Config());
  Tensors.retype(QbName, DType::F8_E4M3, {24, 24});
  Tensors.add(scaleNameFor(QbName), DType::F32, {1, 1});
  writeCheckpoint(Dir, smallV3ConfigJson(), Tensors);
  EXPECT_EQ(validate(Dir), Dir.file("model.safetensors") + ": tensor '" +
                               std::string(QbName) +
                               "': dtype F8_E4M3 but config.json has no "
                               "quantization_config");
}

TEST(ValidateTest, Fp8ScaleChecks) {
  TempDir Dir;
  TensorSet Tensors = manifestTensors(smallV3Config());
  Tensors.retype(QbName, DType::F8_E4M3, {24, 24});
  writeCheckpoint(Dir, fp8ConfigJson(), Tensors);
  EXPECT_EQ(validate(Dir), Dir.file("model.safetensors") +
                               ": missing tensor '" + std::string(QbName) +
                               "_scale_inv' (block scale of F8_E4M3 weight '" +
                               QbName + "')");

  Tensors.add(scaleNameFor(QbName), DType::F32, {1, 2});
  writeCheckpoint(Dir, fp8ConfigJson(), Tensors);
  EXPECT_EQ(validate(Dir),
            Dir.file("model.safetensors") + ": tensor '" + std::string(QbName) +
                "_scale_inv': expected shape [1, 1], got [1, 2]");

  Tensors.retype(scaleNameFor(QbName), DType::BF16, {1, 1});
  writeCheckpoint(Dir, fp8ConfigJson(), Tensors);
  EXPECT_EQ(validate(Dir), Dir.file("model.safetensors") + ": tensor '" +
                               std::string(QbName) +
                               "_scale_inv': expected dtype F32, got BF16");

  Tensors.retype(scaleNameFor(QbName), DType::F32, {1, 1});
  writeCheckpoint(Dir, fp8ConfigJson(), Tensors);
  EXPECT_EQ(validate(Dir), "");
}

TEST(ValidateTest, ScaleWithoutFp8Weight) {
  TempDir Dir;
  TensorSet Tensors = manifestTensors(smallV3Config());
  Tensors.add(scaleNameFor(QbName), DType::F32, {1, 1});
  writeCheckpoint(Dir, smallV3ConfigJson(), Tensors);
  EXPECT_EQ(validate(Dir), Dir.file("model.safetensors") + ": tensor '" +
                               std::string(QbName) +
                               "_scale_inv' is present but '" + QbName +
                               "' is BF16, not F8_E4M3");
}

TEST(ValidateTest, MtpLayersAndUnusedTensorsBecomeNotes) {
  TempDir Dir;
  TensorSet Tensors = manifestTensors(smallV3Config());
  Tensors.add("model.layers.2.eh_proj.weight", DType::BF16, {32, 64});
  Tensors.add("model.layers.2.enorm.weight", DType::BF16, {32});
  Tensors.add("model.layers.0.self_attn.rotary_emb.inv_freq", DType::F32, {2});
  writeCheckpoint(Dir, smallV3ConfigJson(), Tensors);
  std::vector<std::string> Notes;
  ASSERT_EQ(validate(Dir, &Notes), "");
  ASSERT_EQ(Notes.size(), 2u);
  EXPECT_EQ(Notes[0],
            "skipping layer 2 (2 tensors): multi-token-prediction "
            "layers are past num_hidden_layers and unused by inference");
  EXPECT_EQ(Notes[1], "ignoring 1 tensor(s) the model does not use, e.g. "
                      "'model.layers.0.self_attn.rotary_emb.inv_freq'");
}

TEST(ValidateTest, AcceptsF32AndF16Weights) {
  TempDir Dir;
  TensorSet Tensors = manifestTensors(smallV3Config(), DType::F16);
  Tensors.retype(GateName, DType::F32, {4, 32});
  writeCheckpoint(Dir, smallV3ConfigJson(), Tensors);
  EXPECT_EQ(validate(Dir), "");
}

} // namespace
