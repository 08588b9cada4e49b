//===- quantize.h - Block-FP8 weight quantization (spec section 3) -*- C++ -*-===//
//
// DeepSeek-V3's weight quantization, bit for bit, so that a quantized plan equals
// the FP8 checkpoint any other tool makes with the same recipe: per block of
// 128 x 128 values (partial at the edges)
//
//   amax  = max |w| over the block (float32; bf16 and f16 widen exactly)
//   s     = float32((double)max(amax, 1e-12f) / 448.0)
//           (ue8m0: s rounded up to a power of two)
//   code  = e4m3fn(w / s), the quotient in double, rounded to nearest-even,
//           saturating at +-448; the sign of w is kept (-0 -> 0x80)
//
// and `s` is stored as the block's scale (`weight_scale_inv`: dequantization
// multiplies). The quotient in double is exact enough: no quotient of a float by a
// float lands within a double's rounding of an e4m3 midpoint without being it, so
// the codes are the correctly rounded ones.
//
// The int8 recipe (moe-quantize-int8; moec's own, for the CPU's integer dot
// products), per block of 128 x 128 values likewise:
//
//   s     = float32((double)max(amax, 1e-12f) / 127.0)
//   code  = w / s in double, rounded to nearest-even, clamped to [-127, 127]
//
// An FP8 weight requantized to int8 (moe-quantize-int8 on an FP8 checkpoint) is
// dequantized first, value by value, w = float32(e4m3(code) * scale_inv) with its
// own block's scale (the product of a 4-bit and a 24-bit significand, rounded once),
// and then quantized by the int8 recipe above.
//
// Used by the compiler while it packs a plan's weights; the runtime never
// quantizes weights. Thread-safe; uses the calling thread's kernel thread count.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_QUANTIZE_H
#define MOEC_CPU_QUANTIZE_H

#include "moec/cpu/kernels.h"

#include <cstdint>

namespace moec::cpu {

/// How a block's scale is stored.
enum class Fp8ScaleFormat : uint8_t {
  Float = 0, ///< the float32 quotient as it is (DeepSeek-V3, R1)
  Ue8m0 = 1, ///< rounded up to a power of two (DeepSeek-V3.1 `scale_fmt: ue8m0`)
};

/// One float32 block scale of the recipe from a block's amax.
float fp8BlockScale(float amax, Fp8ScaleFormat format);
/// One float32 block scale of the int8 recipe from a block's amax.
float int8BlockScale(float amax);

/// A band of block rows of a [rows, cols] weight to quantize.
struct Fp8QuantizeBand {
  /// F32, F16 or BF16 (little-endian, any alignment); or F8E4M3 with sourceScales,
  /// for int8 codes only (a requantization).
  WeightType type = WeightType::BF16;
  const void *data = nullptr;         ///< the whole weight, rows * cols elements
  int64_t rows = 0, cols = 0;         ///< the weight's shape
  int64_t block = 128;                ///< block side (rows and columns)
  Fp8ScaleFormat format = Fp8ScaleFormat::Float; ///< FP8 codes only
  WeightType code = WeightType::F8E4M3; ///< the codes: F8E4M3 (e4m3fn) or I8 (int8 recipe)
  int64_t rowBegin = 0;               ///< first row; a multiple of `block`
  int64_t rowEnd = 0;                 ///< one past the last row (<= rows)
  /// An F8E4M3 source's scales (`weight_scale_inv`): row-major, one per
  /// sourceBlockRows x sourceBlockCols block of the whole weight.
  const float *sourceScales = nullptr;
  int64_t sourceBlockRows = 128, sourceBlockCols = 128;
};

/// Quantizes rows [rowBegin, rowEnd): `codes` (may be null) receives
/// (rowEnd - rowBegin) * cols code bytes (e4m3fn or int8), row-major; `scales` (may be null) the
/// ceil((rowEnd - rowBegin) / block) x ceil(cols / block) float32 scales, row-major.
/// An F8E4M3 source without sourceScales, or with FP8 codes asked for, writes nothing
/// and returns false with *badRow = *badCol = -1.
/// Returns false, after writing everything else, when a value is not finite
/// (NaN or infinity); then *badRow and *badCol (if not null) name the first such
/// block's first row and column.
bool quantizeFp8Band(const Fp8QuantizeBand &band, uint8_t *codes, float *scales,
                     int64_t *badRow = nullptr, int64_t *badCol = nullptr);

} // namespace moec::cpu

#endif // MOEC_CPU_QUANTIZE_H
