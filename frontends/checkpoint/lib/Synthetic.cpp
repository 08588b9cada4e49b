//===- Synthetic.cpp - Small deterministic random checkpoints -------------===//
#include "moec/checkpoint/Synthetic.h"

#include "JsonFile.h"
#include "moec/checkpoint/Checkpoint.h"
#include "moec/checkpoint/FloatFormats.h"
#include "moec/checkpoint/Fp8.h"
#include "moec/checkpoint/Random.h"
#include "moec/checkpoint/SafetensorsWriter.h"
#include "moec/checkpoint/TensorManifest.h"
#include "moec/checkpoint/kSynthTokenizerConfigJson.h"
#include "moec/checkpoint/kSynthTokenizerJson.h"

#include "llvm/Support/FileSystem.h"

#include <cmath>
#include <memory>

using namespace llvm;

namespace moec::checkpoint {

namespace {
/// Returns the generator's standard deviation and mean for a tensor role.
std::pair<double, double> distributionFor(const ExpectedTensor &Tensor) {
  switch (Tensor.Role) {
  case TensorRole::Embedding:
    return {1.0, 0.0};
  case TensorRole::Norm:
    return {0.1, 1.0};
  case TensorRole::RouterBias:
    return {0.1, 0.0};
  case TensorRole::Linear:
  case TensorRole::RouterGate:
  case TensorRole::LmHead:
    // Unit-variance inputs give unit-variance outputs.
    return {1.0 / std::sqrt(static_cast<double>(Tensor.Shape.back())), 0.0};
  }
  return {1.0, 0.0};
}

/// Draws the values of one tensor from its own stream.
std::vector<float> generateValues(const ExpectedTensor &Tensor, uint64_t Seed) {
  auto [Std, Mean] = distributionFor(Tensor);
  SplitMix64 Rng(deriveSeed(Seed, Tensor.Name));
  std::vector<float> Values(*shapeNumElements(Tensor.Shape));
  for (float &Value : Values)
    Value = static_cast<float>(Mean + Std * Rng.normal());
  return Values;
}

/// The tensors handed to the writer, each made by a producer when the writer
/// reaches it: one tensor's values in memory at a time, however large the model.
struct GeneratedTensors {
  std::vector<TensorToWrite> Tensors;

  void add(std::string Name, DType Type, std::vector<int64_t> Shape,
           std::function<void(std::vector<uint8_t> &)> Produce) {
    uint64_t Size = uint64_t(*shapeNumElements(Shape)) * dtypeSize(Type);
    TensorToWrite T;
    T.Name = std::move(Name);
    T.Type = Type;
    T.Shape = std::move(Shape);
    T.Produce = std::move(Produce);
    T.ProducedSize = Size;
    Tensors.push_back(std::move(T));
  }
};
} // namespace

Error writeSyntheticCheckpoint(const ModelConfig &Config, StringRef Dir,
                               const SynthOptions &Options) {
  if (!isPlainFloat(Options.WeightType))
    return fileError(Dir,
                     "synthetic weight type must be BF16, F16 or F32, got " +
                         dtypeName(Options.WeightType));
  ModelConfig Written = Config;
  if (Options.Fp8 && !Written.Quantization)
    Written.Quantization = Fp8Quantization();
  if (!Options.Fp8)
    Written.Quantization.reset();
  std::string ConfigPath = joinPath(Dir, ConfigFileName);
  if (Error Err = verifyModelConfig(Written, ConfigPath))
    return Err;
  if (std::error_code EC = sys::fs::create_directories(Dir))
    return fileError(Dir, "cannot create directory: " + EC.message());

  GeneratedTensors Generated;
  const uint64_t Seed = Options.Seed;
  for (const ExpectedTensor &Tensor : expectedTensors(Written)) {
    if (Tensor.Role == TensorRole::RouterBias) {
      Generated.add(Tensor.Name, DType::F32, Tensor.Shape,
                    [Tensor, Seed](std::vector<uint8_t> &Out) {
                      Out = encodeFromFloat(DType::F32, generateValues(Tensor, Seed));
                    });
    } else if (Options.Fp8 && Tensor.isQuantizable()) {
      const Fp8Quantization &Quant = *Written.Quantization;
      if (Quant.BlockRows != Quant.BlockCols)
        return createStringError(inconvertibleErrorCode(),
                                 "synthetic FP8 weights need square blocks, got %lldx%lld",
                                 (long long)Quant.BlockRows, (long long)Quant.BlockCols);
      // The codes' producer quantizes and keeps the scales for the scale
      // tensor's producer, which the writer calls next.
      auto Scales = std::make_shared<std::vector<float>>();
      const int64_t Block = Quant.BlockRows;
      auto Quantize = [Tensor, Seed, Block] {
        return quantizeFp8Blocks(generateValues(Tensor, Seed), Tensor.Shape[0],
                                 Tensor.Shape[1], Block);
      };
      Generated.add(Tensor.Name, DType::F8_E4M3, Tensor.Shape,
                    [Quantize, Scales](std::vector<uint8_t> &Out) {
                      Fp8BlockWeight Quantized = Quantize();
                      Out = std::move(Quantized.Values);
                      *Scales = std::move(Quantized.Scales);
                    });
      Generated.add(scaleNameFor(Tensor.Name), DType::F32,
                    blockScaleShape(Tensor.Shape[0], Tensor.Shape[1],
                                    Quant.BlockRows, Quant.BlockCols),
                    [Quantize, Scales](std::vector<uint8_t> &Out) {
                      if (Scales->empty())
                        *Scales = Quantize().Scales;
                      Out = encodeFromFloat(DType::F32, *Scales);
                      std::vector<float>().swap(*Scales);
                    });
    } else {
      const DType Type = Options.WeightType;
      Generated.add(Tensor.Name, Type, Tensor.Shape,
                    [Tensor, Seed, Type](std::vector<uint8_t> &Out) {
                      Out = encodeFromFloat(Type, generateValues(Tensor, Seed));
                    });
    }
  }

  if (Error Err =
          writeCheckpointTensors(Dir, Generated.Tensors, Options.NumShards))
    return Err;
  if (Options.Tokenizer) {
    if (Error Err = writeFileAtomically(joinPath(Dir, "tokenizer.json"), kSynthTokenizerJson))
      return Err;
    if (Error Err = writeFileAtomically(joinPath(Dir, "tokenizer_config.json"),
                                        kSynthTokenizerConfigJson))
      return Err;
  }
  return writeFileAtomically(ConfigPath, modelConfigToJson(Written));
}

Error writeSyntheticCheckpoint(StringRef Preset, StringRef Dir,
                               const SynthOptions &Options) {
  Expected<ModelConfig> Config = syntheticPresetConfig(Preset);
  if (!Config)
    return Config.takeError();
  return writeSyntheticCheckpoint(*Config, Dir, Options);
}

} // namespace moec::checkpoint
