//===- FloatFormats.cpp - bf16, f16 and e4m3 bit conversions --------------===//
#include "moec/checkpoint/FloatFormats.h"

#include "moec/cpu/kernels.h"

#include <cstring>

namespace moec::checkpoint {

namespace {
uint32_t floatBits(float Value) {
  uint32_t Bits;
  std::memcpy(&Bits, &Value, sizeof(Bits));
  return Bits;
}

} // namespace

// The scalar conversions are the runtime's (runtime/cpu, MLIR-free): one
// implementation of each rounding rule for the whole project.
float bf16ToFloat(uint16_t Bits) { return cpu::bf16ToFloat(Bits); }
uint16_t floatToBF16(float Value) { return cpu::floatToBf16(Value); }
float f16ToFloat(uint16_t Bits) { return cpu::f16ToFloat(Bits); }
uint16_t floatToF16(float Value) { return cpu::floatToF16(Value); }
float e4m3ToFloat(uint8_t Bits) { return cpu::fp8e4m3ToFloat(Bits); }
uint8_t floatToE4M3(float Value) { return cpu::floatToFp8e4m3(Value); }

void decodeToFloat(DType Type, const uint8_t *Data, size_t Count, float *Out) {
  cpu::WeightType T = cpu::WeightType::F32;
  switch (Type) {
  case DType::BF16: T = cpu::WeightType::BF16; break;
  case DType::F16: T = cpu::WeightType::F16; break;
  case DType::F32: T = cpu::WeightType::F32; break;
  case DType::F8_E4M3: T = cpu::WeightType::F8E4M3; break;
  }
  cpu::decodeToFloat(T, Data, static_cast<int64_t>(Count), Out);
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
