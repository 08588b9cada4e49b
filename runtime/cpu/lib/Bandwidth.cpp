//===- Bandwidth.cpp - The machine's own DRAM read bandwidth --------------===//

#include "moec/cpu/Bandwidth.h"

#include "moec/cpu/kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <immintrin.h>
#include <new>
#include <omp.h>

namespace moec::cpu {
namespace {

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

} // namespace

ReadBandwidthProbe::ReadBandwidthProbe(int threads, int64_t bytes)
    : threads_(threads > 0 ? threads : defaultNumThreads()), bytes_(bytes / 256 * 256),
      wide_(detectedSimdLevel() == SimdLevel::Avx512 || detectedSimdLevel() == SimdLevel::Avx512Vnni ||
            detectedSimdLevel() == SimdLevel::Avx512Amx) {
  buffer_ = static_cast<float *>(std::aligned_alloc(64, size_t(bytes_)));
  if (!buffer_)
    throw std::bad_alloc();
  const int64_t n = bytes_ / 4;
  float *buffer = buffer_;
  // Each page from the thread that will read it (first-touch placement).
#pragma omp parallel for num_threads(threads_) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    buffer[i] = 1.f;
}

ReadBandwidthProbe::~ReadBandwidthProbe() { std::free(buffer_); }

const char *ReadBandwidthProbe::loads() const { return wide_ ? "avx512" : "avx2"; }

float ReadBandwidthProbe::readOnce() const {
  const int64_t n = bytes_ / 4;
  const float *buffer = buffer_;
  const bool wide = wide_;
  float total = 0;
#pragma omp parallel num_threads(threads_) reduction(+ : total)
  {
    const int64_t parts = omp_get_num_threads(), part = omp_get_thread_num();
    // Slices on 64-float (256-byte) boundaries keep every load aligned.
    const int64_t units = n / 64;
    const int64_t begin = units * part / parts * 64, end = units * (part + 1) / parts * 64;
    total += wide ? sumAvx512(buffer + begin, end - begin) : sumAvx2(buffer + begin, end - begin);
  }
  return total;
}

double ReadBandwidthProbe::measure(int passes) {
  double best = 0;
  volatile float sink = 0;
  for (int pass = 0; pass < std::max(passes, 1); ++pass) {
    const auto start = std::chrono::steady_clock::now();
    sink = sink + readOnce();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds > 0)
      best = std::max(best, double(bytes_) / seconds);
  }
  return best;
}

} // namespace moec::cpu
