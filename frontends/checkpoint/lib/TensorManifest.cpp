//===- TensorManifest.cpp - The tensors a DeepSeek model needs ------------===//
#include "moec/checkpoint/TensorManifest.h"

using namespace llvm;

namespace moec::checkpoint {

namespace {
/// Appends the tensors of one decoder layer.
void appendLayer(const ModelConfig &C, int64_t Layer,
                 std::vector<ExpectedTensor> &Out) {
  std::string Prefix = "model.layers." + std::to_string(Layer) + ".";
  auto Add = [&](const std::string &Suffix, std::vector<int64_t> Shape,
                 TensorRole Role) {
    Out.push_back({Prefix + Suffix, std::move(Shape), Role, Layer});
  };
  int64_t D = C.HiddenSize;
  Add("input_layernorm.weight", {D}, TensorRole::Norm);

  std::string Attn = "self_attn.";
  if (C.QLoraRank) {
    Add(Attn + "q_a_proj.weight", {*C.QLoraRank, D}, TensorRole::Linear);
    Add(Attn + "q_a_layernorm.weight", {*C.QLoraRank}, TensorRole::Norm);
    Add(Attn + "q_b_proj.weight", {C.queryWidth(), *C.QLoraRank},
        TensorRole::Linear);
  } else {
    Add(Attn + "q_proj.weight", {C.queryWidth(), D}, TensorRole::Linear);
  }
  Add(Attn + "kv_a_proj_with_mqa.weight", {C.KvLoraRank + C.QkRopeHeadDim, D},
      TensorRole::Linear);
  Add(Attn + "kv_a_layernorm.weight", {C.KvLoraRank}, TensorRole::Norm);
  Add(Attn + "kv_b_proj.weight",
      {C.NumAttentionHeads * (C.QkNopeHeadDim + C.VHeadDim), C.KvLoraRank},
      TensorRole::Linear);
  Add(Attn + "o_proj.weight", {D, C.NumAttentionHeads * C.VHeadDim},
      TensorRole::Linear);
  Add("post_attention_layernorm.weight", {D}, TensorRole::Norm);

  auto AddMlp = [&](const std::string &Mlp, int64_t Width) {
    Add(Mlp + "gate_proj.weight", {Width, D}, TensorRole::Linear);
    Add(Mlp + "up_proj.weight", {Width, D}, TensorRole::Linear);
    Add(Mlp + "down_proj.weight", {D, Width}, TensorRole::Linear);
  };
  if (!C.isMoeLayer(Layer)) {
    AddMlp("mlp.", C.IntermediateSize);
    return;
  }
  Add("mlp.gate.weight", {C.NumRoutedExperts, D}, TensorRole::RouterGate);
  if (C.hasCorrectionBias())
    Add("mlp.gate.e_score_correction_bias", {C.NumRoutedExperts},
        TensorRole::RouterBias);
  for (int64_t Expert = 0; Expert < C.NumRoutedExperts; ++Expert)
    AddMlp("mlp.experts." + std::to_string(Expert) + ".",
           C.MoeIntermediateSize);
  if (C.NumSharedExperts > 0)
    AddMlp("mlp.shared_experts.", C.sharedExpertWidth());
}
} // namespace

std::vector<ExpectedTensor> expectedTensors(const ModelConfig &Config) {
  std::vector<ExpectedTensor> Out;
  Out.push_back({"model.embed_tokens.weight",
                 {Config.VocabSize, Config.HiddenSize},
                 TensorRole::Embedding,
                 -1});
  for (int64_t Layer = 0; Layer < Config.NumHiddenLayers; ++Layer)
    appendLayer(Config, Layer, Out);
  Out.push_back(
      {"model.norm.weight", {Config.HiddenSize}, TensorRole::Norm, -1});
  Out.push_back({"lm_head.weight",
                 {Config.VocabSize, Config.HiddenSize},
                 TensorRole::LmHead,
                 -1});
  return Out;
}

std::string scaleNameFor(StringRef WeightName) {
  return (WeightName + "_scale_inv").str();
}

std::vector<int64_t> blockScaleShape(int64_t Rows, int64_t Cols,
                                     int64_t BlockRows, int64_t BlockCols) {
  return {(Rows + BlockRows - 1) / BlockRows,
          (Cols + BlockCols - 1) / BlockCols};
}

std::optional<int64_t> layerIndexOf(StringRef TensorName) {
  if (!TensorName.consume_front("model.layers."))
    return std::nullopt;
  StringRef Digits =
      TensorName.take_while([](char C) { return C >= '0' && C <= '9'; });
  int64_t Layer;
  if (Digits.empty() ||
      !TensorName.drop_front(Digits.size()).starts_with(".") ||
      Digits.getAsInteger(10, Layer))
    return std::nullopt;
  return Layer;
}

} // namespace moec::checkpoint
