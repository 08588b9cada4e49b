//===- Vector.h - Element-wise kernels for one SIMD level -------*- C++ -*-===//
//
// Included only by the per-level translation units (see Linear.h).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_VECTOR_H
#define MOEC_CPU_LIB_ISA_VECTOR_H

#include "../KernelTable.h"
#include "Linear.h"

namespace moec::cpu::detail {
namespace {

template <class Isa> struct VectorKernel {
  using V = typename Isa::V;
  static constexpr int kW = Isa::kWidth;

  /// Calls f(offset, width) over [0, n) in whole vectors, then one partial one.
  template <class Fn> static inline void forVectors(int64_t n, Fn &&f) {
    int64_t c = 0;
    for (; c + kW <= n; c += kW)
      f(c, kW);
    if (c < n)
      f(c, static_cast<int>(n - c));
  }

  static V load(const float *p, int w) { return w == kW ? Isa::load(p) : Isa::loadPartial(p, w); }
  static void store(float *p, V v, int w) {
    if (w == kW)
      Isa::store(p, v);
    else
      Isa::storePartial(p, v, w);
  }

  /// gamma's values o..o+w as floats, decoded from its stored type (row 0).
  template <WeightType Wt> static V gammaVector(const Weight &gamma, int64_t o, int w) {
    const char *row = static_cast<const char *>(gamma.data);
    V g = w == kW ? Isa::template loadWeight<Wt>(row, o)
                  : Isa::template loadWeightPartial<Wt>(row, o, w);
    if constexpr (LinearKernel<Isa, Wt>::kBlockScaled) // a vector never crosses a scale block
      g = Isa::mul(g, Isa::set1(gamma.blockScale[o / kFp8BlockSize] *
                                LinearKernel<Isa, Wt>::kCodeUnit));
    return g;
  }

  template <WeightType Wt>
  static void rmsNormRowTyped(const float *x, int64_t D, const Weight &gamma, float eps,
                              float *out) {
    // Two accumulators: a long row should not wait on one add chain.
    V s0 = Isa::zero(), s1 = Isa::zero();
    int64_t c = 0;
    for (; c + 2 * kW <= D; c += 2 * kW) {
      const V a = Isa::load(x + c), b = Isa::load(x + c + kW);
      s0 = Isa::fma(a, a, s0);
      s1 = Isa::fma(b, b, s1);
    }
    for (; c < D; c += kW) {
      const int w = D - c < kW ? static_cast<int>(D - c) : kW;
      const V a = load(x + c, w);
      s0 = Isa::fma(a, a, s0);
    }
    const float meanSquare = Isa::reduceAdd(Isa::add(s0, s1)) / static_cast<float>(D);
    const V r = Isa::set1(1.f / Isa::sqrtScalar(meanSquare + eps));
    // gamma is decoded where it is used: no separate pass, no scratch copy.
    forVectors(D, [&](int64_t o, int w) {
      store(out + o, Isa::mul(Isa::mul(load(x + o, w), r), gammaVector<Wt>(gamma, o, w)), w);
    });
  }

  static void rmsNormRow(const float *x, int64_t D, const Weight &gamma, float eps,
                         float *out) {
    withWeightType<Isa>(gamma.type, [&](auto kernel) {
      rmsNormRowTyped<decltype(kernel)::kType>(x, D, gamma, eps, out);
    });
  }

  static void ropeRow(float *v, int64_t dim, const float *cos, const float *sin,
                      RopeLayout layout) {
    // Every value is fma(partner, sin, value * cos), in both layouts alike, so a
    // rotation and its de-interleaved twin give the same bits.
    if (layout == RopeLayout::Half) {
      const int64_t half = dim / 2;
      forVectors(half, [&](int64_t o, int w) {
        const V a = load(v + o, w), b = load(v + half + o, w);
        store(v + o, Isa::fma(b, load(sin + o, w), Isa::mul(a, load(cos + o, w))), w);
        store(v + half + o,
              Isa::fma(a, load(sin + half + o, w), Isa::mul(b, load(cos + half + o, w))), w);
      });
    } else if constexpr (kW == 1) {
      for (int64_t i = 0; i + 1 < dim; i += 2) {
        const V a = v[i], b = v[i + 1];
        v[i] = Isa::fma(b, sin[i], Isa::mul(a, cos[i]));
        v[i + 1] = Isa::fma(a, sin[i + 1], Isa::mul(b, cos[i + 1]));
      }
    } else {
      // dim is even, so a partial last vector still holds whole pairs.
      forVectors(dim, [&](int64_t o, int w) {
        const V x = load(v + o, w);
        store(v + o, Isa::fma(Isa::swapPairs(x), load(sin + o, w), Isa::mul(x, load(cos + o, w))),
              w);
      });
    }
  }

  static void add(const float *a, const float *b, int64_t n, float *out) {
    forVectors(n, [&](int64_t o, int w) {
      store(out + o, Isa::add(load(a + o, w), load(b + o, w)), w);
    });
  }

  static void siluMul(const float *gate, const float *up, int64_t n, float *out) {
    const V one = Isa::set1(1.f);
    forVectors(n, [&](int64_t o, int w) {
      const V g = load(gate + o, w);
      // silu(g) = g / (1 + exp(-g))
      const V silu = Isa::div(g, Isa::add(one, Isa::exp(Isa::sub(Isa::zero(), g))));
      store(out + o, Isa::mul(silu, load(up + o, w)), w);
    });
  }

  static void axpy(float alpha, const float *x, int64_t n, float *y) {
    const V av = Isa::set1(alpha);
    forVectors(n, [&](int64_t o, int w) {
      store(y + o, Isa::fma(av, load(x + o, w), load(y + o, w)), w);
    });
  }
};

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_VECTOR_H
