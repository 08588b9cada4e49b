//===- MoeDialect.h - the moe dialect ---------------------------*- C++ -*-===//
#ifndef MOEC_DIALECT_MOE_IR_MOEDIALECT_H
#define MOEC_DIALECT_MOE_IR_MOEDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/TensorEncoding.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "moec/Dialect/Moe/IR/MoeOpsDialect.h.inc"
#include "moec/Dialect/Moe/IR/MoeOpsEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "moec/Dialect/Moe/IR/MoeOpsAttrs.h.inc"

#define GET_TYPEDEF_CLASSES
#include "moec/Dialect/Moe/IR/MoeOpsTypes.h.inc"

#include "moec/Dialect/Moe/IR/MoeInterfaces.h.inc"

namespace mlir::moe {
/// Side of the square FP8 weight scale block used by DeepSeek checkpoints.
inline constexpr int64_t kDefaultFp8Block = 128;

/// Module attribute: the source model's configuration (a DictionaryAttr with
/// the config.json keys of the plan's ModelConfig table), metadata for people.
inline constexpr llvm::StringLiteral kModelConfigAttrName = "moe.model_config";
/// Module attribute: the source the module was imported from (a StringAttr,
/// e.g. the checkpoint directory).
inline constexpr llvm::StringLiteral kSourceAttrName = "moe.source";
/// Module attribute (i64) that moe-absorb-mla{form=auto} sets when @prefill got
/// the naive MLA form: the batch size from which the runtime runs @prefill
/// (EntryPoint.min_tokens); smaller batches run @decode.
inline constexpr llvm::StringLiteral kPrefillMinTokensAttr = "moe.prefill_min_tokens";

/// The block quantization of a weight type, or null when it has none.
BlockFp8Attr getBlockFp8(Type type);
/// True for a statically shaped tensor that is either bf16/f16/f32 without an
/// encoding, or f8E4M3FN with a #moe.block_fp8 encoding.
bool isWeightType(Type type);
/// True for a statically shaped bf16/f16/f32 tensor without an encoding.
bool isUnquantizedWeightType(Type type);
} // namespace mlir::moe

#define GET_OP_CLASSES
#include "moec/Dialect/Moe/IR/MoeOps.h.inc"

#endif // MOEC_DIALECT_MOE_IR_MOEDIALECT_H
