//===- Validate.cpp - Checking a checkpoint against its config ------------===//
#include "moec/checkpoint/Validate.h"

#include "JsonFile.h"
#include "moec/checkpoint/TensorManifest.h"

#include "llvm/ADT/StringSet.h"

#include <map>

using namespace llvm;

namespace moec::checkpoint {

namespace {
Error tensorError(const TensorInfo &Tensor, const Twine &Message) {
  return fileError(Tensor.FilePath,
                   "tensor '" + escapeForMessage(Tensor.Name) + "': " + Message);
}

Error checkShape(const TensorInfo &Tensor, ArrayRef<int64_t> Shape) {
  if (ArrayRef<int64_t>(Tensor.Shape) == Shape)
    return Error::success();
  return tensorError(Tensor, "expected shape " + formatShape(Shape) + ", got " +
                                 formatShape(Tensor.Shape));
}

/// Checks an FP8 weight's block scale.
Error checkScale(const Checkpoint &Ckpt, const TensorInfo &Weight) {
  const Fp8Quantization &Quant = *Ckpt.config().Quantization;
  std::string ScaleName = scaleNameFor(Weight.Name);
  const TensorInfo *Scale = Ckpt.lookup(ScaleName);
  if (!Scale)
    return fileError(Ckpt.tensorSourcePath(),
                     "missing tensor '" + escapeForMessage(ScaleName) +
                         "' (block scale of " + dtypeName(Weight.Type) +
                         " weight '" + escapeForMessage(Weight.Name) + "')");
  if (Scale->Type != DType::F32)
    return tensorError(*Scale,
                       "expected dtype F32, got " + dtypeName(Scale->Type));
  return checkShape(*Scale, blockScaleShape(Weight.Shape[0], Weight.Shape[1],
                                            Quant.BlockRows, Quant.BlockCols));
}

Error checkTensor(const Checkpoint &Ckpt, const ExpectedTensor &Want) {
  const TensorInfo *Tensor = Ckpt.lookup(Want.Name);
  if (!Tensor)
    return fileError(Ckpt.tensorSourcePath(),
                     "missing tensor '" + Want.Name + "' (expected shape " +
                         formatShape(Want.Shape) + ")");
  if (Error Err = checkShape(*Tensor, Want.Shape))
    return Err;
  if (isPlainFloat(Tensor->Type)) {
    if (Want.isQuantizable() && Ckpt.lookup(scaleNameFor(Want.Name)))
      return fileError(Tensor->FilePath, "tensor '" + scaleNameFor(Want.Name) +
                                             "' is present but '" + Want.Name +
                                             "' is " + dtypeName(Tensor->Type) +
                                             ", not F8_E4M3");
    return Error::success();
  }
  if (!Want.isQuantizable())
    return tensorError(*Tensor,
                       "dtype " + dtypeName(Tensor->Type) +
                           " is not allowed here (expected BF16, F16 or "
                           "F32: only projections are quantised)");
  if (!Ckpt.config().Quantization)
    return tensorError(*Tensor,
                       "dtype " + dtypeName(Tensor->Type) +
                           " but config.json has no quantization_config");
  return checkScale(Ckpt, *Tensor);
}
} // namespace

Expected<std::vector<std::string>> validateCheckpoint(const Checkpoint &Ckpt) {
  const ModelConfig &Config = Ckpt.config();
  std::vector<ExpectedTensor> Needed = expectedTensors(Config);
  StringSet<> Known;
  for (const ExpectedTensor &Tensor : Needed) {
    if (Error Err = checkTensor(Ckpt, Tensor))
      return std::move(Err);
    Known.insert(Tensor.Name);
    if (Tensor.isQuantizable())
      Known.insert(scaleNameFor(Tensor.Name));
  }

  // Everything else is reported, not refused: MTP layers per layer, the rest
  // as one count with an example.
  std::map<int64_t, size_t> MtpLayers;
  size_t Unused = 0;
  std::string FirstUnused;
  for (const TensorInfo *Tensor : Ckpt.tensors()) {
    if (Known.contains(Tensor->Name))
      continue;
    std::optional<int64_t> Layer = layerIndexOf(Tensor->Name);
    if (Layer && *Layer >= Config.NumHiddenLayers) {
      ++MtpLayers[*Layer];
      continue;
    }
    if (Unused++ == 0)
      FirstUnused = Tensor->Name;
  }
  std::vector<std::string> Notes;
  for (const auto &[Layer, Count] : MtpLayers)
    Notes.push_back("skipping layer " + std::to_string(Layer) + " (" +
                    std::to_string(Count) +
                    " tensors): multi-token-prediction layers are past "
                    "num_hidden_layers and unused by inference");
  if (Unused)
    Notes.push_back("ignoring " + std::to_string(Unused) +
                    " tensor(s) the model does not use, e.g. '" +
                    escapeForMessage(FirstUnused) + "'");
  return Notes;
}

} // namespace moec::checkpoint
