//===- Router.cpp - MoE gate: scores, group-limited top-k, weights --------===//
//
// Spec section 5, step for step. Selection uses the biased scores, the weights
// the unbiased ones; dropped groups are masked with -inf (a 0 would beat the
// negative biased scores of kept experts). Ties go to the lower expert index.
// All temporaries live in per-thread scratch: nothing is allocated per call.
//
//===----------------------------------------------------------------------===//

#include "KernelTable.h"
#include "Scratch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace moec::cpu {
namespace {

using detail::Scratch;
using detail::ScratchLayout;
using detail::ScratchSlot;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

/// Index of the largest value not yet taken, the lowest index on ties.
int64_t argmaxFree(const float *v, const char *taken, int64_t n) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i)
    if (!taken[i] && (best < 0 || v[i] > v[best]))
      best = i;
  return best;
}

/// Masks with -inf every expert outside the topkGroups best groups. groupScore
/// and kept are scratch of p.groups entries.
void limitGroups(float *sel, const RouterParams &p, float *groupScore, char *kept) {
  const int64_t perGroup = p.experts / p.groups;
  for (int64_t g = 0; g < p.groups; ++g) {
    const float *s = sel + g * perGroup;
    float first = kNegInf, second = kNegInf;
    for (int64_t e = 0; e < perGroup; ++e) {
      if (s[e] > first) {
        second = first;
        first = s[e];
      } else if (s[e] > second) {
        second = s[e];
      }
    }
    // A one-expert group has no second value: its score is its only one.
    groupScore[g] = p.groupScore == GroupScore::Max || perGroup < 2 ? first : first + second;
  }
  std::memset(kept, 0, static_cast<size_t>(p.groups));
  for (int64_t i = 0; i < p.topkGroups && i < p.groups; ++i)
    kept[argmaxFree(groupScore, kept, p.groups)] = 1;
  for (int64_t g = 0; g < p.groups; ++g)
    if (!kept[g])
      for (int64_t e = 0; e < perGroup; ++e)
        sel[g * perGroup + e] = kNegInf;
}

void routeToken(const float *logits, const float *bias, const RouterParams &p,
                int32_t *idx, float *weights) {
  const int64_t E = p.experts, G = p.groups > 1 ? p.groups : 0;
  ScratchLayout layout;
  layout.add<float>(E).add<float>(E).add<float>(G).add<char>(E).add<char>(G);
  const Scratch scratch(ScratchSlot::RouterToken, layout.bytes());
  char *base = scratch.as<char>();
  float *score = ScratchLayout::take<float>(base, E);
  float *sel = ScratchLayout::take<float>(base, E);
  float *groupScore = ScratchLayout::take<float>(base, G);
  char *taken = ScratchLayout::take<char>(base, E);
  char *kept = ScratchLayout::take<char>(base, G);
  if (p.score == ScoreFunc::Softmax) {
    float m = kNegInf;
    for (int64_t e = 0; e < E; ++e)
      m = std::max(m, logits[e]);
    float sum = 0.f;
    for (int64_t e = 0; e < E; ++e) {
      score[e] = std::exp(logits[e] - m);
      sum += score[e];
    }
    for (int64_t e = 0; e < E; ++e)
      score[e] /= sum;
  } else {
    for (int64_t e = 0; e < E; ++e)
      score[e] = 1.f / (1.f + std::exp(-logits[e]));
  }
  for (int64_t e = 0; e < E; ++e)
    sel[e] = bias ? score[e] + bias[e] : score[e];
  if (p.groups > 1)
    limitGroups(sel, p, groupScore, kept);
  std::memset(taken, 0, static_cast<size_t>(E));
  float sum = 0.f;
  for (int64_t j = 0; j < p.topK; ++j) {
    const int64_t e = argmaxFree(sel, taken, E);
    taken[e] = 1;
    idx[j] = static_cast<int32_t>(e);
    weights[j] = score[e];
    sum += score[e];
  }
  // The spec's order: renormalise (HF's epsilon included), then always scale.
  for (int64_t j = 0; j < p.topK; ++j) {
    const float w = p.normTopkProb ? weights[j] / (sum + 1e-20f) : weights[j];
    weights[j] = w * p.routedScalingFactor;
  }
}

} // namespace

void router(const float *x, int64_t T, const Weight &gate, const float *bias,
            const RouterParams &params, int32_t *idx, float *weights) {
  if (T <= 0)
    return;
  const Scratch logits(ScratchSlot::RouterLogits,
                       static_cast<size_t>(T * params.experts) * sizeof(float));
  linear(x, T, gate, logits.as<float>());
#pragma omp parallel for num_threads(detail::threadsFor(T * params.experts * 64))
  for (int64_t t = 0; t < T; ++t)
    routeToken(logits.as<float>() + t * params.experts, bias, params, idx + t * params.topK,
               weights + t * params.topK);
}

} // namespace moec::cpu
