//===- SyntheticPresets.cpp - Named configurations of tiny models ---------===//
#include "moec/checkpoint/Synthetic.h"

using namespace llvm;

namespace moec::checkpoint {

namespace {
const SynthPreset Presets[] = {
    {"tiny-v3",
     "DeepSeek-V3-shaped: D 256, 3 layers (1 dense), 4 heads, q_lora 96, "
     "16 experts in 4 groups (keep 2), top-4 + 1 shared, sigmoid/noaux_tc "
     "with bias, YaRN"},
    {"tiny-v2",
     "DeepSeek-V2-Lite-shaped: D 256, 3 layers (1 dense), 4 heads, no "
     "q_lora, 16 experts, top-4 + 2 shared, softmax/greedy, YaRN"},
    {"tiny-v2-grouped",
     "DeepSeek-V2-shaped: like tiny-v2 with q_lora 96 and "
     "group_limited_greedy routing (4 groups, keep 2), scale 16"},
    {"v2-lite-4l",
     "DeepSeek-V2-Lite's real shapes, 4 layers (1 dense): D 2048, vocab 102400, "
     "16 heads, kv_lora 512, 64 experts of 1408 top-6 + 2 shared; 4.3 GB bf16, "
     "for measurements (compile throughput, prefill, decode), not tests"},
    {"v2-lite-8l",
     "DeepSeek-V2-Lite's real shapes, 8 layers (1 dense): the CPU-performance "
     "issue's v2lite-8L, 4.59 B parameters (0.87 B active per token), 9.2 GB "
     "bf16, for measurements against llama.cpp, not tests"},
};

/// The fields every preset shares: tiny MLA dims that keep 128x128 FP8 blocks
/// partial at some edges, and YaRN active on the rope dims.
ModelConfig tinyBase() {
  ModelConfig C;
  C.VocabSize = 1024;
  C.HiddenSize = 256;
  C.IntermediateSize = 512;
  C.MoeIntermediateSize = 128;
  C.NumHiddenLayers = 3;
  C.FirstKDenseReplace = 1;
  C.MoeLayerFreq = 1;
  C.NumAttentionHeads = 4;
  C.NumKeyValueHeads = 4;
  C.NumRoutedExperts = 16;
  C.NumExpertsPerTok = 4;
  C.KvLoraRank = 64;
  C.QkNopeHeadDim = 32;
  C.QkRopeHeadDim = 16;
  C.VHeadDim = 32;
  C.RopeTheta = 10000.0;
  C.RmsNormEps = 1e-6;
  C.MaxPositionEmbeddings = 512;
  YarnScaling Yarn;
  Yarn.Factor = 4.0;
  Yarn.OriginalMaxPositionEmbeddings = 128;
  Yarn.BetaFast = 32.0;
  Yarn.BetaSlow = 1.0;
  C.RopeScaling = Yarn;
  return C;
}

ModelConfig tinyV3() {
  ModelConfig C = tinyBase();
  C.Arch = Architecture::DeepseekV3;
  C.QLoraRank = 96;
  C.NumSharedExperts = 1;
  C.NumGroups = 4;
  C.TopkGroup = 2;
  C.Scoring = ScoringFunc::Sigmoid;
  C.Topk = TopkMethod::NoauxTc;
  C.RoutedScalingFactor = 2.5;
  C.NormTopkProb = true;
  C.RopeScaling->Mscale = 1.0;
  C.RopeScaling->MscaleAllDim = 1.0;
  return C;
}

ModelConfig tinyV2() {
  ModelConfig C = tinyBase();
  C.Arch = Architecture::DeepseekV2;
  C.QLoraRank = std::nullopt;
  C.NumSharedExperts = 2;
  C.NumGroups = 1;
  C.TopkGroup = 1;
  C.Scoring = ScoringFunc::Softmax;
  C.Topk = TopkMethod::Greedy;
  C.RoutedScalingFactor = 1.0;
  C.NormTopkProb = false;
  C.RopeScaling->Mscale = 0.707;
  C.RopeScaling->MscaleAllDim = 0.707;
  return C;
}

ModelConfig tinyV2Grouped() {
  ModelConfig C = tinyV2();
  C.QLoraRank = 96;
  C.NumGroups = 4;
  C.TopkGroup = 2;
  C.Topk = TopkMethod::GroupLimitedGreedy;
  C.RoutedScalingFactor = 16.0;
  return C;
}
/// DeepSeek-V2-Lite (config.json of deepseek-ai/DeepSeek-V2-Lite) with 4 of its 27
/// layers: every tensor has its real shape.
ModelConfig v2Lite4Layers() {
  ModelConfig C = tinyV2();
  C.VocabSize = 102400;
  C.HiddenSize = 2048;
  C.IntermediateSize = 10944;
  C.MoeIntermediateSize = 1408;
  C.NumHiddenLayers = 4;
  C.NumAttentionHeads = 16;
  C.NumKeyValueHeads = 16;
  C.NumRoutedExperts = 64;
  C.NumExpertsPerTok = 6;
  C.KvLoraRank = 512;
  C.QkNopeHeadDim = 128;
  C.QkRopeHeadDim = 64;
  C.VHeadDim = 128;
  C.MaxPositionEmbeddings = 163840;
  C.RopeScaling->Factor = 40.0;
  C.RopeScaling->OriginalMaxPositionEmbeddings = 4096;
  return C;
}
/// The same with 8 of its 27 layers (the CPU-performance issue's "v2lite-8L").
ModelConfig v2Lite8Layers() {
  ModelConfig C = v2Lite4Layers();
  C.NumHiddenLayers = 8;
  return C;
}
} // namespace

ArrayRef<SynthPreset> syntheticPresets() { return Presets; }

Expected<ModelConfig> syntheticPresetConfig(StringRef Name) {
  if (Name == "tiny-v3")
    return tinyV3();
  if (Name == "tiny-v2")
    return tinyV2();
  if (Name == "tiny-v2-grouped")
    return tinyV2Grouped();
  if (Name == "v2-lite-4l")
    return v2Lite4Layers();
  if (Name == "v2-lite-8l")
    return v2Lite8Layers();
  std::string Valid;
  for (const SynthPreset &Preset : Presets)
    Valid += (Valid.empty() ? "" : ", ") + Preset.Name.str();
  return createStringError(inconvertibleErrorCode(), "unknown preset '" + Name +
                                                         "' (valid: " + Valid +
                                                         ")");
}

} // namespace moec::checkpoint
