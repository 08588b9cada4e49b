//===- Scalar.cpp - Portable kernel primitives (no intrinsics) ------------===//
//
// The fallback for CPUs without AVX2, and a third implementation the tests hold
// against the others. A "vector" is one float.
//
//===----------------------------------------------------------------------===//

#include "Table.h"

#include <cmath>
#include <cstring>

namespace moec::cpu::detail {
namespace {

/// fp8 e4m3 byte -> value / 256, by the same f16 reinterpretation as the SIMD
/// levels, so every level agrees bit for bit on every byte (NaN bytes included).
struct Fp8Table {
  float value[256];
  Fp8Table() {
    for (int b = 0; b < 256; ++b) {
      const int16_t widened = static_cast<int8_t>(b);
      const uint16_t h = static_cast<uint16_t>((widened * 128) & 0xBF80);
      value[b] = f16ToFloat(h);
    }
  }
};

struct Scalar {
  static constexpr int kWidth = 1;
  static constexpr int kRowBlock = 4;
  static constexpr int kTokenBlock = 4;
  static constexpr int kStreamRowBlock = 4;
  static constexpr int kStreamTokens = 1;
  using V = float;

  // Int8 weights (LinearI8.h): one int32 accumulator, two weights per step.
  static constexpr bool kByteDot = false; // no VNNI byte products (LinearI8.h)
  static constexpr bool kAmx = false;     // no AMX tiles (LinearI8.h)
  /// The int8 tile keeps its fp32 sums in memory: no (they fit in registers)
  static constexpr bool kFoldInMemory = false;
  static constexpr int kIntStep = 2;
  static constexpr int kI8RowBlock = 4;
  static constexpr int kI8TokenBlock = 4;
  static constexpr int kI8StreamRowBlock = 4;
  static constexpr int kI8StreamTokens = 1;
  using VI = int32_t;
  struct WI {
    int32_t lo, hi;
  };
  static VI izero() { return 0; }
  static WI loadI8(const int8_t *p) { return {p[0], p[1]}; }
  static WI loadI8Partial(const int8_t *p, int n) { return {p[0], n > 1 ? p[1] : 0}; }
  struct XI {
    int32_t lo, hi;
  };
  static XI loadX(const int16_t *x) { return {x[0], x[1]}; }
  static VI madd(VI acc, WI w, XI x) { return acc + w.lo * x.lo + w.hi * x.hi; }
  static V toFloat(VI v) { return static_cast<float>(v); }
  static void storeRoundedI16(int16_t *out, V v) {
    *out = static_cast<int16_t>(std::nearbyint(v));
  }
  /// The top 16 bits of each float: its bf16 when the low bits are zero (Linear.h).
  static void storeBf16Bits(uint16_t *out, V v) {
    uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    *out = static_cast<uint16_t>(b >> 16);
  }

  static V zero() { return 0.f; }
  static V set1(float v) { return v; }
  static V load(const float *p) { return *p; }
  static V loadPartial(const float *, int) { return 0.f; } // n < 1: nothing to load
  static void store(float *p, V v) { *p = v; }
  static void storePartial(float *, V, int) {}
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V div(V a, V b) { return a / b; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V max(V a, V b) { return a > b ? a : b; }
  static float reduceAdd(V v) { return v; }
  static float reduceMax(V v) { return v; }
  static V exp(V x) { return std::exp(x); }
  static float expScalar(float x) { return std::exp(x); }
  static float sqrtScalar(float x) { return std::sqrt(x); }

  template <WeightType Wt> static V loadWeight(const char *row, int64_t k) {
    const char *p = row + k * kElemBytes<Wt>;
    if constexpr (Wt == WeightType::F32) {
      float v;
      std::memcpy(&v, p, sizeof v);
      return v;
    } else if constexpr (Wt == WeightType::BF16) {
      uint16_t h;
      std::memcpy(&h, p, sizeof h);
      return bf16ToFloat(h);
    } else if constexpr (Wt == WeightType::F16) {
      uint16_t h;
      std::memcpy(&h, p, sizeof h);
      return f16ToFloat(h);
    } else if constexpr (Wt == WeightType::I8) {
      return static_cast<float>(static_cast<int8_t>(*p));
    } else {
      static const Fp8Table table;
      return table.value[static_cast<uint8_t>(*p)];
    }
  }
  template <WeightType Wt>
  static void loadWeightPair(const char *row, int64_t k, V &lo, V &hi) {
    lo = loadWeight<Wt>(row, k);
    hi = loadWeight<Wt>(row, k + kWidth);
  }
  template <WeightType Wt> static V loadWeightPartial(const char *, int64_t, int) {
    return 0.f;
  }
};

} // namespace

const KernelTable &scalarKernelTable() {
  static const KernelTable table = makeKernelTable<Scalar>("scalar");
  return table;
}

} // namespace moec::cpu::detail
