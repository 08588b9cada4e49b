//===- Avx512.h - Kernel primitives for AVX-512 F/BW/VL ---------*- C++ -*-===//
//
// Included by the translation units compiled with -mavx512f -mavx512bw -mavx512vl
// (plus the AVX2 set): Avx512.cpp, and Avx512Vnni.cpp, whose traits extend these.
// 16 floats per vector; masked loads handle every row tail, so no scalar remainder
// loops.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_AVX512_H
#define MOEC_CPU_LIB_ISA_AVX512_H

#include "Table.h"

#include <immintrin.h>

namespace moec::cpu::detail {
namespace {

struct Avx512 {
  static constexpr int kWidth = 16;
  static constexpr int kRowBlock = 4;
  static constexpr int kTokenBlock = 4;
  static constexpr int kStreamRowBlock = 8; // 8 rows x 2 tokens: 16 accumulators
  static constexpr int kStreamTokens = 2;
  using V = __m512;

  // Int8 weights (LinearI8.h): int32 accumulators, 32 weights per step.
  static constexpr bool kByteDot = false; // no VNNI byte products (LinearI8.h)
  static constexpr bool kAmx = false;     // no AMX tiles (LinearI8.h)
  /// The int8 tile keeps its fp32 sums in memory: no (they fit in registers)
  static constexpr bool kFoldInMemory = false;
  static constexpr int kIntStep = 32;
  static constexpr int kI8RowBlock = 4; // 4x3 int and 4x3 float accumulators
  static constexpr int kI8TokenBlock = 3;
  static constexpr int kI8StreamRowBlock = 8;
  static constexpr int kI8StreamTokens = 1;
  using VI = __m512i;
  using WI = __m512i;
  static VI izero() { return _mm512_setzero_si512(); }
  static WI loadI8(const int8_t *p) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
  }
  static WI loadI8Partial(const int8_t *p, int n) {
    return _mm512_cvtepi8_epi16(
        _mm256_maskz_loadu_epi8(static_cast<__mmask32>((uint64_t(1) << n) - 1), p));
  }
  using XI = __m512i;
  static XI loadX(const int16_t *x) { return _mm512_loadu_si512(x); }
  /// The add is written in place, as on AVX2 (Avx2.cpp): GCC otherwise copies each
  /// accumulator back at the loop's back edge.
  static VI madd(VI acc, WI w, XI x) {
    const __m512i p = _mm512_madd_epi16(w, x);
    asm("vpaddd %1, %0, %0" : "+v"(acc) : "v"(p));
    return acc;
  }
  static V toFloat(VI v) { return _mm512_cvtepi32_ps(v); }
  /// 16 values rounded to nearest-even (the default rounding mode) as int16.
  static void storeRoundedI16(int16_t *out, V v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(out),
                        _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(v)));
  }

  /// The top 16 bits of each float: its bf16 when the low bits are zero (Linear.h).
  static void storeBf16Bits(uint16_t *out, V v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(out),
                        _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16)));
  }

  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1); }

  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  static V load(const float *p) { return _mm512_loadu_ps(p); }
  static V loadPartial(const float *p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store(float *p, V v) { _mm512_storeu_ps(p, v); }
  static void storePartial(float *p, V v, int n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V div(V a, V b) { return _mm512_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V swapPairs(V v) { return _mm512_permute_ps(v, 0xB1); }
  static float reduceAdd(V v) { return _mm512_reduce_add_ps(v); }
  static float reduceMax(V v) { return _mm512_reduce_max_ps(v); }

  /// exp(x) = 2^n * e^r with n = round(x / ln 2), |r| <= ln2 / 2 and e^r from its
  /// degree-7 Taylor polynomial (truncation 5e-9 relative). Inputs below
  /// ln(FLT_MIN) give 0, so masked scores (-inf) vanish.
  static V exp(V x) {
    const V hi = _mm512_min_ps(x, set1(88.f));
    const V n = _mm512_roundscale_ps(_mm512_mul_ps(hi, set1(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm512_fnmadd_ps(n, set1(0.693359375f), hi);
    r = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), r);
    V p = set1(1.f / 5040);
    p = fma(p, r, set1(1.f / 720));
    p = fma(p, r, set1(1.f / 120));
    p = fma(p, r, set1(1.f / 24));
    p = fma(p, r, set1(1.f / 6));
    p = fma(p, r, set1(0.5f));
    p = fma(p, r, set1(1.f));
    p = fma(p, r, set1(1.f));
    const __m512i e = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    const V result = mul(p, _mm512_castsi512_ps(e));
    const __mmask16 tiny = _mm512_cmp_ps_mask(x, set1(-87.3365478515625f), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(tiny, result, zero());
  }
  static float expScalar(float x) { return _mm512_cvtss_f32(exp(set1(x))); }
  static float sqrtScalar(float x) { return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x))); }

  /// Widens 16 stored 16-bit or 8-bit values to floats.
  template <WeightType Wt> static V decode(const void *p, __mmask16 m, bool partial) {
    if constexpr (Wt == WeightType::F32) {
      return partial ? _mm512_maskz_loadu_ps(m, p) : _mm512_loadu_ps(p);
    } else if constexpr (Wt == WeightType::BF16) {
      // bf16 is the top half of an fp32: widen and shift left by 16.
      const __m256i h = partial ? _mm256_maskz_loadu_epi16(m, p)
                                : _mm256_loadu_si256(static_cast<const __m256i *>(p));
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    } else if constexpr (Wt == WeightType::F16) {
      const __m256i h = partial ? _mm256_maskz_loadu_epi16(m, p)
                                : _mm256_loadu_si256(static_cast<const __m256i *>(p));
      return _mm512_cvtph_ps(h);
    } else if constexpr (Wt == WeightType::I8) {
      const __m128i b = partial ? _mm_maskz_loadu_epi8(m, p)
                                : _mm_loadu_si128(static_cast<const __m128i *>(p));
      return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
    } else {
      // e4m3 S.EEEE.MMM -> f16 S.0EEEE.MMM0000000 is exactly the value / 256, for
      // normals and subnormals alike (exponent bias 15 = 7 + 8). Sign-extending to
      // 16 bits and shifting by 7 puts the sign in bit 15 (and a copy in bit 14,
      // masked off). NaN (S.1111.111) decodes to +-480, not NaN.
      const __m128i b = partial ? _mm_maskz_loadu_epi8(m, p)
                                : _mm_loadu_si128(static_cast<const __m128i *>(p));
      const __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7),
                                         _mm256_set1_epi16(static_cast<short>(0xBF80)));
      return _mm512_cvtph_ps(h);
    }
  }
  template <WeightType Wt> static V loadWeight(const char *row, int64_t k) {
    return decode<Wt>(row + k * kElemBytes<Wt>, 0, false);
  }
  template <WeightType Wt>
  static void loadWeightPair(const char *row, int64_t k, V &lo, V &hi) {
    if constexpr (Wt == WeightType::F8E4M3) {
      // 32 bytes widened and bit-shuffled in one 512-bit pass, then two halves
      // converted: half the integer work of two separate 16-byte decodes.
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(row + k));
      const __m512i h = _mm512_and_si512(_mm512_slli_epi16(_mm512_cvtepi8_epi16(b), 7),
                                         _mm512_set1_epi16(static_cast<short>(0xBF80)));
      lo = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
      hi = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
    } else {
      lo = loadWeight<Wt>(row, k);
      hi = loadWeight<Wt>(row, k + kWidth);
    }
  }
  template <WeightType Wt> static V loadWeightPartial(const char *row, int64_t k, int n) {
    return decode<Wt>(row + k * kElemBytes<Wt>, mask(n), true);
  }
};

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_AVX512_H
