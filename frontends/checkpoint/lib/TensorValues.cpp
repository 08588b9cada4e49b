//===- TensorValues.cpp - Reading checkpoint tensors as floats ------------===//
#include "moec/checkpoint/TensorValues.h"

#include "JsonFile.h"
#include "moec/checkpoint/FloatFormats.h"
#include "moec/checkpoint/Fp8.h"
#include "moec/checkpoint/TensorManifest.h"

using namespace llvm;

namespace moec::checkpoint {

Expected<std::vector<float>> readTensorAsFloat(const Checkpoint &Ckpt,
                                               StringRef Name) {
  const TensorInfo *Tensor = Ckpt.lookup(Name);
  if (!Tensor)
    return fileError(Ckpt.tensorSourcePath(),
                     "missing tensor '" + escapeForMessage(Name) + "'");
  std::vector<float> Values(Tensor->numElements());
  decodeToFloat(Tensor->Type, Tensor->Data, Values.size(), Values.data());
  if (isPlainFloat(Tensor->Type))
    return Values;

  if (Tensor->Shape.size() != 2)
    return fileError(Tensor->FilePath,
                     "tensor '" + escapeForMessage(Name) +
                         "': F8_E4M3 tensor of shape " +
                         formatShape(Tensor->Shape) + " is not a 2-D weight");
  int64_t BlockRows = 128, BlockCols = 128;
  if (const auto &Quant = Ckpt.config().Quantization) {
    BlockRows = Quant->BlockRows;
    BlockCols = Quant->BlockCols;
  }
  std::string ScaleName = scaleNameFor(Name);
  const TensorInfo *Scale = Ckpt.lookup(ScaleName);
  std::vector<int64_t> ScaleShape =
      blockScaleShape(Tensor->Shape[0], Tensor->Shape[1], BlockRows, BlockCols);
  if (!Scale)
    return fileError(Ckpt.tensorSourcePath(),
                     "missing tensor '" + escapeForMessage(ScaleName) + "'");
  if (Scale->Type != DType::F32 || Scale->Shape != ScaleShape)
    return fileError(Scale->FilePath, "tensor '" + escapeForMessage(ScaleName) +
                                          "': expected F32 " +
                                          formatShape(ScaleShape) + ", got " +
                                          dtypeName(Scale->Type) + " " +
                                          formatShape(Scale->Shape));
  std::vector<float> Scales(Scale->numElements());
  decodeToFloat(DType::F32, Scale->Data, Scales.size(), Scales.data());
  return dequantizeFp8Blocks(Tensor->Data, Scales, Tensor->Shape[0],
                             Tensor->Shape[1], BlockRows, BlockCols);
}

} // namespace moec::checkpoint
