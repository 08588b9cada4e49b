//===- BenchMain.cpp - moec_bench entry point -----------------------------===//
//
// Google Benchmark's main plus options of its own, removed before the library
// parses the rest:
//   --moec_simd=scalar|avx2|avx2-vnni|avx512|avx512-vnni|avx512-amx  force a SIMD level (default: the detected one)
//   --moec_threads=N                 kernel threads (default: the CPUs of
//                                    sched_getaffinity)
//   --moec_baseline=PATH             also run the linear, MoE and MLA benchmarks on the
//                                    kernels of a baseline build (a shared library
//                                    from -DMOEC_BENCH_BASELINE=...; see KernelSet.h),
//                                    named with the suffix "_baseline"
// Both options above apply to the baseline kernels too. Idle OpenMP workers spin
// briefly, then sleep, as in moec-run (moec/cpu/WaitPolicy.h).
//
//===----------------------------------------------------------------------===//

#include "KernelSet.h"

#include "moec/cpu/WaitPolicy.h"

#include <benchmark/benchmark.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  // The OpenMP wait policy moec-run runs with (may re-execute moec_bench once).
  moec::cpu::boundOpenMpSpinning(argv);
  using moec::bench::KernelSet;
  const KernelSet *current = moecBenchKernelSet();
  const KernelSet *baseline = nullptr;
  std::vector<char *> rest;
  bool forceLevel = false;
  moec::cpu::SimdLevel level = moec::cpu::SimdLevel::Scalar;
  int threads = 0;
  const char *levelName = nullptr;
  for (int i = 0; i < argc; ++i) {
    const char *arg = argv[i];
    if (std::strncmp(arg, "--moec_simd=", 12) == 0) {
      levelName = arg + 12;
      forceLevel = true;
      if (!moec::cpu::simdLevelFromName(levelName, &level)) {
        std::fprintf(stderr, "moec_bench: --moec_simd: unknown level '%s'\n", levelName);
        return 2;
      }
    } else if (std::strncmp(arg, "--moec_threads=", 15) == 0) {
      threads = std::atoi(arg + 15);
    } else if (std::strncmp(arg, "--moec_baseline=", 16) == 0) {
      // RTLD_LOCAL: the baseline's kernels never stand in for the linked-in ones.
      void *lib = dlopen(arg + 16, RTLD_NOW | RTLD_LOCAL);
      const auto entry =
          lib ? reinterpret_cast<const KernelSet *(*)()>(dlsym(lib, "moecBenchKernelSet"))
              : nullptr;
      if (!entry) {
        std::fprintf(stderr, "moec_bench: --moec_baseline: %s\n", dlerror());
        return 2;
      }
      baseline = entry();
    } else {
      rest.push_back(argv[i]);
    }
  }
  for (const KernelSet *k : {current, baseline}) {
    if (!k)
      continue;
    if (forceLevel && !k->setSimdLevelForTesting(level)) {
      std::fprintf(stderr, "moec_bench: this CPU cannot run --moec_simd=%s\n", levelName);
      return 2;
    }
    k->setNumThreads(threads);
  }
  moec::bench::registerLinearBenchmarks(current, "");
  moec::bench::registerMoeBenchmarks(current, "");
  moec::bench::registerAttentionBenchmarks(current, "");
  if (baseline) {
    moec::bench::registerLinearBenchmarks(baseline, "_baseline");
    moec::bench::registerMoeBenchmarks(baseline, "_baseline");
    moec::bench::registerAttentionBenchmarks(baseline, "_baseline");
  }
  int restCount = static_cast<int>(rest.size());
  benchmark::Initialize(&restCount, rest.data());
  if (benchmark::ReportUnrecognizedArguments(restCount, rest.data()))
    return 1;
  benchmark::AddCustomContext("moec_simd", current->simdLevel());
  benchmark::AddCustomContext("moec_threads", std::to_string(current->numThreads()));
  if (baseline)
    benchmark::AddCustomContext("moec_baseline", "loaded");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
