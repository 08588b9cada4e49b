//===- MoeDialect.cpp - moe dialect registration, attributes, types -------===//

#include "moec/Dialect/Moe/IR/MoeDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::moe;

#include "moec/Dialect/Moe/IR/MoeOpsDialect.cpp.inc"
#include "moec/Dialect/Moe/IR/MoeOpsEnums.cpp.inc"

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

LogicalResult
BlockScaleLayoutAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                             int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0)
    return emitError() << "expected positive block sizes, got " << rows << "x"
                       << cols;
  return success();
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

LogicalResult
LatentCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                        int64_t kvLoraRank, int64_t ropeDim) {
  if (kvLoraRank <= 0 || ropeDim <= 0 || ropeDim % 2 != 0)
    return emitError() << "expected a positive kv_lora_rank and a positive "
                          "even rope dim, got "
                       << kvLoraRank << " and " << ropeDim;
  return success();
}
