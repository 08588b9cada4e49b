//===- RopeTest.cpp - RoPE frequencies (YaRN) and both pair layouts -------===//

#include "Reference.h"
#include "TestSupport.h"

#include <cmath>

namespace moec::cpu::test {
namespace {

RopeParams v3Params() {
  RopeParams p;
  p.dim = 64;
  p.theta = 10000.f;
  p.yarn = true;
  p.factor = 40.f;
  p.originalMaxPositions = 4096;
  p.betaFast = 32.f;
  p.betaSlow = 1.f;
  return p;
}

TEST(RopeFrequencies, PlainMatchesThetaPowers) {
  RopeParams p;
  p.dim = 8;
  p.theta = 10000.f;
  float f[4];
  ropeFrequencies(p, f);
  EXPECT_FLOAT_EQ(f[0], 1.f);
  EXPECT_FLOAT_EQ(f[1], 0.1f);  // 10000^(-2/8)
  EXPECT_FLOAT_EQ(f[2], 0.01f); // 10000^(-4/8)
  EXPECT_FLOAT_EQ(f[3], 0.001f);
}

TEST(RopeFrequencies, YarnV3HandComputed) {
  // d = 64, theta = 1e4, factor 40, orig 4096, beta_fast 32, beta_slow 1:
  // cd(32) = 64 ln(4096 / (64 pi)) / (2 ln 1e4) = 10.47 -> low = 10,
  // cd(1) = 64 ln(4096 / (2 pi)) / (2 ln 1e4) = 22.51 -> high = 23.
  // ramp_j = (j - 10) / 13 clamped; f_j = 10^(-j/8).
  float f[32];
  ropeFrequencies(v3Params(), f);
  EXPECT_FLOAT_EQ(f[0], 1.f);                      // ramp 0: unchanged
  EXPECT_FLOAT_EQ(f[10], 0.0562341325f);           // 10^-1.25, ramp 0
  EXPECT_FLOAT_EQ(f[16], 0.0055f);                 // 0.01 * 7/13 + 0.00025 * 6/13
  EXPECT_FLOAT_EQ(f[11], 0.0421696503f * (12.f / 13 + 1.f / (13 * 40))); // ramp 1/13
  EXPECT_FLOAT_EQ(f[23], 1.33352143e-3f / 40);     // 10^-2.875 / 40, ramp 1
  EXPECT_FLOAT_EQ(f[31], 1.33352143e-4f / 40);     // 10^-3.875 / 40
  // Against the independent double reference everywhere.
  const std::vector<double> expected = ref::ropeFrequencies(v3Params());
  for (int j = 0; j < 32; ++j)
    EXPECT_NEAR(f[j], expected[j], 2e-7 * expected[j]) << j;
}

TEST(RopeFrequencies, YarnOtherConfigMatchesReference) {
  RopeParams p = v3Params();
  p.theta = 50000.f;
  p.dim = 32;
  p.factor = 4.f;
  p.originalMaxPositions = 2048;
  float f[16];
  ropeFrequencies(p, f);
  const std::vector<double> expected = ref::ropeFrequencies(p);
  for (int j = 0; j < 16; ++j)
    EXPECT_NEAR(f[j], expected[j], 2e-7 * expected[j]) << j;
}

TEST(RopeFrequencies, YarnDegenerateRamp) {
  // orig 4, d 4: cd(32) < 0 and cd(1) = -0.098, so low = high = 0 and high gets
  // +0.001: pair 0 keeps its frequency, pair 1 is fully interpolated.
  RopeParams p = v3Params();
  p.dim = 4;
  p.originalMaxPositions = 4;
  float f[2];
  ropeFrequencies(p, f);
  EXPECT_FLOAT_EQ(f[0], 1.f);
  EXPECT_FLOAT_EQ(f[1], 0.01f / 40);
}

class Rope : public PerLevel {};

TEST_P(Rope, BothLayoutsMatchReference) {
  std::mt19937 rng(21);
  const RopeParams p = v3Params();
  std::vector<float> freqs(32);
  ropeFrequencies(p, freqs.data());
  const std::vector<double> freqsD(freqs.begin(), freqs.end());
  const int64_t T = 3, heads = 5, headDim = 192, offset = 128;
  const std::vector<int32_t> pos = {0, 17, 40000};
  for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::Half}) {
    std::vector<float> x = randomVector(T * heads * headDim, rng);
    const std::vector<double> expected =
        ref::rope(x, T, heads, headDim, offset, p, freqsD, pos, layout);
    rope(x.data(), T, heads, heads * headDim, headDim, offset, p, freqs.data(), pos.data(),
         layout);
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_NEAR(x[i], expected[i], 2e-6) << int(layout) << " at " << i;
  }
}

TEST_P(Rope, DimsThreadsAndTokens) {
  // Rope widths that leave partial vectors at every level (pairs never split),
  // several tokens and heads, one and two threads.
  std::mt19937 rng(23);
  for (int64_t dim : {2, 6, 18, 40, 64})
    for (int threads : {1, 2}) {
      setNumThreads(threads);
      RopeParams p = v3Params();
      p.dim = dim;
      std::vector<float> freqs(static_cast<size_t>(dim / 2));
      ropeFrequencies(p, freqs.data());
      const std::vector<double> freqsD(freqs.begin(), freqs.end());
      const int64_t T = 5, heads = 40, offset = 3, headDim = dim + 5;
      const std::vector<int32_t> pos = {0, 1, 77, 4095, 163839};
      for (RopeLayout layout : {RopeLayout::Interleaved, RopeLayout::Half}) {
        std::vector<float> x = randomVector(T * heads * headDim, rng);
        const std::vector<double> expected =
            ref::rope(x, T, heads, headDim, offset, p, freqsD, pos, layout);
        rope(x.data(), T, heads, heads * headDim, headDim, offset, p, freqs.data(),
             pos.data(), layout);
        for (size_t i = 0; i < x.size(); ++i)
          ASSERT_NEAR(x[i], expected[i], 2e-6)
              << "dim " << dim << " threads " << threads << " layout " << int(layout)
              << " at " << i;
      }
    }
  setNumThreads(0);
}

TEST_P(Rope, LayoutsAgreeUnderDeinterleaving) {
  // HF's half layout of a de-interleaved vector equals the interleaved rotation,
  // de-interleaved: the permutation the compiler may apply to q and k alike.
  std::mt19937 rng(22);
  RopeParams p;
  p.dim = 8;
  std::vector<float> freqs(4);
  ropeFrequencies(p, freqs.data());
  const std::vector<float> x = randomVector(8, rng);
  std::vector<float> inter = x, half(8);
  for (int j = 0; j < 4; ++j) {
    half[j] = x[2 * j];
    half[j + 4] = x[2 * j + 1];
  }
  const int32_t pos = 123;
  rope(inter.data(), 1, 1, 8, 8, 0, p, freqs.data(), &pos, RopeLayout::Interleaved);
  rope(half.data(), 1, 1, 8, 8, 0, p, freqs.data(), &pos, RopeLayout::Half);
  for (int j = 0; j < 4; ++j) {
    EXPECT_FLOAT_EQ(half[j], inter[2 * j]);
    EXPECT_FLOAT_EQ(half[j + 4], inter[2 * j + 1]);
  }
}

TEST_P(Rope, AttentionFactorScales) {
  RopeParams p;
  p.dim = 2;
  p.attentionFactor = 2.f;
  const float freq = 1.f;
  float x[2] = {1.f, 0.f};
  const int32_t pos = 0;
  rope(x, 1, 1, 2, 2, 0, p, &freq, &pos, RopeLayout::Interleaved);
  EXPECT_FLOAT_EQ(x[0], 2.f);
  EXPECT_FLOAT_EQ(x[1], 0.f);
}

MOEC_INSTANTIATE_PER_LEVEL(Rope);

} // namespace
} // namespace moec::cpu::test
