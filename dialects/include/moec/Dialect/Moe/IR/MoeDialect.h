//===- MoeDialect.h - the moe dialect ---------------------------*- C++ -*-===//
#ifndef MOEC_DIALECT_MOE_IR_MOEDIALECT_H
#define MOEC_DIALECT_MOE_IR_MOEDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "moec/Dialect/Moe/IR/MoeOpsDialect.h.inc"
#include "moec/Dialect/Moe/IR/MoeOpsEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "moec/Dialect/Moe/IR/MoeOpsAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "moec/Dialect/Moe/IR/MoeOpsTypes.h.inc"

#define GET_OP_CLASSES
#include "moec/Dialect/Moe/IR/MoeOps.h.inc"

namespace mlir::moe {
/// Side of the square FP8 weight scale block used by DeepSeek checkpoints.
inline constexpr int64_t kDefaultFp8Block = 128;
} // namespace mlir::moe

#endif // MOEC_DIALECT_MOE_IR_MOEDIALECT_H
