//===- ElementwiseTest.cpp - embedding, rmsNorm, add, sliceColumns --------===//

#include "Reference.h"
#include "TestSupport.h"

#include <cmath>
#include <thread>

namespace moec::cpu::test {
namespace {

class Elementwise : public PerLevel {};

TEST_P(Elementwise, EmbeddingEveryType) {
  std::mt19937 rng(11);
  for (WeightType type : {WeightType::F32, WeightType::F16, WeightType::BF16,
                          WeightType::F8E4M3})
    for (int64_t D : {1, 3, 17, 130, 257}) {
      const TestWeight table = randomWeight(type, 300, D, rng);
      const std::vector<int32_t> tokens = {0, 299, 7, 7, 150, 129};
      const int64_t T = static_cast<int64_t>(tokens.size());
      std::vector<float> out(static_cast<size_t>(T * D), NAN);
      embedding(table.view(), tokens.data(), T, out.data());
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < D; ++c) {
          const double expected = ref::weightAt(table.view(), tokens[t], c);
          // Decoding is exact except FP8's value * scale, one rounding.
          ASSERT_NEAR(out[t * D + c], expected, 1e-7 * std::fabs(expected))
              << int(type) << " D " << D << " t " << t << " c " << c;
        }
    }
}

TEST_P(Elementwise, RmsNorm) {
  std::mt19937 rng(12);
  // gamma is decoded inside the row loop: every stored type, FP8 across blocks.
  for (WeightType type : {WeightType::F32, WeightType::F16, WeightType::BF16,
                          WeightType::F8E4M3})
    for (int64_t D : {1, 3, 17, 130, 257}) {
      const int64_t T = 3;
      const TestWeight gamma = randomWeight(type, 1, D, rng, 2.f);
      const std::vector<float> x = randomVector(T * D, rng, -3.f, 3.f);
      std::vector<float> out(x.size(), NAN);
      rmsNorm(x.data(), T, D, gamma.view(), 1e-6f, out.data());
      const std::vector<double> expected = ref::rmsNorm(x, T, D, gamma.view(), 1e-6);
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], expected[i], 1e-5 * std::fabs(expected[i]) + 1e-7)
            << "D " << D << " at " << i;
      // In place gives the same numbers.
      std::vector<float> inPlace = x;
      rmsNorm(inPlace.data(), T, D, gamma.view(), 1e-6f, inPlace.data());
      EXPECT_EQ(inPlace, out);
    }
}

TEST_P(Elementwise, RmsNormEpsilonMatters) {
  // A zero row normalises to zero; a tiny row is dominated by eps.
  const std::vector<float> x = {0.f, 0.f, 1e-4f, -1e-4f};
  const TestWeight gamma = f32Weight(1, 2, {1.f, 2.f});
  std::vector<float> out(4);
  rmsNorm(x.data(), 2, 2, gamma.view(), 1e-6f, out.data());
  EXPECT_EQ(out[0], 0.f);
  EXPECT_EQ(out[1], 0.f);
  const double r = 1.0 / std::sqrt(1e-8 + 1e-6);
  EXPECT_NEAR(out[2], 1e-4 * r, 1e-6);
  EXPECT_NEAR(out[3], -2e-4 * r, 1e-6);
}

TEST_P(Elementwise, AddAndAliasing) {
  std::mt19937 rng(13);
  for (int64_t n : {1, 3, 17, 130, 257, 100003}) {
    const std::vector<float> a = randomVector(n, rng), b = randomVector(n, rng);
    std::vector<float> out(static_cast<size_t>(n));
    add(a.data(), b.data(), n, out.data());
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(out[i], a[i] + b[i]) << n << " " << i;
    std::vector<float> acc = a;
    add(acc.data(), b.data(), n, acc.data());
    EXPECT_EQ(acc, out);
  }
}

TEST_P(Elementwise, AddRmsNormIsAddThenRmsNormBitForBit) {
  std::mt19937 rng(21);
  for (WeightType type : {WeightType::F32, WeightType::BF16, WeightType::F16})
    for (int64_t T : {1, 3, 40})
      for (int64_t D : {7, 256, 1000}) {
        std::vector<float> a = randomVector(T * D, rng, -3.f, 3.f),
                           b = randomVector(T * D, rng);
        TestWeight gamma = randomWeight(type, 1, D, rng);
        std::vector<float> sum(a.size()), normed(a.size()), wantSum(a.size()),
            wantNormed(a.size());
        add(a.data(), b.data(), T * D, wantSum.data());
        rmsNorm(wantSum.data(), T, D, gamma.view(), 1e-6f, wantNormed.data());
        addRmsNorm(a.data(), b.data(), T, D, gamma.view(), 1e-6f, sum.data(), normed.data());
        EXPECT_EQ(sum, wantSum) << T << "x" << D;
        EXPECT_EQ(normed, wantNormed) << T << "x" << D;
        // In place: the sum over a, the normalised rows over b.
        std::vector<float> a2 = a, b2 = b;
        addRmsNorm(a2.data(), b2.data(), T, D, gamma.view(), 1e-6f, a2.data(), b2.data());
        EXPECT_EQ(a2, wantSum);
        EXPECT_EQ(b2, wantNormed);
      }
}

TEST_P(Elementwise, SliceColumns) {
  const int64_t T = 3, cols = 10;
  std::vector<float> x(T * cols);
  for (int64_t i = 0; i < T * cols; ++i)
    x[i] = static_cast<float>(i);
  std::vector<float> out(T * 4);
  sliceColumns(x.data(), T, cols, 5, 4, out.data());
  const std::vector<float> expected = {5, 6, 7, 8, 15, 16, 17, 18, 25, 26, 27, 28};
  EXPECT_EQ(out, expected);
}

MOEC_INSTANTIATE_PER_LEVEL(Elementwise);

TEST(Dispatch, LevelsAndThreads) {
  EXPECT_TRUE(setSimdLevelForTesting(SimdLevel::Scalar));
  EXPECT_STREQ(simdLevel(), "scalar");
  if (setSimdLevelForTesting(SimdLevel::Avx2)) {
    EXPECT_STREQ(simdLevel(), "avx2");
  }
  if (setSimdLevelForTesting(SimdLevel::Avx512)) {
    EXPECT_STREQ(simdLevel(), "avx512");
  }
  if (setSimdLevelForTesting(SimdLevel::Avx2Vnni)) {
    EXPECT_STREQ(simdLevel(), "avx2-vnni");
    EXPECT_TRUE(setSimdLevelForTesting(SimdLevel::Avx2)); // AVX-VNNI implies AVX2
  }
  if (setSimdLevelForTesting(SimdLevel::Avx512Vnni)) {
    EXPECT_STREQ(simdLevel(), "avx512-vnni");
    EXPECT_TRUE(setSimdLevelForTesting(SimdLevel::Avx512)); // VNNI implies the rest
  }
  if (setSimdLevelForTesting(SimdLevel::Avx512Amx)) {
    EXPECT_STREQ(simdLevel(), "avx512-amx");
    EXPECT_TRUE(setSimdLevelForTesting(SimdLevel::Avx512Vnni)); // AMX implies VNNI
  }
  setSimdLevelForTesting(detectedSimdLevel());
  const std::string detected = levelName(detectedSimdLevel());
  EXPECT_EQ(simdLevel(), detected == "Avx512Amx"    ? std::string("avx512-amx")
                         : detected == "Avx512Vnni" ? std::string("avx512-vnni")
                         : detected == "Avx512"   ? std::string("avx512")
                         : detected == "Avx2Vnni" ? std::string("avx2-vnni")
                         : detected == "Avx2"     ? std::string("avx2")
                                                  : std::string("scalar"));
  const int saved = numThreads();
  EXPECT_GE(saved, 1);
  setNumThreads(3);
  EXPECT_EQ(numThreads(), 3);
  setNumThreads(0);
  EXPECT_GE(numThreads(), 1);
  setNumThreads(saved);
}

TEST(Dispatch, ThreadCountBelongsToTheCallingThread) {
  // Two callers (two CPU backends) with their own counts do not see each other's.
  const ScopedNumThreads mine(3);
  int other = -1, otherScoped = -1;
  std::thread worker([&] {
    const int fresh = numThreads(); // a new thread starts at the default
    {
      const ScopedNumThreads scoped(5);
      otherScoped = numThreads();
    }
    other = numThreads() == fresh ? 1 : 0;
  });
  worker.join();
  EXPECT_EQ(numThreads(), 3);
  EXPECT_EQ(otherScoped, 5);
  EXPECT_EQ(other, 1); // restored when the scope ended
  {
    const ScopedNumThreads inner(2);
    EXPECT_EQ(numThreads(), 2);
  }
  EXPECT_EQ(numThreads(), 3);
}

} // namespace
} // namespace moec::cpu::test
