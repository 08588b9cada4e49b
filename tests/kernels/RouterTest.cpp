//===- RouterTest.cpp - MoE router: score functions, groups, weights ------===//

#include "Reference.h"
#include "TestSupport.h"

#include <cmath>

namespace moec::cpu::test {
namespace {

class Router : public PerLevel {};

/// Random tokens through a random gate; compares with the reference router fed
/// the reference logits. Random data makes ties (and near ties) vanishingly rare.
void checkRandom(const RouterParams &p, bool withBias, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t T = 9, D = 70;
  const TestWeight gate = randomWeight(WeightType::F32, p.experts, D, rng, 0.3f);
  const std::vector<float> x = randomVector(T * D, rng);
  const std::vector<float> bias = randomVector(p.experts, rng, -0.2f, 0.2f);
  std::vector<int32_t> idx(static_cast<size_t>(T * p.topK));
  std::vector<float> w(idx.size());
  router(x.data(), T, gate.view(), withBias ? bias.data() : nullptr, p, idx.data(), w.data());
  const ref::Result logits = ref::linear(x, T, gate.view());
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> l(logits.value.begin() + t * p.experts,
                          logits.value.begin() + (t + 1) * p.experts);
    std::vector<int32_t> eIdx;
    std::vector<double> eW;
    ref::route(l, withBias ? bias.data() : nullptr, p, eIdx, eW);
    for (int64_t k = 0; k < p.topK; ++k) {
      ASSERT_EQ(idx[t * p.topK + k], eIdx[k]) << "token " << t << " slot " << k;
      ASSERT_NEAR(w[t * p.topK + k], eW[k], 2e-6 * std::fabs(eW[k]) + 1e-7);
    }
  }
}

TEST_P(Router, SoftmaxGreedyV2Lite) {
  RouterParams p;
  p.experts = 64;
  p.topK = 6;
  p.score = ScoreFunc::Softmax;
  p.routedScalingFactor = 1.f;
  checkRandom(p, false, 41);
}

TEST_P(Router, SoftmaxGroupMaxV2) {
  RouterParams p;
  p.experts = 32;
  p.topK = 6;
  p.groups = 8;
  p.topkGroups = 3;
  p.score = ScoreFunc::Softmax;
  p.groupScore = GroupScore::Max;
  p.routedScalingFactor = 16.f;
  checkRandom(p, false, 42);
}

TEST_P(Router, SigmoidTop2SumNormalisedV3) {
  RouterParams p;
  p.experts = 64;
  p.topK = 8;
  p.groups = 8;
  p.topkGroups = 4;
  p.score = ScoreFunc::Sigmoid;
  p.groupScore = GroupScore::Top2Sum;
  p.normTopkProb = true;
  p.routedScalingFactor = 2.5f;
  checkRandom(p, true, 43);
}

/// A gate that is the identity, so the logits are the input itself.
TestWeight identityGate(int64_t E) {
  std::vector<float> v(static_cast<size_t>(E * E), 0.f);
  for (int64_t e = 0; e < E; ++e)
    v[e * E + e] = 1.f;
  return f32Weight(E, E, v);
}

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

TEST_P(Router, SelectionUsesBiasWeightsDoNot) {
  const int64_t E = 4;
  const TestWeight gate = identityGate(E);
  // Unbiased scores order experts 0 > 1 > 2 > 3; the bias reverses the order.
  const std::vector<float> logits = {2.f, 1.f, 0.f, -1.f};
  const std::vector<float> bias = {0.f, 0.f, 0.5f, 1.f};
  RouterParams p;
  p.experts = E;
  p.topK = 2;
  p.score = ScoreFunc::Sigmoid;
  p.routedScalingFactor = 2.5f;
  int32_t idx[2];
  float w[2];
  router(logits.data(), 1, gate.view(), bias.data(), p, idx, w);
  EXPECT_EQ(idx[0], 3); // sel = 0.269 + 1.0
  EXPECT_EQ(idx[1], 2); // sel = 0.5 + 0.5
  EXPECT_FLOAT_EQ(w[0], sigmoid(-1.f) * 2.5f);
  EXPECT_FLOAT_EQ(w[1], sigmoid(0.f) * 2.5f);
  // Renormalised: over the unbiased scores, HF's 1e-20 being negligible here.
  p.normTopkProb = true;
  router(logits.data(), 1, gate.view(), bias.data(), p, idx, w);
  const float sum = sigmoid(-1.f) + sigmoid(0.f);
  EXPECT_FLOAT_EQ(w[0], sigmoid(-1.f) / sum * 2.5f);
  EXPECT_FLOAT_EQ(w[1], sigmoid(0.f) / sum * 2.5f);
}

TEST_P(Router, DroppedGroupsAreMinusInfinityNotZero) {
  // 4 groups of 2 experts. All biased scores are negative. Groups 2 and 3 win
  // (top-2 sums -2.2 and -2.6 against -3.x); K = 3 needs one expert beyond group
  // 2's two: it must come from group 3 (sel about -1.3), not from a dropped group,
  // which a 0 mask would make look best.
  const int64_t E = 8;
  const TestWeight gate = identityGate(E);
  const std::vector<float> logits(E, 0.f); // every sigmoid score is 0.5
  const std::vector<float> bias = {-2.1f, -2.2f, -2.0f, -2.1f,
                                   -1.6f, -1.6f, -1.8f, -1.8f};
  RouterParams p;
  p.experts = E;
  p.topK = 3;
  p.groups = 4;
  p.topkGroups = 2;
  p.score = ScoreFunc::Sigmoid;
  p.groupScore = GroupScore::Top2Sum;
  int32_t idx[3];
  float w[3];
  router(logits.data(), 1, gate.view(), bias.data(), p, idx, w);
  EXPECT_EQ(idx[0], 4);
  EXPECT_EQ(idx[1], 5); // tie with 4 broken toward the lower index
  EXPECT_EQ(idx[2], 6);
  for (float v : w)
    EXPECT_FLOAT_EQ(v, 0.5f);
}

TEST_P(Router, GroupMaxAndTop2SumDiffer) {
  // Group 0 = {0.9, 0.01}, group 1 = {0.6, 0.5} (as sigmoid scores): max keeps
  // group 0, top-2 sum keeps group 1.
  const int64_t E = 4;
  const TestWeight gate = identityGate(E);
  auto logit = [](float s) { return std::log(s / (1.f - s)); };
  const std::vector<float> logits = {logit(0.9f), logit(0.01f), logit(0.6f), logit(0.5f)};
  RouterParams p;
  p.experts = E;
  p.topK = 1;
  p.groups = 2;
  p.topkGroups = 1;
  p.score = ScoreFunc::Sigmoid;
  int32_t idx;
  float w;
  p.groupScore = GroupScore::Max;
  router(logits.data(), 1, gate.view(), nullptr, p, &idx, &w);
  EXPECT_EQ(idx, 0);
  p.groupScore = GroupScore::Top2Sum;
  router(logits.data(), 1, gate.view(), nullptr, p, &idx, &w);
  EXPECT_EQ(idx, 2);
  EXPECT_NEAR(w, 0.6f, 1e-6);
}

TEST_P(Router, SoftmaxWeightsSumToScaledMass) {
  // All experts selected: softmax weights sum to 1 (times the scaling factor),
  // with or without renormalisation.
  const int64_t E = 5;
  const TestWeight gate = identityGate(E);
  const std::vector<float> logits = {0.3f, -1.f, 2.f, 0.f, 1.f};
  RouterParams p;
  p.experts = E;
  p.topK = E;
  p.routedScalingFactor = 16.f;
  std::vector<int32_t> idx(E);
  std::vector<float> w(E);
  router(logits.data(), 1, gate.view(), nullptr, p, idx.data(), w.data());
  EXPECT_EQ(idx, (std::vector<int32_t>{2, 4, 0, 3, 1}));
  float sum = 0;
  for (float v : w)
    sum += v;
  EXPECT_NEAR(sum, 16.f, 1e-5);
}

MOEC_INSTANTIATE_PER_LEVEL(Router);

} // namespace
} // namespace moec::cpu::test
