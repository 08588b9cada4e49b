//===- Reference.h - Plain reference loops for the kernel tests -*- C++ -*-===//
//
// Straightforward implementations of spec sections 4-6, written independently of
// runtime/cpu: their own decoders for the stored types, double accumulation, no
// blocking, no SIMD. Each returns what the kernel under test should produce and,
// where a tolerance needs it, the magnitude (sum of absolute terms) of each result.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TESTS_KERNELS_REFERENCE_H
#define MOEC_TESTS_KERNELS_REFERENCE_H

#include "moec/cpu/kernels.h"

#include <cstdint>
#include <vector>

namespace moec::cpu::ref {

/// Decodes one float8 e4m3fn byte from its definition (NaN for S.1111.111).
double fp8(uint8_t b);
/// Decodes bf16 / f16 bits from their definitions.
double bf16(uint16_t h);
double f16(uint16_t h);
/// W[r, c] dequantised (FP8: times the scale of its kFp8BlockSize-square block).
double weightAt(const Weight &W, int64_t r, int64_t c);

/// The W8A8 activation quantization of one row of K values (kernels.h), written
/// from its definition: codes and per-128-column scales.
void quantizeActs(const float *x, int64_t K, std::vector<int> &q, std::vector<float> &scales);

/// A result vector with the magnitude of each element's sum.
struct Result {
  std::vector<double> value;     ///< the reference values
  std::vector<double> magnitude; ///< per element: sum of |terms| (for tolerances)
  /// Per element (or empty: none): what the result may differ by beyond rounding,
  /// where an int8 activation code is within float rounding of a rounding boundary
  /// (the kernels compute it in float32, the reference in double) and either code
  /// is right (swiglu's hidden row).
  std::vector<double> slack;
};

/// y[T, rows] = x W^T (for an int8 weight, the W8A8 product of kernels.h).
Result linear(const std::vector<float> &x, int64_t T, const Weight &W);
/// Spec section 6 rmsnorm over rows of D values.
std::vector<double> rmsNorm(const std::vector<float> &x, int64_t T, int64_t D,
                            const Weight &gamma, double eps);
/// Spec section 4 frequencies, in double.
std::vector<double> ropeFrequencies(const RopeParams &p);
/// Rotates pairs as complex numbers: interleaved pairs (2j, 2j+1), or half pairs
/// (j, j+d/2). x holds `heads` heads of `headDim` values per token, rope values
/// at `offset`.
std::vector<double> rope(const std::vector<float> &x, int64_t T, int64_t heads,
                         int64_t headDim, int64_t offset, const RopeParams &p,
                         const std::vector<double> &freqs, const std::vector<int32_t> &pos,
                         RopeLayout layout);

/// One sequence's cached rows of the latent (C values each) and rope (R values
/// each) states, packed.
struct SequenceCache {
  std::vector<float> latent; ///< [rows, C]
  std::vector<float> rope;   ///< [rows, R]
};

/// head_linear (kernels.h) from its definition: y [T, H*N].
Result headLinear(const std::vector<float> &x, int64_t T, int64_t ldx, const Weight &W,
                  const HeadLinearParams &p);

/// latent_attention from its definition: oLat [T, H*C] for each token t over rows
/// 0..pos[t] of caches[seq[t]]. q: [T, ldq].
Result latentAttention(const std::vector<float> &qLat, const std::vector<float> &q,
                       int64_t ldq, int64_t T, const std::vector<int32_t> &pos,
                       const std::vector<int32_t> &seq,
                       const std::vector<SequenceCache> &caches,
                       const LatentAttentionParams &p);

/// Plain multi-head attention (spec section 4, naive form) for each token t over
/// rows 0..pos[t] of its sequence's cache (new rows already in place): what
/// expanded_attention computes, and what the absorbed chain head_linear (W_UK) ->
/// latent_attention -> head_linear (W_UV) computes too. out: [T, H*v].
Result mla(const std::vector<float> &q, int64_t T, const std::vector<int32_t> &pos,
           const std::vector<int32_t> &seq, const std::vector<SequenceCache> &caches,
           const Weight &kvB, const ExpandedAttentionParams &d);

/// Spec section 5 routing of one token's gate logits (given, in double).
void route(const std::vector<double> &logits, const float *bias, const RouterParams &p,
           std::vector<int32_t> &idx, std::vector<double> &weights);

/// down(silu(gate(x)) * up(x)) for T tokens.
Result swiglu(const std::vector<float> &x, int64_t T, const SwigluWeights &m);

} // namespace moec::cpu::ref

#endif // MOEC_TESTS_KERNELS_REFERENCE_H
