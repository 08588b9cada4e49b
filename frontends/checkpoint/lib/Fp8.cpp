//===- Fp8.cpp - 128x128 block FP8 (e4m3) weight quantisation -------------===//
#include "moec/checkpoint/Fp8.h"

#include "moec/checkpoint/FloatFormats.h"

#include <algorithm>
#include <cmath>

using namespace llvm;

namespace moec::checkpoint {

namespace {
/// Largest finite e4m3fn value.
constexpr float E4M3Max = 448.0f;
} // namespace

Fp8BlockWeight quantizeFp8Blocks(ArrayRef<float> Weight, int64_t Rows,
                                 int64_t Cols, int64_t BlockRows,
                                 int64_t BlockCols) {
  int64_t GridRows = (Rows + BlockRows - 1) / BlockRows;
  int64_t GridCols = (Cols + BlockCols - 1) / BlockCols;
  Fp8BlockWeight Result;
  Result.Values.resize(Rows * Cols);
  Result.Scales.resize(GridRows * GridCols);
  for (int64_t BR = 0; BR < GridRows; ++BR) {
    for (int64_t BC = 0; BC < GridCols; ++BC) {
      int64_t RowEnd = std::min(Rows, (BR + 1) * BlockRows);
      int64_t ColEnd = std::min(Cols, (BC + 1) * BlockCols);
      float Amax = 0.0f;
      for (int64_t I = BR * BlockRows; I < RowEnd; ++I)
        for (int64_t J = BC * BlockCols; J < ColEnd; ++J)
          Amax = std::max(Amax, std::fabs(Weight[I * Cols + J]));
      float Scale = Amax > 0.0f ? Amax / E4M3Max : 1.0f;
      Result.Scales[BR * GridCols + BC] = Scale;
      for (int64_t I = BR * BlockRows; I < RowEnd; ++I)
        for (int64_t J = BC * BlockCols; J < ColEnd; ++J)
          Result.Values[I * Cols + J] =
              floatToE4M3(Weight[I * Cols + J] / Scale);
    }
  }
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
