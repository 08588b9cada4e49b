//===- KernelTable.h - Per-instruction-set kernel primitives ----*- C++ -*-===//
//
// The single-threaded primitives that differ per SIMD level. Each level (scalar,
// AVX2, AVX-512) is compiled in its own translation unit with its own flags and
// fills one KernelTable; the public kernels pick the table once, at run time, and
// add threading around it. Nothing here allocates or spawns threads.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_KERNELTABLE_H
#define MOEC_CPU_LIB_KERNELTABLE_H

#include "moec/cpu/kernels.h"
#include "moec/cpu/quantize.h"

#include <cstddef>
#include <cstdint>

namespace moec::cpu::detail {

/// Most queries one attend() call handles (heads of a token, or tokens of a head).
inline constexpr int64_t kMaxAttendQueries = 16;

/// Softmax attention of up to kMaxAttendQueries queries over shared key/value rows.
/// A key is split into a main part and an optional second (rope) part, so the latent
/// cache and the separate k_pe cache are used in place:
///   score(i, j) = (q[i] . k[j] + qr[i] . kr[j]) * scale,   for j < len[i]
///   out[i] = softmax_j(score(i, :)) . v
/// Each query attends rows [0, len[i]); len[i] >= 1.
struct AttendArgs {
  int64_t queries = 0;            ///< number of queries, <= kMaxAttendQueries
  const float *q = nullptr;       ///< [queries, ldq]: main query part, dk values used
  int64_t ldq = 0;                ///< row stride of q
  int64_t dk = 0;                 ///< length of the main query/key part
  const float *qr = nullptr;      ///< [queries, ldqr]: second query part (or unused)
  int64_t ldqr = 0;               ///< row stride of qr
  int64_t dr = 0;                 ///< length of the second part (0: none)
  /// What k, kr and v (and k0, kr0, v0) point at: floats, or bf16 (uint16_t) or
  /// e4m3 (uint8_t) values, widened exactly as they are read. Strides count
  /// elements.
  StateElement rows = StateElement::F32;
  const void *k = nullptr;        ///< [rows, ldk]: main key part
  int64_t ldk = 0;                ///< row stride of k
  const void *kr = nullptr;       ///< [rows, ldkr]: second key part
  int64_t ldkr = 0;               ///< row stride of kr
  const void *v = nullptr;        ///< [rows, ldv]: values, dv used
  int64_t ldv = 0;                ///< row stride of v
  int64_t dv = 0;                 ///< value width
  const int64_t *len = nullptr;   ///< [queries]: rows each query attends
  float scale = 1.f;              ///< multiplies every score before the softmax
  float *out = nullptr;           ///< [queries, ldo]: dv outputs per query
  int64_t ldo = 0;                ///< row stride of out
  /// Rows [0, prefixRows) come from k0, kr0 and v0 instead (same strides, same row
  /// numbering): a prefix shared with another sequence of the KV cache.
  int64_t prefixRows = 0;
  const void *k0 = nullptr, *kr0 = nullptr, *v0 = nullptr;
};

/// The primitives of one SIMD level. All are single-threaded.
/// Activations quantized for int8 weights (kernels.h, quantizeActivationsI8):
/// token t's codes at q + t * ld, zero from K up to ld, and its block scales at
/// scale + t * blocks.
struct QuantizedActs {
  int16_t *q = nullptr;
  float *scale = nullptr;
  int64_t ld = 0;     ///< K rounded up to whole blocks
  int64_t blocks = 0; ///< ceil(K / kInt8ActBlock)
  /// The same codes plus 128, as bytes (rows ld apart), for the levels that multiply
  /// unsigned bytes by the signed weight bytes (vpdpbusd, KernelTable::int8ByteCodes);
  /// null for the others.
  uint8_t *u8 = nullptr;
};

/// The memory of a QuantizedActs for T tokens of K values, in one buffer; the byte
/// codes only when `byteCodes` (the level's KernelTable::int8ByteCodes).
class QuantizedActsLayout {
public:
  QuantizedActsLayout(int64_t T, int64_t K, bool byteCodes)
      : T_(T), blocks_((K + kInt8ActBlock - 1) / kInt8ActBlock), ld_(blocks_ * kInt8ActBlock),
        byteCodes_(byteCodes) {}
  size_t bytes() const { return codesBytes() + scalesBytes() + byteCodesBytes(); }
  QuantizedActs place(char *base) const {
    QuantizedActs a;
    a.q = reinterpret_cast<int16_t *>(base);
    a.scale = reinterpret_cast<float *>(base + codesBytes());
    if (byteCodes_)
      a.u8 = reinterpret_cast<uint8_t *>(base + codesBytes() + scalesBytes());
    a.ld = ld_;
    a.blocks = blocks_;
    return a;
  }

private:
  static size_t round64(size_t b) { return (b + 63) / 64 * 64; }
  size_t codesBytes() const { return round64(static_cast<size_t>(T_ * ld_) * 2); }
  size_t scalesBytes() const { return round64(static_cast<size_t>(T_ * blocks_) * 4); }
  size_t byteCodesBytes() const { return byteCodes_ ? round64(static_cast<size_t>(T_ * ld_)) : 0; }
  int64_t T_, blocks_, ld_;
  bool byteCodes_;
};

/// Whether a level with AMX-BF16 (KernelTable::amxBf16) multiplies this weight on
/// the tile unit at prefill: bf16 activations with a bf16 or FP8 weight.
inline bool amxBf16Weight(const Weight &W) {
  return W.bf16Activations && (W.type == WeightType::BF16 || W.type == WeightType::F8E4M3);
}

struct KernelTable {
  /// The level's name as simdLevel() reports it.
  const char *name;
  /// Whether its int8 products read QuantizedActs::u8 (VNNI byte products).
  bool int8ByteCodes;
  /// Whether bf16 weights with bf16 activations run on AMX tiles at prefill (each
  /// linearRows call packs its activations once: linearRowChunk gives it long runs).
  bool amxBf16;
  /// y[t * ldy + (r - rowBegin)] = x[t * ldx + :] . W[r, :] for t < T and
  /// rowBegin <= r < rowEnd. Weights are decoded on the fly.
  void (*linearRows)(const float *x, int64_t T, int64_t ldx, const Weight &W,
                     int64_t rowBegin, int64_t rowEnd, float *y, int64_t ldy);
  /// linearRows of an int8 weight with activations already quantized (W8A8).
  void (*linearRowsI8)(const QuantizedActs &a, int64_t T, const Weight &W,
                       int64_t rowBegin, int64_t rowEnd, float *y, int64_t ldy);
  /// x [T, K] (rows ldx apart) quantized into `a` (laid out by QuantizedActsLayout).
  void (*quantizeActsI8)(const float *x, int64_t T, int64_t ldx, int64_t K,
                         const QuantizedActs &a);
  /// y[t * ldy + c] = sum_i x[t * ldx + i] * W[rowBegin + i, c] for i < n, c < W.cols:
  /// the product with a row slice of W, not its transpose (absorbed attention's W_UK).
  void (*linearTransposed)(const float *x, int64_t T, int64_t ldx, const Weight &W,
                           int64_t rowBegin, int64_t n, float *y, int64_t ldy);
  /// out[c] = W[row, c] for c < W.cols, dequantised.
  void (*decodeRow)(const Weight &W, int64_t row, float *out);
  /// See AttendArgs.
  void (*attend)(const AttendArgs &args);
  /// out = x * (1 / sqrt(mean(x^2) + eps)) * gamma over D values, gamma read from
  /// row 0 of a weight in its stored type. out may equal x.
  void (*rmsNormRow)(const float *x, int64_t D, const Weight &gamma, float eps, float *out);
  /// Rotates one head's `dim` rope values in place:
  ///   v[i] = v[i] * cos[i] + v[partner(i)] * sin[i]
  /// with partner(i) = i ^ 1 for interleaved pairs and (i + dim/2) mod dim for the
  /// half layout. cos and sin hold one value per rotated value (see Rope.cpp: each
  /// pair's cosine twice, its sine as -s on the first member and +s on the second).
  void (*ropeRow)(float *v, int64_t dim, const float *cos, const float *sin,
                  RopeLayout layout);
  /// out = a + b over n values; out may alias a or b.
  void (*add)(const float *a, const float *b, int64_t n, float *out);
  /// out = silu(gate) * up over n values; out may alias either input.
  void (*siluMul)(const float *gate, const float *up, int64_t n, float *out);
  /// y += alpha * x over n values.
  void (*axpy)(float alpha, const float *x, int64_t n, float *y);
  /// One block of the FP8 weight quantization (moec/cpu/quantize.h): `rows` x `cols`
  /// values of `type` at `src` (row stride `ld` elements). Writes the block's scale to
  /// *scale and, when `codes` is not null, its codes (row stride `ldc` bytes).
  /// Returns false when a value is not finite.
  bool (*quantizeFp8Block)(WeightType type, const uint8_t *src, int64_t ld, int64_t rows,
                           int64_t cols, Fp8ScaleFormat format, uint8_t *codes,
                           int64_t ldc, float *scale);
  /// The same for the int8 recipe (moec/cpu/quantize.h): int8 codes.
  bool (*quantizeInt8Block)(WeightType type, const uint8_t *src, int64_t ld, int64_t rows,
                            int64_t cols, uint8_t *codes, int64_t ldc, float *scale);
};

/// The table of each level. The AVX ones must only be called on a CPU that has them.
const KernelTable &scalarKernelTable();
const KernelTable &avx2KernelTable();
const KernelTable &avx2VnniKernelTable();
const KernelTable &avx512KernelTable();
const KernelTable &avx512VnniKernelTable();
const KernelTable &avx512AmxKernelTable();

/// The table every public kernel uses (chosen once; setSimdLevelForTesting changes it).
const KernelTable &activeKernels();

/// The thread count of a parallel region that does `work` scalar operations: all
/// configured threads for large work, one for work too small to amortise a fork.
int threadsFor(int64_t work);

/// Rows of W per work item when `threads` threads share a product with T tokens:
/// about 256 KiB of weights at decode (T <= 4), one 64-row panel beyond, never so
/// many that there are fewer items than threads; a multiple of 8 (see Linear.cpp).
/// One thread at decode takes all rows at once.
int64_t linearRowChunk(const Weight &W, int64_t T, int threads);

} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_KERNELTABLE_H
