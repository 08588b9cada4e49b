//===- KernelSet.h - The kernels a benchmark calls, as one table -*- C++ -*-===//
//
// The MoE benchmarks call the kernels through a KernelSet so that one process can
// time two builds of runtime/cpu side by side: the one linked in, and a baseline
// copy built as a shared library (MOEC_BENCH_BASELINE, see RESULTS.md) and loaded
// with --moec_baseline=PATH. This VM's bandwidth moves by tens of percent between
// runs (and within one), so only interleaved runs in one process, on the same
// weights, compare two builds fairly. Both builds must declare the same
// moec/cpu/kernels.h functions used here.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_BENCH_KERNELSET_H
#define MOEC_BENCH_KERNELSET_H

#include "moec/cpu/kernels.h"

namespace moec::bench {

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
};

/// Register the linear (LinearBench.cpp) and MoE (MoeBench.cpp) benchmarks for one
/// kernel set; `suffix` ends every benchmark's base name ("" for the linked-in
/// kernels, "_baseline" for the loaded ones).
void registerLinearBenchmarks(const KernelSet *kernels, const char *suffix);
void registerMoeBenchmarks(const KernelSet *kernels, const char *suffix);

} // namespace moec::bench

extern "C" {
/// The kernel set of the build this is linked into; a baseline shared library
/// exports it under this name for dlsym.
__attribute__((visibility("default"))) const moec::bench::KernelSet *moecBenchKernelSet();
}

#endif // MOEC_BENCH_KERNELSET_H
