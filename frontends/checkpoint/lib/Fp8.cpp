//===- Fp8.cpp - 128x128 block FP8 (e4m3) weight quantisation -------------===//
#include "moec/checkpoint/Fp8.h"

#include "moec/checkpoint/FloatFormats.h"
#include "moec/cpu/quantize.h"

#include <algorithm>
#include <cmath>

using namespace llvm;

namespace moec::checkpoint {

Fp8BlockWeight quantizeFp8Blocks(ArrayRef<float> Weight, int64_t Rows,
                                 int64_t Cols, int64_t Block) {
  Fp8BlockWeight Result;
  Result.Values.resize(Rows * Cols);
  Result.Scales.resize(((Rows + Block - 1) / Block) * ((Cols + Block - 1) / Block));
  cpu::Fp8QuantizeBand Band;
  Band.type = cpu::WeightType::F32;
  Band.data = Weight.data();
  Band.rows = Rows;
  Band.cols = Cols;
  Band.block = Block;
  Band.rowEnd = Rows;
  // Synthetic weights are finite; a NaN would come out as the saturated code.
  (void)cpu::quantizeFp8Band(Band, Result.Values.data(), Result.Scales.data());
  return Result;
}

std::vector<float> dequantizeFp8Blocks(const uint8_t *Values,
                                       ArrayRef<float> Scales, int64_t Rows,
                                       int64_t Cols, int64_t BlockRows,
                                       int64_t BlockCols) {
  int64_t GridCols = (Cols + BlockCols - 1) / BlockCols;
  std::vector<float> Weight(Rows * Cols);
  for (int64_t I = 0; I < Rows; ++I)
    for (int64_t J = 0; J < Cols; ++J)
      Weight[I * Cols + J] = e4m3ToFloat(Values[I * Cols + J]) *
                             Scales[(I / BlockRows) * GridCols + J / BlockCols];
  return Weight;
}

} // namespace moec::checkpoint
