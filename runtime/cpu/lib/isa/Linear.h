//===- Linear.h - Weight-streaming matrix kernels for one SIMD level -*- C++ -*-===//
//
// Included only by the per-level translation units (Scalar.cpp, Avx2.cpp,
// Avx512.cpp), each with its own `Isa` traits (see Table.h). Everything has
// internal linkage so that code compiled with one level's flags never stands in
// for another's at link time.
//
// linearRows computes register tiles of RB weight rows x TB tokens. A tile walks
// its K range once, decoding each weight vector once and using it for all TB
// tokens. At decode (T <= Isa::kTokenBlock) each thread streams its rows start to
// end with software prefetch, in tiles of Isa::kStreamRowBlock rows when T is
// tiny (more independent streams and accumulators). For more tokens the work is
// blocked into 64-row x 2048-column panels that stay in L2 while every token block
// passes over them. Each tile ends with a horizontal sum per accumulator, which
// costs about as much as a quarter of a 512-column tile's multiply-adds: wide
// panels make that rare (2048 columns: 1.12x on BM_LinearBf16 at T=64 against
// 512, bench/RESULTS.md).
//
// An FP8 panel is decoded once into the calling thread's scratch, as bf16 (each
// e4m3 value / 256, the f16 trick's float, is exact in bf16), and each token
// block's activations are multiplied by the block scales once per panel (per
// 128-row scale block it covers) instead of in every tile. The bf16 kernel then
// multiplies the two: the same products, rounded the same, summed in the same
// order as an FP8 tile's, so the same bits.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_LINEAR_H
#define MOEC_CPU_LIB_ISA_LINEAR_H

#include "../KernelTable.h"
#include "../Scratch.h"
#include "LinearI8.h"
#include "TokenBlock.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

namespace moec::cpu::detail {
namespace {

/// Bytes of one stored element (a per-level copy; see KernelTable.h).
template <WeightType Wt> constexpr int64_t kElemBytes =
    Wt == WeightType::F32 ? 4 : Wt == WeightType::F8E4M3 || Wt == WeightType::I8 ? 1 : 2;

/// Where a tile reads weight rows: row r at base + (r - row0) * rowBytes (a weight,
/// or a decoded panel of its rows; columns at their own index either way).
struct RowSource {
  const char *base = nullptr;
  int64_t row0 = 0;
  int64_t rowBytes = 0;
  const char *row(int64_t r) const { return base + (r - row0) * rowBytes; }
};

/// Wt: the weight's type, which sets the scaling (FP8 block scales); Stored: the
/// type of the bytes the tiles read (Wt, or BF16 for a decoded FP8 panel).
template <class Isa, WeightType Wt, WeightType Stored = Wt> struct LinearKernel {
  static constexpr WeightType kType = Wt;
  using V = typename Isa::V;
  static constexpr int kW = Isa::kWidth;
  /// Block-scaled weights (FP8, int8): each 128 x 128 block has its own factor.
  static constexpr bool kBlockScaled = Wt == WeightType::F8E4M3 || Wt == WeightType::I8;
  /// FP8 vectors decode to value / 256 (see the Isa traits), int8 ones to the
  /// code itself; the scale absorbs the unit.
  static constexpr float kCodeUnit = Wt == WeightType::F8E4M3 ? 256.f : 1.f;
  /// Tokens up to which a call is a decode: stream rows, no K blocking.
  static constexpr int64_t kDecodeTokens = Isa::kTokenBlock;
  /// How far ahead of its loads a streaming tile prefetches each row.
  static constexpr int64_t kPrefetchBytes = 1024;
  /// Panel sizes for more tokens.
  static constexpr int64_t kPanelRows = 64;
  static constexpr int64_t kPanelCols = 2048; // a multiple of the FP8 block

  static const char *row(const Weight &W, int64_t r) {
    return static_cast<const char *>(W.data) + r * W.cols * kElemBytes<Stored>;
  }
  static RowSource rowsOf(const Weight &W) {
    return RowSource{static_cast<const char *>(W.data), 0, W.cols * kElemBytes<Stored>};
  }

  /// Prefetches what a streaming tile of RB rows will read kPrefetchBytes after
  /// column k of one row. All RB rows advance together, so past the end of its
  /// row the stream continues in the same row of the next tile (RB rows on),
  /// not in the next row, which its own stream has already read by then.
  template <int RB>
  static inline void prefetchAhead(const char *rowPtr, int64_t rowBytes, int64_t k) {
    constexpr int64_t kStepBytes = 2 * kW * kElemBytes<Stored>;
    int64_t ahead = k * kElemBytes<Stored> + kPrefetchBytes;
    if (ahead >= rowBytes)
      ahead += (RB - 1) * rowBytes;
    // One prefetch per cache line the step consumes (at least one per step).
#pragma GCC unroll 4
    for (int64_t line = 0; line < kStepBytes || line == 0; line += 64)
      __builtin_prefetch(rowPtr + ahead + line);
  }

  /// acc[r][t] += W[row r, k0:k1] . x[t, k0:k1]; rows are rowBytes apart.
  /// For FP8, [k0, k1) lies inside one kFp8BlockSize-column block and `scale` is its factor,
  /// applied to x (once per x vector) rather than to each row's weights.
  template <int RB, int TB, bool Stream>
  static inline void accumulate(V (&acc)[RB][TB], const float *x, int64_t ldx,
                                const char *w, int64_t rowBytes, int64_t k0, int64_t k1,
                                V scale) {
    int64_t k = k0;
    // Main loop: two vectors per row and step, so a level can decode 2 * kW
    // narrow weights with one widening (Isa::loadWeightPair).
    for (; k + 2 * kW <= k1; k += 2 * kW) {
      V x0[TB], x1[TB];
#pragma GCC unroll 8
      for (int t = 0; t < TB; ++t) {
        x0[t] = Isa::load(x + t * ldx + k);
        x1[t] = Isa::load(x + t * ldx + k + kW);
        if constexpr (kBlockScaled) {
          x0[t] = Isa::mul(x0[t], scale);
          x1[t] = Isa::mul(x1[t], scale);
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) {
        V w0, w1;
        if constexpr (Stream)
          prefetchAhead<RB>(w + r * rowBytes, rowBytes, k);
        Isa::template loadWeightPair<Stored>(w + r * rowBytes, k, w0, w1);
#pragma GCC unroll 8
        for (int t = 0; t < TB; ++t)
          acc[r][t] = Isa::fma(w1, x1[t], Isa::fma(w0, x0[t], acc[r][t]));
      }
    }
    for (; k < k1; k += kW) {
      const int n = k1 - k < kW ? static_cast<int>(k1 - k) : kW;
      V xv[TB];
      for (int t = 0; t < TB; ++t) {
        xv[t] = n == kW ? Isa::load(x + t * ldx + k) : Isa::loadPartial(x + t * ldx + k, n);
        if constexpr (kBlockScaled)
          xv[t] = Isa::mul(xv[t], scale);
      }
      for (int r = 0; r < RB; ++r) {
        const V wv = n == kW ? Isa::template loadWeight<Stored>(w + r * rowBytes, k)
                             : Isa::template loadWeightPartial<Stored>(w + r * rowBytes, k, n);
        for (int t = 0; t < TB; ++t)
          acc[r][t] = Isa::fma(wv, xv[t], acc[r][t]);
      }
    }
  }

  /// y[t, r] (+)= x[t, k0:k1] . W[r0 + r, k0:k1] for r < RB, t < TB. For FP8 the RB
  /// rows share one scale block (r0 is a multiple of RB, RB divides kFp8BlockSize).
  template <int RB, int TB, bool Stream>
  static void tile(const float *x, int64_t ldx, const Weight &W, const RowSource &src,
                   int64_t r0, int64_t k0, int64_t k1, float *y, int64_t ldy,
                   bool accumulateY) {
    V acc[RB][TB];
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r)
#pragma GCC unroll 8
      for (int t = 0; t < TB; ++t)
        acc[r][t] = Isa::zero();
    const char *w = src.row(r0);
    const int64_t rowBytes = src.rowBytes;
    if constexpr (kBlockScaled) {
      const int64_t blocksPerRow = (W.cols + kFp8BlockSize - 1) / kFp8BlockSize;
      const float *scales = W.blockScale + (r0 / kFp8BlockSize) * blocksPerRow;
      for (int64_t b0 = k0; b0 < k1; b0 += kFp8BlockSize) {
        const int64_t b1 = b0 + kFp8BlockSize < k1 ? b0 + kFp8BlockSize : k1;
        const V scale = Isa::set1(scales[b0 / kFp8BlockSize] * kCodeUnit);
        accumulate<RB, TB, Stream>(acc, x, ldx, w, rowBytes, b0, b1, scale);
      }
    } else {
      accumulate<RB, TB, Stream>(acc, x, ldx, w, rowBytes, k0, k1, Isa::zero());
    }
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t)
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) {
        const float s = Isa::reduceAdd(acc[r][t]);
        float &out = y[t * ldy + r];
        out = accumulateY ? out + s : s;
      }
  }

  /// Rows [r0, r1) for TB tokens; single rows before the first RB-aligned row
  /// and after the last full group.
  template <int RB, int TB, bool Stream>
  static void rowSweep(const float *x, int64_t ldx, const Weight &W, const RowSource &src,
                       int64_t r0, int64_t r1, int64_t k0, int64_t k1, float *y,
                       int64_t ldy, int64_t yRow0, bool acc) {
    static_assert(kFp8BlockSize % RB == 0, "an FP8 row group must not straddle blocks");
    int64_t r = r0;
    for (; r < r1 && r % RB != 0; ++r)
      tile<1, TB, Stream>(x, ldx, W, src, r, k0, k1, y + (r - yRow0), ldy, acc);
    for (; r + RB <= r1; r += RB)
      tile<RB, TB, Stream>(x, ldx, W, src, r, k0, k1, y + (r - yRow0), ldy, acc);
    for (; r < r1; ++r)
      tile<1, TB, Stream>(x, ldx, W, src, r, k0, k1, y + (r - yRow0), ldy, acc);
  }

  /// rowSweep with the token count tb (1..MaxTB) made a compile-time constant.
  template <int RB, int MaxTB, bool Stream>
  static void sweep(int tb, const float *x, int64_t ldx, const Weight &W,
                    const RowSource &src, int64_t r0, int64_t r1, int64_t k0, int64_t k1,
                    float *y, int64_t ldy, int64_t yRow0, bool acc) {
    withTokenBlock<MaxTB>(tb, [&](auto TB) {
      rowSweep<RB, decltype(TB)::value, Stream>(x, ldx, W, src, r0, r1, k0, k1, y, ldy,
                                                yRow0, acc);
    });
  }

  /// xs[t * K + k] = x[t * ldx + k] * (the block scale of row block `rowBlock` and
  /// column k) * kCodeUnit for t < tb, k0 <= k < k1: what an FP8 tile multiplies its
  /// weights by (a multiple of kW columns per scale, so whole vectors).
  static void scaleActivations(const float *x, int64_t ldx, int tb, const Weight &W,
                               int64_t rowBlock, int64_t k0, int64_t k1, float *xs) {
    const int64_t K = W.cols;
    const int64_t blocksPerRow = (K + kFp8BlockSize - 1) / kFp8BlockSize;
    const float *scales = W.blockScale + rowBlock * blocksPerRow;
    for (int t = 0; t < tb; ++t)
      for (int64_t b0 = k0; b0 < k1; b0 += kFp8BlockSize) {
        const int64_t b1 = std::min(k1, b0 + kFp8BlockSize);
        const V scale = Isa::set1(scales[b0 / kFp8BlockSize] * kCodeUnit);
        int64_t k = b0;
        for (; k + kW <= b1; k += kW)
          Isa::store(xs + t * K + k, Isa::mul(Isa::load(x + t * ldx + k), scale));
        if (k < b1) {
          const int n = static_cast<int>(b1 - k);
          Isa::storePartial(xs + t * K + k, Isa::mul(Isa::loadPartial(x + t * ldx + k, n), scale),
                            n);
        }
      }
  }

  /// Rows [p0, p1), columns [k0, k1) of an FP8 weight as bf16 (value / 256, exact)
  /// into out, rows W.cols elements apart (column k at out[row * W.cols + k]).
  static void decodePanel(const Weight &W, int64_t p0, int64_t p1, int64_t k0, int64_t k1,
                          uint16_t *out) {
    for (int64_t r = p0; r < p1; ++r) {
      const char *w = row(W, r);
      uint16_t *o = out + (r - p0) * W.cols;
      int64_t k = k0;
      for (; k + kW <= k1; k += kW)
        Isa::storeBf16Bits(o + k, Isa::template loadWeight<Wt>(w, k));
      if (k < k1) {
        alignas(64) uint16_t tail[kW];
        Isa::storeBf16Bits(tail,
                           Isa::template loadWeightPartial<Wt>(w, k, static_cast<int>(k1 - k)));
        for (int64_t i = 0; i < k1 - k; ++i)
          o[k + i] = tail[i];
      }
    }
  }

  static void rows(const float *x, int64_t T, int64_t ldx, const Weight &W,
                   int64_t rowBegin, int64_t rowEnd, float *y, int64_t ldy) {
    const int64_t K = W.cols;
    if (K == 0) { // an empty dot product is zero
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = rowBegin; r < rowEnd; ++r)
          y[t * ldy + (r - rowBegin)] = 0.f;
      return;
    }
    const RowSource src = rowsOf(W);
    if (T <= Isa::kStreamTokens)
      return sweep<Isa::kStreamRowBlock, Isa::kStreamTokens, true>(
          static_cast<int>(T), x, ldx, W, src, rowBegin, rowEnd, 0, K, y, ldy, rowBegin,
          false);
    if (T <= kDecodeTokens)
      return sweep<Isa::kRowBlock, Isa::kTokenBlock, true>(
          static_cast<int>(T), x, ldx, W, src, rowBegin, rowEnd, 0, K, y, ldy, rowBegin,
          false);
    // FP8 panels are decoded once to bf16, the activations scaled once per panel
    // (see the file comment): scratch for the panel (rows K elements apart) and one
    // token block's scaled activations (K apart).
    constexpr bool kDecodePanels = Wt == WeightType::F8E4M3 && Stored == WeightType::F8E4M3;
    const size_t panelBytes = (static_cast<size_t>(kPanelRows * K) * 2 + 63) / 64 * 64;
    std::optional<Scratch> panel;
    if constexpr (kDecodePanels)
      panel.emplace(ScratchSlot::Fp8Panel,
                    panelBytes + static_cast<size_t>(Isa::kTokenBlock * K) * sizeof(float));
    for (int64_t p0 = rowBegin; p0 < rowEnd; p0 += kPanelRows) {
      const int64_t p1 = p0 + kPanelRows < rowEnd ? p0 + kPanelRows : rowEnd;
      for (int64_t k0 = 0; k0 < K; k0 += kPanelCols) {
        const int64_t k1 = k0 + kPanelCols < K ? k0 + kPanelCols : K;
        if constexpr (kDecodePanels)
          decodePanel(W, p0, p1, k0, k1, panel->as<uint16_t>());
        for (int64_t t0 = 0; t0 < T; t0 += Isa::kTokenBlock) {
          const int64_t left = T - t0;
          const int tb = static_cast<int>(left < Isa::kTokenBlock ? left : Isa::kTokenBlock);
          if constexpr (kDecodePanels) {
            using Panel = LinearKernel<Isa, WeightType::BF16>; // unscaled: x is scaled here
            const RowSource decoded{panel->as<char>(), p0, K * int64_t(sizeof(uint16_t))};
            float *xs = reinterpret_cast<float *>(panel->as<char>() + panelBytes);
            // One sweep per 128-row scale block the panel's rows cover.
            for (int64_t q0 = p0; q0 < p1;) {
              const int64_t q1 = std::min(p1, (q0 / kFp8BlockSize + 1) * kFp8BlockSize);
              scaleActivations(x + t0 * ldx, ldx, tb, W, q0 / kFp8BlockSize, k0, k1, xs);
              Panel::template sweep<Isa::kRowBlock, Isa::kTokenBlock, false>(
                  tb, xs, K, W, decoded, q0, q1, k0, k1, y + t0 * ldy, ldy, rowBegin,
                  /*acc=*/k0 > 0);
              q0 = q1;
            }
          } else {
            sweep<Isa::kRowBlock, Isa::kTokenBlock, false>(tb, x + t0 * ldx, ldx, W, src, p0,
                                                           p1, k0, k1, y + t0 * ldy, ldy,
                                                           rowBegin, /*acc=*/k0 > 0);
          }
        }
      }
    }
  }

  /// See KernelTable::linearTransposed. Works on column strips of kStrip vectors
  /// so the strip's accumulators stay in registers while the n rows pass.
  static void transposed(const float *x, int64_t T, int64_t ldx, const Weight &W,
                         int64_t rowBegin, int64_t n, float *y, int64_t ldy) {
    constexpr int kStrip = 4;
    const int64_t C = W.cols;
    const int64_t blocksPerRow = (C + kFp8BlockSize - 1) / kFp8BlockSize;
    for (int64_t t = 0; t < T; ++t) {
      const float *xt = x + t * ldx;
      float *yt = y + t * ldy;
      for (int64_t c0 = 0; c0 < C; c0 += kStrip * kW) {
        V acc[kStrip];
        int width[kStrip];
        for (int s = 0; s < kStrip; ++s) {
          acc[s] = Isa::zero();
          const int64_t left = C - (c0 + s * kW);
          width[s] = left <= 0 ? 0 : left < kW ? static_cast<int>(left) : kW;
        }
        for (int64_t i = 0; i < n; ++i) {
          const int64_t r = rowBegin + i;
          V xi = Isa::set1(xt[i]);
          if constexpr (kBlockScaled) // a strip never crosses a block: kStrip*kW divides kFp8BlockSize
            xi = Isa::mul(xi, Isa::set1(W.blockScale[(r / kFp8BlockSize) * blocksPerRow +
                                                     c0 / kFp8BlockSize] *
                                        kCodeUnit));
          const char *w = row(W, r);
#pragma GCC unroll 4
          for (int s = 0; s < kStrip; ++s) {
            if (width[s] == kW)
              acc[s] = Isa::fma(Isa::template loadWeight<Wt>(w, c0 + s * kW), xi, acc[s]);
            else if (width[s] > 0)
              acc[s] = Isa::fma(
                  Isa::template loadWeightPartial<Wt>(w, c0 + s * kW, width[s]), xi, acc[s]);
          }
        }
        for (int s = 0; s < kStrip; ++s) {
          if (width[s] == kW)
            Isa::store(yt + c0 + s * kW, acc[s]);
          else if (width[s] > 0)
            Isa::storePartial(yt + c0 + s * kW, acc[s], width[s]);
        }
      }
    }
  }

  static void decode(const Weight &W, int64_t r, float *out) {
    const int64_t C = W.cols;
    const char *w = row(W, r);
    const int64_t blocksPerRow = (C + kFp8BlockSize - 1) / kFp8BlockSize;
    for (int64_t c = 0; c < C; c += kW) {
      const int64_t left = C - c;
      V v = left >= kW ? Isa::template loadWeight<Wt>(w, c)
                       : Isa::template loadWeightPartial<Wt>(w, c, static_cast<int>(left));
      if constexpr (kBlockScaled) // a vector never crosses a block: kW divides kFp8BlockSize
        v = Isa::mul(v, Isa::set1(W.blockScale[(r / kFp8BlockSize) * blocksPerRow +
                                               c / kFp8BlockSize] *
                                  kCodeUnit));
      if (left >= kW)
        Isa::store(out + c, v);
      else
        Isa::storePartial(out + c, v, static_cast<int>(left));
    }
  }
};

/// Calls f.template operator()<Wt>() for W's stored type (one switch for all users).
template <class Isa, class Fn> void withWeightType(WeightType type, Fn &&fn) {
  switch (type) {
  case WeightType::F32:
    return fn(LinearKernel<Isa, WeightType::F32>());
  case WeightType::F16:
    return fn(LinearKernel<Isa, WeightType::F16>());
  case WeightType::BF16:
    return fn(LinearKernel<Isa, WeightType::BF16>());
  case WeightType::F8E4M3:
    return fn(LinearKernel<Isa, WeightType::F8E4M3>());
  case WeightType::I8:
    return fn(LinearKernel<Isa, WeightType::I8>());
  }
}

/// xr[t * K + k] = x[t * ldx + k] rounded to bf16 (to nearest even; NaN stays a
/// quiet NaN), as floats: floatToBf16's rule, in a loop the compiler vectorizes.
inline void roundRowsToBf16(const float *x, int64_t T, int64_t ldx, int64_t K, float *xr) {
  for (int64_t t = 0; t < T; ++t) {
    const uint32_t *in = reinterpret_cast<const uint32_t *>(x + t * ldx);
    uint32_t *out = reinterpret_cast<uint32_t *>(xr + t * K);
    for (int64_t k = 0; k < K; ++k) {
      const uint32_t u = in[k];
      const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
      const uint32_t quiet = (u | 0x00400000u) & 0xFFFF0000u;
      out[k] = (u & 0x7FFFFFFFu) > 0x7F800000u ? quiet : rounded;
    }
  }
}

/// |v| on the e4m3fn grid (nearest even, saturating at 448): floatToFp8e4m3 then
/// fp8e4m3ToFloat, in float arithmetic the compiler inlines. v is finite, >= 0.
inline float roundToE4m3Grid(float v) {
  if (v < 0.015625f) // below 2^-6: subnormal codes, steps of 2^-9
    return std::nearbyint(v * 512.f) * (1.f / 512.f);
  uint32_t u;
  std::memcpy(&u, &v, 4);
  u = (u + 0x7FFFFu + ((u >> 20) & 1u)) & 0xFFF00000u; // 3 mantissa bits, nearest even
  float r;
  std::memcpy(&r, &u, 4);
  return r < 448.f ? r : 448.f;
}

/// xq[t * K + k] = x[t * ldx + k] quantized as quantizeActivationsFp8 does (per
/// token and kFp8ActBlock columns), then dequantized: code * scale (float32).
/// NaN stays NaN.
inline void fakeQuantizeRowsFp8(const float *x, int64_t T, int64_t ldx, int64_t K,
                                float *xq) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b0 = 0; b0 < K; b0 += kFp8ActBlock) {
      const float *in = x + t * ldx;
      float *out = xq + t * K;
      const int64_t b1 = std::min(K, b0 + kFp8ActBlock);
      float amax = 0.f;
      for (int64_t k = b0; k < b1; ++k)
        amax = std::max(amax, std::fabs(in[k]));
      const float s = std::max(amax, 1e-4f) / 448.f;
      for (int64_t k = b0; k < b1; ++k) {
        const float q = in[k] / s;
        const float r = roundToE4m3Grid(std::fabs(q));
        out[k] = std::isnan(q) ? q : std::copysign(r, q) * s;
      }
    }
}

template <class Isa>
void linearRowsImpl(const float *x, int64_t T, int64_t ldx, const Weight &W,
                    int64_t rowBegin, int64_t rowEnd, float *y, int64_t ldy) {
  if (W.type == WeightType::I8) // W8A8 (LinearI8.h)
    return Int8Kernel<Isa>::rowsFromFloat(x, T, ldx, W, rowBegin, rowEnd, y, ldy);
  // bf16 activations: on the tile unit for a bf16 or FP8 weight at prefill, else x rounded
  // here and multiplied as usual.
  std::optional<Scratch> rounded;
  if (W.fp8Activations && W.cols > 0 && T > 0) {
    rounded.emplace(ScratchSlot::Bf16Input, size_t(T * W.cols) * sizeof(float));
    fakeQuantizeRowsFp8(x, T, ldx, W.cols, rounded->as<float>());
    x = rounded->as<float>();
    ldx = W.cols;
  } else if (W.bf16Activations && W.cols > 0 && T > 0) {
    if constexpr (Isa::kAmx)
      if (amxBf16Weight(W) && T > Isa::kTokenBlock)
        return Isa::amxBf16Rows(x, T, ldx, W, rowBegin, rowEnd, y, ldy);
    rounded.emplace(ScratchSlot::Bf16Input, size_t(T * W.cols) * sizeof(float));
    roundRowsToBf16(x, T, ldx, W.cols, rounded->as<float>());
    x = rounded->as<float>();
    ldx = W.cols;
  }
  withWeightType<Isa>(W.type, [&](auto kernel) {
    decltype(kernel)::rows(x, T, ldx, W, rowBegin, rowEnd, y, ldy);
  });
}

template <class Isa>
void linearTransposedImpl(const float *x, int64_t T, int64_t ldx, const Weight &W,
                          int64_t rowBegin, int64_t n, float *y, int64_t ldy) {
  withWeightType<Isa>(W.type, [&](auto kernel) {
    decltype(kernel)::transposed(x, T, ldx, W, rowBegin, n, y, ldy);
  });
}

template <class Isa> void decodeRowImpl(const Weight &W, int64_t row, float *out) {
  withWeightType<Isa>(W.type, [&](auto kernel) { decltype(kernel)::decode(W, row, out); });
}

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_LINEAR_H
