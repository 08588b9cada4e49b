//===- Attention.h - Online-softmax attention for one SIMD level -*- C++ -*-===//
//
// Included only by the per-level translation units (see Linear.h). Implements
// KernelTable::attend: keys and values are visited in chunks of kChunk rows; each
// chunk's scores are computed in 4x4 register tiles (4 queries x 4 keys), turned
// into probabilities against a running maximum, and accumulated into the outputs,
// which are rescaled whenever the maximum grows. One pass over the rows, no
// scratch proportional to their number. Keys and values are stored as floats, bf16
// or e4m3 (the KV cache's element type): each chunk of narrow rows is widened once,
// exactly, into
// the thread's scratch (64 rows x 576 values: 147 KB for DeepSeek's MLA) and then
// scored and summed as float rows, so the widening is paid once per chunk, not once
// per 4-query tile.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_ATTENTION_H
#define MOEC_CPU_LIB_ISA_ATTENTION_H

#include "../KernelTable.h"
#include "../Scratch.h"

#include <optional>
#include <type_traits>

namespace moec::cpu::detail {
namespace {

template <class Isa> struct AttentionKernel {
  using V = typename Isa::V;
  static constexpr int kW = Isa::kWidth;
  static constexpr int64_t kChunk = 64;

  /// acc[i][j] += a[i] . b[j] over d values; a rows lda apart, b rows ldb apart.
  template <int NI, int NJ>
  static inline void dotTile(V (&acc)[NI][NJ], const float *a, int64_t lda,
                             const float *b, int64_t ldb, int64_t d) {
    int64_t k = 0;
    for (; k + kW <= d; k += kW) {
      V bv[NJ];
#pragma GCC unroll 4
      for (int j = 0; j < NJ; ++j)
        bv[j] = Isa::load(b + j * ldb + k);
#pragma GCC unroll 4
      for (int i = 0; i < NI; ++i) {
        const V av = Isa::load(a + i * lda + k);
#pragma GCC unroll 4
        for (int j = 0; j < NJ; ++j)
          acc[i][j] = Isa::fma(av, bv[j], acc[i][j]);
      }
    }
    if (k < d) {
      const int n = static_cast<int>(d - k);
      V bv[NJ];
      for (int j = 0; j < NJ; ++j)
        bv[j] = Isa::loadPartial(b + j * ldb + k, n);
      for (int i = 0; i < NI; ++i) {
        const V av = Isa::loadPartial(a + i * lda + k, n);
        for (int j = 0; j < NJ; ++j)
          acc[i][j] = Isa::fma(av, bv[j], acc[i][j]);
      }
    }
  }

  /// s[i][j] = q_i . k_(row0+j) + qr_i . kr_(row0+j) for queries i0..i0+NI and
  /// chunk rows j0..j0+NJ.
  template <int NI, int NJ>
  static void scoreTile(const AttendArgs &a, int64_t i0, int64_t row0, int64_t j0,
                        float (*s)[kChunk]) {
    V acc[NI][NJ];
    for (int i = 0; i < NI; ++i)
      for (int j = 0; j < NJ; ++j)
        acc[i][j] = Isa::zero();
    const int64_t r = row0 + j0;
    dotTile<NI, NJ>(acc, a.q + i0 * a.ldq, a.ldq, static_cast<const float *>(a.k) + r * a.ldk,
                    a.ldk, a.dk);
    if (a.dr > 0)
      dotTile<NI, NJ>(acc, a.qr + i0 * a.ldqr, a.ldqr,
                      static_cast<const float *>(a.kr) + r * a.ldkr, a.ldkr, a.dr);
    for (int i = 0; i < NI; ++i)
      for (int j = 0; j < NJ; ++j)
        s[i0 + i][j0 + j] = Isa::reduceAdd(acc[i][j]);
  }

  template <int NI>
  static void scoreRows(const AttendArgs &a, int64_t i0, int64_t row0, int64_t rows,
                        float (*s)[kChunk]) {
    int64_t j = 0;
    for (; j + 4 <= rows; j += 4)
      scoreTile<NI, 4>(a, i0, row0, j, s);
    for (; j < rows; ++j)
      scoreTile<NI, 1>(a, i0, row0, j, s);
  }

  /// out[i] += sum_j p[i][j] * v_(row0+j) for queries i0..i0+NI, columns c0..c0+n
  /// with n <= 2 vectors.
  template <int NI>
  static void valueStrip(const AttendArgs &a, int64_t i0, int64_t row0, int64_t rows,
                         const float (*p)[kChunk], int64_t c0, int n) {
    const int n0 = n < kW ? n : kW;
    const int n1 = n - n0;
    V acc[NI][2];
    for (int i = 0; i < NI; ++i) {
      float *o = a.out + (i0 + i) * a.ldo + c0;
      acc[i][0] = n0 == kW ? Isa::load(o) : Isa::loadPartial(o, n0);
      acc[i][1] = n1 == kW ? Isa::load(o + kW) : n1 > 0 ? Isa::loadPartial(o + kW, n1)
                                                         : Isa::zero();
    }
    for (int64_t j = 0; j < rows; ++j) {
      const float *vr = static_cast<const float *>(a.v) + (row0 + j) * a.ldv + c0;
      const V v0 = n0 == kW ? Isa::load(vr) : Isa::loadPartial(vr, n0);
      const V v1 = n1 == kW ? Isa::load(vr + kW) : n1 > 0 ? Isa::loadPartial(vr + kW, n1)
                                                           : Isa::zero();
#pragma GCC unroll 4
      for (int i = 0; i < NI; ++i) {
        const V pj = Isa::set1(p[i0 + i][j]);
        acc[i][0] = Isa::fma(pj, v0, acc[i][0]);
        acc[i][1] = Isa::fma(pj, v1, acc[i][1]);
      }
    }
    for (int i = 0; i < NI; ++i) {
      float *o = a.out + (i0 + i) * a.ldo + c0;
      if (n0 == kW)
        Isa::store(o, acc[i][0]);
      else
        Isa::storePartial(o, acc[i][0], n0);
      if (n1 == kW)
        Isa::store(o + kW, acc[i][1]);
      else if (n1 > 0)
        Isa::storePartial(o + kW, acc[i][1], n1);
    }
  }

  template <int NI>
  static void valueRows(const AttendArgs &a, int64_t i0, int64_t row0, int64_t rows,
                        const float (*p)[kChunk]) {
    for (int64_t c0 = 0; c0 < a.dv; c0 += 2 * kW) {
      const int64_t left = a.dv - c0;
      valueStrip<NI>(a, i0, row0, rows, p, c0,
                     static_cast<int>(left < 2 * kW ? left : 2 * kW));
    }
  }

  static void scaleRow(float *x, int64_t n, float f) {
    const V fv = Isa::set1(f);
    int64_t c = 0;
    for (; c + kW <= n; c += kW)
      Isa::store(x + c, Isa::mul(Isa::load(x + c), fv));
    if (c < n)
      Isa::storePartial(x + c, Isa::mul(Isa::loadPartial(x + c, static_cast<int>(n - c)), fv),
                        static_cast<int>(n - c));
  }

  /// Turns s[0:valid) into exp(s*scale - newMax) in place, zeroes s[valid:rows), and
  /// returns the sum. newMax = max(oldMax, max(s*scale)) is written to *runningMax;
  /// the return value's companion *rescale is exp(oldMax - newMax).
  static float probabilities(float *s, int64_t valid, int64_t rows, float scale,
                             float *runningMax, float *rescale) {
    const V sc = Isa::set1(scale);
    V mv = Isa::set1(-__builtin_inff());
    int64_t c = 0;
    for (; c + kW <= valid; c += kW) {
      const V x = Isa::mul(Isa::load(s + c), sc);
      Isa::store(s + c, x);
      mv = Isa::max(mv, x);
    }
    if (c < valid) {
      const int n = static_cast<int>(valid - c);
      const V x = Isa::mul(Isa::loadPartial(s + c, n), sc);
      Isa::storePartial(s + c, x, n);
      // Lanes past n are zero: fold the real lanes only.
      for (int l = 0; l < n; ++l)
        mv = Isa::max(mv, Isa::set1(s[c + l]));
    }
    const float chunkMax = Isa::reduceMax(mv);
    const float oldMax = *runningMax;
    const float newMax = chunkMax > oldMax ? chunkMax : oldMax;
    *rescale = oldMax == -__builtin_inff() ? 0.f : Isa::expScalar(oldMax - newMax);
    *runningMax = newMax;
    const V m = Isa::set1(newMax);
    V sum = Isa::zero();
    c = 0;
    for (; c + kW <= valid; c += kW) {
      const V e = Isa::exp(Isa::sub(Isa::load(s + c), m));
      Isa::store(s + c, e);
      sum = Isa::add(sum, e);
    }
    float total = Isa::reduceAdd(sum);
    for (; c < valid; ++c) {
      s[c] = Isa::expScalar(s[c] - newMax);
      total += s[c];
    }
    for (c = valid; c < rows; ++c)
      s[c] = 0.f;
    return total;
  }

  static void attend(const AttendArgs &a) {
    if (a.rows == StateElement::BF16)
      attendRows<uint16_t>(a);
    else if (a.rows == StateElement::F8E4M3)
      attendRows<uint8_t>(a);
    else
      attendRows<float>(a);
  }

  /// n stored values at in as floats at out: E = uint16_t holds bf16, uint8_t e4m3
  /// (decoded as value / 256, exactly, then scaled back by 256).
  template <class E> static void widen(const E *in, int64_t n, float *out) {
    constexpr WeightType kType =
        std::is_same_v<E, uint16_t> ? WeightType::BF16 : WeightType::F8E4M3;
    const V unscale = Isa::set1(std::is_same_v<E, uint16_t> ? 1.f : 256.f);
    const char *bytes = reinterpret_cast<const char *>(in);
    int64_t c = 0;
    for (; c + kW <= n; c += kW)
      Isa::store(out + c, Isa::mul(Isa::template loadWeight<kType>(bytes, c), unscale));
    if (c < n)
      Isa::storePartial(out + c,
                        Isa::mul(Isa::template loadWeightPartial<kType>(
                                     bytes, c, static_cast<int>(n - c)),
                                 unscale),
                        static_cast<int>(n - c));
  }

  /// Rows [row0, row0 + rows) of src's narrow keys (and values, unless they are the
  /// keys) widened into `buffer`; returns float arguments whose row 0 is row0.
  template <class E>
  static AttendArgs widenChunk(const AttendArgs &src, int64_t row0, int64_t rows,
                               float *buffer) {
    AttendArgs w = src;
    w.rows = StateElement::F32;
    const bool valuesAreKeys = src.v == src.k && src.ldv == src.ldk && src.dv <= src.dk;
    float *k = buffer, *kr = k + rows * src.dk, *v = kr + rows * src.dr;
    for (int64_t j = 0; j < rows; ++j) {
      widen(static_cast<const E *>(src.k) + (row0 + j) * src.ldk, src.dk, k + j * src.dk);
      if (src.dr > 0)
        widen(static_cast<const E *>(src.kr) + (row0 + j) * src.ldkr, src.dr,
              kr + j * src.dr);
      if (!valuesAreKeys)
        widen(static_cast<const E *>(src.v) + (row0 + j) * src.ldv, src.dv,
              v + j * src.dv);
    }
    w.k = k;
    w.ldk = src.dk;
    w.kr = kr;
    w.ldkr = src.dr;
    w.v = valuesAreKeys ? k : v;
    w.ldv = valuesAreKeys ? src.dk : src.dv;
    return w;
  }

  template <class E> static void attendRows(const AttendArgs &a) {
    const int64_t nq = a.queries;
    float s[kMaxAttendQueries][kChunk];
    float runningMax[kMaxAttendQueries];
    float denominator[kMaxAttendQueries];
    int64_t maxLen = 0;
    for (int64_t i = 0; i < nq; ++i) {
      runningMax[i] = -__builtin_inff();
      denominator[i] = 0.f;
      for (int64_t c = 0; c < a.dv; ++c)
        a.out[i * a.ldo + c] = 0.f;
      maxLen = a.len[i] > maxLen ? a.len[i] : maxLen;
    }
    // Rows below a.prefixRows live in another sequence (k0, kr0, v0): the chunks
    // run over that part first, then over the sequence's own rows, one softmax.
    AttendArgs shared = a;
    shared.k = a.k0;
    shared.kr = a.kr0;
    shared.v = a.v0;
    const int64_t split = a.prefixRows < maxLen ? a.prefixRows : maxLen;
    constexpr bool kWiden = !std::is_same_v<E, float>;
    std::optional<Scratch> rowsBuffer;
    if constexpr (kWiden)
      rowsBuffer.emplace(ScratchSlot::AttentionRows,
                         size_t(kChunk * (a.dk + a.dr + a.dv)) * sizeof(float));
    for (int part = a.prefixRows > 0 ? 0 : 1; part < 2; ++part) {
      const AttendArgs &src = part == 0 ? shared : a;
      const int64_t begin = part == 0 ? 0 : split;
      const int64_t end = part == 0 ? split : maxLen;
      for (int64_t row0 = begin; row0 < end; row0 += kChunk) {
        const int64_t rows = end - row0 < kChunk ? end - row0 : kChunk;
        // bf16 rows: this chunk widened once, then read as floats from its row 0.
        AttendArgs wide;
        if constexpr (kWiden)
          wide = widenChunk<E>(src, row0, rows, rowsBuffer->template as<float>());
        const AttendArgs &rowsArgs = kWiden ? wide : src;
        const int64_t rowsBase = kWiden ? 0 : row0;
        int64_t i = 0;
        for (; i + 4 <= nq; i += 4)
          scoreRows<4>(rowsArgs, i, rowsBase, rows, s);
        for (; i < nq; ++i)
          scoreRows<1>(rowsArgs, i, rowsBase, rows, s);
        for (i = 0; i < nq; ++i) {
          int64_t valid = a.len[i] - row0;
          valid = valid < 0 ? 0 : valid > rows ? rows : valid;
          if (valid == 0) { // nothing of this chunk is visible to query i
            for (int64_t c = 0; c < rows; ++c)
              s[i][c] = 0.f;
            continue;
          }
          float rescale;
          const float sum =
              probabilities(s[i], valid, rows, a.scale, &runningMax[i], &rescale);
          if (rescale != 1.f)
            scaleRow(a.out + i * a.ldo, a.dv, rescale);
          denominator[i] = denominator[i] * rescale + sum;
        }
        i = 0;
        for (; i + 4 <= nq; i += 4)
          valueRows<4>(rowsArgs, i, rowsBase, rows, s);
        for (; i < nq; ++i)
          valueRows<1>(rowsArgs, i, rowsBase, rows, s);
      }
    }
    for (int64_t i = 0; i < nq; ++i)
      scaleRow(a.out + i * a.ldo, a.dv, 1.f / denominator[i]);
  }
};

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_ATTENTION_H
