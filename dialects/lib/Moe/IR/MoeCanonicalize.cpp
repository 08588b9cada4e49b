//===- MoeCanonicalize.cpp - folders of the moe dialect ---------------------===//
//
// Each fold is exact (no numeric change) and is tested in
// tests/lit/Dialect/Moe/canonicalize.mlir.
//
//===----------------------------------------------------------------------===//

#include "moec/Dialect/Moe/IR/MoeDialect.h"

using namespace mlir;
using namespace mlir::moe;

/// slice_columns of every column is its input; a slice of a slice reads the
/// inner slice's input directly (updated in place).
OpFoldResult SliceColumnsOp::fold(FoldAdaptor) {
  auto inType = cast<RankedTensorType>(getInput().getType());
  if (getBegin() == 0 && inType == getType())
    return getInput();
  if (auto inner = getInput().getDefiningOp<SliceColumnsOp>()) {
    getInputMutable().assign(inner.getInput());
    setBegin(inner.getBegin() + getBegin());
    return getResult();
  }
  return {};
}

/// A conversion to the weight's own type is the weight. A conversion of an
/// f32 conversion converts the original weight directly: widening bf16 or f16
/// to f32 is exact, so the intermediate step changes no value.
OpFoldResult ConvertWeightOp::fold(FoldAdaptor) {
  if (getWeight().getType() == getType())
    return getWeight();
  if (auto inner = getWeight().getDefiningOp<ConvertWeightOp>();
      inner && inner.getType().getElementType().isF32()) {
    if (inner.getWeight().getType() == getType())
      return inner.getWeight();
    getWeightMutable().assign(inner.getWeight());
    return getResult();
  }
  return {};
}
