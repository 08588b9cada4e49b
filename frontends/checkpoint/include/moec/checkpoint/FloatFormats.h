//===- FloatFormats.h - bf16, f16 and e4m3 bit conversions ------*- C++ -*-===//
#ifndef MOEC_CHECKPOINT_FLOATFORMATS_H
#define MOEC_CHECKPOINT_FLOATFORMATS_H

#include "moec/checkpoint/DType.h"

#include <cstdint>
#include <vector>

namespace moec::checkpoint {

/// Widens bfloat16 bits to float (exact).
float bf16ToFloat(uint16_t Bits);

/// Rounds a float to bfloat16 bits, to nearest with ties to even; NaN stays
/// NaN.
uint16_t floatToBF16(float Value);

/// Widens IEEE binary16 bits to float (exact, subnormals included).
float f16ToFloat(uint16_t Bits);

/// Rounds a float to binary16 bits, to nearest with ties to even; overflow
/// gives infinity, NaN stays NaN.
uint16_t floatToF16(float Value);

/// Widens float8 e4m3fn bits to float (exact). 0x7F and 0xFF are NaN.
float e4m3ToFloat(uint8_t Bits);

/// Rounds a float to float8 e4m3fn bits, to nearest with ties to even.
/// Magnitudes beyond the largest finite value (448) saturate to +-448, as
/// weight quantisation wants; NaN gives 0x7F.
uint8_t floatToE4M3(float Value);

/// Decodes \p Count elements of type \p Type stored little-endian at \p Data
/// (any alignment) into floats. F8_E4M3 values are returned unscaled.
void decodeToFloat(DType Type, const uint8_t *Data, size_t Count, float *Out);

/// Encodes \p Values as little-endian elements of type \p Type (rounding to
/// nearest even; F8_E4M3 saturates). Returns the raw bytes.
std::vector<uint8_t> encodeFromFloat(DType Type,
                                     const std::vector<float> &Values);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_FLOATFORMATS_H
