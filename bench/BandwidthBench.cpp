//===- BandwidthBench.cpp - The machine's own DRAM read bandwidth ---------===//
//
// Every thread (moec's thread count) sums its contiguous slice of a 1 GiB buffer
// with the widest loads the CPU has, four independent accumulators each, and
// software prefetch as linear uses it: the ceiling that a weight-streaming kernel
// can approach. (On this VM the prefetch adds ~10% over plain loads.)
//
//===----------------------------------------------------------------------===//

#include "moec/cpu/kernels.h"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <immintrin.h>
#include <memory>
#include <omp.h>

namespace moec::bench {
namespace {

constexpr int64_t kBufferBytes = int64_t(1) << 30;
/// Prefetch distance in floats (1 KiB, as in linear).
constexpr int64_t kAhead = 256;

__attribute__((target("avx512f"))) float sumAvx512(const float *p, int64_t n) {
  __m512 a = _mm512_setzero_ps(), b = a, c = a, d = a;
  for (int64_t i = 0; i + 64 <= n; i += 64) {
    for (int64_t line = 0; line < 64; line += 16)
      __builtin_prefetch(p + i + kAhead + line);
    a = _mm512_add_ps(a, _mm512_load_ps(p + i));
    b = _mm512_add_ps(b, _mm512_load_ps(p + i + 16));
    c = _mm512_add_ps(c, _mm512_load_ps(p + i + 32));
    d = _mm512_add_ps(d, _mm512_load_ps(p + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), _mm512_add_ps(c, d)));
}

__attribute__((target("avx2"))) float sumAvx2(const float *p, int64_t n) {
  __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
  for (int64_t i = 0; i + 32 <= n; i += 32) {
    for (int64_t line = 0; line < 32; line += 16)
      __builtin_prefetch(p + i + kAhead + line);
    a = _mm256_add_ps(a, _mm256_load_ps(p + i));
    b = _mm256_add_ps(b, _mm256_load_ps(p + i + 8));
    c = _mm256_add_ps(c, _mm256_load_ps(p + i + 16));
    d = _mm256_add_ps(d, _mm256_load_ps(p + i + 24));
  }
  const __m256 s = _mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d));
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}

void BM_ReadBandwidth(benchmark::State &state) {
  const bool wide = cpu::detectedSimdLevel() == cpu::SimdLevel::Avx512;
  const int64_t n = kBufferBytes / 4;
  std::unique_ptr<float[], void (*)(void *)> buffer(
      static_cast<float *>(std::aligned_alloc(64, kBufferBytes)), std::free);
  const int threads = cpu::numThreads();
  // Touch every page from the thread that will read it (first-touch placement).
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    buffer[i] = 1.f;
  float total = 0;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      const int64_t parts = omp_get_num_threads(), part = omp_get_thread_num();
      // Slices on 64-float (256-byte) boundaries keep every load aligned.
      const int64_t units = n / 64;
      const int64_t begin = units * part / parts * 64, end = units * (part + 1) / parts * 64;
      total += wide ? sumAvx512(buffer.get() + begin, end - begin)
                    : sumAvx2(buffer.get() + begin, end - begin);
    }
    benchmark::DoNotOptimize(total);
  }
  state.counters["read_bytes_per_second"] = benchmark::Counter(
      static_cast<double>(kBufferBytes) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.counters["threads"] = threads;
  state.SetLabel(wide ? "avx512 loads" : "avx2 loads");
}

BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
} // namespace moec::bench
