//===- kernels.h - CPU kernels for every plan step kind ---------*- C++ -*-===//
//
// The CPU backend's kernels. One function per step kind the compiler emits.
// Semantics: shared/spec/deepseek-semantics.md. Activations are fp32, row-major;
// weights are read in their stored dtype and converted on the fly (never expanded
// into a full fp32 copy). All functions are thread-safe and use the process-wide
// thread count set by setNumThreads().
//
// Ownership: every pointer is borrowed for the duration of the call. No kernel
// keeps a pointer after it returns. Kernels do not validate shapes: the plan
// loader has validated them before any kernel runs.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_KERNELS_H
#define MOEC_CPU_KERNELS_H

#include <cstdint>

namespace moec::cpu {

/// Element type of a stored weight.
enum class WeightType : uint8_t { F32 = 0, F16 = 1, BF16 = 2, F8E4M3 = 3 };

/// A read-only view of one weight tensor, row-major [rows, cols].
/// For a 1-D tensor (norm weights, biases) rows == 1 and cols is its length.
struct Weight {
  WeightType type = WeightType::F32; ///< stored element type
  const void *data = nullptr;        ///< rows * cols elements of `type`
  int64_t rows = 0;                  ///< output features (first dim)
  int64_t cols = 0;                  ///< input features (second dim)
  /// FP8 only: multiplicative block scales, fp32 [ceil(rows/128), ceil(cols/128)]
  /// (the checkpoint's `weight_scale_inv`). W[i,j] = fp8(W8[i,j]) * scale[i/128, j/128].
  const float *blockScale = nullptr;
};

/// Side of the square FP8 weight scale block.
inline constexpr int64_t kFp8BlockSize = 128;

/// Sets the number of worker threads used by all kernels (<= 0: all cores).
void setNumThreads(int n);
/// Returns the number of worker threads kernels use.
int numThreads();
/// Names the SIMD level chosen at run time: "avx512", "avx2" or "scalar".
const char *simdLevel();

/// Instruction-set levels the kernels are compiled for.
enum class SimdLevel : uint8_t {
  Scalar = 0, ///< portable C++, no intrinsics
  Avx2 = 1,   ///< AVX2 + FMA + F16C
  Avx512 = 2, ///< AVX-512 F/BW/VL (plus the AVX2 set)
};
/// Returns the best level this CPU (and OS) supports; the kernels use it by default.
SimdLevel detectedSimdLevel();
/// Forces the level every kernel uses from now on (tests and benchmarks compare the
/// paths). Returns false, changing nothing, when this CPU cannot run `level`.
bool setSimdLevelForTesting(SimdLevel level);

/// Decodes one float8 e4m3fn byte (bias 7, no infinities, S.1111.111 is NaN).
float fp8e4m3ToFloat(uint8_t v);
/// Encodes a float to float8 e4m3fn, round to nearest even, saturating to +-448.
uint8_t floatToFp8e4m3(float v);
/// bf16 / f16 conversions (round to nearest even on encode).
float bf16ToFloat(uint16_t v);
uint16_t floatToBf16(float v);
float f16ToFloat(uint16_t v);
uint16_t floatToF16(float v);

/// out[t, :] = table[tokens[t], :]. out is [T, table.cols].
void embedding(const Weight &table, const int32_t *tokens, int64_t T, float *out);

/// out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * gamma. x, out: [T, D]; gamma: 1 x D.
/// out may equal x.
void rmsNorm(const float *x, int64_t T, int64_t D, const Weight &gamma, float eps,
             float *out);

/// y[T, W.rows] = x[T, W.cols] * W^T, fp32 accumulation, any weight type.
/// FP8 bytes are decoded through an f16 reinterpretation, so the two NaN bytes
/// (S.1111.111, never produced by a quantiser) read as +-480 here.
void linear(const float *x, int64_t T, const Weight &W, float *y);

/// out = a + b, n elements. out may alias a or b.
void add(const float *a, const float *b, int64_t n, float *out);

/// out[t, 0:width] = x[t, begin:begin+width], with x rows of xCols elements.
void sliceColumns(const float *x, int64_t T, int64_t xCols, int64_t begin,
                  int64_t width, float *out);

/// Rotary embedding parameters (spec section 4, "Frequencies, YaRN").
struct RopeParams {
  int64_t dim = 0;        ///< rotated dims (qk_rope_head_dim), even
  float theta = 10000.f;  ///< rope_theta
  bool yarn = false;      ///< rope_scaling.type == "yarn"
  float factor = 1.f;     ///< yarn factor
  int64_t originalMaxPositions = 4096; ///< original_max_position_embeddings
  float betaFast = 32.f;  ///< beta_fast
  float betaSlow = 1.f;   ///< beta_slow
  float attentionFactor = 1.f; ///< multiplies cos and sin (1.0 in every released config)
};
/// Writes dim/2 inverse frequencies f'_j (YaRN-corrected when params.yarn).
void ropeFrequencies(const RopeParams &params, float *freqs);

/// Pair layout of the rotated dims.
enum class RopeLayout : uint8_t {
  Interleaved = 0, ///< pairs (x[2i], x[2i+1]) — the checkpoint's native order
  Half = 1,        ///< pairs (x[i], x[i + dim/2]) — HF's rotate_half order
};
/// Rotates, in place, `dim` values starting at column `offset` of each of `heads`
/// heads of each token. Token t's head h starts at x + t*rowStride + h*headStride.
/// The angle for pair j of token t is positions[t] * freqs[j].
void rope(float *x, int64_t T, int64_t heads, int64_t rowStride, int64_t headStride,
          int64_t offset, const RopeParams &params, const float *freqs,
          const int32_t *positions, RopeLayout layout);

/// MLA dimensions of one attention layer.
struct MlaDims {
  int64_t heads = 0;      ///< H
  int64_t nope = 0;       ///< qk_nope_head_dim
  int64_t rope = 0;       ///< qk_rope_head_dim
  int64_t v = 0;          ///< v_head_dim
  int64_t kvLoraRank = 0; ///< C, the latent width
  float softmaxScale = 0; ///< (nope+rope)^-0.5, times m^2 with YaRN
};

/// One sequence's latent KV cache for one layer. Row p holds the token at position p.
struct LatentKv {
  float *latent = nullptr; ///< [capacity, kvLoraRank]: normalised c
  float *rope = nullptr;   ///< [capacity, rope]: roped k_pe
  int64_t capacity = 0;    ///< rows allocated
};

/// MLA attention over the latent cache (spec section 4).
/// q: [T, H, nope+rope], rope part already rotated. cNew: [T, C] (normalised latent);
/// pe: [T, rope] (rotated). First stores every token's cNew/pe row at caches[seqIds[t]]
/// row positions[t], then for each token attends causally over rows 0..positions[t] of
/// its own sequence. kvB is kv_b_proj [H*(nope+v), C]. absorbed selects the form
/// (same function, different cost). out: [T, H*v]. The caller guarantees
/// positions[t] < capacity.
void mlaAttention(const float *q, const float *cNew, const float *pe, int64_t T,
                  const int32_t *positions, const int32_t *seqIds, const LatentKv *caches,
                  const Weight &kvB, const MlaDims &dims, bool absorbed, float *out);

/// Router score function.
enum class ScoreFunc : uint8_t { Softmax = 0, Sigmoid = 1 };
/// How an expert group is scored for group-limited selection.
enum class GroupScore : uint8_t { Max = 0, Top2Sum = 1 };
/// Router configuration (spec section 5).
struct RouterParams {
  int64_t experts = 0;    ///< E, n_routed_experts
  int64_t topK = 0;       ///< K, num_experts_per_tok
  int64_t groups = 1;     ///< n_group (1: no group limit)
  int64_t topkGroups = 1; ///< topk_group
  ScoreFunc score = ScoreFunc::Softmax;
  GroupScore groupScore = GroupScore::Max;
  bool normTopkProb = false;     ///< renormalise the K weights (HF adds 1e-20 to the sum)
  float routedScalingFactor = 1; ///< always applied, as in DeepSeek's reference
};
/// Computes, per token, the K selected experts and their weights.
/// x: [T, D]; gate: [E, D]; bias: fp32 [E] correction bias or nullptr.
/// Ties break toward the lower expert index. idx, weights: [T, K].
void router(const float *x, int64_t T, const Weight &gate, const float *bias,
            const RouterParams &params, int32_t *idx, float *weights);

/// The three projections of one SwiGLU MLP: down(silu(gate(x)) * up(x)).
struct SwigluWeights {
  Weight gate; ///< [I, D]
  Weight up;   ///< [I, D]
  Weight down; ///< [D, I]
};
/// out[T, D] = down(silu(gate(x)) * up(x)).
void swigluMlp(const float *x, int64_t T, const SwigluWeights &mlp, float *out);

/// Routed experts: out[t] = sum_k weights[t,k] * Expert_{idx[t,k]}(x[t]).
/// Computes only selected experts, with tokens grouped by expert. out is overwritten.
/// Entries of idx outside [0, numExperts) contribute nothing.
void moeExperts(const float *x, int64_t T, const SwigluWeights *experts,
                int64_t numExperts, const int32_t *idx, const float *weights, int64_t K,
                float *out);

} // namespace moec::cpu

#endif // MOEC_CPU_KERNELS_H
