//===- MlpTest.cpp - SwiGLU MLP and routed experts ------------------------===//

#include "Reference.h"
#include "TestSupport.h"

#include <algorithm>
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
  for (WeightType type : {WeightType::F32, WeightType::BF16, WeightType::F8E4M3,
                          WeightType::I8})
    for (int64_t T : {1, 3, 6}) {
      const int64_t D = 130, I = 257;
      const TestMlp m = randomMlp(type, D, I, rng);
      const std::vector<float> x = randomVector(T * D, rng, -2.f, 2.f);
      std::vector<float> out(static_cast<size_t>(T * D), NAN);
      swigluMlp(x.data(), T, m.view(), out.data());
      const ref::Result expected = ref::swiglu(x, T, m.view());
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], expected.value[i], bound(expected, i))
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
    std::vector<double> expected(static_cast<size_t>(D), 0.0), magnitude(expected.size(), 0.0),
        slack(expected.size(), 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const ref::Result y = ref::swiglu(xt, 1, owned[idx[t * K + k]].view());
      for (int64_t c = 0; c < D; ++c) {
        expected[c] += w[t * K + k] * y.value[c];
        magnitude[c] += w[t * K + k] * y.magnitude[c];
        slack[c] += y.slack.empty() ? 0.0 : std::fabs(w[t * K + k]) * y.slack[c];
      }
    }
    for (int64_t c = 0; c < D; ++c)
      ASSERT_NEAR(out[t * D + c], expected[c], tolerance(magnitude[c]) + slack[c])
          << "token " << t << " col " << c;
  }
}

/// moeExperts against the reference: out[t] = sum_k w[t,k] * Expert_idx[t,k](x[t]).
void checkExperts(const std::vector<TestMlp> &owned, int64_t T, int64_t K,
                  const std::vector<int32_t> &idx, std::mt19937 &rng, const char *what) {
  const int64_t E = static_cast<int64_t>(owned.size()), D = owned[0].gate.cols;
  std::vector<SwigluWeights> experts;
  for (const TestMlp &m : owned)
    experts.push_back(m.view());
  const std::vector<float> w = randomVector(T * K, rng, 0.1f, 2.f);
  const std::vector<float> x = randomVector(T * D, rng);
  std::vector<float> out(static_cast<size_t>(T * D), NAN);
  moeExperts(x.data(), T, experts.data(), E, idx.data(), w.data(), K, out.data());
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<float> xt(x.begin() + t * D, x.begin() + (t + 1) * D);
    std::vector<double> expected(static_cast<size_t>(D), 0.0), magnitude(expected.size(), 0.0),
        slack(expected.size(), 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const int32_t e = idx[t * K + k];
      if (e < 0 || e >= E)
        continue;
      const ref::Result y = ref::swiglu(xt, 1, owned[e].view());
      for (int64_t c = 0; c < D; ++c) {
        expected[c] += w[t * K + k] * y.value[c];
        magnitude[c] += std::fabs(w[t * K + k]) * y.magnitude[c];
        slack[c] += y.slack.empty() ? 0.0 : std::fabs(w[t * K + k]) * y.slack[c];
      }
    }
    for (int64_t c = 0; c < D; ++c)
      ASSERT_NEAR(out[t * D + c], expected[c], tolerance(magnitude[c]) + slack[c])
          << what << ": token " << t << " col " << c;
  }
}

/// The grouped decode path: all selected experts in one parallel region, with
/// one and several threads, T = 1 and T > 1, K up to 8, experts shared by tokens.
TEST_P(Mlp, RoutedExpertsGroupedDecode) {
  std::mt19937 rng(53);
  const int64_t E = 12, D = 136, I = 200;
  std::vector<TestMlp> owned;
  for (int64_t e = 0; e < E; ++e)
    owned.push_back(randomMlp(e % 2 ? WeightType::BF16 : WeightType::F8E4M3, D, I, rng));
  for (int threads : {1, 2, 3}) {
    const ScopedNumThreads scoped(threads);
    // T = 1, K = 8 distinct experts, not in index order.
    checkExperts(owned, 1, 8, {7, 2, 11, 0, 5, 9, 3, 10}, rng, "T1 K8");
    // T = 1, K = 6, one entry out of range.
    checkExperts(owned, 1, 6, {4, 1, -1, 8, 6, 2}, rng, "T1 K6 invalid");
    // T = 4, K = 8: experts repeated across tokens (expert 3 serves every token;
    // 12 is out of range).
    checkExperts(owned, 4, 8,
                 {3, 0, 1, 2, 4, 5, 6, 7,   3, 8, 9, 10, 11, 0, 1, 2,
                  5, 3, 7, 9, 11, 1, 12, 4, 3, 2, 4, 6, 8, 10, 0, 7},
                 rng, "T4 K8 repeated");
    // T = 2, K = 2, both tokens on the same experts.
    checkExperts(owned, 2, 2, {6, 9, 9, 6}, rng, "T2 K2 same");
  }
}

/// Int8 experts (W8A8: inputs and hidden activations quantized once per call)
/// beside bf16 ones in the same parallel region, at decode and prefill sizes.
TEST_P(Mlp, RoutedExpertsInt8) {
  std::mt19937 rng(57);
  const int64_t E = 6, D = 264, I = 200;
  std::vector<TestMlp> owned;
  for (int64_t e = 0; e < E; ++e)
    owned.push_back(randomMlp(e % 3 ? WeightType::I8 : WeightType::BF16, D, I, rng));
  for (int threads : {1, 2}) {
    const ScopedNumThreads scoped(threads);
    checkExperts(owned, 1, 4, {1, 0, 4, 2}, rng, "int8 T1 K4");
    std::vector<int32_t> idx(static_cast<size_t>(20 * 3));
    for (size_t i = 0; i < idx.size(); ++i)
      idx[i] = static_cast<int32_t>((i * 7 + i / 3) % E);
    checkExperts(owned, 20, 3, idx, rng, "int8 T20 K3");
  }
}

/// More (token, expert) pairs than one batch holds (64): several parallel
/// regions, and an expert with more rows than a batch runs alone.
TEST_P(Mlp, RoutedExpertsManyTokensInBatches) {
  std::mt19937 rng(54);
  const int64_t E = 8, D = 72, I = 96, T = 40, K = 4;
  std::vector<TestMlp> owned;
  for (int64_t e = 0; e < E; ++e)
    owned.push_back(randomMlp(WeightType::BF16, D, I, rng));
  std::vector<int32_t> idx(static_cast<size_t>(T * K));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) // expert 2 serves all 40 tokens, the rest rotate
      idx[t * K + k] = static_cast<int32_t>(k == 0 ? 2 : (t + 3 * k) % E);
  for (int threads : {1, 2}) {
    const ScopedNumThreads scoped(threads);
    checkExperts(owned, T, K, idx, rng, "T40 K4");
  }
  // 70 pairs on expert 1 (a token may name it twice): a batch of one expert over
  // the 64-pair limit, then a batch with expert 7's 10 pairs.
  std::vector<int32_t> two(static_cast<size_t>(T * 2));
  for (int64_t i = 0; i < T * 2; ++i)
    two[i] = i < 70 ? 1 : 7;
  checkExperts(owned, T, 2, two, rng, "T40 K2 two experts");
}

/// swigluMlp with one and several threads, at decode and past the decode path.
TEST_P(Mlp, SwigluThreadsAndPanels) {
  std::mt19937 rng(55);
  const int64_t D = 264, I = 520;
  const TestMlp m = randomMlp(WeightType::BF16, D, I, rng);
  for (int threads : {1, 2})
    for (int64_t T : {1, 2, 9}) {
      const ScopedNumThreads scoped(threads);
      const std::vector<float> x = randomVector(T * D, rng, -2.f, 2.f);
      std::vector<float> out(static_cast<size_t>(T * D), NAN);
      swigluMlp(x.data(), T, m.view(), out.data());
      const ref::Result expected = ref::swiglu(x, T, m.view());
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], expected.value[i], bound(expected, i))
            << "threads " << threads << " T " << T << " at " << i;
    }
}

/// gate and up [I, D] stacked into one [2I, D] weight interleaved by units of R
/// rows (SwigluWeights::gateUp): unit u holds gate rows [uR, uR + n) then up rows
/// [uR, uR + n), n = min(R, I - uR). FP8 scale rows move with their blocks (R and
/// I whole blocks).
TestWeight interleaveGateUp(const TestWeight &gate, const TestWeight &up, int64_t R) {
  TestWeight w;
  w.type = gate.type;
  w.rows = 2 * gate.rows;
  w.cols = gate.cols;
  const size_t rowBytes = gate.bytes.size() / static_cast<size_t>(gate.rows);
  const int64_t B = kFp8BlockSize, gridCols = (gate.cols + B - 1) / B;
  for (int64_t r0 = 0; r0 < gate.rows; r0 += R) {
    const int64_t n = std::min(R, gate.rows - r0);
    for (const TestWeight *part : {&gate, &up}) {
      w.bytes.insert(w.bytes.end(), part->bytes.begin() + r0 * rowBytes,
                     part->bytes.begin() + (r0 + n) * rowBytes);
      if (w.type == WeightType::F8E4M3)
        w.scales.insert(w.scales.end(), part->scales.begin() + (r0 / B) * gridCols,
                        part->scales.begin() + ((r0 + n) / B) * gridCols);
    }
  }
  return w;
}

/// The fused form (gate and up in one interleaved weight, silu(g) * u as the
/// epilogue of one product) against the unfused MLP on the same weights: the
/// same products of the same rows, so the same floats, for every weight type,
/// decode and prefill token counts, a partial last unit, and 1 or 2 threads.
TEST_P(Mlp, FusedGateUpIsTheUnfusedMlpBitForBit) {
  std::mt19937 rng(56);
  struct Shape {
    WeightType type;
    int64_t D, I, R;
  };
  for (const Shape &shape : {Shape{WeightType::F32, 130, 257, 64},
                             Shape{WeightType::BF16, 200, 300, 128},
                             Shape{WeightType::F16, 72, 40, 128},
                             Shape{WeightType::F8E4M3, 136, 384, 128},
                             Shape{WeightType::F8E4M3, 256, 256, 256}}) {
    const TestMlp m = randomMlp(shape.type, shape.D, shape.I, rng);
    const TestWeight gateUp = interleaveGateUp(m.gate, m.up, shape.R);
    SwigluWeights fused;
    fused.gateUp = gateUp.view();
    fused.gateUpRows = shape.R;
    fused.down = m.down.view();
    ASSERT_TRUE(fused.fused());
    ASSERT_EQ(fused.inner(), shape.I);
    for (int threads : {1, 2})
      for (int64_t T : {1, 3, 9}) {
        const ScopedNumThreads scoped(threads);
        const std::vector<float> x = randomVector(T * shape.D, rng, -2.f, 2.f);
        std::vector<float> want(static_cast<size_t>(T * shape.D), NAN), got = want;
        swigluMlp(x.data(), T, m.view(), want.data());
        swigluMlp(x.data(), T, fused, got.data());
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(got[i], want[i]) << int(shape.type) << " R " << shape.R << " threads "
                                     << threads << " T " << T << " at " << i;
      }
  }
}

/// Routed experts with fused gate_up weights against the same experts unfused.
TEST_P(Mlp, FusedGateUpExpertsAreTheUnfusedExperts) {
  std::mt19937 rng(57);
  const int64_t E = 5, D = 136, I = 256, R = 128;
  std::vector<TestMlp> owned;
  std::vector<TestWeight> gateUps;
  for (int64_t e = 0; e < E; ++e) {
    owned.push_back(randomMlp(e % 2 ? WeightType::BF16 : WeightType::F8E4M3, D, I, rng));
    gateUps.push_back(interleaveGateUp(owned.back().gate, owned.back().up, R));
  }
  std::vector<SwigluWeights> plain, fused;
  for (int64_t e = 0; e < E; ++e) {
    plain.push_back(owned[e].view());
    SwigluWeights f;
    f.gateUp = gateUps[e].view();
    f.gateUpRows = R;
    f.down = owned[e].down.view();
    fused.push_back(f);
  }
  for (int threads : {1, 2})
    for (int64_t T : {1, 6}) {
      const ScopedNumThreads scoped(threads);
      const int64_t K = 3;
      std::vector<int32_t> idx(static_cast<size_t>(T * K));
      for (int64_t i = 0; i < T * K; ++i)
        idx[i] = static_cast<int32_t>((i * 2 + i / K) % E);
      const std::vector<float> w = randomVector(T * K, rng, 0.1f, 2.f);
      const std::vector<float> x = randomVector(T * D, rng);
      std::vector<float> want(static_cast<size_t>(T * D), NAN), got = want;
      moeExperts(x.data(), T, plain.data(), E, idx.data(), w.data(), K, want.data());
      moeExperts(x.data(), T, fused.data(), E, idx.data(), w.data(), K, got.data());
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i], want[i]) << "threads " << threads << " T " << T << " at " << i;
    }
}

MOEC_INSTANTIATE_PER_LEVEL(Mlp);

} // namespace
} // namespace moec::cpu::test
