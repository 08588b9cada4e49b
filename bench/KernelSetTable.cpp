//===- KernelSetTable.cpp - The KernelSet of the build it is compiled into -===//
//
// Compiled into moec_bench (the linked-in kernels) and, with MOEC_BENCH_BASELINE,
// into the baseline shared library against the baseline's own kernels.h.
//
//===----------------------------------------------------------------------===//

#include "KernelSet.h"

extern "C" const moec::bench::KernelSet *moecBenchKernelSet() {
  using namespace moec::cpu;
  static const moec::bench::KernelSet set = {
      &setNumThreads, &numThreads, &setSimdLevelForTesting, &simdLevel, &rmsNorm,
      &linear,        &add,        &rope,                   &router,    &swigluMlp,
      &moeExperts};
  return &set;
}
