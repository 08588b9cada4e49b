//===- SyntheticTest.cpp - Synthetic checkpoints: presets, determinism ----===//
#include "moec/checkpoint/Synthetic.h"
#include "TestUtil.h"
#include "moec/checkpoint/FloatFormats.h"
#include "moec/checkpoint/Random.h"
#include "moec/checkpoint/TensorManifest.h"
#include "moec/checkpoint/TensorValues.h"
#include "moec/checkpoint/Validate.h"

#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace moec::checkpoint;
using namespace moec::checkpoint::test;

namespace {

/// Writes preset \p Preset into \p Dir and opens it.
std::unique_ptr<Checkpoint> synth(const TempDir &Dir, llvm::StringRef Preset,
                                  const SynthOptions &Options) {
  llvm::Error Err = writeSyntheticCheckpoint(Preset, Dir.path(), Options);
  EXPECT_EQ(errorText(std::move(Err)), "");
  auto Ckpt = Checkpoint::open(Dir.path());
  EXPECT_TRUE(bool(Ckpt)) << errorText(Ckpt);
  return Ckpt ? std::move(*Ckpt) : nullptr;
}

TEST(RandomTest, SplitMix64KnownSequence) {
  // Reference values of splitmix64 seeded with 0.
  SplitMix64 Rng(0);
  EXPECT_EQ(Rng.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(Rng.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(Rng.next(), 0x06C45D188009454FULL);
}

TEST(RandomTest, NormalDrawsHaveUnitVariance) {
  SplitMix64 Rng(7);
  double Sum = 0, SumSquares = 0;
  const int Count = 200000;
  for (int I = 0; I < Count; ++I) {
    double Value = Rng.normal();
    Sum += Value;
    SumSquares += Value * Value;
  }
  EXPECT_NEAR(Sum / Count, 0.0, 0.01);
  EXPECT_NEAR(SumSquares / Count, 1.0, 0.01);
  EXPECT_NE(deriveSeed(1, "a"), deriveSeed(1, "b"));
  EXPECT_NE(deriveSeed(1, "a"), deriveSeed(2, "a"));
}

TEST(SyntheticTest, ListsPresets) {
  std::vector<std::string> Names;
  for (const SynthPreset &Preset : syntheticPresets()) {
    Names.push_back(Preset.Name.str());
    EXPECT_FALSE(Preset.Description.empty());
    EXPECT_TRUE(bool(syntheticPresetConfig(Preset.Name))) << Preset.Name.str();
  }
  EXPECT_EQ(Names, (std::vector<std::string>{"tiny-v3", "tiny-v2",
                                             "tiny-v2-grouped", "v2-lite-4l",
                                             "v2-lite-8l"}));
  auto Unknown = syntheticPresetConfig("huge");
  EXPECT_EQ(errorText(Unknown), "unknown preset 'huge' (valid: tiny-v3, tiny-v2, "
                                "tiny-v2-grouped, v2-lite-4l, v2-lite-8l)");
  // The measurement preset has DeepSeek-V2-Lite's shapes (written only by hand:
  // 4.3 GB).
  auto Lite = syntheticPresetConfig("v2-lite-4l");
  ASSERT_TRUE(bool(Lite));
  EXPECT_EQ(Lite->HiddenSize, 2048);
  EXPECT_EQ(Lite->KvLoraRank, 512);
  EXPECT_EQ(Lite->NumRoutedExperts, 64);
  EXPECT_EQ(Lite->MoeIntermediateSize, 1408);
  // The CPU-performance issue's v2lite-8L: the same with 8 layers, 1 dense.
  auto Lite8 = syntheticPresetConfig("v2-lite-8l");
  ASSERT_TRUE(bool(Lite8));
  EXPECT_EQ(Lite8->NumHiddenLayers, 8);
  EXPECT_EQ(Lite8->FirstKDenseReplace, 1);
  EXPECT_EQ(Lite8->VocabSize, 102400);
  EXPECT_EQ(Lite8->IntermediateSize, 10944);
  EXPECT_EQ(Lite8->NumExpertsPerTok, 6);
  EXPECT_EQ(Lite8->NumSharedExperts, 2);
  EXPECT_FALSE(Lite8->QLoraRank.has_value());
}

TEST(SyntheticTest, TinyV3ReadsBackAndValidates) {
  TempDir Dir;
  std::unique_ptr<Checkpoint> Ckpt = synth(Dir, "tiny-v3", SynthOptions());
  ASSERT_TRUE(Ckpt);
  const ModelConfig &Config = Ckpt->config();
  EXPECT_EQ(Config.Arch, Architecture::DeepseekV3);
  EXPECT_EQ(Config.HiddenSize, 256);
  EXPECT_EQ(Config.NumAttentionHeads, 4);
  EXPECT_EQ(Config.QLoraRank, std::optional<int64_t>(96));
  EXPECT_EQ(Config.NumRoutedExperts, 16);
  EXPECT_EQ(Config.NumGroups, 4);
  EXPECT_EQ(Config.TopkGroup, 2);
  EXPECT_EQ(Config.NumExpertsPerTok, 4);
  EXPECT_EQ(Config.NumHiddenLayers, 3);
  EXPECT_EQ(Config.VocabSize, 1024);
  EXPECT_TRUE(Config.hasCorrectionBias());
  EXPECT_TRUE(Config.RopeScaling.has_value());
  EXPECT_GT(Config.yarnSoftmaxFactor(), 1.0);
  EXPECT_FALSE(Config.Quantization.has_value());

  auto Notes = validateCheckpoint(*Ckpt);
  ASSERT_TRUE(bool(Notes)) << errorText(Notes);
  EXPECT_TRUE(Notes->empty());
  EXPECT_EQ(Ckpt->size(), expectedTensors(Config).size());
  EXPECT_EQ(
      Ckpt->lookup("model.layers.1.mlp.gate.e_score_correction_bias")->Type,
      DType::F32);
  EXPECT_EQ(
      Ckpt->lookup("model.layers.1.mlp.experts.15.down_proj.weight")->Type,
      DType::BF16);
}

TEST(SyntheticTest, OtherPresetsValidate) {
  for (llvm::StringRef Preset : {"tiny-v2", "tiny-v2-grouped"}) {
    TempDir Dir;
    std::unique_ptr<Checkpoint> Ckpt = synth(Dir, Preset, SynthOptions());
    ASSERT_TRUE(Ckpt);
    auto Notes = validateCheckpoint(*Ckpt);
    ASSERT_TRUE(bool(Notes)) << errorText(Notes);
    EXPECT_EQ(Ckpt->config().Arch, Architecture::DeepseekV2);
    EXPECT_FALSE(Ckpt->config().hasCorrectionBias());
    EXPECT_EQ(Ckpt->lookup("model.layers.1.mlp.gate.e_score_correction_bias"),
              nullptr);
  }
  TempDir Dir;
  std::unique_ptr<Checkpoint> V2 = synth(Dir, "tiny-v2", SynthOptions());
  ASSERT_TRUE(V2);
  EXPECT_NE(V2->lookup("model.layers.0.self_attn.q_proj.weight"), nullptr);
  EXPECT_EQ(V2->config().Scoring, ScoringFunc::Softmax);
  EXPECT_EQ(V2->config().groupScore(), GroupScore::None);
}

TEST(SyntheticTest, SameSeedSameBytes) {
  TempDir A, B, C;
  SynthOptions Options;
  Options.Seed = 1234;
  ASSERT_EQ(errorText(writeSyntheticCheckpoint("tiny-v3", A.path(), Options)),
            "");
  ASSERT_EQ(errorText(writeSyntheticCheckpoint("tiny-v3", B.path(), Options)),
            "");
  Options.Seed = 1235;
  ASSERT_EQ(errorText(writeSyntheticCheckpoint("tiny-v3", C.path(), Options)),
            "");
  std::string Bytes = readFile(A.file("model.safetensors"));
  EXPECT_GT(Bytes.size(), 1000000u);
  EXPECT_TRUE(Bytes == readFile(B.file("model.safetensors")));
  EXPECT_FALSE(Bytes == readFile(C.file("model.safetensors")));
  EXPECT_EQ(readFile(A.file("config.json")), readFile(B.file("config.json")));

  // Pin exact values so a change of generator is noticed: the first values of
  // the embedding are N(0,1) draws of the stream for its name, rounded to bf16.
  auto Ckpt = Checkpoint::open(A.path());
  ASSERT_TRUE(bool(Ckpt)) << errorText(Ckpt);
  const TensorInfo *Embed = (*Ckpt)->lookup("model.embed_tokens.weight");
  SplitMix64 Rng(deriveSeed(1234, "model.embed_tokens.weight"));
  float Values[4];
  decodeToFloat(DType::BF16, Embed->Data, 4, Values);
  for (float Value : Values)
    EXPECT_EQ(Value,
              bf16ToFloat(floatToBF16(static_cast<float>(Rng.normal()))));
}

TEST(SyntheticTest, ShardedEqualsSingleFile) {
  TempDir Single, Sharded;
  SynthOptions Options;
  ASSERT_EQ(
      errorText(writeSyntheticCheckpoint("tiny-v3", Single.path(), Options)),
      "");
  Options.NumShards = 3;
  ASSERT_EQ(
      errorText(writeSyntheticCheckpoint("tiny-v3", Sharded.path(), Options)),
      "");
  auto One = Checkpoint::open(Single.path());
  auto Many = Checkpoint::open(Sharded.path());
  ASSERT_TRUE(bool(One)) << errorText(One);
  ASSERT_TRUE(bool(Many)) << errorText(Many);
  EXPECT_TRUE((*Many)->isSharded());
  EXPECT_EQ((*Many)->files().size(), 3u);
  auto Notes = validateCheckpoint(**Many);
  ASSERT_TRUE(bool(Notes)) << errorText(Notes);
  ASSERT_EQ((*One)->size(), (*Many)->size());
  for (const TensorInfo *Tensor : (*One)->tensors()) {
    const TensorInfo *Other = (*Many)->lookup(Tensor->Name);
    ASSERT_NE(Other, nullptr) << Tensor->Name;
    EXPECT_EQ(Other->Shape, Tensor->Shape);
    ASSERT_TRUE(Other->bytes() == Tensor->bytes()) << Tensor->Name;
  }
}

TEST(SyntheticTest, Fp8WeightsDequantiseCloseToBF16) {
  TempDir Plain, Fp8;
  SynthOptions Options;
  Options.Seed = 9;
  ASSERT_EQ(
      errorText(writeSyntheticCheckpoint("tiny-v3", Plain.path(), Options)),
      "");
  Options.Fp8 = true;
  ASSERT_EQ(errorText(writeSyntheticCheckpoint("tiny-v3", Fp8.path(), Options)),
            "");
  auto Reference = Checkpoint::open(Plain.path());
  auto Quantized = Checkpoint::open(Fp8.path());
  ASSERT_TRUE(bool(Reference)) << errorText(Reference);
  ASSERT_TRUE(bool(Quantized)) << errorText(Quantized);
  ASSERT_TRUE((*Quantized)->config().Quantization.has_value());
  auto Notes = validateCheckpoint(**Quantized);
  ASSERT_TRUE(bool(Notes)) << errorText(Notes);

  // q_b_proj is [192, 96]: two row blocks (the second partial), one partial
  // column block.
  const std::string Name = "model.layers.2.self_attn.q_b_proj.weight";
  const TensorInfo *Weight = (*Quantized)->lookup(Name);
  ASSERT_EQ(Weight->Type, DType::F8_E4M3);
  const TensorInfo *Scale = (*Quantized)->lookup(Name + "_scale_inv");
  ASSERT_EQ(Scale->Shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ((*Quantized)->lookup("model.layers.2.mlp.gate.weight")->Type,
            DType::BF16);
  EXPECT_EQ((*Quantized)->lookup("model.norm.weight")->Type, DType::BF16);

  auto Exact = readTensorAsFloat(**Reference, Name);
  auto Dequantised = readTensorAsFloat(**Quantized, Name);
  ASSERT_TRUE(bool(Exact)) << errorText(Exact);
  ASSERT_TRUE(bool(Dequantised)) << errorText(Dequantised);
  float Scales[2];
  decodeToFloat(DType::F32, Scale->Data, 2, Scales);
  for (int Block = 0; Block < 2; ++Block) {
    // The scale is amax / 448 of the block's (unrounded) values.
    float Amax = 0;
    for (int64_t I = Block * 128; I < std::min<int64_t>(192, (Block + 1) * 128);
         ++I)
      for (int64_t J = 0; J < 96; ++J)
        Amax = std::max(Amax, std::fabs((*Exact)[I * 96 + J]));
    EXPECT_NEAR(Scales[Block], Amax / 448, Amax / 448 / 128);
  }
  for (int64_t I = 0; I < 192; ++I)
    for (int64_t J = 0; J < 96; ++J) {
      float Want = (*Exact)[I * 96 + J];
      float Got = (*Dequantised)[I * 96 + J];
      float Step = Scales[I / 128];
      ASSERT_EQ(Got, e4m3ToFloat(Weight->Data[I * 96 + J]) * Step);
      ASSERT_LE(std::fabs(Got - Want),
                std::fabs(Want) * (1.0f / 16 + 1.0f / 128) +
                    Step * std::ldexp(1.0f, -9))
          << I << "," << J;
    }
}

TEST(SyntheticTest, MagnitudesKeepActivationsHealthy) {
  TempDir Dir;
  SynthOptions Options;
  Options.WeightType = DType::F32;
  std::unique_ptr<Checkpoint> Ckpt = synth(Dir, "tiny-v3", Options);
  ASSERT_TRUE(Ckpt);
  auto MeanSquare = [&](const std::string &Name, double Center) {
    auto Values = readTensorAsFloat(*Ckpt, Name);
    EXPECT_TRUE(bool(Values)) << errorText(Values);
    double Sum = 0;
    for (float Value : *Values)
      Sum += (Value - Center) * (Value - Center);
    return Sum / Values->size();
  };
  EXPECT_NEAR(MeanSquare("model.embed_tokens.weight", 0), 1.0, 0.02);
  EXPECT_NEAR(MeanSquare("model.layers.1.mlp.experts.0.up_proj.weight", 0),
              1.0 / 256, 0.1 / 256);
  EXPECT_NEAR(MeanSquare("model.layers.1.mlp.experts.0.down_proj.weight", 0),
              1.0 / 128, 0.1 / 128);
  EXPECT_NEAR(MeanSquare("model.layers.0.input_layernorm.weight", 1.0), 0.01,
              0.004);
  // Router logits of a unit-RMS input have unit variance: scores are distinct.
  EXPECT_NEAR(MeanSquare("model.layers.1.mlp.gate.weight", 0), 1.0 / 256,
              0.1 / 256);
}

TEST(SyntheticTest, RejectsBadOptions) {
  TempDir Dir;
  SynthOptions Options;
  Options.WeightType = DType::F8_E4M3;
  EXPECT_EQ(
      errorText(writeSyntheticCheckpoint("tiny-v3", Dir.path(), Options)),
      Dir.path() +
          ": synthetic weight type must be BF16, F16 or F32, got F8_E4M3");
  EXPECT_EQ(
      errorText(writeSyntheticCheckpoint("nope", Dir.path(), SynthOptions())),
      "unknown preset 'nope' (valid: tiny-v3, tiny-v2, tiny-v2-grouped, "
            "v2-lite-4l, v2-lite-8l)");
  EXPECT_FALSE(llvm::sys::fs::exists(Dir.file("config.json")));
}

} // namespace
