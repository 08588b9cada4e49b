//===- KernelSet.h - The kernels a benchmark calls, as one table -*- C++ -*-===//
//
// The MoE and MLA benchmarks call the kernels through a KernelSet so that one process can
// time two builds of runtime/cpu side by side: the one linked in, and a baseline
// copy built as a shared library (MOEC_BENCH_BASELINE, see RESULTS.md) and loaded
// with --moec_baseline=PATH. This VM's bandwidth moves by tens of percent between
// runs (and within one), so only interleaved runs in one process, on the same
// weights, compare two builds fairly. Both builds must declare the same
// moec/cpu/kernels.h functions used here, with the same struct layouts (cpu::Weight
// travels in arrays of cpu::SwigluWeights). MLA, whose kernels differ between
// builds, goes through mlaDecode (KernelSetTable.cpp adapts each build).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_BENCH_KERNELSET_H
#define MOEC_BENCH_KERNELSET_H

#include "moec/cpu/kernels.h"

namespace moec::bench {

/// One MLA attention call at decode, as both the split kernels of this build and
/// the single mlaAttention of builds before the split can run it (see
/// KernelSetTable.cpp): store the new rows, attend, write out.
struct MlaDecodeCall {
  int64_t heads = 0, nope = 0, rope = 0, v = 0, latentDim = 0; ///< H and the MLA dims
  float softmaxScale = 0;       ///< the scores' scale
  const float *q = nullptr;     ///< [T, H*(nope+rope)], rope part rotated
  const float *cNew = nullptr;  ///< [T, C]: the new latent rows
  const float *pe = nullptr;    ///< [T, rope]: the new rope rows
  int64_t T = 0;                ///< tokens
  const int32_t *positions = nullptr; ///< [T]
  const int32_t *seqIds = nullptr;    ///< [T], all 0: one sequence
  float *latent = nullptr;      ///< [capacity, C]: sequence 0's latent cache
  float *ropeCache = nullptr;   ///< [capacity, rope]
  int64_t capacity = 0;         ///< rows of each cache
  const cpu::Weight *kvB = nullptr; ///< kv_b_proj [H*(nope+v), C]
  float *qLat = nullptr;        ///< [T, H*C] scratch (absorbed form, split kernels)
  float *oLat = nullptr;        ///< [T, H*C] scratch (absorbed form, split kernels)
  float *out = nullptr;         ///< [T, H*v]
};

/// Pointers to one build's public kernels (see moec/cpu/kernels.h for each).
struct KernelSet {
  void (*setNumThreads)(int n);
  int (*numThreads)();
  bool (*setSimdLevelForTesting)(cpu::SimdLevel level);
  const char *(*simdLevel)();
  void (*rmsNorm)(const float *x, int64_t T, int64_t D, const cpu::Weight &gamma, float eps,
                  float *out);
  void (*linear)(const float *x, int64_t T, const cpu::Weight &W, float *y);
  void (*add)(const float *a, const float *b, int64_t n, float *out);
  void (*rope)(float *x, int64_t T, int64_t heads, int64_t rowStride, int64_t headStride,
               int64_t offset, const cpu::RopeParams &params, const float *freqs,
               const int32_t *positions, cpu::RopeLayout layout);
  void (*router)(const float *x, int64_t T, const cpu::Weight &gate, const float *bias,
                 const cpu::RouterParams &params, int32_t *idx, float *weights);
  void (*swigluMlp)(const float *x, int64_t T, const cpu::SwigluWeights &mlp, float *out);
  void (*moeExperts)(const float *x, int64_t T, const cpu::SwigluWeights *experts,
                     int64_t numExperts, const int32_t *idx, const float *weights, int64_t K,
                     float *out);
  /// The MLA core of one layer in the absorbed or the naive form (MlaDecodeCall).
  void (*mlaDecode)(const MlaDecodeCall &call, bool absorbed);
};

/// Register the linear (LinearBench.cpp), MoE (MoeBench.cpp) and MLA attention
/// (AttentionBench.cpp) benchmarks for one kernel set; `suffix` ends every
/// benchmark's base name ("" for the linked-in kernels, "_baseline" for the loaded
/// ones).
void registerLinearBenchmarks(const KernelSet *kernels, const char *suffix);
void registerMoeBenchmarks(const KernelSet *kernels, const char *suffix);
void registerAttentionBenchmarks(const KernelSet *kernels, const char *suffix);

} // namespace moec::bench

extern "C" {
/// The kernel set of the build this is linked into; a baseline shared library
/// exports it under this name for dlsym.
__attribute__((visibility("default"))) const moec::bench::KernelSet *moecBenchKernelSet();
}

#endif // MOEC_BENCH_KERNELSET_H
