//===- DType.h - Element types of checkpoint tensors ------------*- C++ -*-===//
#ifndef MOEC_CHECKPOINT_DTYPE_H
#define MOEC_CHECKPOINT_DTYPE_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace moec::checkpoint {

/// Element types the checkpoint frontend reads and writes. The enumerators are
/// spelled as in the safetensors header ("BF16", "F16", "F32", "F8_E4M3").
enum class DType : uint8_t {
  BF16,    ///< bfloat16: 1 sign, 8 exponent, 7 mantissa bits.
  F16,     ///< IEEE binary16.
  F32,     ///< IEEE binary32.
  F8_E4M3, ///< float8 e4m3fn (bias 7, no infinities, largest finite 448).
};

/// Returns the safetensors spelling of \p Type, e.g. "BF16".
llvm::StringRef dtypeName(DType Type);

/// Parses a safetensors dtype string; std::nullopt for any other spelling.
std::optional<DType> parseDType(llvm::StringRef Name);

/// Returns the size of one element of \p Type in bytes.
unsigned dtypeSize(DType Type);

/// Returns true for the element types that weights may be stored in without
/// block scales (BF16, F16, F32).
bool isPlainFloat(DType Type);

/// Formats a shape as "[a, b, c]" (the form used in every error message).
std::string formatShape(llvm::ArrayRef<int64_t> Shape);

/// Returns the number of elements of \p Shape, or std::nullopt if a dimension
/// is negative or the product overflows int64_t.
std::optional<int64_t> shapeNumElements(llvm::ArrayRef<int64_t> Shape);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_DTYPE_H
