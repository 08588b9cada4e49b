//===- Rollout.h - GRPO rollout groups: one prefill, G samples ----*- C++ -*-===//
//
// GRPO needs, for every prompt, a group of G sampled completions with the
// log-probability of each sampled token. rolloutGroup() prefills the prompt once
// (sequence 0 of the KV cache), starts the G samples on sequences 1..G sharing the
// prompt's latent rows (KvCache::share: no copies), samples each one's first token
// from the prompt's last logits with its own seeded sampler, and decodes the G
// together, one batch per step, until each meets a stop token or the length limit.
// With share = false every sample prefills the prompt itself (the reference that the
// shared run must equal, token for token).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_ROLLOUT_H
#define MOEC_RUNTIME_ROLLOUT_H

#include "moec/runtime/Executor.h"
#include "moec/runtime/KvCache.h"
#include "moec/runtime/Sampler.h"

#include <string>
#include <vector>

namespace moec {

struct RolloutOptions {
  int32_t groupSize = 4;           ///< G
  int64_t maxNewTokens = 256;      ///< per sample
  std::vector<int32_t> stopTokens; ///< a sample ends after emitting one (kept)
  SamplingParams sampling;         ///< temperature, top-k, top-p; seed: see sampleSeed
  bool share = true;               ///< share the prompt's KV rows (else: G prefills)
};

struct RolloutSample {
  std::vector<int32_t> tokens;   ///< generated ids (a final stop token included)
  std::vector<float> logprobs;   ///< log_softmax(logits / T)[token] per token (T=1 greedy)
  std::string finishReason;      ///< "stop" or "length"
};

struct RolloutStats {
  int64_t prefillTokens = 0;  ///< prompt tokens run (once per group when shared)
  int64_t decodeTokens = 0;   ///< tokens fed back, all samples
  int64_t decodeSteps = 0;    ///< batched decode forward passes
  double prefillSeconds = 0, decodeSeconds = 0;
};

/// The seed of sample `index` of group `group` under base seed `seed` (splitmix64).
uint64_t sampleSeed(uint64_t seed, uint64_t group, uint64_t index);

/// One group for `prompt` on `cache` (which needs groupSize + 1 sequences of
/// prompt + maxNewTokens rows); `group` picks the seeds.
Status rolloutGroup(Executor &executor, KvCache &cache, const std::vector<int32_t> &prompt,
                    uint64_t group, const RolloutOptions &options,
                    std::vector<RolloutSample> *samples, RolloutStats *stats);

/// GRPO's group-relative advantages: (r_i - mean(r)) / (std(r) + eps), with the
/// population standard deviation (numpy's default).
std::vector<double> groupAdvantages(const std::vector<double> &rewards, double eps = 1e-4);

} // namespace moec

#endif // MOEC_RUNTIME_ROLLOUT_H
