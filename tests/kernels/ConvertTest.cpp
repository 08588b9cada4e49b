//===- ConvertTest.cpp - float8 / bf16 / f16 conversions ------------------===//

#include "Reference.h"
#include "TestSupport.h"

#include <cmath>
#include <cstring>

namespace moec::cpu::test {
namespace {

TEST(Fp8, SpecialValues) {
  EXPECT_EQ(fp8e4m3ToFloat(0x7E), 448.f);
  EXPECT_EQ(fp8e4m3ToFloat(0xFE), -448.f);
  EXPECT_EQ(fp8e4m3ToFloat(0x01), std::ldexp(1.f, -9)); // smallest subnormal
  EXPECT_EQ(fp8e4m3ToFloat(0x07), 7 * std::ldexp(1.f, -9));
  EXPECT_EQ(fp8e4m3ToFloat(0x08), std::ldexp(1.f, -6)); // smallest normal
  EXPECT_EQ(fp8e4m3ToFloat(0x38), 1.f);
  EXPECT_EQ(fp8e4m3ToFloat(0xB8), -1.f);
  EXPECT_EQ(fp8e4m3ToFloat(0x3C), 1.5f);
  EXPECT_TRUE(std::isnan(fp8e4m3ToFloat(0x7F)));
  EXPECT_TRUE(std::isnan(fp8e4m3ToFloat(0xFF)));
  EXPECT_EQ(fp8e4m3ToFloat(0x00), 0.f);
  EXPECT_TRUE(std::signbit(fp8e4m3ToFloat(0x80)));
}

TEST(Fp8, DecodeMatchesDefinitionForEveryByte) {
  for (int b = 0; b < 256; ++b) {
    const double expected = ref::fp8(static_cast<uint8_t>(b));
    const float got = fp8e4m3ToFloat(static_cast<uint8_t>(b));
    if (std::isnan(expected))
      EXPECT_TRUE(std::isnan(got)) << b;
    else
      EXPECT_EQ(got, expected) << b;
  }
}

TEST(Fp8, EncodeRoundTripsEveryFiniteByte) {
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7F) == 0x7F)
      continue;
    EXPECT_EQ(floatToFp8e4m3(fp8e4m3ToFloat(static_cast<uint8_t>(b))), b) << b;
  }
}

TEST(Fp8, EncodeRoundsToNearestEvenAndSaturates) {
  EXPECT_EQ(floatToFp8e4m3(448.f), 0x7E);
  EXPECT_EQ(floatToFp8e4m3(1000.f), 0x7E);
  EXPECT_EQ(floatToFp8e4m3(-1e30f), 0xFE);
  EXPECT_EQ(floatToFp8e4m3(INFINITY), 0x7E);
  EXPECT_EQ(floatToFp8e4m3(NAN) & 0x7F, 0x7F);
  // Halfway between 1.0 (0x38) and 1.125 (0x39): to the even mantissa, 1.0.
  EXPECT_EQ(floatToFp8e4m3(1.0625f), 0x38);
  // Halfway between 1.125 and 1.25: to the even one, 1.25 (0x3A).
  EXPECT_EQ(floatToFp8e4m3(1.1875f), 0x3A);
  // Subnormals: 2^-10 is halfway between 0 and 2^-9 -> 0; 1.5 * 2^-9 -> 2 * 2^-9.
  EXPECT_EQ(floatToFp8e4m3(std::ldexp(1.f, -10)), 0x00);
  EXPECT_EQ(floatToFp8e4m3(std::ldexp(1.5f, -9)), 0x02);
  // Just below the smallest normal rounds up into it.
  EXPECT_EQ(floatToFp8e4m3(std::ldexp(7.75f, -9)), 0x08);
  EXPECT_EQ(floatToFp8e4m3(-0.75f), 0xB4);
}

TEST(Bf16, RoundTripAndRounding) {
  EXPECT_EQ(bf16ToFloat(0x3F80), 1.f);
  EXPECT_EQ(bf16ToFloat(0xC000), -2.f);
  EXPECT_EQ(floatToBf16(1.f), 0x3F80);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to even, 1.
  EXPECT_EQ(floatToBf16(1.f + std::ldexp(1.f, -8)), 0x3F80);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to even, 1 + 2^-6.
  EXPECT_EQ(floatToBf16(1.f + 3 * std::ldexp(1.f, -8)), 0x3F82);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(NAN))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16ToFloat(static_cast<uint16_t>(h));
    const double expected = ref::bf16(static_cast<uint16_t>(h));
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(f)) << h;
      continue;
    }
    ASSERT_EQ(f, expected) << h;
    ASSERT_EQ(floatToBf16(f), h);
  }
}

TEST(F16, RoundTripAndRounding) {
  EXPECT_EQ(f16ToFloat(0x3C00), 1.f);
  EXPECT_EQ(f16ToFloat(0x7BFF), 65504.f);
  EXPECT_EQ(f16ToFloat(0x0001), std::ldexp(1.f, -24));
  EXPECT_EQ(floatToF16(65504.f), 0x7BFF);
  EXPECT_EQ(floatToF16(65520.f), 0x7C00); // rounds to infinity
  EXPECT_EQ(floatToF16(65519.f), 0x7BFF);
  EXPECT_EQ(floatToF16(std::ldexp(1.f, -25)), 0x0000); // halfway to the smallest subnormal: even
  EXPECT_EQ(floatToF16(std::ldexp(3.f, -25)), 0x0002);
  EXPECT_EQ(floatToF16(1.f + std::ldexp(1.f, -11)), 0x3C00);
  EXPECT_EQ(floatToF16(1.f + 3 * std::ldexp(1.f, -11)), 0x3C02);
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16ToFloat(static_cast<uint16_t>(h));
    const double expected = ref::f16(static_cast<uint16_t>(h));
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(f)) << h;
      continue;
    }
    ASSERT_EQ(f, expected) << h;
    ASSERT_EQ(floatToF16(f), h);
  }
}

} // namespace
} // namespace moec::cpu::test
