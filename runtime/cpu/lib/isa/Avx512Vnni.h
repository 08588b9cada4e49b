//===- Avx512Vnni.h - AVX-512 traits with VNNI int8 products -----*- C++ -*-===//
//
// Included only by Avx512Vnni.cpp and Avx512Amx.cpp (compiled with -mavx512vnni):
// everything is Avx512.h's but the int8 products (LinearI8.h): prefill multiplies
// bytes with vpdpbusd (64 per instruction per token and row), decode fuses vpmaddwd
// and its add into vpdpwssd.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_AVX512VNNI_H
#define MOEC_CPU_LIB_ISA_AVX512VNNI_H

#include "Avx512.h"

namespace moec::cpu::detail {
namespace {

struct Avx512Vnni : Avx512 {
  static constexpr bool kByteDot = true;
  static constexpr int kByteStep = 64;
  // The prefill tile: 2 rows x 4 tokens, int and fp32 sums all in registers. Measured
  // (BM_LinearI8 4096 x 4096, T = 64, 2 threads, Xeon with AVX512_VNNI): 7.5-7.6 ms,
  // against 7.8-8.0 for 4 x 4, 8.5-9.1 for 4 x 3 (sums in memory or not), 8.2-8.7 for
  // 2 x 6 and 2 x 8, 9.7 for 8 x 3; the int16 AVX-512 path 10.9-11.1, AVX2 13.3-13.8.
  static constexpr bool kFoldInMemory = false;
  static constexpr int kI8RowBlock = 2;
  static constexpr int kI8TokenBlock = 4;

  // Both accumulate in place, written with asm so that the destination stays tied
  // to acc: with the intrinsics GCC 12 computes each sum into a fresh register and
  // copies every accumulator back at the loop's back edge (two moves per product).
  static VI madd(VI acc, WI w, XI x) {
    asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(w), "vm"(x));
    return acc;
  }

  static VI loadBytes(const int8_t *p) { return _mm512_loadu_si512(p); }
  static VI loadBytesPartial(const int8_t *p, int n) {
    return _mm512_maskz_loadu_epi8(n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1, p);
  }
  static VI loadU8(const uint8_t *p) { return _mm512_loadu_si512(p); }
  /// acc += the four products of u's unsigned bytes with w's signed bytes, per lane.
  static VI dot(VI acc, VI u, VI w) {
    asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(w));
    return acc;
  }
  /// 128 as unsigned bytes (LinearI8.h's offsets).
  static VI bytes128() { return _mm512_set1_epi8(static_cast<char>(0x80)); }
  static VI isub(VI a, VI b) { return _mm512_sub_epi32(a, b); }
  static void storeU8Codes(uint8_t *out, const int16_t *q, int64_t n) {
    const __m512i bias = _mm512_set1_epi16(128);
    for (int64_t k = 0; k < n; k += 32) {
      const __m512i v = _mm512_add_epi16(_mm512_loadu_si512(q + k), bias);
      _mm256_storeu_si256(reinterpret_cast<__m256i *>(out + k), _mm512_cvtepi16_epi8(v));
    }
  }
};

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_AVX512VNNI_H
