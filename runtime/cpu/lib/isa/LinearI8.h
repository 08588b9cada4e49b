//===- LinearI8.h - W8A8 products of int8 weights, per SIMD level -*- C++ -*-===//
//
// Included only by the per-level translation units (see Linear.h). The numerics
// are in moec/cpu/kernels.h (linear, quantizeActivationsI8): the activations are
// quantized per token and per 128-column block to int8 codes (held as int16), and
// each block's dot product with a weight row is exact in int32 lanes:
//
//   Isa::loadI8      kIntStep int8 weights, sign-extended to int16
//   Isa::madd        acc (kWidth int32 lanes) += pairwise products with kIntStep
//                    int16 activation codes (vpmaddwd: two products per lane)
//   Isa::toFloat     the lanes as floats (exact: a lane holds at most
//                    2 * 64 * 127^2 < 2^24 for one 128-column block)
//
// At each block's end the lanes are folded into fp32 accumulators with the
// block's two scales (the weight's 128 x 128 block, the token's 128 columns).
// The tiles, panels and streaming follow LinearKernel: a tile of RB rows (one
// scale block of rows) by TB tokens; rows streamed with prefetch at decode,
// 64-row x 2048-column panels kept in L2 at prefill.
//
// vpmaddwd on int16 does as many multiply-adds per instruction as vpmaddubsw
// on bytes followed by the vpmaddwd that widens its pairs (the AVX2 way to
// multiply bytes), without the latter's saturation or sign tricks.
//
// Levels with VNNI (Isa::kByteDot) multiply bytes directly at prefill: vpdpbusd
// adds four products of an unsigned and a signed byte to each int32 lane, twice
// vpmaddwd's work per instruction and no widening of the weights. The activation
// codes go in as u = q + 128 (QuantizedActs::u8), so a block's sum is
//   sum u w = sum q w + 128 * sum w,
// and each tile starts its lanes at -128 * sum w over the weights each lane will
// multiply (a vector per weight row and block, computed once per panel of the
// weights, with no horizontal sums), so every lane holds its own part of the
// integer dot product: the lanes stay small, and their fold into fp32 rounds no
// more than the int16 path's. Every step stays exact in int32:
//   Isa::kByteStep         bytes per step
//   Isa::loadBytes(p), loadBytesPartial(p, n), loadU8(p), dot(acc, u, w)
//   Isa::bytes128()        128 in every byte; Isa::isub(a, b) lane by lane
//   Isa::storeU8Codes(out, q, n)   n codes + 128 as bytes (n a multiple of kBlock)
// Decode (the streaming tiles) keeps the int16 path, where VNNI's vpdpwssd fuses
// vpmaddwd with its add.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_LINEARI8_H
#define MOEC_CPU_LIB_ISA_LINEARI8_H

#include "../KernelTable.h"
#include "../Scratch.h"
#include "TokenBlock.h"

#include <cmath>
#include <cstring>

namespace moec::cpu::detail {
namespace {

template <class Isa> struct Int8Kernel {
  using V = typename Isa::V;
  using VI = typename Isa::VI;
  using WI = typename Isa::WI;
  using XI = typename Isa::XI;
  static constexpr int kW = Isa::kWidth;
  static constexpr int kStep = Isa::kIntStep;
  static constexpr int64_t kBlock = kInt8ActBlock;
  static_assert(kBlock == kFp8BlockSize, "activation blocks match the weights' blocks");
  static_assert(kBlock % kStep == 0 && kBlock % kW == 0, "whole steps per block");
  static constexpr int64_t kPanelRows = 64;
  static constexpr int64_t kPanelCols = 2048; // a multiple of the block
  static constexpr int64_t kPrefetchBytes = 4096;

  /// One token row; see quantizeActivationsI8 in kernels.h.
  static void quantizeRow(const float *x, int64_t K, int16_t *q, float *scales) {
    for (int64_t b0 = 0, b = 0; b0 < K; b0 += kBlock, ++b) {
      const int64_t n = K - b0 < kBlock ? K - b0 : kBlock;
      const float *xb = x + b0;
      int16_t *qb = q + b0;
      V m = Isa::zero();
      int64_t k = 0;
      for (; k + kW <= n; k += kW) {
        const V v = Isa::load(xb + k);
        m = Isa::max(m, Isa::max(v, Isa::sub(Isa::zero(), v)));
      }
      float amax = Isa::reduceMax(m);
      for (; k < n; ++k)
        amax = std::fabs(xb[k]) > amax ? std::fabs(xb[k]) : amax;
      if (!(amax >= 0x1p-100f)) { // zero, tiny (127 / amax would overflow) or NaN
        scales[b] = 0.f;
        std::memset(qb, 0, static_cast<size_t>(n) * sizeof(int16_t));
        continue;
      }
      scales[b] = amax / 127.f;
      const float inverse = 127.f / amax;
      const V iv = Isa::set1(inverse);
      k = 0;
      for (; k + kW <= n; k += kW)
        Isa::storeRoundedI16(qb + k, Isa::mul(Isa::load(xb + k), iv));
      for (; k < n; ++k) // the default rounding mode: to nearest, ties to even
        qb[k] = static_cast<int16_t>(std::nearbyint(xb[k] * inverse));
    }
  }

  /// x [T, K] (rows ldx apart) into `a`'s codes (zero from K to a.ld) and scales.
  static void quantize(const float *x, int64_t T, int64_t ldx, int64_t K,
                       const QuantizedActs &a) {
    for (int64_t t = 0; t < T; ++t) {
      quantizeRow(x + t * ldx, K, a.q + t * a.ld, a.scale + t * a.blocks);
      std::memset(a.q + t * a.ld + K, 0, static_cast<size_t>(a.ld - K) * sizeof(int16_t));
      if constexpr (Isa::kByteDot)
        Isa::storeU8Codes(a.u8 + t * a.ld, a.q + t * a.ld, a.ld);
    }
  }

  /// The vectors the byte products of each weight row and block of one panel start
  /// from: -128 * the sum of the weight bytes each lane multiplies (see above).
  struct ByteSums {
    const VI *lanes = nullptr; ///< [rows of the panel][ld]
    int64_t ld = 0;
    int64_t row0 = 0;   ///< the panel's first row
    int64_t block0 = 0; ///< the panel's first block
    VI at(int64_t row, int64_t block) const { return lanes[(row - row0) * ld + (block - block0)]; }
  };
  static constexpr int64_t kPanelBlocks = kPanelCols / kBlock;

  static void byteSums(const Weight &W, int64_t p0, int64_t p1, int64_t k0, int64_t k1,
                       VI *out) {
    const int8_t *w = static_cast<const int8_t *>(W.data);
    for (int64_t r = p0; r < p1; ++r)
      for (int64_t b0 = k0, i = 0; b0 < k1; b0 += kBlock, ++i) {
        const int n = static_cast<int>(k1 - b0 < kBlock ? k1 - b0 : kBlock);
        out[(r - p0) * kPanelBlocks + i] = byteOffsets(w + r * W.cols + b0, n);
      }
  }

  /// -128 * (per lane) the sum of the weight bytes the lane multiplies in the
  /// n <= kBlock bytes at p (four at each step): what the codes' + 128 adds.
  static VI byteOffsets(const int8_t *p, int n) {
    VI acc = Isa::izero();
    for (int k = 0; k < n; k += Isa::kByteStep)
      acc = Isa::dot(acc, Isa::bytes128(), Isa::loadBytesPartial(p + k, n - k));
    return Isa::isub(Isa::izero(), acc);
  }

  /// y[t, r] (+)= the W8A8 product of rows r0..r0+RB-1 (one scale block of rows)
  /// with tokens 0..TB-1 of `a`, over columns [k0, k1) (whole blocks, or up to K).
  /// Bytes: the VNNI byte products (Isa::kByteDot), offsets from `sums`.
  template <int RB, int TB, bool Stream, bool Bytes>
  static void tile(const QuantizedActs &a, const Weight &W, int64_t r0, int64_t k0,
                   int64_t k1, float *y, int64_t ldy, bool accumulateY,
                   const ByteSums &sums) {
    const int64_t K = W.cols;
    const int8_t *w = static_cast<const int8_t *>(W.data) + r0 * K;
    const int64_t blocksPerRow = (K + kBlock - 1) / kBlock;
    const float *ws = W.blockScale + (r0 / kBlock) * blocksPerRow;
    // The fp32 sums live in memory, not registers: the integer accumulators, the
    // weights and the activations of the inner loop need them all (AVX2 has 16).
    // The empty asm hides where `fs` points, so the compiler cannot promote the
    // array back into registers and spill the inner loop's instead.
    // With 32 registers (AVX-512) they fit beside the rest and stay there.
    alignas(64) float fsum[RB * TB * kW];
    float *fs = fsum;
    if constexpr (Isa::kFoldInMemory)
      asm volatile("" : "+r"(fs));
#pragma GCC unroll 8
    for (int i = 0; i < RB * TB; ++i)
      Isa::store(fs + i * kW, Isa::zero());
    for (int64_t b0 = k0; b0 < k1; b0 += kBlock) {
      const int64_t b = b0 / kBlock;
      const int64_t b1 = b0 + kBlock < k1 ? b0 + kBlock : k1;
      VI acc[RB][TB];
      // Streaming: the block's two cache lines kPrefetchBytes on; past the row's
      // end the stream continues in the same row of the next tile (RB rows on),
      // whose rows this tile's other streams are not reading.
      int64_t ahead = b0 + kPrefetchBytes;
      if (ahead >= K)
        ahead += (RB - 1) * K;
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) {
        if constexpr (Stream) {
          __builtin_prefetch(w + r * K + ahead);
          __builtin_prefetch(w + r * K + ahead + 64);
        }
        if constexpr (Bytes) {
          const VI start = sums.at(r0 + r, b);
#pragma GCC unroll 8
          for (int t = 0; t < TB; ++t)
            acc[r][t] = start;
        } else {
#pragma GCC unroll 8
          for (int t = 0; t < TB; ++t)
            acc[r][t] = Isa::izero();
        }
      }
      int64_t k = b0;
      if constexpr (Bytes) {
        constexpr int kBytes = Isa::kByteStep;
        for (; k + kBytes <= b1; k += kBytes) {
          VI uv[TB];
#pragma GCC unroll 8
          for (int t = 0; t < TB; ++t)
            uv[t] = Isa::loadU8(a.u8 + t * a.ld + k);
#pragma GCC unroll 8
          for (int r = 0; r < RB; ++r) {
            const VI wv = Isa::loadBytes(w + r * K + k);
#pragma GCC unroll 8
            for (int t = 0; t < TB; ++t)
              acc[r][t] = Isa::dot(acc[r][t], uv[t], wv);
          }
        }
        if (k < b1) { // the row's end: padding codes are 128, the weights past K zero
          const int n = static_cast<int>(b1 - k);
          for (int r = 0; r < RB; ++r) {
            const VI wv = Isa::loadBytesPartial(w + r * K + k, n);
            for (int t = 0; t < TB; ++t)
              acc[r][t] = Isa::dot(acc[r][t], Isa::loadU8(a.u8 + t * a.ld + k), wv);
          }
        }
        k = b1;
      }
      for (; k + kStep <= b1; k += kStep) {
        // Each token's codes loaded once per step, for all RB rows.
        XI xv[TB];
#pragma GCC unroll 8
        for (int t = 0; t < TB; ++t)
          xv[t] = Isa::loadX(a.q + t * a.ld + k);
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) {
          const WI wv = Isa::loadI8(w + r * K + k);
#pragma GCC unroll 8
          for (int t = 0; t < TB; ++t)
            acc[r][t] = Isa::madd(acc[r][t], wv, xv[t]);
        }
      }
      if (k < b1) { // the row's end (b1 == K): the codes are zero-padded, the weights not
        const int n = static_cast<int>(b1 - k);
        for (int r = 0; r < RB; ++r) {
          const WI wv = Isa::loadI8Partial(w + r * K + k, n);
          for (int t = 0; t < TB; ++t)
            acc[r][t] = Isa::madd(acc[r][t], wv, Isa::loadX(a.q + t * a.ld + k));
        }
      }
#pragma GCC unroll 8
      for (int t = 0; t < TB; ++t) {
        const V s = Isa::set1(ws[b] * a.scale[t * a.blocks + b]);
#pragma GCC unroll 8
        for (int r = 0; r < RB; ++r) {
          float *f = fs + (r * TB + t) * kW;
          Isa::store(f, Isa::fma(Isa::toFloat(acc[r][t]), s, Isa::load(f)));
        }
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t)
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) {
        const float s = Isa::reduceAdd(Isa::load(fs + (r * TB + t) * kW));
        float &out = y[t * ldy + r];
        out = accumulateY ? out + s : s;
      }
  }

  /// Rows [r0, r1) for TB tokens: single rows up to the first RB-aligned one and
  /// after the last full group, so no group straddles a scale block.
  template <int RB, int TB, bool Stream, bool Bytes>
  static void rowSweep(const QuantizedActs &a, const Weight &W, int64_t r0, int64_t r1,
                       int64_t k0, int64_t k1, float *y, int64_t ldy, int64_t yRow0,
                       bool acc, const ByteSums &sums) {
    static_assert(kBlock % RB == 0, "a row group must not straddle scale blocks");
    int64_t r = r0;
    for (; r < r1 && r % RB != 0; ++r)
      tile<1, TB, Stream, Bytes>(a, W, r, k0, k1, y + (r - yRow0), ldy, acc, sums);
    for (; r + RB <= r1; r += RB)
      tile<RB, TB, Stream, Bytes>(a, W, r, k0, k1, y + (r - yRow0), ldy, acc, sums);
    for (; r < r1; ++r)
      tile<1, TB, Stream, Bytes>(a, W, r, k0, k1, y + (r - yRow0), ldy, acc, sums);
  }

  /// rowSweep with the token count tb (1..MaxTB) made a compile-time constant.
  template <int RB, int MaxTB, bool Stream, bool Bytes = false>
  static void sweep(int tb, const QuantizedActs &a, const Weight &W, int64_t r0,
                    int64_t r1, int64_t k0, int64_t k1, float *y, int64_t ldy,
                    int64_t yRow0, bool acc, const ByteSums &sums = ByteSums()) {
    withTokenBlock<MaxTB>(tb, [&](auto TB) {
      rowSweep<RB, decltype(TB)::value, Stream, Bytes>(a, W, r0, r1, k0, k1, y, ldy, yRow0,
                                                        acc, sums);
    });
  }

  static void rows(const QuantizedActs &a, int64_t T, const Weight &W, int64_t rowBegin,
                   int64_t rowEnd, float *y, int64_t ldy) {
    const int64_t K = W.cols;
    if (K == 0) {
      for (int64_t t = 0; t < T; ++t)
        for (int64_t r = rowBegin; r < rowEnd; ++r)
          y[t * ldy + (r - rowBegin)] = 0.f;
      return;
    }
    if (T <= Isa::kI8StreamTokens)
      return sweep<Isa::kI8StreamRowBlock, Isa::kI8StreamTokens, true>(
          static_cast<int>(T), a, W, rowBegin, rowEnd, 0, K, y, ldy, rowBegin, false);
    if (T <= Isa::kI8TokenBlock)
      return sweep<Isa::kI8RowBlock, Isa::kI8TokenBlock, true>(
          static_cast<int>(T), a, W, rowBegin, rowEnd, 0, K, y, ldy, rowBegin, false);
    if constexpr (Isa::kAmx) // tiles of 16 rows x 16 tokens (Avx512Amx.cpp)
      return Isa::amxRows(a, T, W, rowBegin, rowEnd, y, ldy);
    alignas(64) VI sumsData[Isa::kByteDot ? kPanelRows * kPanelBlocks : 1]; // 64 KiB
    for (int64_t p0 = rowBegin; p0 < rowEnd; p0 += kPanelRows) {
      const int64_t p1 = p0 + kPanelRows < rowEnd ? p0 + kPanelRows : rowEnd;
      for (int64_t k0 = 0; k0 < K; k0 += kPanelCols) {
        const int64_t k1 = k0 + kPanelCols < K ? k0 + kPanelCols : K;
        ByteSums sums;
        if constexpr (Isa::kByteDot) {
          byteSums(W, p0, p1, k0, k1, sumsData);
          sums = ByteSums{sumsData, kPanelBlocks, p0, k0 / kBlock};
        }
        for (int64_t t0 = 0; t0 < T; t0 += Isa::kI8TokenBlock) {
          const int64_t left = T - t0;
          const int tb = static_cast<int>(left < Isa::kI8TokenBlock ? left : Isa::kI8TokenBlock);
          QuantizedActs part = a;
          part.q += t0 * a.ld;
          if (part.u8)
            part.u8 += t0 * a.ld;
          part.scale += t0 * a.blocks;
          sweep<Isa::kI8RowBlock, Isa::kI8TokenBlock, false, Isa::kByteDot>(
              tb, part, W, p0, p1, k0, k1, y + t0 * ldy, ldy, rowBegin, /*acc=*/k0 > 0, sums);
        }
      }
    }
  }

  /// linearRows for an int8 weight and fp32 x: x quantized into the calling
  /// thread's scratch first (callers that reuse x for many calls quantize it once
  /// and call linearRowsI8 instead).
  static void rowsFromFloat(const float *x, int64_t T, int64_t ldx, const Weight &W,
                            int64_t rowBegin, int64_t rowEnd, float *y, int64_t ldy) {
    QuantizedActsLayout layout(T, W.cols, Isa::kByteDot);
    const Scratch scratch(ScratchSlot::Int8Input, layout.bytes());
    const QuantizedActs a = layout.place(scratch.as<char>());
    quantize(x, T, ldx, W.cols, a);
    rows(a, T, W, rowBegin, rowEnd, y, ldy);
  }
};

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_LINEARI8_H
