//===- kernels.h - CPU kernels for every plan step kind ---------*- C++ -*-===//
//
// The CPU backend's kernels. One function per step kind of the plan
// (runtime/schema/plan.fbs); every constant a kernel needs is a parameter, taken
// from the step's attributes, never from a model configuration.
// Semantics: shared/spec/deepseek-semantics.md. Activations are fp32, row-major;
// weights are read in their stored dtype and converted on the fly (never expanded
// into a full fp32 copy). All functions are thread-safe and use the thread count of
// the calling thread (setNumThreads / ScopedNumThreads): there is no process-wide
// kernel state besides the SIMD level, which only tests and benchmarks change.
//
// Ownership: every pointer is borrowed for the duration of the call. No kernel
// keeps a pointer after it returns. Kernels do not validate shapes: the plan
// loader has validated them, and the executor the run-time indices (token ids,
// positions against the state capacity, sequence ids), before any kernel runs.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_KERNELS_H
#define MOEC_CPU_KERNELS_H

#include <cstdint>

/// Defined by this header: the MLA core is split into the plan's step kinds
/// (cacheStore, headLinear, latentAttention, expandedAttention) and the thread count
/// is per calling thread. Lets code built against several versions of the kernels
/// (bench/KernelSetTable.cpp, for A/B runs against an older build) tell them apart.
#define MOEC_CPU_STEP_KERNELS 1

namespace moec::cpu {

/// Element type of a stored weight.
enum class WeightType : uint8_t { F32 = 0, F16 = 1, BF16 = 2, F8E4M3 = 3, I8 = 4 };

/// Whether a weight of this type carries block scales (FP8 e4m3 and int8).
inline bool isBlockScaled(WeightType type) {
  return type == WeightType::F8E4M3 || type == WeightType::I8;
}

/// A read-only view of one weight tensor, row-major [rows, cols].
/// For a 1-D tensor (norm weights, biases) rows == 1 and cols is its length.
struct Weight {
  WeightType type = WeightType::F32; ///< stored element type
  const void *data = nullptr;        ///< rows * cols elements of `type`
  int64_t rows = 0;                  ///< output features (first dim)
  int64_t cols = 0;                  ///< input features (second dim)
  /// FP8 and int8 only: multiplicative block scales, fp32 [ceil(rows/B), ceil(cols/B)]
  /// with B = kFp8BlockSize (the checkpoint's `weight_scale_inv`):
  /// W[i,j] = code(W8[i,j]) * scale[i/B, j/B], code an e4m3fn value or a signed
  /// int8. The kernels implement only this block shape; a backend refuses a plan
  /// weight with another one before any kernel runs.
  const float *blockScale = nullptr;
  /// bf16 activations (a plan step's `activations: BF16`): every product with this
  /// weight's rows (the same ones as int8's W8A8 below) rounds x to bfloat16 first,
  /// to nearest even, and multiplies the rounded values in fp32. Ignored for int8
  /// weights, which quantize x themselves. Levels with AMX-BF16 multiply bf16 and
  /// FP8 weights (decoded to bf16) by such x on the tile unit at prefill (sums in
  /// another order; the tiles read bf16 subnormals, below 2^-126, as zero).
  bool bf16Activations = false;
  /// FP8 activations (a plan step's `activations: F8E4M3`, DeepSeek's FP8 GEMM,
  /// spec section 3): every product with this weight's rows quantizes x per token
  /// and kFp8ActBlock columns (quantizeActivationsFp8) and multiplies the
  /// quantized values, dequantized (code * scale, a float32 product), with fp32
  /// sums: the same products as a per-block GEMM of the codes up to the order of
  /// the fp32 sums. Ignored for int8 weights.
  bool fp8Activations = false;
};

/// Side of the square FP8 weight scale block the kernels implement: their register
/// tiles and column strips are laid out so that none straddles a block. This is the
/// CPU kernels' capability, not a property of plans, which record each weight's
/// block shape.
inline constexpr int64_t kFp8BlockSize = 128;

/// Sets the number of worker threads of the kernels called from the calling thread
/// (<= 0: the default, defaultNumThreads()). The count is thread-local, so two callers
/// (two CPU backends) with different counts coexist; a new thread starts at 0.
void setNumThreads(int n);
/// Returns the number of worker threads the kernels called from this thread use.
int numThreads();
/// The default thread count, computed afresh: OMP_NUM_THREADS when it is set, else the
/// number of CPUs the calling thread may run on (sched_getaffinity: taskset, cgroup
/// cpusets), not the machine's core count. numThreads() computes it once per process.
int defaultNumThreads();
/// Sets the calling thread's kernel thread count for its lifetime, then restores it
/// (a backend wraps each execution in one).
class ScopedNumThreads {
public:
  explicit ScopedNumThreads(int n);
  ~ScopedNumThreads();
  ScopedNumThreads(const ScopedNumThreads &) = delete;
  ScopedNumThreads &operator=(const ScopedNumThreads &) = delete;

private:
  int saved_; ///< the thread's count before
};

/// Names the SIMD level chosen at run time: "avx512-amx", "avx512-vnni", "avx512", "avx2-vnni", "avx2"
/// or "scalar".
const char *simdLevel();

/// Instruction-set levels the kernels are compiled for.
enum class SimdLevel : uint8_t {
  Scalar = 0, ///< portable C++, no intrinsics
  Avx2 = 1,   ///< AVX2 + FMA + F16C
  Avx512 = 2, ///< AVX-512 F/BW/VL (plus the AVX2 set)
  Avx512Vnni = 3, ///< AVX-512 with VNNI: int8 products with vpdpbusd / vpdpwssd
  Avx2Vnni = 4,   ///< AVX2 with AVX-VNNI (no AVX-512): the same, 256 bits wide
  Avx512Amx = 5,  ///< AVX-512 VNNI with AMX-INT8 and AMX-BF16: int8 (tdpbssd) and
                  ///< bf16-activation (tdpbf16ps) prefill products in tiles
};
/// Returns the best level this CPU (and OS) supports, capped by the environment
/// variable MOEC_SIMD (scalar, avx2, avx2-vnni, avx512, avx512-vnni, avx512-amx) when it names a level the
/// CPU has; the kernels use it by default.
SimdLevel detectedSimdLevel();
/// The level a name denotes ("scalar", "avx2", "avx2-vnni", "avx512", "avx512-vnni", "avx512-amx",
/// as simdLevel() reports them); false for any other name.
bool simdLevelFromName(const char *name, SimdLevel *out);
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
/// Decodes `count` values of `type` stored little-endian at `data` (any alignment)
/// into floats with the conversions above; F8E4M3 values come out unscaled.
void decodeToFloat(WeightType type, const void *data, int64_t count, float *out);

/// Columns per activation block of the FP8 activation quantization.
inline constexpr int64_t kFp8ActBlock = 128;

/// DeepSeek's activation quantization (spec section 3, its `act_quant`) of one
/// token row of K values, per block of kFp8ActBlock columns (the last one
/// partial): s = max(amax, 1e-4) / 448 (float32), code = e4m3(x / s) (a float32
/// division, then floatToFp8e4m3: nearest even, saturating at +-448). Writes K
/// codes and ceil(K / kFp8ActBlock) scales. Exposed for tests and emulations.
void quantizeActivationsFp8(const float *x, int64_t K, uint8_t *codes, float *scales);

/// Columns per activation block of the W8A8 path (the weights' block side).
inline constexpr int64_t kInt8ActBlock = 128;

/// The W8A8 activation quantization of one token row of K values, per block of
/// kInt8ActBlock columns (the last one partial):
///   amax = max |x| over the block; below 2^-100 (or zero) the block is zero:
///          scale 0, codes 0;
///   scale = amax / 127 (float32 division), inverse = 127 / amax (float32),
///   q = round-to-nearest-even(x * inverse) (a float32 product), in [-127, 127].
/// Writes K codes (int16, so that a SIMD level multiplies them without widening)
/// and ceil(K / kInt8ActBlock) scales. Exposed for tests and emulations.
void quantizeActivationsI8(const float *x, int64_t K, int16_t *q, float *scales);

/// out[t, :] = table[tokens[t], :]. out is [T, table.cols].
void embedding(const Weight &table, const int32_t *tokens, int64_t T, float *out);

/// out[t] = x[t] * rsqrt(mean(x[t]^2) + eps) * gamma. x, out: [T, D]; gamma: 1 x D.
/// out may equal x.
void rmsNorm(const float *x, int64_t T, int64_t D, const Weight &gamma, float eps,
             float *out);

/// y[T, W.rows] = x[T, W.cols] * W^T, fp32 accumulation, any weight type.
/// FP8 bytes are decoded through an f16 reinterpretation, so the two NaN bytes
/// (S.1111.111, never produced by a quantiser) read as +-480 here.
/// Int8 weights (W8A8): x is quantized first, per token and per kInt8ActBlock
/// columns (quantizeActivationsI8), and each block's dot product is exact in int32:
///   y[t, r] = sum over blocks b of (xs[t, b] * ws[r / B, b]) * sum_{k in b} w[r, k] q[t, k]
/// in fp32 (the blocks' order of summation unspecified). Every product of this
/// library with an int8 weight's rows (linear, the MLPs, head_linear, the expanded
/// attention's kv_b) takes this path; the transposed product (absorbed attention's
/// W_UK) and decodeRow dequantize the weight and keep x in fp32.
void linear(const float *x, int64_t T, const Weight &W, float *y);

/// The residual add fused with the next RMSNorm, row by row while the row is in
/// cache: sum = a + b, out = rmsNorm(sum) * gamma; a, b, sum, out: [T, D]. The
/// same arithmetic as add() then rmsNorm(), so the same bits. sum may alias a or b;
/// out may alias a or b (not sum).
void addRmsNorm(const float *a, const float *b, int64_t T, int64_t D, const Weight &gamma,
                float eps, float *sum, float *out);

/// out = a + b, n elements. out may alias a or b.
void add(const float *a, const float *b, int64_t n, float *out);

/// out[t, 0:width] = x[t, begin:begin+width], with x rows of xCols elements.
void sliceColumns(const float *x, int64_t T, int64_t xCols, int64_t begin,
                  int64_t width, float *out);

/// Rotary embedding parameters (spec section 4, "Frequencies, YaRN"): a rope step's
/// RopeAttrs (rope_dim, theta, yarn).
struct RopeParams {
  int64_t dim = 0;        ///< rotated dims (rope_dim), even
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

/// How a state stores its values: float32, or bfloat16 or float8 e4m3 (saturating
/// at +-448, no scale) rounded to nearest even when stored (the KV cache of
/// `moec compile --kv-cache=bf16|fp8`).
enum class StateElement : uint8_t { F32, BF16, F8E4M3 };

/// Rows of one persistent per-sequence state (a layer's latent or rope cache; a plan
/// `State` as bound by the executor). Row p of sequence s starts at element
/// s * sequenceStride + p * rowStride of data. Strides count elements, not bytes
/// (the backend converts its byte-based StateBinding).
struct StateView {
  void *data = nullptr;                      ///< sequence 0, row 0
  StateElement element = StateElement::F32;  ///< what each value is stored as
  int64_t sequenceStride = 0;                ///< elements between sequences
  int64_t rowStride = 0;                     ///< elements between rows (>= the row width)
  int64_t capacity = 0;                      ///< rows per sequence; every position is below it
  /// Prefix sharing, per sequence (null: none): sequence s reads rows
  /// [0, prefixRows[s]) from sequence prefixSeq[s]; attention handles the two parts.
  const int32_t *prefixSeq = nullptr;
  const int64_t *prefixRows = nullptr;
  /// Bytes of one value.
  int64_t elementBytes() const {
    return element == StateElement::F32 ? 4 : element == StateElement::BF16 ? 2 : 1;
  }
  /// Row `position` of sequence `seq`'s own storage.
  void *row(int64_t seq, int64_t position) const {
    return static_cast<char *>(data) + (seq * sequenceStride + position * rowStride) * elementBytes();
  }
  /// Rows of `seq` read from another sequence (0 when none).
  int64_t sharedRows(int64_t seq) const { return prefixRows ? prefixRows[seq] : 0; }
  /// The sequence those rows belong to.
  int64_t sharedWith(int64_t seq) const { return prefixSeq ? prefixSeq[seq] : seq; }
};

/// cache_store: for each token t, stores c[t, 0:C] in row positions[t] of sequence
/// seqIds[t] of `latent`, and pe[t, 0:R] in the same row of `rope` (bf16 and e4m3
/// states: each value rounded to nearest even, e4m3 saturating). c: [T, C], pe: [T, R].
void cacheStore(const float *c, const float *pe, int64_t T, int64_t C, int64_t R,
                const int32_t *positions, const int32_t *seqIds, const StateView &latent,
                const StateView &rope);

/// head_linear's attributes (plan HeadLinearAttrs).
struct HeadLinearParams {
  int64_t heads = 0;      ///< H
  int64_t inStride = 0;   ///< columns of x between heads
  int64_t inOffset = 0;   ///< first column of head 0's slice of x
  int64_t inWidth = 0;    ///< columns of each head's slice of x
  int64_t rowStride = 0;  ///< rows of W between heads
  int64_t rowOffset = 0;  ///< first row of head 0's slice of W
  int64_t rows = 0;       ///< rows of each head's slice of W
  bool transpose = false; ///< y_h = x_h W_h (inWidth == rows) instead of x_h W_h^T
  /// Columns of each head's output: rows, or W.cols when transposed.
  int64_t outWidth(const Weight &W) const { return transpose ? W.cols : rows; }
};
/// head_linear: per head h, with x_h = x[t, h*inStride + inOffset : + inWidth] and
/// W_h = W[h*rowStride + rowOffset : + rows, :],
///   y[t, h*N : (h+1)*N] = x_h W_h^T  (N = rows, inWidth == W.cols), or
///   y[t, h*N : (h+1)*N] = x_h W_h    (transpose; N = W.cols, inWidth == rows).
/// x: [T, ldx]; y: [T, H*N]. W in any stored type; its per-head slices are used in
/// place (W_UK / W_UV of kv_b_proj).
void headLinear(const float *x, int64_t T, int64_t ldx, const Weight &W,
                const HeadLinearParams &params, float *y);

/// latent_attention's attributes (plan LatentAttentionAttrs).
struct LatentAttentionParams {
  int64_t heads = 0;       ///< H
  int64_t latentDim = 0;   ///< C
  int64_t ropeDim = 0;     ///< R
  int64_t qStride = 0;     ///< columns of q between heads
  int64_t qRopeOffset = 0; ///< first rope column of head 0 in q
  float softmaxScale = 0;  ///< multiplies every score before the softmax
};
/// latent_attention, the absorbed MLA core (spec section 4): for token t and head h,
///   score_j = (qLat[t,h] . latent_j + q_pe[t,h] . rope_j) * softmaxScale
/// over rows j = 0..positions[t] of sequence seqIds[t], causal softmax, and
///   oLat[t, h*C:(h+1)*C] = sum_j p_j latent_j.
/// qLat, oLat: [T, H*C]; q: [T, ldq], head h's rope query at column
/// h*qStride + qRopeOffset. The rows a token attends must be stored already.
void latentAttention(const float *qLat, const float *q, int64_t ldq, int64_t T,
                     const int32_t *positions, const int32_t *seqIds,
                     const StateView &latent, const StateView &rope,
                     const LatentAttentionParams &params, float *oLat);

/// expanded_attention's attributes (plan ExpandedAttentionAttrs).
struct ExpandedAttentionParams {
  int64_t heads = 0;      ///< H
  int64_t nopeDim = 0;    ///< qk_nope_head_dim
  int64_t ropeDim = 0;    ///< qk_rope_head_dim
  int64_t vDim = 0;       ///< v_head_dim
  int64_t latentDim = 0;  ///< C
  float softmaxScale = 0; ///< multiplies every score before the softmax
};
/// expanded_attention, the naive MLA core (spec section 4): per (sequence, head),
/// k_nope and v of every visible cached row are expanded from the latent through
/// that head's rows of kvB ([H*(nope+v), C]: k_nope rows, then v rows, per head),
/// k_pe is the rope state; token t attends rows 0..positions[t] of sequence
/// seqIds[t]. q: [T, H*(nope+rope)], rope part already rotated; out: [T, H*v].
void expandedAttention(const float *q, int64_t T, const int32_t *positions,
                       const int32_t *seqIds, const StateView &latent,
                       const StateView &rope, const Weight &kvB,
                       const ExpandedAttentionParams &params, float *out);

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

/// The projections of one SwiGLU MLP: down(silu(gate(x)) * up(x)). Gate and up are
/// either two weights or, fused (gateUpRows > 0), one weight whose rows interleave
/// them in units of gateUpRows: unit u holds gate rows [u*R, u*R + n) then up rows
/// [u*R, u*R + n), n = min(R, I - u*R), so one product over a unit's rows gives both
/// halves of silu(g) * u. An FP8 gateUp needs R and I in whole scale blocks.
struct SwigluWeights {
  Weight gate;            ///< [I, D]; unused when fused
  Weight up;              ///< [I, D]; unused when fused
  Weight down;            ///< [D, I]
  Weight gateUp;          ///< [2I, D], fused only
  int64_t gateUpRows = 0; ///< the interleave unit R; 0: gate and up apart

  bool fused() const { return gateUpRows > 0; }
  /// I, the hidden width.
  int64_t inner() const { return fused() ? gateUp.rows / 2 : gate.rows; }
  /// D, the model width.
  int64_t width() const { return down.rows; }
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
