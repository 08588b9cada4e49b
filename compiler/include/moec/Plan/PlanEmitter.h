//===- PlanEmitter.h - translate a moe module into a plan file ---*- C++ -*-===//
//
// The last step of `moec compile`: the @prefill and @decode functions of a
// moe-dialect module, lowered by the pipeline to step-level ops, become the
// entry points, steps, buffers, states and weights of a plan
// (runtime/schema/plan.fbs). The translation is a table from step-level op to
// plan step (docs/pipeline.md); any other op is an error naming it. Weight bytes
// come from a WeightSource, nothing else from the frontend. Activation memory is
// planned by liveness for `maxTokens` tokens.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_PLAN_PLANEMITTER_H
#define MOEC_PLAN_PLANEMITTER_H

#include "moec/Plan/WeightSource.h"
#include "moec/schema/plan_generated.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <functional>
#include <string>

namespace moec {

/// Where the plan's weights live.
enum class WeightPlacement {
  Embed,    ///< copied into the plan: one self-contained file
  External, ///< referenced in the checkpoint's safetensors files
};

/// Options of the plan translation.
struct PlanEmitOptions {
  WeightPlacement weights = WeightPlacement::Embed; ///< see WeightPlacement
  int64_t maxTokens = 1024;   ///< tokens one forward call may carry
  std::string pipeline;       ///< recorded in the plan's provenance
  /// Called while weights are written: (bytes done, bytes total).
  std::function<void(uint64_t, uint64_t)> progress;
  /// Called with the plan before it is written, to add what does not come from the
  /// module (the driver adds the checkpoint's tokenizer and the GPU kernels). A
  /// failure stops the compile before anything is written.
  std::function<llvm::Error(plan::PlanT &)> finishPlan;
};

/// What the emitted plan holds, for the driver's summary line.
struct PlanSummary {
  uint64_t steps = 0;           ///< plan steps
  uint64_t buffers = 0;         ///< activation buffers
  uint64_t weights = 0;         ///< weights (block scales included)
  uint64_t weightBytes = 0;     ///< bytes of all weights
  uint64_t arenaBytes = 0;      ///< activation arena for maxTokens
  uint64_t kvBytesPerToken = 0; ///< state (KV cache) bytes per token, all layers
  /// With external weights: tensors copied into the plan anyway because their
  /// offset in the safetensors file is not a multiple of their element size.
  uint64_t embeddedAnyway = 0;
  /// Weights quantized while packed (moe.quantize_weight), and their source bytes.
  uint64_t quantized = 0;
  uint64_t quantizedSourceBytes = 0;
  double quantizeSeconds = 0; ///< wall time spent quantizing (while writing)
  /// Weights stacked for fusions (moe.concat_weights) from checkpoint tensors
  /// as they are (not quantized while packed), and their bytes: copies written
  /// into the plan, external placement or not.
  uint64_t stacked = 0;
  uint64_t stackedBytes = 0;
};

/// Writes the plan of `module` to `planPath` (atomically). Weight names resolve
/// in `weights`, which must stay valid until this returns.
llvm::Expected<PlanSummary> emitPlan(mlir::ModuleOp module,
                                     const WeightSource &weights,
                                     llvm::StringRef planPath,
                                     const PlanEmitOptions &options);

} // namespace moec

#endif // MOEC_PLAN_PLANEMITTER_H
