//===- BenchMain.cpp - moec_bench entry point -----------------------------===//
//
// Google Benchmark's main plus two options of its own, removed before the
// library parses the rest:
//   --moec_simd=scalar|avx2|avx512   force a SIMD level (default: the detected one)
//   --moec_threads=N                 kernel threads (default: all cores)
//
//===----------------------------------------------------------------------===//

#include "moec/cpu/kernels.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  std::vector<char *> rest;
  for (int i = 0; i < argc; ++i) {
    const char *arg = argv[i];
    if (std::strncmp(arg, "--moec_simd=", 12) == 0) {
      const char *name = arg + 12;
      moec::cpu::SimdLevel level;
      if (std::strcmp(name, "scalar") == 0)
        level = moec::cpu::SimdLevel::Scalar;
      else if (std::strcmp(name, "avx2") == 0)
        level = moec::cpu::SimdLevel::Avx2;
      else if (std::strcmp(name, "avx512") == 0)
        level = moec::cpu::SimdLevel::Avx512;
      else {
        std::fprintf(stderr, "moec_bench: --moec_simd: unknown level '%s'\n", name);
        return 2;
      }
      if (!moec::cpu::setSimdLevelForTesting(level)) {
        std::fprintf(stderr, "moec_bench: this CPU cannot run --moec_simd=%s\n", name);
        return 2;
      }
    } else if (std::strncmp(arg, "--moec_threads=", 15) == 0) {
      moec::cpu::setNumThreads(std::atoi(arg + 15));
    } else {
      rest.push_back(argv[i]);
    }
  }
  int restCount = static_cast<int>(rest.size());
  benchmark::Initialize(&restCount, rest.data());
  if (benchmark::ReportUnrecognizedArguments(restCount, rest.data()))
    return 1;
  benchmark::AddCustomContext("moec_simd", moec::cpu::simdLevel());
  benchmark::AddCustomContext("moec_threads", std::to_string(moec::cpu::numThreads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
