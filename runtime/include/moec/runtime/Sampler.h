//===- Sampler.h - Picks the next token from logits -------------*- C++ -*-===//
//
// Greedy, or temperature sampling restricted by top-k and top-p. Sampling is
// reproducible: the random numbers come from a self-contained xoshiro256** generator
// seeded from `seed` (the standard library's distributions are implementation-
// defined), and candidates are ordered by (logit descending, id ascending), so the
// same seed gives the same tokens on every platform.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_SAMPLER_H
#define MOEC_RUNTIME_SAMPLER_H

#include "moec/runtime/Status.h"

#include <cmath>
#include <cstdint>
#include <vector>

namespace moec {

/// How to choose a token.
struct SamplingParams {
  float temperature = 0.f; ///< <= 0: greedy (argmax, lowest id on ties)
  int64_t topK = 0;        ///< keep the k most likely tokens; <= 0: all
  float topP = 1.f;        ///< keep the fewest tokens whose probability reaches p; 1: all
  uint64_t seed = 0;       ///< random seed
};

/// The greedy choice from one row of logits: the largest logit, the lowest id on
/// ties, NaN last (a row of NaN gives 0). GPU backends choose on the device by the
/// same order (KernelModule.argmax).
inline int32_t greedyToken(const float *logits, int64_t vocab) {
  int32_t best = 0;
  for (int64_t i = 1; i < vocab; ++i) {
    const float v = logits[i], b = logits[best];
    // v before b: b is NaN and v is not, or both numbers and v larger (the lower
    // id, best, wins ties and pairs of NaN).
    if ((std::isnan(b) && !std::isnan(v)) || v > b)
      best = int32_t(i);
  }
  return best;
}

/// xoshiro256** seeded through splitmix64: portable and reproducible.
class Random {
public:
  explicit Random(uint64_t seed);
  /// The next 64 random bits.
  uint64_t next();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }

private:
  uint64_t state_[4]; ///< generator state
};

/// Chooses tokens from logits; keeps its random state between calls.
/// Log-probabilities under a sampling temperature, as GRPO's ratio and the server's
/// logprobs need: log_softmax(logits / T)[i] = logits[i] / T - norm, where norm is
/// what this returns (log of the sum of exp(logits / T), in double, max subtracted).
/// T <= 0 (greedy) counts as T = 1.
struct TemperedLogSoftmax {
  TemperedLogSoftmax(const float *logits, int64_t vocab, float temperature);
  /// log_softmax(logits / T)[token].
  float at(int32_t token) const { return float(double(logits_[token]) / t_ - norm_); }

private:
  const float *logits_;
  double t_, norm_;
};

class Sampler {
public:
  explicit Sampler(const SamplingParams &params) : params_(params), random_(params.seed) {}
  /// Whether every choice is greedyToken's (temperature <= 0 or top-k 1): no
  /// random numbers, the logits themselves not needed on the host.
  bool greedy() const { return params_.temperature <= 0.f || params_.topK == 1; }
  /// Checks the parameters ("--top-p 1.5 is outside (0, 1]" style messages).
  static Status validate(const SamplingParams &params);
  /// Picks a token id from `vocab` logits. NaN logits are never picked.
  int32_t sample(const float *logits, int64_t vocab);

private:
  SamplingParams params_;                                 ///< the rules
  Random random_;                                         ///< random state
  std::vector<std::pair<float, int32_t>> candidates_;     ///< scratch
};

} // namespace moec

#endif // MOEC_RUNTIME_SAMPLER_H
