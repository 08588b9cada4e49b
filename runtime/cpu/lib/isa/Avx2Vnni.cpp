//===- Avx2Vnni.cpp - The AVX2 kernel table with AVX-VNNI int8 products ---===//
//
// Compiled with -mavxvnni beside the AVX2 set; only called after the dispatcher
// saw AVX_VNNI (Intel's client cores since Alder Lake and its AVX2-only server
// cores, which have no AVX-512). Everything is Avx2.h's but the int8 products
// (LinearI8.h): prefill multiplies bytes with the VEX-encoded vpdpbusd (32 per
// instruction per token and row), decode fuses vpmaddwd and its add into
// vpdpwssd. The instructions carry the {vex} prefix: without it the assembler may
// pick the EVEX form, which a CPU without AVX-512 cannot run.
//
//===----------------------------------------------------------------------===//

#include "Avx2.h"

namespace moec::cpu::detail {
namespace {

struct Avx2Vnni : Avx2 {
  static constexpr bool kByteDot = true;
  static constexpr int kByteStep = 32;

  // In place, as on the other levels (Avx2.h): the destination tied to acc.
  static VI madd(VI acc, WI w, XI x) {
    asm("%{vex%} vpdpwssd %2, %1, %0" : "+x"(acc) : "x"(w), "xm"(x));
    return acc;
  }

  static VI loadBytes(const int8_t *p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
  }
  static VI loadBytesPartial(const int8_t *p, int n) {
    if (n >= kByteStep)
      return loadBytes(p);
    alignas(32) int8_t buf[kByteStep] = {};
    std::memcpy(buf, p, static_cast<size_t>(n));
    return loadBytes(buf);
  }
  static VI loadU8(const uint8_t *p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
  }
  /// acc += the four products of u's unsigned bytes with w's signed bytes, per lane.
  static VI dot(VI acc, VI u, VI w) {
    asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "xm"(w));
    return acc;
  }
  /// 128 as unsigned bytes (LinearI8.h's offsets).
  static VI bytes128() { return _mm256_set1_epi8(static_cast<char>(0x80)); }
  static VI isub(VI a, VI b) { return _mm256_sub_epi32(a, b); }
  static void storeU8Codes(uint8_t *out, const int16_t *q, int64_t n) {
    const __m256i bias = _mm256_set1_epi16(128);
    for (int64_t k = 0; k < n; k += 16) {
      const __m256i v =
          _mm256_add_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(q + k)), bias);
      // 1..255: unsigned saturation keeps them.
      _mm_storeu_si128(reinterpret_cast<__m128i *>(out + k),
                       _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
    }
  }
};

} // namespace

const KernelTable &avx2VnniKernelTable() {
  static const KernelTable table = makeKernelTable<Avx2Vnni>("avx2-vnni");
  return table;
}

} // namespace moec::cpu::detail
