//===- Rollout.cpp - GRPO rollout groups over a shared prompt --------------===//
#include "moec/runtime/Rollout.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cinttypes>
#include <memory>

namespace moec {

namespace {

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

uint64_t sampleSeed(uint64_t seed, uint64_t group, uint64_t index) {
  uint64_t x = seed ^ (group * 0x9e3779b97f4a7c15ull) ^ (index * 0xbf58476d1ce4e5b9ull);
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

Status rolloutGroup(Executor &executor, KvCache &cache, const std::vector<int32_t> &prompt,
                    uint64_t group, const RolloutOptions &options,
                    std::vector<RolloutSample> *samples, RolloutStats *stats) {
  const int32_t G = options.groupSize;
  const int64_t P = int64_t(prompt.size()), vocab = executor.vocabSize();
  if (P == 0)
    return Status::error("the prompt has no tokens");
  if (G < 1 || cache.numSequences() < G + 1)
    return Status::error("a group of %d needs %d KV-cache sequences, the cache has %d", G,
                         G + 1, cache.numSequences());
  if (P + options.maxNewTokens - 1 > cache.capacity())
    return Status::error("the prompt's %" PRId64 " tokens and %" PRId64 " new ones need %" PRId64
                         " rows, the KV cache holds %" PRId64,
                         P, options.maxNewTokens, P + options.maxNewTokens - 1, cache.capacity());
  MOEC_RETURN_IF_ERROR(Sampler::validate(options.sampling));
  RolloutStats local;
  RolloutStats &s = stats ? *stats : local;
  for (int32_t seq = 0; seq <= G; ++seq)
    cache.clear(seq);

  std::vector<float> logits;
  std::vector<int32_t> positions, seqIds;
  std::vector<uint8_t> want;
  // `wanted`: the logits rows read (null: all of them).
  auto forward = [&](const int32_t *tokens, int64_t count, const int32_t *pos,
                     const int32_t *seqs, const uint8_t *wanted = nullptr) {
    logits.resize(size_t(count * vocab));
    TokenBatch batch{tokens, pos, seqs, count};
    batch.wantLogits = wanted;
    return executor.forward(batch, cache, logits.data());
  };
  /// Prefills `prompt` on `seq`; the last position's logits go to `last`.
  std::vector<float> last;
  auto prefill = [&](int32_t seq) -> Status {
    auto start = std::chrono::steady_clock::now();
    for (int64_t offset = 0; offset < P; offset += executor.maxTokens()) {
      int64_t count = std::min(executor.maxTokens(), P - offset);
      positions.resize(size_t(count));
      seqIds.assign(size_t(count), seq);
      for (int64_t k = 0; k < count; ++k)
        positions[size_t(k)] = int32_t(offset + k);
      // The prompt's last row alone is read (the first sample's distribution).
      want.assign(size_t(count), 0);
      if (offset + count == P)
        want.back() = 1;
      MOEC_RETURN_IF_ERROR(forward(prompt.data() + offset, count, positions.data(),
                                   seqIds.data(), want.data()));
    }
    last.assign(logits.end() - vocab, logits.end());
    s.prefillTokens += P;
    s.prefillSeconds += since(start);
    return Status();
  };

  samples->assign(size_t(G), RolloutSample());
  std::vector<std::unique_ptr<Sampler>> samplers;
  for (int32_t i = 0; i < G; ++i) {
    SamplingParams p = options.sampling;
    p.seed = sampleSeed(options.sampling.seed, group, uint64_t(i));
    samplers.push_back(std::make_unique<Sampler>(p));
  }
  std::vector<int32_t> next(static_cast<size_t>(G));
  std::vector<bool> active(size_t(G), true);
  auto take = [&](int32_t i, const float *row) {
    RolloutSample &r = (*samples)[size_t(i)];
    int32_t token = samplers[size_t(i)]->sample(row, vocab);
    r.tokens.push_back(token);
    r.logprobs.push_back(TemperedLogSoftmax(row, vocab, options.sampling.temperature).at(token));
    bool stop = std::find(options.stopTokens.begin(), options.stopTokens.end(), token) !=
                options.stopTokens.end();
    if (stop || int64_t(r.tokens.size()) >= options.maxNewTokens) {
      r.finishReason = stop ? "stop" : "length";
      active[size_t(i)] = false;
    }
    next[size_t(i)] = token;
  };

  // The first token of every sample comes from the prompt's last logits.
  if (options.share) {
    MOEC_RETURN_IF_ERROR(prefill(0));
    for (int32_t i = 0; i < G; ++i) {
      MOEC_RETURN_IF_ERROR(cache.share(i + 1, 0, P));
      take(i, last.data());
    }
  } else {
    for (int32_t i = 0; i < G; ++i) {
      MOEC_RETURN_IF_ERROR(prefill(i + 1));
      take(i, last.data());
    }
  }
  // Then the active samples decode together, one token each per step.
  std::vector<int32_t> tokens, rowsOf;
  auto decodeStart = std::chrono::steady_clock::now();
  for (int64_t step = 1;; ++step) {
    tokens.clear();
    positions.clear();
    seqIds.clear();
    rowsOf.clear();
    for (int32_t i = 0; i < G; ++i)
      if (active[size_t(i)]) {
        tokens.push_back(next[size_t(i)]);
        positions.push_back(int32_t(P + step - 1));
        seqIds.push_back(i + 1);
        rowsOf.push_back(i);
      }
    if (tokens.empty())
      break;
    MOEC_RETURN_IF_ERROR(forward(tokens.data(), int64_t(tokens.size()), positions.data(),
                                 seqIds.data()));
    s.decodeTokens += int64_t(tokens.size());
    ++s.decodeSteps;
    for (size_t r = 0; r < rowsOf.size(); ++r)
      take(rowsOf[r], logits.data() + int64_t(r) * vocab);
  }
  s.decodeSeconds += since(decodeStart);
  for (int32_t seq = 0; seq <= G; ++seq)
    cache.clear(seq);
  return Status();
}

std::vector<double> groupAdvantages(const std::vector<double> &rewards, double eps) {
  std::vector<double> out(rewards.size(), 0.0);
  if (rewards.empty())
    return out;
  double mean = 0;
  for (double r : rewards)
    mean += r;
  mean /= double(rewards.size());
  double var = 0;
  for (double r : rewards)
    var += (r - mean) * (r - mean);
  double sd = std::sqrt(var / double(rewards.size()));
  for (size_t i = 0; i < rewards.size(); ++i)
    out[i] = (rewards[i] - mean) / (sd + eps);
  return out;
}

} // namespace moec
