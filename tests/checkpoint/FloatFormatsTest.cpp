//===- FloatFormatsTest.cpp - bf16, f16 and e4m3 conversions --------------===//
#include "moec/checkpoint/FloatFormats.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace moec::checkpoint;

namespace {

TEST(FloatFormatsTest, BF16RoundsToNearestEven) {
  EXPECT_EQ(floatToBF16(1.0f), 0x3F80);
  EXPECT_EQ(floatToBF16(-2.0f), 0xC000);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even 1.
  EXPECT_EQ(floatToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  // 1 + 3 * 2^-8 is halfway between 0x3F81 and 0x3F82: ties to 0x3F82.
  EXPECT_EQ(floatToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(floatToBF16(1.0f + 3 * std::ldexp(1.0f, -9)), 0x3F81);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBF16(NAN))));
  EXPECT_EQ(bf16ToFloat(0x3FC0), 1.5f);
}

TEST(FloatFormatsTest, F16RoundTripsEveryValue) {
  for (uint32_t Bits = 0; Bits < 0x10000; ++Bits) {
    float Value = f16ToFloat(static_cast<uint16_t>(Bits));
    if (std::isnan(Value))
      continue;
    ASSERT_EQ(floatToF16(Value), Bits) << "bits " << Bits;
  }
}

TEST(FloatFormatsTest, F16KnownValues) {
  EXPECT_EQ(floatToF16(1.0f), 0x3C00);
  EXPECT_EQ(floatToF16(65504.0f), 0x7BFF);
  EXPECT_EQ(floatToF16(65519.0f), 0x7BFF);
  EXPECT_EQ(floatToF16(65520.0f), 0x7C00);
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(floatToF16(std::ldexp(1.0f, -25)), 0x0000);        // Tie to even 0.
  EXPECT_EQ(floatToF16(3 * std::ldexp(1.0f, -25)), 0x0002);    // Tie to even 2.
  EXPECT_EQ(floatToF16(1.0f + std::ldexp(1.0f, -11)), 0x3C00); // Tie to even.
  EXPECT_EQ(f16ToFloat(0xC000), -2.0f);
  EXPECT_EQ(f16ToFloat(0x7C00), INFINITY);
}

TEST(FloatFormatsTest, E4M3DecodesTheFormat) {
  EXPECT_EQ(e4m3ToFloat(0x7E), 448.0f);
  EXPECT_EQ(e4m3ToFloat(0xFE), -448.0f);
  EXPECT_EQ(e4m3ToFloat(0x38), 1.0f);
  EXPECT_EQ(e4m3ToFloat(0x08), std::ldexp(1.0f, -6));
  EXPECT_EQ(e4m3ToFloat(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3ToFloat(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(e4m3ToFloat(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3ToFloat(0xFF)));
  // 0x78 is 2^8 (exponent 15 is a normal exponent in e4m3fn).
  EXPECT_EQ(e4m3ToFloat(0x78), 256.0f);
}

TEST(FloatFormatsTest, E4M3RoundTripsEveryFiniteCode) {
  for (uint32_t Code = 0; Code < 256; ++Code) {
    if ((Code & 0x7F) == 0x7F)
      continue;
    float Value = e4m3ToFloat(static_cast<uint8_t>(Code));
    ASSERT_EQ(floatToE4M3(Value), Code) << "code " << Code;
  }
}

TEST(FloatFormatsTest, E4M3RoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(floatToE4M3(1.0625f), 0x38); // Halfway 1 / 1.125: even is 1.
  EXPECT_EQ(floatToE4M3(1.1875f), 0x3A); // Halfway 1.125 / 1.25: even is 1.25.
  EXPECT_EQ(floatToE4M3(1.07f), 0x39);
  EXPECT_EQ(floatToE4M3(std::ldexp(1.0f, -10)), 0x00);         // Tie to even 0.
  EXPECT_EQ(floatToE4M3(3 * std::ldexp(1.0f, -10)), 0x02);     // Tie to even 2.
  EXPECT_EQ(floatToE4M3(15.5f * std::ldexp(1.0f, -10)), 0x08); // To min normal.
  EXPECT_EQ(floatToE4M3(460.0f), 0x7E);
  EXPECT_EQ(floatToE4M3(1e9f), 0x7E);
  EXPECT_EQ(floatToE4M3(-1e9f), 0xFE);
  EXPECT_EQ(floatToE4M3(INFINITY), 0x7E);
  EXPECT_EQ(floatToE4M3(NAN), 0x7F);
  EXPECT_EQ(floatToE4M3(-0.0f), 0x80);
}

TEST(FloatFormatsTest, DecodeReadsUnalignedLittleEndian) {
  // F32 1.5 = 0x3FC00000 and -2 = 0xC0000000, starting at an odd address.
  const uint8_t Bytes[] = {0xAA, 0x00, 0x00, 0xC0, 0x3F,
                           0x00, 0x00, 0x00, 0xC0};
  float Out[2];
  decodeToFloat(DType::F32, Bytes + 1, 2, Out);
  EXPECT_EQ(Out[0], 1.5f);
  EXPECT_EQ(Out[1], -2.0f);
  std::vector<uint8_t> Encoded = encodeFromFloat(DType::BF16, {1.5f, -2.0f});
  EXPECT_EQ(Encoded, (std::vector<uint8_t>{0xC0, 0x3F, 0x00, 0xC0}));
}

} // namespace
