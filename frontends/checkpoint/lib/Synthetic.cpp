//===- Synthetic.cpp - Small deterministic random checkpoints -------------===//
#include "moec/checkpoint/Synthetic.h"

#include "JsonFile.h"
#include "moec/checkpoint/Checkpoint.h"
#include "moec/checkpoint/FloatFormats.h"
#include "moec/checkpoint/Fp8.h"
#include "moec/checkpoint/Random.h"
#include "moec/checkpoint/SafetensorsWriter.h"
#include "moec/checkpoint/TensorManifest.h"

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

/// Owns the bytes of the tensors handed to the writer.
struct GeneratedTensors {
  std::vector<std::unique_ptr<std::vector<uint8_t>>> Storage;
  std::vector<TensorToWrite> Tensors;

  void add(std::string Name, DType Type, std::vector<int64_t> Shape,
           std::vector<uint8_t> Bytes) {
    Storage.push_back(std::make_unique<std::vector<uint8_t>>(std::move(Bytes)));
    Tensors.push_back(
        {std::move(Name), Type, std::move(Shape), *Storage.back()});
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
  for (const ExpectedTensor &Tensor : expectedTensors(Written)) {
    std::vector<float> Values = generateValues(Tensor, Options.Seed);
    if (Tensor.Role == TensorRole::RouterBias) {
      Generated.add(Tensor.Name, DType::F32, Tensor.Shape,
                    encodeFromFloat(DType::F32, Values));
    } else if (Options.Fp8 && Tensor.isQuantizable()) {
      const Fp8Quantization &Quant = *Written.Quantization;
      if (Quant.BlockRows != Quant.BlockCols)
        return createStringError(inconvertibleErrorCode(),
                                 "synthetic FP8 weights need square blocks, got %lldx%lld",
                                 (long long)Quant.BlockRows, (long long)Quant.BlockCols);
      Fp8BlockWeight Quantized =
          quantizeFp8Blocks(Values, Tensor.Shape[0], Tensor.Shape[1], Quant.BlockRows);
      Generated.add(Tensor.Name, DType::F8_E4M3, Tensor.Shape,
                    std::move(Quantized.Values));
      Generated.add(scaleNameFor(Tensor.Name), DType::F32,
                    blockScaleShape(Tensor.Shape[0], Tensor.Shape[1],
                                    Quant.BlockRows, Quant.BlockCols),
                    encodeFromFloat(DType::F32, Quantized.Scales));
    } else {
      Generated.add(Tensor.Name, Options.WeightType, Tensor.Shape,
                    encodeFromFloat(Options.WeightType, Values));
    }
  }

  if (Error Err =
          writeCheckpointTensors(Dir, Generated.Tensors, Options.NumShards))
    return Err;
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
