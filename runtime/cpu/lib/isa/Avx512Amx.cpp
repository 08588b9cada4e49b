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
  static constexpr int64_t kChunk = 64; ///< int8 columns per tdpbssd

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
          _tile_stored(0, ints[0], 64);
          _tile_stored(1, ints[1], 64);
          if (rowTiles == 2) {
            _tile_stored(2, ints[2], 64);
            _tile_stored(3, ints[3], 64);
          }
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
          for (int64_t r = 0; r < kTile; ++r) {
            const int64_t row = r0 + i * kTile + r;
            if (row < rowBegin || row >= rowEnd)
              continue;
            for (int64_t t = 0; t < 32 && tp * 32 + t < T; ++t)
              y[(tp * 32 + t) * ldy + (row - rowBegin)] = sums[i][r][t];
          }
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
