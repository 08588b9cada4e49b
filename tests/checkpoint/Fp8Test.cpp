//===- Fp8Test.cpp - 128x128 block FP8 quantisation -----------------------===//
#include "moec/checkpoint/Fp8.h"
#include "moec/checkpoint/FloatFormats.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace moec::checkpoint;

namespace {

/// A 130 x 200 matrix: full block (0,0), partial blocks elsewhere (edge rows
/// 128..129, edge columns 128..199), with block maxima that make scales exact.
std::vector<float> knownMatrix() {
  const int64_t Rows = 130, Cols = 200;
  std::vector<float> W(Rows * Cols, 0.0f);
  auto At = [&](int64_t I, int64_t J) -> float & { return W[I * Cols + J]; };
  // Block (0,0): amax 28 -> scale 28/448 = 1/16.
  At(0, 0) = 28.0f;
  At(1, 1) = 5.0f;   // 80 in e4m3: exact.
  At(2, 2) = 6.3f;   // 100.8 -> 104 -> 6.5.
  At(3, 3) = 6.25f;  // 100: tie between 96 and 104 -> 96 -> 6.
  At(4, 4) = -0.01f; // -0.16 = -1.28 * 2^-3 -> -1.25 * 2^-3 -> -5/512.
  // Block (0,1), columns 128..199 (partial): amax 0.875 -> scale 2^-9.
  At(5, 199) = -0.875f;
  At(6, 130) = 0.1f; // 51.2 -> 52 -> 0.1015625.
  // Block (1,0), rows 128..129 (partial): all zero -> the floor scale 1e-12 / 448.
  // Block (1,1), the corner: amax 3.5 -> scale 3.5/448 = 2^-7.
  At(129, 150) = 3.5f;
  At(128, 128) = 1.0f; // 128: exact.
  return W;
}

TEST(Fp8Test, QuantisesPerBlockWithEdgeBlocks) {
  std::vector<float> W = knownMatrix();
  Fp8BlockWeight Q = quantizeFp8Blocks(W, 130, 200);
  ASSERT_EQ(Q.Scales.size(), 4u); // [ceil(130/128), ceil(200/128)] = [2, 2].
  EXPECT_EQ(Q.Scales[0], 1.0f / 16);
  EXPECT_EQ(Q.Scales[1], std::ldexp(1.0f, -9));
  EXPECT_EQ(Q.Scales[2], float(double(1e-12f) / 448.0)); // all zero: the floor
  EXPECT_EQ(Q.Scales[3], std::ldexp(1.0f, -7));

  std::vector<float> D =
      dequantizeFp8Blocks(Q.Values.data(), Q.Scales, 130, 200);
  auto At = [&](int64_t I, int64_t J) { return D[I * 200 + J]; };
  EXPECT_EQ(At(0, 0), 28.0f);
  EXPECT_EQ(At(1, 1), 5.0f);
  EXPECT_EQ(At(2, 2), 6.5f);
  EXPECT_EQ(At(3, 3), 6.0f);
  EXPECT_EQ(At(4, 4), -5.0f / 512);
  EXPECT_EQ(At(5, 199), -0.875f);
  EXPECT_EQ(At(6, 130), 0.1015625f);
  EXPECT_EQ(At(129, 150), 3.5f);
  EXPECT_EQ(At(128, 128), 1.0f);
  EXPECT_EQ(At(10, 10), 0.0f);
  EXPECT_EQ(At(129, 0), 0.0f);

  // W = fp8 * scale[i/128, j/128] everywhere, and within half an e4m3 step.
  for (int64_t I = 0; I < 130; ++I)
    for (int64_t J = 0; J < 200; ++J) {
      float Scale = Q.Scales[(I / 128) * 2 + J / 128];
      ASSERT_EQ(At(I, J), e4m3ToFloat(Q.Values[I * 200 + J]) * Scale);
      float Original = W[I * 200 + J];
      ASSERT_LE(
          std::fabs(At(I, J) - Original),
          std::max(std::fabs(Original) / 16, Scale * std::ldexp(1.0f, -10)));
    }
}

} // namespace
