//===- DType.cpp - Element types of checkpoint tensors --------------------===//
#include "moec/checkpoint/DType.h"

#include "llvm/Support/MathExtras.h"

using namespace llvm;

namespace moec::checkpoint {

StringRef dtypeName(DType Type) {
  switch (Type) {
  case DType::BF16:
    return "BF16";
  case DType::F16:
    return "F16";
  case DType::F32:
    return "F32";
  case DType::F8_E4M3:
    return "F8_E4M3";
  }
  return "?";
}

std::optional<DType> parseDType(StringRef Name) {
  for (DType Type : {DType::BF16, DType::F16, DType::F32, DType::F8_E4M3})
    if (Name == dtypeName(Type))
      return Type;
  return std::nullopt;
}

unsigned dtypeSize(DType Type) {
  switch (Type) {
  case DType::BF16:
  case DType::F16:
    return 2;
  case DType::F32:
    return 4;
  case DType::F8_E4M3:
    return 1;
  }
  return 0;
}

bool isPlainFloat(DType Type) { return Type != DType::F8_E4M3; }

std::string formatShape(ArrayRef<int64_t> Shape) {
  std::string Text = "[";
  for (size_t I = 0; I < Shape.size(); ++I) {
    if (I)
      Text += ", ";
    Text += std::to_string(Shape[I]);
  }
  return Text + "]";
}

std::optional<int64_t> shapeNumElements(ArrayRef<int64_t> Shape) {
  int64_t Count = 1;
  for (int64_t Dim : Shape) {
    if (Dim < 0)
      return std::nullopt;
    int64_t Product;
    if (MulOverflow(Count, Dim, Product))
      return std::nullopt;
    Count = Product;
  }
  return Count;
}

} // namespace moec::checkpoint
