//===- Avx2.h - Kernel primitives for AVX2 + FMA + F16C ---------*- C++ -*-===//
//
// Included by the translation units compiled with -mavx2 -mfma -mf16c: Avx2.cpp,
// and Avx2Vnni.cpp, whose traits extend these. 8 floats per vector. fp32 tails use
// vmaskmov; 16- and 8-bit weight tails are copied into a zero-padded stack buffer
// first.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_AVX2_H
#define MOEC_CPU_LIB_ISA_AVX2_H

#include "Table.h"

#include <cstring>
#include <immintrin.h>

namespace moec::cpu::detail {
namespace {

/// 8 all-ones lanes then 8 zero lanes: loading at offset 8 - n gives n active lanes.
alignas(32) const int32_t kMaskLanes[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                            0,  0,  0,  0,  0,  0,  0,  0};

struct Avx2 {
  static constexpr int kWidth = 8;
  static constexpr int kRowBlock = 4;
  static constexpr int kTokenBlock = 2; // 4x2 accumulators + 4 weights fit in 16 registers
  static constexpr int kStreamRowBlock = 8; // one token: 8 accumulators
  static constexpr int kStreamTokens = 1;
  using V = __m256;

  // Int8 weights (LinearI8.h): int32 accumulators, 16 weights per step.
  static constexpr bool kByteDot = false; // no VNNI byte products (LinearI8.h)
  static constexpr bool kAmx = false;     // no AMX tiles (LinearI8.h)
  /// The int8 tile keeps its fp32 sums in memory: the integer tile needs all 16 registers
  static constexpr bool kFoldInMemory = true;
  static constexpr int kIntStep = 16;
  static constexpr int kI8RowBlock = 2; // 2x4 int and 2x4 float accumulators
  static constexpr int kI8TokenBlock = 4;
  static constexpr int kI8StreamRowBlock = 4;
  static constexpr int kI8StreamTokens = 1;
  using VI = __m256i;
  using WI = __m256i;
  static VI izero() { return _mm256_setzero_si256(); }
  static WI loadI8(const int8_t *p) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)));
  }
  static WI loadI8Partial(const int8_t *p, int n) {
    alignas(16) int8_t buf[16] = {};
    std::memcpy(buf, p, static_cast<size_t>(n));
    return loadI8(buf);
  }
  using XI = __m256i;
  static XI loadX(const int16_t *x) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(x));
  }
  /// The add is written in place (its destination tied to acc): with a plain
  /// _mm256_add_epi32 GCC computes each sum into a new register and copies it back
  /// at the loop's back edge, up to 8 copies per step of the int8 tile.
  static VI madd(VI acc, WI w, XI x) {
    const __m256i p = _mm256_madd_epi16(w, x);
    asm("vpaddd %1, %0, %0" : "+x"(acc) : "x"(p));
    return acc;
  }
  static V toFloat(VI v) { return _mm256_cvtepi32_ps(v); }
  /// 8 values rounded to nearest-even (the default rounding mode) as int16.
  static void storeRoundedI16(int16_t *out, V v) {
    const __m256i i = _mm256_cvtps_epi32(v);
    _mm_storeu_si128(reinterpret_cast<__m128i *>(out),
                     _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1)));
  }

  /// The top 16 bits of each float: its bf16 when the low bits are zero (Linear.h).
  static void storeBf16Bits(uint16_t *out, V v) {
    const __m256i i = _mm256_srli_epi32(_mm256_castps_si256(v), 16);
    _mm_storeu_si128(reinterpret_cast<__m128i *>(out),
                     _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1)));
  }

  static __m256i mask(int n) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(kMaskLanes + 8 - n));
  }

  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  static V load(const float *p) { return _mm256_loadu_ps(p); }
  static V loadPartial(const float *p, int n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store(float *p, V v) { _mm256_storeu_ps(p, v); }
  static void storePartial(float *p, V v, int n) { _mm256_maskstore_ps(p, mask(n), v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V swapPairs(V v) { return _mm256_permute_ps(v, 0xB1); }
  static float reduceAdd(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduceMax(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  /// Same algorithm as the AVX-512 level (see Avx512.cpp).
  static V exp(V x) {
    const V hi = _mm256_min_ps(x, set1(88.f));
    const V n = _mm256_round_ps(_mm256_mul_ps(hi, set1(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm256_fnmadd_ps(n, set1(0.693359375f), hi);
    r = _mm256_fnmadd_ps(n, set1(-2.12194440e-4f), r);
    V p = set1(1.f / 5040);
    p = fma(p, r, set1(1.f / 720));
    p = fma(p, r, set1(1.f / 120));
    p = fma(p, r, set1(1.f / 24));
    p = fma(p, r, set1(1.f / 6));
    p = fma(p, r, set1(0.5f));
    p = fma(p, r, set1(1.f));
    p = fma(p, r, set1(1.f));
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const V result = mul(p, _mm256_castsi256_ps(e));
    const V tiny = _mm256_cmp_ps(x, set1(-87.3365478515625f), _CMP_LT_OQ);
    return _mm256_andnot_ps(tiny, result);
  }
  static float expScalar(float x) { return _mm256_cvtss_f32(exp(set1(x))); }
  static float sqrtScalar(float x) { return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x))); }

  template <WeightType Wt> static V decode(const void *p) {
    if constexpr (Wt == WeightType::F32) {
      return _mm256_loadu_ps(static_cast<const float *>(p));
    } else if constexpr (Wt == WeightType::BF16) {
      const __m128i h = _mm_loadu_si128(static_cast<const __m128i *>(p));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    } else if constexpr (Wt == WeightType::F16) {
      return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i *>(p)));
    } else if constexpr (Wt == WeightType::I8) {
      return _mm256_cvtepi32_ps(
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(static_cast<const __m128i *>(p))));
    } else {
      // The e4m3 -> f16 bit trick of Avx512.cpp, 8 bytes at a time.
      const __m128i b = _mm_loadl_epi64(static_cast<const __m128i *>(p));
      const __m128i h = _mm_and_si128(_mm_slli_epi16(_mm_cvtepi8_epi16(b), 7),
                                      _mm_set1_epi16(static_cast<short>(0xBF80)));
      return _mm256_cvtph_ps(h);
    }
  }
  template <WeightType Wt> static V loadWeight(const char *row, int64_t k) {
    return decode<Wt>(row + k * kElemBytes<Wt>);
  }
  template <WeightType Wt>
  static void loadWeightPair(const char *row, int64_t k, V &lo, V &hi) {
    if constexpr (Wt == WeightType::F8E4M3) {
      // 16 bytes widened and bit-shuffled in one 256-bit pass, then two halves.
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(row + k));
      const __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7),
                                         _mm256_set1_epi16(static_cast<short>(0xBF80)));
      lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
      hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
    } else {
      lo = loadWeight<Wt>(row, k);
      hi = loadWeight<Wt>(row, k + kWidth);
    }
  }
  template <WeightType Wt> static V loadWeightPartial(const char *row, int64_t k, int n) {
    alignas(32) char buf[kWidth * 4] = {};
    std::memcpy(buf, row + k * kElemBytes<Wt>, static_cast<size_t>(n) * kElemBytes<Wt>);
    return decode<Wt>(buf);
  }
};

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_AVX2_H
