//===- Sampler.cpp - Picks the next token from logits ---------------------===//
#include "moec/runtime/Sampler.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstddef>

namespace moec {

Random::Random(uint64_t seed) {
  // splitmix64 spreads any seed (0 included) over the four state words.
  for (uint64_t &word : state_) {
    uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    word = z ^ (z >> 31);
  }
}

uint64_t Random::next() {
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  uint64_t result = rotl(state_[1] * 5, 7) * 9;
  uint64_t t = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= t;
  state_[3] = rotl(state_[3], 45);
  return result;
}

Status Sampler::validate(const SamplingParams &params) {
  if (!std::isfinite(params.temperature))
    return Status::error("temperature %g is not finite", double(params.temperature));
  if (!(params.topP > 0.f && params.topP <= 1.f))
    return Status::error("top-p %g is outside (0, 1]", double(params.topP));
  return Status();
}

TemperedLogSoftmax::TemperedLogSoftmax(const float *logits, int64_t vocab, float temperature)
    : logits_(logits), t_(temperature > 0 ? temperature : 1.0) {
  double maxLogit = -INFINITY;
  for (int64_t v = 0; v < vocab; ++v)
    maxLogit = std::max(maxLogit, double(logits[v]) / t_);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v)
    sum += std::exp(double(logits[v]) / t_ - maxLogit);
  norm_ = maxLogit + std::log(sum);
}

int32_t Sampler::sample(const float *logits, int64_t vocab) {
  // Ordering by (logit descending, id ascending) is a strict total order, so every
  // sort below has one result whatever the library's algorithm. NaN ranks last.
  auto before = [](const std::pair<float, int32_t> &a, const std::pair<float, int32_t> &b) {
    bool aNan = std::isnan(a.first), bNan = std::isnan(b.first);
    if (aNan != bNan)
      return bNan;
    if (!aNan && a.first != b.first)
      return a.first > b.first;
    return a.second < b.second;
  };
  if (greedy())
    return greedyToken(logits, vocab);
  if (params_.topK <= 0 && params_.topP >= 1.f) {
    // No filter: the softmax in id order, no sort (a sort costs milliseconds at
    // DeepSeek's 129,280-token vocabulary). NaN logits have probability 0.
    float top = -INFINITY;
    for (int64_t i = 0; i < vocab; ++i)
      if (logits[i] > top)
        top = logits[i];
    if (!(top > -INFINITY)) // every logit NaN or -inf: the first token, as greedy does
      return 0;
    double total = 0;
    for (int64_t i = 0; i < vocab; ++i)
      if (!std::isnan(logits[i]))
        total += std::exp((double(logits[i]) - top) / params_.temperature);
    double target = random_.uniform() * total;
    int32_t last = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      if (std::isnan(logits[i]))
        continue;
      target -= std::exp((double(logits[i]) - top) / params_.temperature);
      last = int32_t(i);
      if (target < 0)
        return last;
    }
    return last; // rounding left a sliver past the last one
  }
  candidates_.resize(size_t(vocab));
  for (int64_t i = 0; i < vocab; ++i)
    candidates_[size_t(i)] = {logits[i], int32_t(i)};
  size_t keep = size_t(vocab);
  double wholeTotal = -1; // top-p alone: the softmax's total over the whole vocabulary
  if (params_.topK > 0 && params_.topK < vocab) {
    keep = size_t(params_.topK);
    std::partial_sort(candidates_.begin(), candidates_.begin() + std::ptrdiff_t(keep),
                      candidates_.end(), before);
  } else {
    // Top-p alone: sort only as far as the nucleus reaches. The first n of a partial
    // sort are the first n of a full one (the order is total), so the result is the
    // same; the nucleus is usually a few dozen tokens of a vocabulary of 100,000.
    double top = -INFINITY, total = 0;
    for (int64_t i = 0; i < vocab; ++i)
      top = std::max(top, double(logits[i]));
    for (int64_t i = 0; i < vocab; ++i)
      if (!std::isnan(logits[i]))
        total += std::exp((double(logits[i]) - top) / params_.temperature);
    double reach = double(params_.topP) * total;
    size_t sorted = std::min<size_t>(64, size_t(vocab));
    for (;;) {
      std::partial_sort(candidates_.begin(), candidates_.begin() + std::ptrdiff_t(sorted),
                        candidates_.end(), before);
      double cumulative = 0;
      for (size_t i = 0; i < sorted && !std::isnan(candidates_[i].first); ++i)
        cumulative += std::exp((double(candidates_[i].first) - top) / params_.temperature);
      if (cumulative >= reach || sorted == size_t(vocab))
        break;
      sorted = std::min(sorted * 4, size_t(vocab));
    }
    keep = sorted;
    wholeTotal = total;
  }
  while (keep > 1 && std::isnan(candidates_[keep - 1].first))
    --keep;
  // Softmax of logits / temperature over the kept candidates, in double.
  std::vector<double> probs(keep);
  double top = double(candidates_[0].first), total = 0;
  for (size_t i = 0; i < keep; ++i)
    total += probs[i] = std::exp((double(candidates_[i].first) - top) / params_.temperature);
  if (params_.topP < 1.f) {
    double reach = double(params_.topP) * (wholeTotal >= 0 ? wholeTotal : total);
    double cumulative = 0;
    size_t cut = 0;
    while (cut < keep) {
      cumulative += probs[cut++];
      if (cumulative >= reach)
        break;
    }
    keep = cut;
    total = cumulative;
  }
  double target = random_.uniform() * total;
  for (size_t i = 0; i < keep; ++i) {
    target -= probs[i];
    if (target < 0)
      return candidates_[i].second;
  }
  return candidates_[keep - 1].second; // rounding left a sliver past the last one
}

} // namespace moec
