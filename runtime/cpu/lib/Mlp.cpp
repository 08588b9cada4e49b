//===- Mlp.cpp - SwiGLU MLP and routed experts ----------------------------===//
//
// Routed experts group the tokens by expert first, so each selected expert's
// weights are streamed once per call for all of its tokens, and experts nobody
// selected are never touched.
//
//===----------------------------------------------------------------------===//

#include "KernelTable.h"

#include <cstring>
#include <vector>

namespace moec::cpu {

void swigluMlp(const float *x, int64_t T, const SwigluWeights &mlp, float *out) {
  if (T <= 0)
    return;
  const detail::KernelTable &k = detail::activeKernels();
  const int64_t I = mlp.gate.rows;
  std::vector<float> gate(static_cast<size_t>(T * I)), up(static_cast<size_t>(T * I));
  linear(x, T, mlp.gate, gate.data());
  linear(x, T, mlp.up, up.data());
  constexpr int64_t kChunk = 1 << 14;
  const int64_t n = T * I;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(detail::threadsFor(n * 8)) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    const int64_t len = n - begin < kChunk ? n - begin : kChunk;
    k.siluMul(gate.data() + begin, up.data() + begin, len, gate.data() + begin);
  }
  linear(gate.data(), T, mlp.down, out);
}

void moeExperts(const float *x, int64_t T, const SwigluWeights *experts,
                int64_t numExperts, const int32_t *idx, const float *weights, int64_t K,
                float *out) {
  if (T <= 0 || numExperts <= 0)
    return;
  const detail::KernelTable &k = detail::activeKernels();
  const int64_t D = experts[0].gate.cols;
  std::memset(out, 0, static_cast<size_t>(T * D) * sizeof(float));
  // Counting sort of the (token, slot) pairs by expert.
  std::vector<int64_t> start(static_cast<size_t>(numExperts + 1), 0);
  for (int64_t i = 0; i < T * K; ++i)
    if (idx[i] >= 0 && idx[i] < numExperts)
      ++start[idx[i] + 1];
  for (int64_t e = 0; e < numExperts; ++e)
    start[e + 1] += start[e];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  std::vector<int64_t> slots(static_cast<size_t>(start[numExperts]));
  for (int64_t i = 0; i < T * K; ++i)
    if (idx[i] >= 0 && idx[i] < numExperts)
      slots[fill[idx[i]]++] = i;

  std::vector<float> xs, ys;
  for (int64_t e = 0; e < numExperts; ++e) {
    const int64_t n = start[e + 1] - start[e];
    if (n == 0)
      continue;
    xs.resize(static_cast<size_t>(n * D));
    ys.resize(static_cast<size_t>(n * D));
    for (int64_t j = 0; j < n; ++j)
      std::memcpy(xs.data() + j * D, x + (slots[start[e] + j] / K) * D,
                  static_cast<size_t>(D) * sizeof(float));
    swigluMlp(xs.data(), n, experts[e], ys.data());
    for (int64_t j = 0; j < n; ++j) {
      const int64_t slot = slots[start[e] + j];
      k.axpy(weights[slot], ys.data() + j * D, D, out + (slot / K) * D);
    }
  }
}

} // namespace moec::cpu
