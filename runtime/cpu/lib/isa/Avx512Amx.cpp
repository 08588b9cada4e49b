//===- Avx512Amx.cpp - The AVX-512 VNNI kernel table with AMX int8 prefill -===//
//
// Compiled with -mamx-tile -mamx-int8 beside the AVX-512 VNNI set; only called after
// the dispatcher saw AMX-TILE and AMX-INT8 and Linux granted the process the tile
// state (Dispatch.cpp). Everything is Avx512Vnni.h's but the W8A8 product for more
// than kI8TokenBlock tokens (prefill), which runs on the tile unit:
//
// - The activations' int8 codes are packed once per call, per 16 tokens and 64
//   columns, in the layout tdpbssd reads as its B operand (16 rows of 16 tokens x 4
//   consecutive codes); tokens past T and columns past K are zero.
// - The weights are the A operand as stored: 16 rows x 64 bytes, rows K apart (a
//   zero-padded copy where a tile would read past the weight's last row or column).
// - Per 128-column scale block, 2 x 2 accumulator tiles (32 rows x 32 tokens) get
//   the exact integer dot products (two tdpbssd per tile), are stored, and folded
//   into fp32 sums in memory: sum[r][t] += float(I) * (weight scale x the token's
//   activation scale), the numerics LinearI8.h states. The int32 sums are exact, so
//   this level differs from the VNNI levels only in the order of the fp32 fold.
// - Rows are the outer loop (32 weight rows stay in L2 while every token pair passes
//   over them), tokens the inner one.
//
// Products of bf16 and FP8 weights with bf16 activations (Weight::bf16Activations)
// for more than kTokenBlock tokens run on the tile unit too (tdpbf16ps, AMX-BF16):
// the activations rounded to bf16 (floatToBf16's rule) and packed per 16 tokens and
// 32 columns as pairs (the B operand: 16 rows of 16 tokens x 2 consecutive values);
// the weights are the A operand (16 rows x 32 values): a bf16 weight as stored, its
// 2 x 2 accumulator tiles summing the whole of K in fp32; an FP8 weight decoded 32
// rows at a time into a bf16 panel (exact), its tiles folded per 128-column block
// with the block's scale.
//
//===----------------------------------------------------------------------===//

#include "Avx512Vnni.h"

#include <cstring>

namespace moec::cpu::detail {
namespace {

struct Avx512Amx : Avx512Vnni {
  static constexpr bool kAmx = true;

  /// The tile configuration: tiles 0-3 accumulators (16 rows x 16 int32), 4-5 the
  /// weights (16 rows x 64 bytes), 6-7 the activations (16 rows x 64 bytes).
  struct alignas(64) TileConfig {
    uint8_t palette = 1;
    uint8_t startRow = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
    TileConfig() {
      for (int i = 0; i < 8; ++i) {
        colsb[i] = 64;
        rows[i] = 16;
      }
    }
  };

  static constexpr int64_t kTile = 16;  ///< rows or tokens per tile

  /// Stores accumulator tiles 0 and 1 (and 2 and 3 with two row tiles) into out[0..3],
  /// 16 x 16 four-byte elements each.
  template <class E> static void storeAccumulators(E (&out)[4][kTile * kTile], int64_t rowTiles) {
    _tile_stored(0, out[0], 64);
    _tile_stored(1, out[1], 64);
    if (rowTiles == 2) {
      _tile_stored(2, out[2], 64);
      _tile_stored(3, out[3], 64);
    }
  }
  static constexpr int64_t kChunk = 64; ///< int8 columns per tdpbssd
  static constexpr int64_t kBf16Chunk = 32; ///< bf16 columns per tdpbf16ps

  /// Packs tokens [0, T) of a's codes (s8 = the byte codes xor 0x80) into tiles:
  /// tile (tokenTile, chunk) at out + (tokenTile * chunks + chunk) * 1024, with
  /// dword [kq][t] holding codes 4kq..4kq+3 of the chunk for token t.
  static void packActs(const QuantizedActs &a, int64_t T, int64_t chunks, int8_t *out) {
    const int64_t tokenTiles = (T + kTile - 1) / kTile;
    for (int64_t tt = 0; tt < tokenTiles; ++tt)
      for (int64_t c = 0; c < chunks; ++c) {
        uint32_t *tile = reinterpret_cast<uint32_t *>(out + (tt * chunks + c) * 1024);
        for (int64_t t = 0; t < kTile; ++t) {
          const int64_t token = tt * kTile + t;
          if (token >= T) {
            for (int64_t kq = 0; kq < 16; ++kq)
              tile[kq * 16 + t] = 0;
            continue;
          }
          const uint8_t *codes = a.u8 + token * a.ld + c * kChunk;
          for (int64_t kq = 0; kq < 16; ++kq) {
            uint32_t v;
            std::memcpy(&v, codes + 4 * kq, 4);
            tile[kq * 16 + t] = v ^ 0x80808080u;
          }
        }
      }
  }

  /// Rounds tokens [0, T) of x to bf16 and packs them as tdpbf16ps's B operand: tile
  /// (tokenTile, chunk) at out + (tokenTile * chunks + chunk) * 512 values, dword
  /// [kp][t] holding columns 2kp, 2kp + 1 of the chunk for token t. Tokens past T
  /// and columns past K are zero; tokenTiles is T's tile count rounded up to even.
  static void packBf16Acts(const float *x, int64_t T, int64_t ldx, int64_t K,
                           int64_t tokenTiles, int64_t chunks, uint16_t *out) {
    const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1);
    const __m512i absMask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
    const __m512i quietBit = _mm512_set1_epi32(0x00400000);
    // 16 floats to their bf16 bits in the low halves (floatToBf16's rule).
    auto round = [&](__m512i u) {
      const __m512i rounded =
          _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
      const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absMask), inf);
      return _mm512_srli_epi32(_mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(u, quietBit)), 16);
    };
    for (int64_t tt = 0; tt < tokenTiles; ++tt)
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t k0 = c * kBf16Chunk;
        const int64_t n = std::min<int64_t>(kBf16Chunk, K - k0);
        const __mmask16 lo = n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
        const __mmask16 hi = n >= 32 ? __mmask16(0xFFFF) : n <= 16 ? __mmask16(0) : __mmask16((1u << (n - 16)) - 1);
        // r[t]: token t's 16 column pairs (dword p = columns 2p, 2p + 1).
        __m512i r[kTile];
        for (int64_t t = 0; t < kTile; ++t) {
          const int64_t token = tt * kTile + t;
          if (token >= T) {
            r[t] = _mm512_setzero_si512();
            continue;
          }
          const float *row = x + token * ldx + k0;
          const __m256i a = _mm512_cvtepi32_epi16(round(_mm512_maskz_loadu_epi32(lo, row)));
          const __m256i b = _mm512_cvtepi32_epi16(round(_mm512_maskz_loadu_epi32(hi, row + 16)));
          r[t] = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
        }
        // Transposed: tile row p holds pair p of the 16 tokens.
        __m512i tr[kTile];
        transpose16x16(r, tr);
        uint16_t *tile = out + (tt * chunks + c) * 512;
        for (int p = 0; p < kTile; ++p)
          _mm512_store_si512(tile + p * 32, tr[p]);
      }
  }

  /// out[c] = column c of the 16 x 16 matrix of dwords whose row r is in[r].
  static void transpose16x16(const __m512i (&in)[kTile], __m512i (&out)[kTile]) {
    __m512i u[kTile];
    for (int i = 0; i < 4; ++i) {
      const __m512i t0 = _mm512_unpacklo_epi32(in[4 * i], in[4 * i + 1]);
      const __m512i t1 = _mm512_unpackhi_epi32(in[4 * i], in[4 * i + 1]);
      const __m512i t2 = _mm512_unpacklo_epi32(in[4 * i + 2], in[4 * i + 3]);
      const __m512i t3 = _mm512_unpackhi_epi32(in[4 * i + 2], in[4 * i + 3]);
      u[4 * i + 0] = _mm512_unpacklo_epi64(t0, t2);
      u[4 * i + 1] = _mm512_unpackhi_epi64(t0, t2);
      u[4 * i + 2] = _mm512_unpacklo_epi64(t1, t3);
      u[4 * i + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
    // u[4i + m], 128-bit lane j: column 4j + m of rows 4i..4i+3.
    for (int m = 0; m < 4; ++m) {
      const __m512i s0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44);
      const __m512i s1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xEE);
      const __m512i s2 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44);
      const __m512i s3 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xEE);
      out[0 + m] = _mm512_shuffle_i32x4(s0, s2, 0x88);
      out[4 + m] = _mm512_shuffle_i32x4(s0, s2, 0xDD);
      out[8 + m] = _mm512_shuffle_i32x4(s1, s3, 0x88);
      out[12 + m] = _mm512_shuffle_i32x4(s1, s3, 0xDD);
    }
  }

  /// y[t * ldy + (rt + r - rowBegin)] = c[r * ld + t] for the 16 x 16 tile of fp32 sums
  /// c (rows rt.., tokens t0..), the rows in [rowBegin, rowEnd) and tokens below T:
  /// transposed in registers, a vector store per token when all 16 rows are in range.
  static void storeTile(const float *c, int64_t ld, int64_t rt, int64_t t0, int64_t T,
                        int64_t rowBegin, int64_t rowEnd, float *y, int64_t ldy) {
    const int64_t tokens = std::min<int64_t>(kTile, T - t0);
    if (tokens <= 0)
      return;
    if (rt >= rowBegin && rt + kTile <= rowEnd) {
      __m512i in[kTile], out[kTile];
      for (int r = 0; r < kTile; ++r)
        in[r] = _mm512_castps_si512(_mm512_loadu_ps(c + r * ld));
      transpose16x16(in, out);
      for (int64_t t = 0; t < tokens; ++t)
        _mm512_storeu_ps(y + (t0 + t) * ldy + (rt - rowBegin), _mm512_castsi512_ps(out[t]));
      return;
    }
    for (int64_t r = std::max(rt, rowBegin); r < std::min(rt + kTile, rowEnd); ++r)
      for (int64_t t = 0; t < tokens; ++t)
        y[(t0 + t) * ldy + (r - rowBegin)] = c[(r - rt) * ld + t];
  }

  /// Rows [r0, r0 + 2 * kTile) of an FP8 weight decoded to bf16 (value / 256, exact)
  /// into a panel, rows Kp apart; rows past the weight and columns past K are zero.
  static void decodeFp8Panel(const Weight &W, int64_t r0, int64_t Kp, uint16_t *out) {
    const int64_t K = W.cols;
    for (int64_t r = 0; r < 2 * kTile; ++r) {
      uint16_t *o = out + r * Kp;
      if (r0 + r >= W.rows) {
        std::memset(o, 0, size_t(Kp) * 2);
        continue;
      }
      const char *row = static_cast<const char *>(W.data) + (r0 + r) * K;
      int64_t k = 0;
      for (; k + kWidth <= K; k += kWidth)
        storeBf16Bits(o + k, loadWeight<WeightType::F8E4M3>(row, k));
      if (k < K) {
        alignas(64) uint16_t tail[kWidth];
        storeBf16Bits(tail, loadWeightPartial<WeightType::F8E4M3>(row, k, int(K - k)));
        std::memcpy(o + k, tail, size_t(K - k) * 2);
      }
      std::memset(o + K, 0, size_t(Kp - K) * 2);
    }
  }

  /// y[t, r - rowBegin] = x[t] (rounded to bf16) . W[r] for a bf16 or FP8 weight,
  /// rows [rowBegin, rowEnd), T tokens. A bf16 weight's tiles are read as stored
  /// (copying 32 rows into a panel first measured 1.3x slower) and its accumulator
  /// tiles sum all of K; an FP8 weight's 32-row pairs are decoded once into a bf16
  /// panel and its tiles folded per 128-column block with the block's scale (x 256)
  /// into fp32 sums, as the int8 path does.
  static void amxBf16Rows(const float *x, int64_t T, int64_t ldx, const Weight &W,
                          int64_t rowBegin, int64_t rowEnd, float *y, int64_t ldy) {
    const int64_t K = W.cols;
    const bool fp8 = W.type == WeightType::F8E4M3;
    const int64_t chunks = (K + kBf16Chunk - 1) / kBf16Chunk;
    const int64_t Kp = chunks * kBf16Chunk;
    const int64_t tokenTiles = (T + 2 * kTile - 1) / (2 * kTile) * 2;
    const Scratch scratch(ScratchSlot::AmxTiles, size_t(tokenTiles * chunks) * 1024);
    uint16_t *packed = scratch.as<uint16_t>();
    packBf16Acts(x, T, ldx, K, tokenTiles, chunks, packed);
    std::optional<Scratch> panelScratch;
    if (fp8)
      panelScratch.emplace(ScratchSlot::Fp8Panel, size_t(2 * kTile * Kp) * 2);
    uint16_t *panel = fp8 ? panelScratch->as<uint16_t>() : nullptr;
    const uint16_t *w = static_cast<const uint16_t *>(W.data);
    alignas(64) uint16_t padded[2][kTile * kBf16Chunk]; // bf16 tiles past the last row or column
    const int64_t blocks = (K + kFp8BlockSize - 1) / kFp8BlockSize;
    constexpr int64_t kChunksPerBlock = kFp8BlockSize / kBf16Chunk;

    const TileConfig config;
    _tile_loadconfig(&config);
    alignas(64) float tiles[4][kTile * kTile]; // [row tile * 2 + token tile]
    alignas(64) float sums[2][kTile][32];      // FP8: [row tile][row][token of the pair]
    for (int64_t r0 = rowBegin / kTile * kTile; r0 < rowEnd; r0 += 2 * kTile) {
      const int64_t rowTiles = r0 + kTile < rowEnd ? 2 : 1;
      if (fp8)
        decodeFp8Panel(W, r0, Kp, panel);
      // Loads row tile i's weights for chunk c into tile register 4 + i.
      auto loadWeights = [&](int64_t i, int64_t c) {
        const int64_t rt = r0 + i * kTile, k = c * kBf16Chunk;
        const uint16_t *src;
        int64_t stride;
        if (fp8) {
          src = panel + i * kTile * Kp + k;
          stride = Kp * 2;
        } else if (rt + kTile > W.rows || k + kBf16Chunk > K) {
          std::memset(padded[i], 0, sizeof padded[i]);
          const int64_t rows = std::min<int64_t>(kTile, W.rows - rt);
          const int64_t cols = std::min<int64_t>(kBf16Chunk, K - k);
          for (int64_t r = 0; r < rows; ++r)
            std::memcpy(padded[i] + r * kBf16Chunk, w + (rt + r) * K + k, size_t(cols) * 2);
          src = padded[i];
          stride = kBf16Chunk * 2;
        } else {
          src = w + rt * K + k;
          stride = K * 2;
        }
        if (i == 0)
          _tile_loadd(4, src, stride);
        else
          _tile_loadd(5, src, stride);
      };
      // FP8: the next row pair's bytes are prefetched into L2 while this pair's
      // tiles run, spread over the first token pair's chunks; its decode would
      // otherwise wait on memory (v2lite-8L FP8 prefill with bf16 activations,
      // alternating runs: 2 threads 1.09x, 1 thread 1.22x). The same for bf16
      // weights, whose tiles read memory themselves, gained nothing.
      const int64_t lineCount = (K + 63) / 64;
      const int64_t nextRows =
          fp8 ? std::max<int64_t>(0, std::min<int64_t>(2 * kTile, std::min(rowEnd, W.rows) -
                                                                      (r0 + 2 * kTile)))
              : 0;
      const int64_t nextLines = nextRows * lineCount;
      const int64_t linesPerChunk = (nextLines + chunks - 1) / chunks;
      const char *next = static_cast<const char *>(W.data) + (r0 + 2 * kTile) * K;
      // The products over chunks [c0, c1) into accumulator tiles 0-3.
      auto products = [&](int64_t tp, int64_t c0, int64_t c1) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int64_t c = c0; c < c1; ++c) {
          if (tp == 0)
            for (int64_t l = c * linesPerChunk; l < std::min(nextLines, (c + 1) * linesPerChunk); ++l) {
              _mm_prefetch(next + (l / lineCount) * K + (l % lineCount) * 64, _MM_HINT_T1);
            }
          for (int64_t i = 0; i < rowTiles; ++i)
            loadWeights(i, c);
          _tile_loadd(6, packed + ((tp * 2) * chunks + c) * 512, 64);
          _tile_loadd(7, packed + ((tp * 2 + 1) * chunks + c) * 512, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          if (rowTiles == 2) {
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
          }
        }
        storeAccumulators(tiles, rowTiles);
      };
      for (int64_t tp = 0; tp < tokenTiles / 2; ++tp) {
        if (!fp8) {
          products(tp, 0, chunks);
        } else {
          std::memset(sums, 0, sizeof sums);
          for (int64_t b = 0; b < blocks; ++b) {
            products(tp, b * kChunksPerBlock, std::min(chunks, (b + 1) * kChunksPerBlock));
            for (int64_t i = 0; i < rowTiles; ++i) {
              const int64_t rt = r0 + i * kTile;
              const __m512 ws =
                  _mm512_set1_ps(W.blockScale[(rt / kFp8BlockSize) * blocks + b] * 256.f);
              for (int64_t r = 0; r < kTile; ++r)
                for (int64_t j = 0; j < 2; ++j)
                  _mm512_store_ps(sums[i][r] + 16 * j,
                                  _mm512_fmadd_ps(_mm512_load_ps(tiles[i * 2 + j] + r * kTile), ws,
                                                  _mm512_load_ps(sums[i][r] + 16 * j)));
            }
          }
        }
        // The rows and tokens that exist, into y.
        for (int64_t i = 0; i < rowTiles; ++i)
          for (int64_t j = 0; j < 2; ++j)
            storeTile(fp8 ? &sums[i][0][j * 16] : tiles[i * 2 + j], fp8 ? 32 : kTile,
                      r0 + i * kTile, (tp * 2 + j) * kTile, T, rowBegin, rowEnd, y, ldy);
      }
    }
    _tile_release();
  }

  /// y[t, r - rowBegin] = the W8A8 product for rows [rowBegin, rowEnd), T tokens.
  static void amxRows(const QuantizedActs &a, int64_t T, const Weight &W, int64_t rowBegin,
                      int64_t rowEnd, float *y, int64_t ldy) {
    const int64_t K = W.cols;
    const int64_t blocks = a.blocks;          // 128-column blocks (a.ld = blocks * 128)
    const int64_t chunks = blocks * 2;        // 64-column chunks, all inside a.ld
    const int64_t tokenTiles = (T + kTile - 1) / kTile;
    const int64_t tokenPairs = (tokenTiles + 1) / 2;
    // Packed activations (an even number of token tiles) and, per token pair and
    // block, the 32 tokens' activation scales.
    const size_t packedBytes = size_t(tokenPairs * 2 * chunks) * 1024;
    const size_t scaleBytes = size_t(tokenPairs * blocks * 32) * sizeof(float);
    const Scratch scratch(ScratchSlot::AmxTiles, packedBytes + scaleBytes);
    int8_t *packed = scratch.as<int8_t>();
    float *tokenScales = reinterpret_cast<float *>(scratch.as<char>() + packedBytes);
    packActs(a, T, chunks, packed);
    if (tokenTiles % 2)
      std::memset(packed + tokenTiles * chunks * 1024, 0, size_t(chunks) * 1024);
    for (int64_t tp = 0; tp < tokenPairs; ++tp)
      for (int64_t b = 0; b < blocks; ++b)
        for (int64_t t = 0; t < 32; ++t) {
          const int64_t token = tp * 32 + t;
          tokenScales[(tp * blocks + b) * 32 + t] = token < T ? a.scale[token * a.blocks + b] : 0.f;
        }

    const TileConfig config;
    _tile_loadconfig(&config);
    const int8_t *w = static_cast<const int8_t *>(W.data);
    const int64_t blocksPerRow = (K + kFp8BlockSize - 1) / kFp8BlockSize;
    alignas(64) int8_t padded[2][kTile * kChunk]; // weight tiles past the last row or column
    alignas(64) int32_t ints[4][kTile * kTile];
    alignas(64) float sums[2][kTile][32]; // [row tile][row][token of the pair]
    // Row pairs start on a multiple of 32 from rowBegin's 16-row tile, so no tile
    // straddles a 128-row scale block.
    for (int64_t r0 = rowBegin / kTile * kTile; r0 < rowEnd; r0 += 2 * kTile) {
      const int64_t rowTiles = r0 + kTile < rowEnd ? 2 : 1;
      for (int64_t tp = 0; tp < tokenPairs; ++tp) {
        std::memset(sums, 0, sizeof sums);
        for (int64_t b = 0; b < blocks; ++b) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
          for (int64_t c = 2 * b; c < 2 * b + 2; ++c) {
            const int64_t k = c * kChunk;
            if (k >= K)
              break; // all zero codes from here: nothing to add
            for (int64_t i = 0; i < rowTiles; ++i) {
              const int64_t rt = r0 + i * kTile;
              const bool whole = rt + kTile <= W.rows && k + kChunk <= K;
              const int8_t *src = w + rt * K + k;
              int64_t stride = K;
              if (!whole) {
                std::memset(padded[i], 0, sizeof padded[i]);
                const int64_t rows = std::min<int64_t>(kTile, W.rows - rt);
                const int64_t cols = std::min<int64_t>(kChunk, K - k);
                for (int64_t r = 0; r < rows; ++r)
                  std::memcpy(padded[i] + r * kChunk, src + r * K, size_t(cols));
                src = padded[i];
                stride = kChunk;
              }
              if (i == 0)
                _tile_loadd(4, src, stride);
              else
                _tile_loadd(5, src, stride);
            }
            const int8_t *b0 = packed + ((tp * 2) * chunks + c) * 1024;
            const int8_t *b1 = packed + ((tp * 2 + 1) * chunks + c) * 1024;
            _tile_loadd(6, b0, 64);
            _tile_loadd(7, b1, 64);
            _tile_dpbssd(0, 4, 6);
            _tile_dpbssd(1, 4, 7);
            if (rowTiles == 2) {
              _tile_dpbssd(2, 5, 6);
              _tile_dpbssd(3, 5, 7);
            }
          }
          storeAccumulators(ints, rowTiles);
          const float *ts = tokenScales + (tp * blocks + b) * 32;
          for (int64_t i = 0; i < rowTiles; ++i) {
            const int64_t rt = r0 + i * kTile;
            const float ws = W.blockScale[(rt / kFp8BlockSize) * blocksPerRow + b];
            const __m512 s0 = _mm512_mul_ps(_mm512_set1_ps(ws), _mm512_loadu_ps(ts));
            const __m512 s1 = _mm512_mul_ps(_mm512_set1_ps(ws), _mm512_loadu_ps(ts + 16));
            for (int64_t r = 0; r < kTile; ++r) {
              const __m512 i0 = _mm512_cvtepi32_ps(_mm512_load_si512(ints[2 * i] + r * kTile));
              const __m512 i1 =
                  _mm512_cvtepi32_ps(_mm512_load_si512(ints[2 * i + 1] + r * kTile));
              _mm512_store_ps(sums[i][r], _mm512_fmadd_ps(i0, s0, _mm512_load_ps(sums[i][r])));
              _mm512_store_ps(sums[i][r] + 16,
                              _mm512_fmadd_ps(i1, s1, _mm512_load_ps(sums[i][r] + 16)));
            }
          }
        }
        // The rows and tokens that exist, into y.
        for (int64_t i = 0; i < rowTiles; ++i)
          for (int64_t j = 0; j < 2; ++j)
            storeTile(&sums[i][0][j * 16], 32, r0 + i * kTile, tp * 32 + j * kTile, T, rowBegin,
                      rowEnd, y, ldy);
      }
    }
    _tile_release();
  }
};

} // namespace

const KernelTable &avx512AmxKernelTable() {
  static const KernelTable table = makeKernelTable<Avx512Amx>("avx512-amx");
  return table;
}

} // namespace moec::cpu::detail
