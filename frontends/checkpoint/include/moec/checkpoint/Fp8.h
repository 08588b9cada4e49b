//===- Fp8.h - 128x128 block FP8 (e4m3) weight quantisation -----*- C++ -*-===//
//
// Spec section 3: a weight W [Rows, Cols] is stored as e4m3 values Q and one
// float scale per BlockRows x BlockCols block (partial blocks at the edges
// included); W[i, j] = float(Q[i, j]) * Scale[i / BlockRows, j / BlockCols].
// Checkpoints name that scale "weight_scale_inv" although it multiplies.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_FP8_H
#define MOEC_CHECKPOINT_FP8_H

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <vector>

namespace moec::checkpoint {

/// A block-quantised weight.
struct Fp8BlockWeight {
  /// e4m3 bits, row-major [Rows, Cols].
  std::vector<uint8_t> Values;
  /// One scale per block, row-major [ceil(Rows/BlockRows),
  /// ceil(Cols/BlockCols)].
  std::vector<float> Scales;
};

/// Quantises the row-major [Rows, Cols] matrix \p Weight in square blocks of
/// side \p Block with spec section 3's recipe, bit for bit (the runtime kernels'
/// quantizer, moec/cpu/quantize.h, the one `moec compile --quantize=fp8` uses):
/// scale = float32(max(amax, 1e-12) / 448), Q = e4m3(W / scale) rounded to
/// nearest even.
Fp8BlockWeight quantizeFp8Blocks(llvm::ArrayRef<float> Weight, int64_t Rows,
                                 int64_t Cols, int64_t Block = 128);

/// Returns W[i, j] = e4m3(Values[i, j]) * Scales[i / BlockRows, j / BlockCols]
/// for the row-major [Rows, Cols] matrix. \p Scales has the block-grid shape.
std::vector<float> dequantizeFp8Blocks(const uint8_t *Values,
                                       llvm::ArrayRef<float> Scales,
                                       int64_t Rows, int64_t Cols,
                                       int64_t BlockRows = 128,
                                       int64_t BlockCols = 128);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_FP8_H
