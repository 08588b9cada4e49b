//===- Import.h - a checkpoint as a module in the moe dialect ----*- C++ -*-===//
//
// Turns an opened Hugging Face DeepSeek checkpoint into one function,
// @forward, in the moe dialect (spec section 6):
//
//   func.func @forward(%tokens: tensor<?xi32>, %positions: tensor<?xi32>,
//                      %seq_ids: tensor<?xi32>, %cache0: !moe.latent_cache<C, R>,
//                      ...) -> (tensor<?xVxf32>, !moe.latent_cache<C, R>, ...)
//
// Weights are referenced by their checkpoint names (moe.weight); an FP8
// weight's type carries its block quantization (#moe.block_fp8<br, bc>) and
// its moe.weight names the scale tensor. No tensor data is read. The module
// carries the config as `moe.model_config` (a dictionary of the config.json
// values of the plan's ModelConfig table) and the checkpoint directory as
// `moe.source`. Nothing target-specific is produced (DESIGN.md rule 3).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_IMPORT_H
#define MOEC_CHECKPOINT_IMPORT_H

#include "moec/checkpoint/Checkpoint.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"

namespace mlir {
class MLIRContext;
} // namespace mlir

namespace moec::checkpoint {

/// Name of the imported forward function.
inline constexpr const char *ForwardFunctionName = "forward";

/// Builds the moe-dialect module of `ckpt`. The checkpoint must have passed
/// validateCheckpoint(); a tensor that is still missing is reported as an
/// error naming the checkpoint file. `ctx` must have the moe and func
/// dialects loaded.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importCheckpoint(mlir::MLIRContext &ctx, const Checkpoint &ckpt);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_IMPORT_H
