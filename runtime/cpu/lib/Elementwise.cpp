//===- Elementwise.cpp - embedding, rmsNorm, add, sliceColumns ------------===//

#include "KernelTable.h"

#include <cstring>

namespace moec::cpu {

void embedding(const Weight &table, const int32_t *tokens, int64_t T, float *out) {
  const detail::KernelTable &k = detail::activeKernels();
  const int64_t D = table.cols;
#pragma omp parallel for num_threads(detail::threadsFor(T * D)) schedule(static)
  for (int64_t t = 0; t < T; ++t)
    k.decodeRow(table, tokens[t], out + t * D);
}

void rmsNorm(const float *x, int64_t T, int64_t D, const Weight &gamma, float eps,
             float *out) {
  const detail::KernelTable &k = detail::activeKernels();
#pragma omp parallel for num_threads(detail::threadsFor(T * D)) schedule(static)
  for (int64_t t = 0; t < T; ++t)
    k.rmsNormRow(x + t * D, D, gamma, eps, out + t * D);
}

void addRmsNorm(const float *a, const float *b, int64_t T, int64_t D, const Weight &gamma,
                float eps, float *sum, float *out) {
  const detail::KernelTable &k = detail::activeKernels();
#pragma omp parallel for num_threads(detail::threadsFor(T * D)) schedule(static)
  for (int64_t t = 0; t < T; ++t) {
    k.add(a + t * D, b + t * D, D, sum + t * D);
    k.rmsNormRow(sum + t * D, D, gamma, eps, out + t * D);
  }
}

void add(const float *a, const float *b, int64_t n, float *out) {
  const detail::KernelTable &k = detail::activeKernels();
  // Chunks of whole cache lines so that no two threads share one.
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(detail::threadsFor(n)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    const int64_t len = n - begin < kChunk ? n - begin : kChunk;
    k.add(a + begin, b + begin, len, out + begin);
  }
}

void sliceColumns(const float *x, int64_t T, int64_t xCols, int64_t begin, int64_t width,
                  float *out) {
  for (int64_t t = 0; t < T; ++t)
    std::memcpy(out + t * width, x + t * xCols + begin,
                static_cast<size_t>(width) * sizeof(float));
}

} // namespace moec::cpu
