//===- Rope.cpp - Rotary position embedding with YaRN ---------------------===//
//
// Frequencies follow spec section 4 ("Frequencies, YaRN"). cos and sin of each
// fp32 angle are evaluated in double and rounded once, which is as close to the
// exact rotation of that fp32 angle as fp32 can hold; they are computed once per
// (token, pair) per call, and the rotation of every head is vectorised
// (KernelTable::ropeRow).
//
//===----------------------------------------------------------------------===//

#include "KernelTable.h"
#include "Scratch.h"

#include <algorithm>
#include <cmath>

namespace moec::cpu {
namespace {

/// cd(r) = d * ln(orig / (2 pi r)) / (2 ln theta): the dimension index whose
/// wavelength makes r full turns over the original context.
double correctionDim(double rotations, const RopeParams &p) {
  return static_cast<double>(p.dim) *
         std::log(static_cast<double>(p.originalMaxPositions) / (rotations * 2.0 * M_PI)) /
         (2.0 * std::log(static_cast<double>(p.theta)));
}

} // namespace

void ropeFrequencies(const RopeParams &params, float *freqs) {
  const int64_t half = params.dim / 2;
  double low = 0, high = 0;
  if (params.yarn) {
    low = std::max(std::floor(correctionDim(params.betaFast, params)), 0.0);
    high = std::min(std::ceil(correctionDim(params.betaSlow, params)),
                    static_cast<double>(params.dim - 1));
    if (low == high)
      high += 0.001; // avoid dividing by zero in the ramp
  }
  for (int64_t j = 0; j < half; ++j) {
    // f_j = theta^(-2j/d), with the exponent formed in fp32 as the reference does.
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(params.dim);
    const float base =
        static_cast<float>(1.0 / std::pow(static_cast<double>(params.theta), exponent));
    if (!params.yarn) {
      freqs[j] = base;
      continue;
    }
    const float ramp = static_cast<float>(
        std::clamp((static_cast<double>(j) - low) / (high - low), 0.0, 1.0));
    const float interpolated = base / params.factor;
    freqs[j] = base * (1.f - ramp) + interpolated * ramp;
  }
}

void rope(float *x, int64_t T, int64_t heads, int64_t rowStride, int64_t headStride,
          int64_t offset, const RopeParams &params, const float *freqs,
          const int32_t *positions, RopeLayout layout) {
  if (T <= 0 || heads <= 0)
    return;
  const detail::KernelTable &k = detail::activeKernels();
  const int64_t dim = params.dim, half = dim / 2;
  // Per token, one cosine and one sine per rotated value (see KernelTable::ropeRow),
  // computed once per call and shared by all heads.
  const detail::Scratch tables(detail::ScratchSlot::RopeTable,
                               2 * static_cast<size_t>(T * dim) * sizeof(float));
  float *cosines = tables.as<float>(), *sines = cosines + T * dim;
  // Index of a pair's first and second member in the table.
  const int64_t pairStep = layout == RopeLayout::Interleaved ? 2 : 1;
  const int64_t pairGap = layout == RopeLayout::Interleaved ? 1 : half;
  const int64_t rows = T * heads;
  // A double cos/sin pair costs a few hundred operations, a rotated value one.
  // Decode (T = 1, 128 heads) stays on one thread.
#pragma omp parallel num_threads(detail::threadsFor(T * (half * 256 + heads * dim)))
  {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      float *c = cosines + t * dim, *s = sines + t * dim;
      for (int64_t j = 0; j < half; ++j) {
        const float angle = static_cast<float>(positions[t]) * freqs[j];
        const float cj = static_cast<float>(std::cos(static_cast<double>(angle))) *
                         params.attentionFactor;
        const float sj = static_cast<float>(std::sin(static_cast<double>(angle))) *
                         params.attentionFactor;
        c[j * pairStep] = c[j * pairStep + pairGap] = cj;
        s[j * pairStep] = -sj;
        s[j * pairStep + pairGap] = sj;
      }
    }
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = r / heads, h = r % heads;
      k.ropeRow(x + t * rowStride + h * headStride + offset, dim, cosines + t * dim,
                sines + t * dim, layout);
    }
  }
}

} // namespace moec::cpu
