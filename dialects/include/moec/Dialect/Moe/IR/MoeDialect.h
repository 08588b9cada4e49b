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
/// Op attribute (a TypeAttr) on a step op with weight operands. bf16
/// (moe-bf16-activations): its matrix products round their input activations to
/// bf16 (nearest even) and multiply the rounded values with fp32 sums.
/// f8E4M3FN (moe-fp8-activations): they quantize their input per token and 128
/// columns to e4m3 with a scale, as DeepSeek's FP8 GEMM does (spec section 3).
inline constexpr llvm::StringLiteral kActivationsAttrName = "moe.activations";

/// Whether `op` is a step op whose matrix products read weights (linear, logits,
/// head_linear, expanded_attention, the SwiGLU MLPs and routed experts): the ops
/// kActivationsAttrName may annotate. The router's product is not one of them.
bool multipliesWeights(Operation *op);

/// The FP8 block quantization of a weight type, or null when it has none.
BlockFp8Attr getBlockFp8(Type type);
/// The scale block of a block-quantized weight type, FP8 (#moe.block_fp8) or
/// int8 (#moe.block_int8); false (0 x 0) when the type has none.
struct ScaleBlock {
  int64_t rows = 0, cols = 0;
  bool int8 = false; ///< #moe.block_int8 (i8 codes), else #moe.block_fp8
  explicit operator bool() const { return rows > 0; }
  int64_t getRows() const { return rows; }
  int64_t getCols() const { return cols; }
};
ScaleBlock getScaleBlock(Type type);
/// True for a statically shaped tensor that is either bf16/f16/f32 without an
/// encoding, f8E4M3FN with a #moe.block_fp8 encoding, or i8 with #moe.block_int8.
bool isWeightType(Type type);
/// True for a statically shaped bf16/f16/f32 tensor without an encoding.
bool isUnquantizedWeightType(Type type);
} // namespace mlir::moe

#define GET_OP_CLASSES
#include "moec/Dialect/Moe/IR/MoeOps.h.inc"

#endif // MOEC_DIALECT_MOE_IR_MOEDIALECT_H
