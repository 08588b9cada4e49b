//===- Linear.cpp - y = x W^T, threaded over output rows ------------------===//
//
// Output rows are cut into chunks that threads take dynamically. A chunk is
// large enough (about 256 KiB of weights at decode, one 64-row panel at prefill)
// that each thread streams long contiguous runs, and small enough that a thread
// the OS preempts (this runtime shares machines) delays only its current chunk
// instead of the whole call. Chunk starts are multiples of 8 rows: the largest
// register tile's row group, which must not straddle an FP8 scale block.
//
//===----------------------------------------------------------------------===//

#include "KernelTable.h"
#include "Scratch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

namespace moec::cpu {
namespace {

int64_t storedBytes(WeightType type) {
  return type == WeightType::F32 ? 4 : isBlockScaled(type) ? 1 : 2;
}

int64_t roundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

} // namespace

namespace detail {

int64_t linearRowChunk(const Weight &W, int64_t T, int threads) {
  constexpr int64_t kRowAlign = 8;
  constexpr int64_t kChunkBytes = int64_t(256) << 10;
  constexpr int64_t kPanelRows = 64;   // the prefill panel height in isa/Linear.h
  constexpr int64_t kDecodeTokens = 4; // up to here every level streams rows
  // One thread at decode: the whole matrix in one sweep, with no stream restarts.
  if (threads <= 1 && T <= kDecodeTokens)
    return std::max<int64_t>(1, W.rows);
  const int64_t rowBytes = std::max<int64_t>(1, W.cols * storedBytes(W.type));
  // AMX products of bf16 activations pack the activations once per call: two
  // chunks per thread (a preempted thread still delays only half its share).
  const bool amxBf16 = activeKernels().amxBf16 && amxBf16Weight(W);
  const int64_t chunk =
      T <= kDecodeTokens ? roundUp(std::max<int64_t>(1, kChunkBytes / rowBytes), kRowAlign)
      : amxBf16          ? std::max(kPanelRows, roundUp((W.rows + 2 * threads - 1) / (2 * threads), 32))
                         : kPanelRows;
  // Never fewer chunks than threads.
  return std::min(chunk, roundUp((W.rows + threads - 1) / threads, kRowAlign));
}

} // namespace detail

void quantizeActivationsI8(const float *x, int64_t K, int16_t *q, float *scales) {
  if (K <= 0)
    return;
  const detail::QuantizedActsLayout layout(1, K, detail::activeKernels().int8ByteCodes);
  const detail::Scratch scratch(detail::ScratchSlot::Int8Input, layout.bytes());
  const detail::QuantizedActs a = layout.place(scratch.as<char>());
  detail::activeKernels().quantizeActsI8(x, 1, K, K, a);
  std::memcpy(q, a.q, static_cast<size_t>(K) * sizeof(int16_t));
  std::memcpy(scales, a.scale, static_cast<size_t>(a.blocks) * sizeof(float));
}

void quantizeActivationsFp8(const float *x, int64_t K, uint8_t *codes, float *scales) {
  for (int64_t b0 = 0; b0 < K; b0 += kFp8ActBlock) {
    const int64_t b1 = std::min(K, b0 + kFp8ActBlock);
    float amax = 0.f;
    for (int64_t k = b0; k < b1; ++k)
      amax = std::max(amax, std::fabs(x[k]));
    const float s = std::max(amax, 1e-4f) / 448.f;
    scales[b0 / kFp8ActBlock] = s;
    for (int64_t k = b0; k < b1; ++k)
      codes[k] = floatToFp8e4m3(x[k] / s);
  }
}

void linear(const float *x, int64_t T, const Weight &W, float *y) {
  if (T <= 0 || W.rows <= 0)
    return;
  const detail::KernelTable &k = detail::activeKernels();
  const int threads = detail::threadsFor(T * W.rows * W.cols);
  // W8A8: the activations quantized once, here, for every chunk (no scratch is
  // taken for other weight types).
  const bool int8 = W.type == WeightType::I8 && W.cols > 0;
  std::optional<detail::Scratch> scratch;
  detail::QuantizedActs a;
  if (int8) {
    const detail::QuantizedActsLayout layout(T, W.cols, k.int8ByteCodes);
    scratch.emplace(detail::ScratchSlot::Int8Shared, layout.bytes());
    a = layout.place(scratch->as<char>());
    k.quantizeActsI8(x, T, W.cols, W.cols, a);
  }
  auto rows = [&](int64_t r0, int64_t r1) {
    if (int8)
      k.linearRowsI8(a, T, W, r0, r1, y + r0, W.rows);
    else
      k.linearRows(x, T, W.cols, W, r0, r1, y + r0, W.rows);
  };
  if (threads == 1)
    return rows(0, W.rows);
  const int64_t chunk = detail::linearRowChunk(W, T, threads);
  const int64_t chunks = (W.rows + chunk - 1) / chunk;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c)
    rows(c * chunk, std::min(W.rows, (c + 1) * chunk));
}

} // namespace moec::cpu
