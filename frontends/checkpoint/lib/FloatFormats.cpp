//===- FloatFormats.cpp - bf16, f16 and e4m3 bit conversions --------------===//
#include "moec/checkpoint/FloatFormats.h"

#include <cmath>
#include <cstring>

namespace moec::checkpoint {

namespace {
uint32_t floatBits(float Value) {
  uint32_t Bits;
  std::memcpy(&Bits, &Value, sizeof(Bits));
  return Bits;
}

float bitsToFloat(uint32_t Bits) {
  float Value;
  std::memcpy(&Value, &Bits, sizeof(Value));
  return Value;
}

uint16_t loadU16(const uint8_t *Data) {
  return static_cast<uint16_t>(Data[0] | (Data[1] << 8));
}

uint32_t loadU32(const uint8_t *Data) {
  return static_cast<uint32_t>(Data[0]) |
         (static_cast<uint32_t>(Data[1]) << 8) |
         (static_cast<uint32_t>(Data[2]) << 16) |
         (static_cast<uint32_t>(Data[3]) << 24);
}
} // namespace

float bf16ToFloat(uint16_t Bits) {
  return bitsToFloat(static_cast<uint32_t>(Bits) << 16);
}

uint16_t floatToBF16(float Value) {
  uint32_t Bits = floatBits(Value);
  if (std::isnan(Value))
    return static_cast<uint16_t>((Bits >> 16) | 0x0040); // Keep it a quiet NaN.
  uint32_t RoundingBias = 0x7FFF + ((Bits >> 16) & 1);
  return static_cast<uint16_t>((Bits + RoundingBias) >> 16);
}

float f16ToFloat(uint16_t Bits) {
  uint32_t Sign = static_cast<uint32_t>(Bits & 0x8000) << 16;
  uint32_t Exponent = (Bits >> 10) & 0x1F;
  uint32_t Mantissa = Bits & 0x3FF;
  if (Exponent == 0x1F)
    return bitsToFloat(Sign | 0x7F800000 | (Mantissa << 13));
  if (Exponent == 0) {
    // Zero or subnormal: Mantissa * 2^-24, exact in float.
    float Magnitude = std::ldexp(static_cast<float>(Mantissa), -24);
    return Sign ? -Magnitude : Magnitude;
  }
  return bitsToFloat(Sign | ((Exponent + 112) << 23) | (Mantissa << 13));
}

uint16_t floatToF16(float Value) {
  uint32_t Bits = floatBits(Value);
  uint16_t Sign = static_cast<uint16_t>((Bits >> 16) & 0x8000);
  if (std::isnan(Value))
    return Sign | 0x7E00;
  float Magnitude = std::fabs(Value);
  if (Magnitude >= 65520.0f) // Halfway between 65504 and 2^16 rounds up to inf.
    return Sign | 0x7C00;
  if (Magnitude < 6.103515625e-05f) {
    // Subnormal range: the value in units of 2^-24, rounded to nearest even
    // (nearbyint honours the default round-to-nearest-even mode).
    float Units = std::nearbyint(std::ldexp(Magnitude, 24));
    return Sign | static_cast<uint16_t>(Units);
  }
  uint32_t MagBits = floatBits(Magnitude);
  uint32_t Exponent = (MagBits >> 23) - 112;
  uint32_t Mantissa = MagBits & 0x7FFFFF;
  uint32_t Half = (Exponent << 10) | (Mantissa >> 13);
  uint32_t Rest = Mantissa & 0x1FFF;
  if (Rest > 0x1000 || (Rest == 0x1000 && (Half & 1)))
    ++Half; // A carry into the exponent is the correct rounding.
  return Sign | static_cast<uint16_t>(Half);
}

float e4m3ToFloat(uint8_t Bits) {
  bool Negative = Bits & 0x80;
  uint32_t Exponent = (Bits >> 3) & 0xF;
  uint32_t Mantissa = Bits & 0x7;
  float Magnitude;
  if (Exponent == 0xF && Mantissa == 0x7)
    Magnitude = NAN;
  else if (Exponent == 0)
    Magnitude = std::ldexp(static_cast<float>(Mantissa), -9);
  else
    Magnitude = std::ldexp(static_cast<float>(8 + Mantissa),
                           static_cast<int>(Exponent) - 10);
  return Negative ? -Magnitude : Magnitude;
}

uint8_t floatToE4M3(float Value) {
  if (std::isnan(Value))
    return 0x7F;
  uint8_t Sign = std::signbit(Value) ? 0x80 : 0x00;
  float Magnitude = std::fabs(Value);
  if (Magnitude >= 448.0f)
    return Sign | 0x7E;
  if (Magnitude < 0.015625f) {
    // Subnormals are multiples of 2^-9; a count of 8 is the smallest normal,
    // whose encoding is also 8.
    float Units = std::nearbyint(std::ldexp(Magnitude, 9));
    return Sign | static_cast<uint8_t>(Units);
  }
  int Exponent;
  float Fraction =
      std::frexp(Magnitude, &Exponent); // Magnitude = F * 2^E, F in [0.5, 1).
  // Mantissa steps of 1/8 on [1, 2): round (2F - 1) * 8 to nearest even.
  int Steps = static_cast<int>(std::nearbyint((2.0f * Fraction - 1.0f) * 8.0f));
  int Biased = Exponent - 1 + 7;
  if (Steps == 8) {
    Steps = 0;
    ++Biased;
  }
  if (Biased > 15 || (Biased == 15 && Steps == 7))
    return Sign | 0x7E;
  return Sign | static_cast<uint8_t>((Biased << 3) | Steps);
}

void decodeToFloat(DType Type, const uint8_t *Data, size_t Count, float *Out) {
  switch (Type) {
  case DType::BF16:
    for (size_t I = 0; I < Count; ++I)
      Out[I] = bf16ToFloat(loadU16(Data + 2 * I));
    return;
  case DType::F16:
    for (size_t I = 0; I < Count; ++I)
      Out[I] = f16ToFloat(loadU16(Data + 2 * I));
    return;
  case DType::F32:
    for (size_t I = 0; I < Count; ++I)
      Out[I] = bitsToFloat(loadU32(Data + 4 * I));
    return;
  case DType::F8_E4M3:
    for (size_t I = 0; I < Count; ++I)
      Out[I] = e4m3ToFloat(Data[I]);
    return;
  }
}

std::vector<uint8_t> encodeFromFloat(DType Type,
                                     const std::vector<float> &Values) {
  std::vector<uint8_t> Bytes(Values.size() * dtypeSize(Type));
  for (size_t I = 0; I < Values.size(); ++I) {
    switch (Type) {
    case DType::BF16:
    case DType::F16: {
      uint16_t Bits =
          Type == DType::BF16 ? floatToBF16(Values[I]) : floatToF16(Values[I]);
      Bytes[2 * I] = static_cast<uint8_t>(Bits);
      Bytes[2 * I + 1] = static_cast<uint8_t>(Bits >> 8);
      break;
    }
    case DType::F32: {
      uint32_t Bits = floatBits(Values[I]);
      for (int B = 0; B < 4; ++B)
        Bytes[4 * I + B] = static_cast<uint8_t>(Bits >> (8 * B));
      break;
    }
    case DType::F8_E4M3:
      Bytes[I] = floatToE4M3(Values[I]);
      break;
    }
  }
  return Bytes;
}

} // namespace moec::checkpoint
