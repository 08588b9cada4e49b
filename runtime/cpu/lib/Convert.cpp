//===- Convert.cpp - Scalar float8/bf16/f16 conversions -------------------===//
//
// Bit-exact scalar conversions between fp32 and the stored weight types. The SIMD
// paths decode the same bits with their own instructions; these are the reference
// the rest of the runtime (and test data generation) relies on.
//
//===----------------------------------------------------------------------===//

#include "moec/cpu/kernels.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace moec::cpu {
namespace {

uint32_t bitsOf(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

float floatOf(uint32_t b) {
  float v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

} // namespace

float fp8e4m3ToFloat(uint8_t v) {
  const bool negative = (v & 0x80) != 0;
  const int exponent = (v >> 3) & 0xF;
  const int mantissa = v & 0x7;
  float magnitude;
  if (exponent == 0xF && mantissa == 0x7)
    magnitude = std::numeric_limits<float>::quiet_NaN();
  else if (exponent == 0) // subnormal: 2^-6 * m/8
    magnitude = std::ldexp(static_cast<float>(mantissa), -9);
  else
    magnitude = std::ldexp(static_cast<float>(8 + mantissa), exponent - 10);
  return negative ? -magnitude : magnitude;
}

uint8_t floatToFp8e4m3(float v) {
  const uint32_t bits = bitsOf(v);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80);
  if (std::isnan(v))
    return static_cast<uint8_t>(sign | 0x7F);
  const float a = std::fabs(v);
  if (a >= 448.f) // saturate (no infinities in e4m3fn)
    return static_cast<uint8_t>(sign | 0x7E);
  if (a < 0.015625f) {
    // Subnormal range (below 2^-6): a multiple of 2^-9, rounded to nearest even.
    // nearbyint rounds half to even in the default rounding mode; a result of 8
    // is exactly the smallest normal, whose encoding 0x08 follows by itself.
    const float q = std::nearbyint(a * 512.f);
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(q));
  }
  // Normal: keep 3 mantissa bits of the fp32 value, rounding to nearest even on
  // the 20 dropped bits. A carry into the exponent is the correct next binade.
  uint32_t m = bitsOf(a);
  m += 0x7FFFF + ((m >> 20) & 1);
  const int exponent = static_cast<int>(m >> 23) - 127 + 7;
  const uint32_t mantissa = (m >> 20) & 0x7;
  if (exponent > 15 || (exponent == 15 && mantissa == 7))
    return static_cast<uint8_t>(sign | 0x7E);
  return static_cast<uint8_t>(sign | (exponent << 3) | mantissa);
}

float bf16ToFloat(uint16_t v) { return floatOf(static_cast<uint32_t>(v) << 16); }

uint16_t floatToBf16(float v) {
  const uint32_t bits = bitsOf(v);
  if (std::isnan(v)) // keep NaN a (quiet) NaN: rounding could carry it into inf
    return static_cast<uint16_t>((bits >> 16) | 0x40);
  return static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
}

float f16ToFloat(uint16_t v) {
  const uint32_t sign = static_cast<uint32_t>(v & 0x8000) << 16;
  const int exponent = (v >> 10) & 0x1F;
  const uint32_t mantissa = v & 0x3FF;
  if (exponent == 0x1F) // inf or NaN
    return floatOf(sign | 0x7F800000u | (mantissa << 13));
  float magnitude;
  if (exponent == 0)
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  else
    magnitude = std::ldexp(static_cast<float>(1024 + mantissa), exponent - 25);
  return sign ? -magnitude : magnitude;
}

uint16_t floatToF16(float v) {
  const uint32_t bits = bitsOf(v);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  if (std::isnan(v))
    return static_cast<uint16_t>(sign | 0x7E00);
  const float a = std::fabs(v);
  if (a >= 65520.f) // rounds past the largest finite half (65504)
    return static_cast<uint16_t>(sign | 0x7C00);
  if (a < 6.103515625e-05f) // subnormal: multiples of 2^-24
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(a * 16777216.f)));
  uint32_t m = bitsOf(a);
  m += 0xFFF + ((m >> 13) & 1); // round to nearest even on 13 dropped bits
  const uint32_t exponent = (m >> 23) - 127 + 15;
  return static_cast<uint16_t>(sign | (exponent << 10) | ((m >> 13) & 0x3FF));
}

void decodeToFloat(WeightType type, const void *data, int64_t count, float *out) {
  const auto *bytes = static_cast<const uint8_t *>(data);
  // Little-endian by construction, whatever the host, and no aligned loads.
  auto u16 = [&](int64_t i) { return uint16_t(bytes[2 * i] | (bytes[2 * i + 1] << 8)); };
  switch (type) {
  case WeightType::F32:
    for (int64_t i = 0; i < count; ++i)
      out[i] = floatOf(uint32_t(bytes[4 * i]) | uint32_t(bytes[4 * i + 1]) << 8 |
                       uint32_t(bytes[4 * i + 2]) << 16 | uint32_t(bytes[4 * i + 3]) << 24);
    return;
  case WeightType::F16:
    for (int64_t i = 0; i < count; ++i)
      out[i] = f16ToFloat(u16(i));
    return;
  case WeightType::BF16:
    for (int64_t i = 0; i < count; ++i)
      out[i] = bf16ToFloat(u16(i));
    return;
  case WeightType::F8E4M3:
    for (int64_t i = 0; i < count; ++i)
      out[i] = fp8e4m3ToFloat(bytes[i]);
    return;
  case WeightType::I8:
    for (int64_t i = 0; i < count; ++i)
      out[i] = static_cast<float>(static_cast<int8_t>(bytes[i]));
    return;
  }
}

} // namespace moec::cpu
