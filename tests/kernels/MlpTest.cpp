//===- MlpTest.cpp - SwiGLU MLP and routed experts ------------------------===//

#include "Reference.h"
#include "TestSupport.h"

#include <cmath>

namespace moec::cpu::test {
namespace {

/// Owned gate/up/down weights of one SwiGLU MLP.
struct TestMlp {
  TestWeight gate, up, down;
  SwigluWeights view() const { return {gate.view(), up.view(), down.view()}; }
};

TestMlp randomMlp(WeightType type, int64_t D, int64_t I, std::mt19937 &rng) {
  const float a = static_cast<float>(1.5 / std::sqrt(static_cast<double>(D)));
  const float b = static_cast<float>(1.5 / std::sqrt(static_cast<double>(I)));
  return {randomWeight(type, I, D, rng, a), randomWeight(type, I, D, rng, a),
          randomWeight(type, D, I, rng, b)};
}

class Mlp : public PerLevel {};

TEST_P(Mlp, SwigluMatchesReference) {
  std::mt19937 rng(51);
  for (WeightType type : {WeightType::F32, WeightType::BF16, WeightType::F8E4M3})
    for (int64_t T : {1, 3, 6}) {
      const int64_t D = 130, I = 257;
      const TestMlp m = randomMlp(type, D, I, rng);
      const std::vector<float> x = randomVector(T * D, rng, -2.f, 2.f);
      std::vector<float> out(static_cast<size_t>(T * D), NAN);
      swigluMlp(x.data(), T, m.view(), out.data());
      const ref::Result expected = ref::swiglu(x, T, m.view());
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], expected.value[i], tolerance(expected.magnitude[i]))
            << int(type) << " T " << T << " at " << i;
    }
}

TEST_P(Mlp, RoutedExpertsComputeOnlySelected) {
  std::mt19937 rng(52);
  const int64_t E = 6, D = 200, I = 300, T = 7, K = 2;
  std::vector<TestMlp> owned;
  std::vector<SwigluWeights> experts;
  for (int64_t e = 0; e < E; ++e)
    owned.push_back(randomMlp(WeightType::F8E4M3, D, I, rng));
  for (const TestMlp &m : owned)
    experts.push_back(m.view());
  // Expert 5 is never selected: its weights are made invalid (null data) to
  // prove it is not touched. Expert 1 serves most tokens.
  experts[5].gate.data = experts[5].up.data = experts[5].down.data = nullptr;
  const std::vector<int32_t> idx = {1, 0, 1, 2, 3, 1, 1, 4, 0, 1, 2, 3, 4, 1};
  const std::vector<float> w = randomVector(T * K, rng, 0.1f, 2.f);
  const std::vector<float> x = randomVector(T * D, rng);
  std::vector<float> out(static_cast<size_t>(T * D), NAN);
  moeExperts(x.data(), T, experts.data(), E, idx.data(), w.data(), K, out.data());
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<float> xt(x.begin() + t * D, x.begin() + (t + 1) * D);
    std::vector<double> expected(static_cast<size_t>(D), 0.0), magnitude(expected.size(), 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const ref::Result y = ref::swiglu(xt, 1, owned[idx[t * K + k]].view());
      for (int64_t c = 0; c < D; ++c) {
        expected[c] += w[t * K + k] * y.value[c];
        magnitude[c] += w[t * K + k] * y.magnitude[c];
      }
    }
    for (int64_t c = 0; c < D; ++c)
      ASSERT_NEAR(out[t * D + c], expected[c], tolerance(magnitude[c]))
          << "token " << t << " col " << c;
  }
}

MOEC_INSTANTIATE_PER_LEVEL(Mlp);

} // namespace
} // namespace moec::cpu::test
