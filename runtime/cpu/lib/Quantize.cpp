//===- Quantize.cpp - Block-FP8 weight quantization, threaded ---------------===//
//
// The recipe and its guarantees: moec/cpu/quantize.h. The per-block work is a
// primitive of each SIMD level (isa/Quantize.h); this file splits a band of rows
// into blocks and shares them among the threads.
//
//===----------------------------------------------------------------------===//

#include "moec/cpu/quantize.h"

#include "KernelTable.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace moec::cpu {

float fp8BlockScale(float amax, Fp8ScaleFormat format) {
  float s = static_cast<float>(static_cast<double>(std::max(amax, 1e-12f)) / 448.0);
  if (format == Fp8ScaleFormat::Ue8m0) {
    // s is a positive normal float (>= 1e-12 / 448): clear the mantissa and, if it
    // was not zero, step the exponent up: the next power of two at or above s.
    uint32_t b;
    std::memcpy(&b, &s, sizeof b);
    if (b & 0x007FFFFFu)
      b = (b & 0x7F800000u) + 0x00800000u;
    std::memcpy(&s, &b, sizeof s);
  }
  return s;
}

float int8BlockScale(float amax) {
  return static_cast<float>(static_cast<double>(std::max(amax, 1e-12f)) / 127.0);
}

bool quantizeFp8Band(const Fp8QuantizeBand &band, uint8_t *codes, float *scales,
                     int64_t *badRow, int64_t *badCol) {
  const int64_t B = band.block;
  const int64_t rows = band.rowEnd - band.rowBegin;
  const int64_t gridRows = (rows + B - 1) / B;
  const int64_t gridCols = (band.cols + B - 1) / B;
  const int64_t blocks = gridRows * gridCols;
  const int64_t elemBytes = band.type == WeightType::F32 ? 4 : 2;
  const auto *base = static_cast<const uint8_t *>(band.data);
  const detail::KernelTable &k = detail::activeKernels();
  // The first failing block, in block order, whatever thread found it.
  std::atomic<int64_t> firstBad{blocks};
  const int threads = detail::threadsFor(rows * band.cols * (codes ? 8 : 1));
#pragma omp parallel for num_threads(std::min<int64_t>(threads, blocks)) schedule(static)
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t br = i / gridCols, bc = i % gridCols;
    const int64_t r0 = band.rowBegin + br * B, c0 = bc * B;
    const int64_t h = std::min(B, band.rowEnd - r0), w = std::min(B, band.cols - c0);
    float scale = 0.f;
    const uint8_t *src = base + (r0 * band.cols + c0) * elemBytes;
    uint8_t *out = codes ? codes + (br * B) * band.cols + c0 : nullptr;
    bool ok = band.code == WeightType::I8
                  ? k.quantizeInt8Block(band.type, src, band.cols, h, w, out, band.cols, &scale)
                  : k.quantizeFp8Block(band.type, src, band.cols, h, w, band.format, out,
                                       band.cols, &scale);
    if (scales)
      scales[i] = scale;
    if (!ok) {
      int64_t seen = firstBad.load();
      while (i < seen && !firstBad.compare_exchange_weak(seen, i)) {
      }
    }
  }
  const int64_t bad = firstBad.load();
  if (bad == blocks)
    return true;
  if (badRow)
    *badRow = band.rowBegin + (bad / gridCols) * B;
  if (badCol)
    *badCol = (bad % gridCols) * B;
  return false;
}

} // namespace moec::cpu
