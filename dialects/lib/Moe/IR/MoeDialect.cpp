//===- MoeDialect.cpp - moe dialect registration, attributes, types -------===//
//
// Attribute and type verifiers, the weight type predicates the ODS
// constraints use, and the verifier of the dialect's module attributes.
//
//===----------------------------------------------------------------------===//

#include "moec/Dialect/Moe/IR/MoeDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

#include "moec/Dialect/Moe/IR/MoeOpsDialect.cpp.inc"
#include "moec/Dialect/Moe/IR/MoeOpsEnums.cpp.inc"
#include "moec/Dialect/Moe/IR/MoeInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "moec/Dialect/Moe/IR/MoeOpsAttrs.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "moec/Dialect/Moe/IR/MoeOpsTypes.cpp.inc"

void MoeDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "moec/Dialect/Moe/IR/MoeOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "moec/Dialect/Moe/IR/MoeOpsAttrs.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "moec/Dialect/Moe/IR/MoeOpsTypes.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Weight types
//===----------------------------------------------------------------------===//

BlockFp8Attr mlir::moe::getBlockFp8(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor ? dyn_cast_or_null<BlockFp8Attr>(tensor.getEncoding())
                : BlockFp8Attr();
}

ScaleBlock mlir::moe::getScaleBlock(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  ScaleBlock block;
  if (!tensor)
    return block;
  if (auto fp8 = dyn_cast_or_null<BlockFp8Attr>(tensor.getEncoding())) {
    block.rows = fp8.getRows();
    block.cols = fp8.getCols();
  } else if (auto i8 = dyn_cast_or_null<BlockInt8Attr>(tensor.getEncoding())) {
    block.rows = i8.getRows();
    block.cols = i8.getCols();
    block.int8 = true;
  }
  return block;
}

bool mlir::moe::isUnquantizedWeightType(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && tensor.hasStaticShape() && !tensor.getEncoding() &&
         (tensor.getElementType().isBF16() || tensor.getElementType().isF16() ||
          tensor.getElementType().isF32());
}

bool mlir::moe::isWeightType(Type type) {
  if (isUnquantizedWeightType(type))
    return true;
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.hasStaticShape())
    return false;
  if (isa<Float8E4M3FNType>(tensor.getElementType()))
    return static_cast<bool>(getBlockFp8(tensor));
  return tensor.getElementType().isSignlessInteger(8) &&
         isa_and_nonnull<BlockInt8Attr>(tensor.getEncoding());
}


/// The checks both block encodings share: positive block sizes; the element type
/// the encoding names; rank 2 (a weight) or 3 (a per-head view of one).
static LogicalResult verifyBlockSizes(function_ref<InFlightDiagnostic()> emitError,
                                      int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0)
    return emitError() << "expected positive block sizes, got " << rows << "x"
                       << cols;
  return success();
}

static LogicalResult verifyBlockEncoding(ArrayRef<int64_t> shape, Type elementType,
                                         bool elementOk, StringRef elementName,
                                         StringRef encoding,
                                         function_ref<InFlightDiagnostic()> emitError) {
  if (!elementOk)
    return emitError() << "expected " << elementName << " elements for " << encoding
                       << ", got " << elementType;
  if (shape.size() != 2 && shape.size() != 3)
    return emitError() << "expected a rank-2 weight (or a rank-3 per-head "
                          "view) for "
                       << encoding << ", got rank " << shape.size();
  return success();
}

LogicalResult BlockFp8Attr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   int64_t rows, int64_t cols) {
  return verifyBlockSizes(emitError, rows, cols);
}

LogicalResult
BlockFp8Attr::verifyEncoding(ArrayRef<int64_t> shape, Type elementType,
                             function_ref<InFlightDiagnostic()> emitError) const {
  return verifyBlockEncoding(shape, elementType, isa<Float8E4M3FNType>(elementType),
                             "f8E4M3FN", "#moe.block_fp8", emitError);
}

LogicalResult BlockInt8Attr::verify(function_ref<InFlightDiagnostic()> emitError,
                                    int64_t rows, int64_t cols) {
  return verifyBlockSizes(emitError, rows, cols);
}

LogicalResult
BlockInt8Attr::verifyEncoding(ArrayRef<int64_t> shape, Type elementType,
                              function_ref<InFlightDiagnostic()> emitError) const {
  return verifyBlockEncoding(shape, elementType, elementType.isSignlessInteger(8), "i8",
                             "#moe.block_int8", emitError);
}

LogicalResult YarnAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               llvm::APFloat factorF, int64_t originalMaxPositions,
                               llvm::APFloat betaFastF, llvm::APFloat betaSlowF,
                               llvm::APFloat mscale, llvm::APFloat mscaleAllDim) {
  double factor = factorF.convertToDouble();
  double betaFast = betaFastF.convertToDouble();
  double betaSlow = betaSlowF.convertToDouble();
  if (!(factor >= 1.0))
    return emitError() << "expected yarn factor >= 1, got " << factor;
  if (originalMaxPositions <= 0)
    return emitError() << "expected positive original max positions, got "
                       << originalMaxPositions;
  if (!(betaFast > betaSlow) || !(betaSlow > 0))
    return emitError() << "expected beta_fast > beta_slow > 0, got beta_fast = "
                       << betaFast << ", beta_slow = " << betaSlow;
  return success();
}

/// mscale(f, m) of spec section 4: 0.1 * m * ln(f) + 1, and 1 when f <= 1.
static double yarnMscale(double factor, double m) {
  return factor <= 1.0 ? 1.0 : 0.1 * m * std::log(factor) + 1.0;
}

double YarnAttr::getAttentionFactor() const {
  double factor = getFactor().convertToDouble();
  return yarnMscale(factor, getMscale().convertToDouble()) /
         yarnMscale(factor, getMscaleAllDim().convertToDouble());
}

double YarnAttr::getSoftmaxFactor() const {
  double m = yarnMscale(getFactor().convertToDouble(),
                        getMscaleAllDim().convertToDouble());
  return m * m;
}

LogicalResult
LatentCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                        int64_t kvLoraRank, int64_t ropeDim, Type elementType) {
  if (kvLoraRank <= 0 || ropeDim <= 0 || ropeDim % 2 != 0)
    return emitError() << "expected a positive kv_lora_rank and a positive "
                          "even rope dim, got "
                       << kvLoraRank << " and " << ropeDim;
  if (!elementType ||
      !(elementType.isF32() || elementType.isBF16() || isa<Float8E4M3FNType>(elementType)))
    return emitError() << "expected a latent cache of f32, bf16 or f8E4M3FN, got "
                       << elementType;
  return success();
}

//===----------------------------------------------------------------------===//
// Module attributes
//===----------------------------------------------------------------------===//

bool mlir::moe::multipliesWeights(Operation *op) {
  return isa<LinearOp, LogitsOp, HeadLinearOp, ExpandedAttentionOp, SwigluOp, FusedSwigluOp,
             RoutedExpertsOp, FusedRoutedExpertsOp>(op);
}

LogicalResult MoeDialect::verifyOperationAttribute(Operation *op,
                                                   NamedAttribute attr) {
  StringRef name = attr.getName().getValue();
  if (name == kModelConfigAttrName) {
    if (!isa<ModuleOp>(op))
      return op->emitError() << "expected '" << name
                             << "' on a builtin.module, got it on '"
                             << op->getName() << "'";
    if (!isa<DictionaryAttr>(attr.getValue()))
      return op->emitError() << "expected '" << name
                             << "' to be a dictionary, got " << attr.getValue();
    return success();
  }
  if (name == kSourceAttrName) {
    if (!isa<ModuleOp>(op))
      return op->emitError() << "expected '" << name
                             << "' on a builtin.module, got it on '"
                             << op->getName() << "'";
    if (!isa<StringAttr>(attr.getValue()))
      return op->emitError() << "expected '" << name
                             << "' to be a string, got " << attr.getValue();
    return success();
  }
  if (name == kPrefillMinTokensAttr) {
    if (!isa<ModuleOp>(op))
      return op->emitError() << "expected '" << name
                             << "' on a builtin.module, got it on '"
                             << op->getName() << "'";
    auto count = dyn_cast<IntegerAttr>(attr.getValue());
    if (!count || !count.getType().isInteger(64) || count.getInt() < 0)
      return op->emitError() << "expected '" << name
                             << "' to be a non-negative i64, got " << attr.getValue();
    return success();
  }
  if (name == kActivationsAttrName) {
    auto type = dyn_cast<TypeAttr>(attr.getValue());
    if (!type || !(type.getValue().isBF16() || isa<Float8E4M3FNType>(type.getValue())))
      return op->emitError() << "expected '" << name << "' to be bf16 or f8E4M3FN, got "
                             << attr.getValue();
    if (!multipliesWeights(op))
      return op->emitError() << "expected '" << name
                             << "' on a step op that multiplies by weights, got it on '"
                             << op->getName() << "'";
    return success();
  }
  return op->emitError() << "unknown moe dialect attribute '" << name << "'";
}
