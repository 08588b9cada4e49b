//===- Quantize.h - The block-FP8 weight quantizer, per SIMD level -*- C++ -*-===//
//
// Plain C++ written for the auto-vectorizer: every loop is branch-free over
// integers and floats, so each level's translation unit (compiled with its own
// -m flags) gets its own vector code. The recipe is in moec/cpu/quantize.h.
//
// - amax is a max over the magnitude bits: for non-negative IEEE values the bit
//   patterns order like the values, and an integer max reduces in vectors (a float
//   max does not without -ffast-math). A magnitude at or above the infinity
//   pattern is a non-finite value.
// - The codes: q = |w| * (1 / s) in float, 16 or 8 lanes per vector, locates
//   the e4m3 step, and an exact comparison decides the rounding:
//     a = min(q, 448) >= 2^-6: the step is the float's mantissa cut to 3 bits
//                (at bit 20): floor code = (bits >> 20) - ((127 - 7) << 3),
//                exponent and mantissa in one subtraction;
//     a < 2^-6: the subnormal codes k * 2^-9, k in 0..8 (8 is 2^-6, the first
//                normal code): a + 2^-6 lies in [2^-6, 2^-5), whose mantissa
//                steps are 2^-9 too; same cut, 8 taken off the code.
//   The float is within a few ulps of |w| / s, far less than half a step, so the
//   true quotient lies in the located step or next to its ends, where the
//   answer is the same. The midpoint m of the step is exact in float, and
//   fma(m, s, -|w|) = m * s - |w| rounded once has the exact sign of
//   m - |w| / s: the code goes up when it is negative, and on a zero (an exact
//   tie) up only from an odd code. So the codes are those of the exact quotient,
//   as the double division of the recipe gives them, without dividing.
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_QUANTIZE_H
#define MOEC_CPU_LIB_ISA_QUANTIZE_H

#include "moec/cpu/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace moec::cpu::detail {

template <class Isa> struct QuantizeKernel {
  template <WeightType Wt> static constexpr int64_t kBytes = Wt == WeightType::F32 ? 4 : 2;

  /// The magnitude bits of element i (sign cleared).
  template <WeightType Wt> static uint32_t magnitude(const uint8_t *p, int64_t i) {
    if constexpr (Wt == WeightType::F32) {
      uint32_t b;
      std::memcpy(&b, p + 4 * i, 4);
      return b & 0x7FFFFFFFu;
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      return h & 0x7FFFu;
    }
  }
  /// The bit pattern of +infinity, the first non-finite magnitude.
  template <WeightType Wt> static constexpr uint32_t kInfinity =
      Wt == WeightType::F32 ? 0x7F800000u : Wt == WeightType::BF16 ? 0x7F80u : 0x7C00u;

  static uint32_t bitsOf(float f) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    return b;
  }
  static float floatOf(uint32_t b) {
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }

  /// The e4m3fn code of w / s, given w, s and inverse = 1 / s (see the file comment).
  static uint8_t encode(float w, float s, float inverse) {
    // Selections are masks, not branches: AVX2 has no masked instructions, and the
    // vectorizer gives up on a conditional it cannot turn into a blend.
    const uint32_t sign = (bitsOf(w) >> 24) & 0x80;
    const float magnitude = floatOf(bitsOf(w) & 0x7FFFFFFFu);
    const uint32_t a = std::min<uint32_t>(bitsOf(magnitude * inverse), 0x43E00000u); // 448
    const uint32_t small = 0u - uint32_t(a < 0x3C800000u);                          // 2^-6
    const uint32_t moved = bitsOf(floatOf(a) + 0x1p-6f);
    const uint32_t b = (moved & small) | (a & ~small);
    const uint32_t floorCode = (b >> 20) - ((127u - 7) << 3) - (small & 8);
    // The midpoint above the step, back in quotient units (exact: a 5-bit value,
    // less 2^-6 on the small path).
    const float mid = floatOf((b & ~((1u << 20) - 1)) | (1u << 19)) -
                      floatOf(small & 0x3C800000u);
    const float d = std::fma(mid, s, -magnitude);
    const uint32_t below = 0u - uint32_t(d < 0.f), tie = 0u - uint32_t(d == 0.f);
    const uint32_t up = (below & 1) | (tie & floorCode & 1);
    return static_cast<uint8_t>((floorCode + up) | sign);
  }

  /// Element i as a float (exact for every input type).
  template <WeightType Wt> static float valueFloat(const uint8_t *p, int64_t i) {
    if constexpr (Wt == WeightType::F32) {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      return f;
    } else if constexpr (Wt == WeightType::BF16) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      return floatOf(uint32_t(h) << 16);
    } else {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      return halfToFloat(h);
    }
  }

  /// IEEE half to float, branch-free (the auto-vectorizer keeps it in vectors).
  static float halfToFloat(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    const uint32_t em = h & 0x7FFF;
    // Normal and subnormal: shift into place and rescale by 2^(127 - 15); the
    // multiplication also normalises subnormals. Infinity and NaN: exponent 255.
    const uint32_t scaled = bitsOf(floatOf(em << 13) * 0x1p112f);
    const uint32_t special = 0u - uint32_t(em >= 0x7C00);
    const uint32_t nonFinite = 0x7F800000u | (em & 0x3FF) << 13;
    return floatOf(sign | (nonFinite & special) | (scaled & ~special));
  }

  /// The block's amax as a float, and whether every value is finite.
  template <WeightType Wt>
  static float amaxOf(const uint8_t *src, int64_t ld, int64_t rows, int64_t cols,
                      bool *finite) {
    uint32_t amaxBits = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t *row = src + r * ld * kBytes<Wt>;
      uint32_t m = 0;
      for (int64_t j = 0; j < cols; ++j)
        m = std::max(m, magnitude<Wt>(row, j));
      amaxBits = std::max(amaxBits, m);
    }
    *finite = amaxBits < kInfinity<Wt>;
    float amax;
    if constexpr (Wt == WeightType::F32) {
      std::memcpy(&amax, &amaxBits, 4);
    } else if constexpr (Wt == WeightType::BF16) {
      uint32_t b = amaxBits << 16;
      std::memcpy(&amax, &b, 4);
    } else {
      amax = halfToFloat(static_cast<uint16_t>(amaxBits));
    }
    return *finite ? amax : 0.f;
  }

  /// The int8 recipe (moec/cpu/quantize.h) for one block.
  template <WeightType Wt>
  static bool blockInt8Of(const uint8_t *src, int64_t ld, int64_t rows, int64_t cols,
                          uint8_t *codes, int64_t ldc, float *scale) {
    bool finite = true;
    const float s = int8BlockScale(amaxOf<Wt>(src, ld, rows, cols, &finite));
    *scale = s;
    if (!codes)
      return finite;
    const double sd = s;
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t *row = src + r * ld * kBytes<Wt>;
      int8_t *__restrict out = reinterpret_cast<int8_t *>(codes + r * ldc);
      for (int64_t j = 0; j < cols; ++j) {
        const double q = std::nearbyint(static_cast<double>(valueFloat<Wt>(row, j)) / sd);
        out[j] = static_cast<int8_t>(std::min(127.0, std::max(-127.0, q)));
      }
    }
    return finite;
  }

  static bool blockInt8(WeightType type, const uint8_t *src, int64_t ld, int64_t rows,
                        int64_t cols, uint8_t *codes, int64_t ldc, float *scale) {
    switch (type) {
    case WeightType::F32:
      return blockInt8Of<WeightType::F32>(src, ld, rows, cols, codes, ldc, scale);
    case WeightType::F16:
      return blockInt8Of<WeightType::F16>(src, ld, rows, cols, codes, ldc, scale);
    case WeightType::BF16:
      return blockInt8Of<WeightType::BF16>(src, ld, rows, cols, codes, ldc, scale);
    default:
      break;
    }
    return false;
  }

  template <WeightType Wt>
  static bool blockOf(const uint8_t *src, int64_t ld, int64_t rows, int64_t cols,
                      Fp8ScaleFormat format, uint8_t *codes, int64_t ldc, float *scale) {
    bool finite = true;
    const float s = fp8BlockScale(amaxOf<Wt>(src, ld, rows, cols, &finite), format);
    *scale = s;
    if (!codes)
      return finite;
    const float inverse = 1.f / s;
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t *row = src + r * ld * kBytes<Wt>;
      uint8_t *__restrict out = codes + r * ldc;
      for (int64_t j = 0; j < cols; ++j)
        out[j] = encode(valueFloat<Wt>(row, j), s, inverse);
    }
    return finite;
  }

  static bool block(WeightType type, const uint8_t *src, int64_t ld, int64_t rows,
                    int64_t cols, Fp8ScaleFormat format, uint8_t *codes, int64_t ldc,
                    float *scale) {
    switch (type) {
    case WeightType::F32:
      return blockOf<WeightType::F32>(src, ld, rows, cols, format, codes, ldc, scale);
    case WeightType::F16:
      return blockOf<WeightType::F16>(src, ld, rows, cols, format, codes, ldc, scale);
    case WeightType::BF16:
      return blockOf<WeightType::BF16>(src, ld, rows, cols, format, codes, ldc, scale);
    default:
      break;
    }
    return false;
  }
};

} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_QUANTIZE_H
