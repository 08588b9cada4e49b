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
#include <vector>

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

namespace {

/// The h x w values of an F8E4M3 band's block at (r0, c0), dequantized with their
/// source blocks' scales, into out (row stride w).
void dequantizeFp8Block(const Fp8QuantizeBand &band, int64_t r0, int64_t c0, int64_t h,
                        int64_t w, float *out) {
  const auto *codes = static_cast<const uint8_t *>(band.data);
  const int64_t scaleCols = (band.cols + band.sourceBlockCols - 1) / band.sourceBlockCols;
  for (int64_t i = 0; i < h; ++i) {
    const int64_t r = r0 + i;
    const float *scaleRow = band.sourceScales + (r / band.sourceBlockRows) * scaleCols;
    const uint8_t *row = codes + r * band.cols;
    for (int64_t j = 0; j < w; ++j) {
      const int64_t c = c0 + j;
      out[i * w + j] = fp8e4m3ToFloat(row[c]) * scaleRow[c / band.sourceBlockCols];
    }
  }
}

} // namespace

bool quantizeFp8Band(const Fp8QuantizeBand &band, uint8_t *codes, float *scales,
                     int64_t *badRow, int64_t *badCol) {
  const bool fromFp8 = band.type == WeightType::F8E4M3;
  if (fromFp8 && (!band.sourceScales || band.code != WeightType::I8 ||
                  band.sourceBlockRows < 1 || band.sourceBlockCols < 1)) {
    if (badRow)
      *badRow = -1;
    if (badCol)
      *badCol = -1;
    return false;
  }
  const int64_t B = band.block;
  const int64_t rows = band.rowEnd - band.rowBegin;
  const int64_t gridRows = (rows + B - 1) / B;
  const int64_t gridCols = (band.cols + B - 1) / B;
  const int64_t blocks = gridRows * gridCols;
  const int64_t elemBytes = band.type == WeightType::F32 ? 4 : fromFp8 ? 1 : 2;
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
    bool ok;
    if (fromFp8) {
      // One block's values at a time, per thread (64 KiB for 128 x 128).
      thread_local std::vector<float> values;
      values.resize(static_cast<size_t>(h * w));
      dequantizeFp8Block(band, r0, c0, h, w, values.data());
      ok = k.quantizeInt8Block(WeightType::F32, reinterpret_cast<const uint8_t *>(values.data()),
                               w, h, w, out, band.cols, &scale);
    } else {
      ok = band.code == WeightType::I8
               ? k.quantizeInt8Block(band.type, src, band.cols, h, w, out, band.cols, &scale)
               : k.quantizeFp8Block(band.type, src, band.cols, h, w, band.format, out,
                                    band.cols, &scale);
    }
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
