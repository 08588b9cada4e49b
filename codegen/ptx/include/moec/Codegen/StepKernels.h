//===- StepKernels.h - GPU kernels generated for a plan's steps -*- C++ -*-===//
//
// The GPU half of `moec compile --target=sm_90a,sm_80`: for every step of a plan
// whose kind has a generator, one kernel in the gpu + nvvm dialects, specialised
// to the step's static shapes, dtypes and attributes (every constant baked in),
// then lowered to PTX through LLVM's NVPTX backend (PTX.h). Steps with the same
// specialisation share one kernel. The plan's KernelModule for the target lists,
// per step, the kernel and its launch geometry.
//
// Kernel arguments (the contract with runtime/cuda, also in plan.fbs): one
// global pointer per operand buffer, per result buffer and per weight (a
// block-quantized weight is followed by its block-scale weight), in that
// order, then the i32 token count T of the call. The grid's x dimension is
// ceil(T / tokens_per_block) when tokens_per_block > 0.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CODEGEN_STEPKERNELS_H
#define MOEC_CODEGEN_STEPKERNELS_H

#include "moec/schema/plan_generated.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec::ptx {

/// The kernels built for one plan and one target.
struct StepKernelModule {
  /// One gpu.module holding every distinct kernel (before lowering).
  mlir::OwningOpRef<mlir::ModuleOp> module;
  /// One entry per step that has a kernel (KernelEntry.step set), in step order.
  std::vector<plan::KernelEntryT> entries;
  /// Greedy decoding on the device (KernelModule.argmax; step -1): empty when no
  /// step has a kernel or the plan has no f32 logits.
  std::vector<plan::KernelEntryT> argmax;
  /// Steps no generator covers yet, in step order.
  std::vector<uint32_t> uncovered;
  /// Distinct kernels in `module`.
  size_t distinctKernels = 0;
};

/// Whether steps of `kind` have a kernel generator (for their dtypes, see
/// stepKernelGap for the rest of the conditions).
bool hasStepKernelGenerator(plan::StepKind kind);

/// Builds the kernels of every step of `plan` for `chip` ("sm_90a" or "sm_80").
/// Fails only on a malformed plan (an index out of range).
llvm::Expected<StepKernelModule> buildStepKernels(mlir::MLIRContext &ctx,
                                                  const plan::PlanT &plan,
                                                  llvm::StringRef chip);

/// The PTX of a plan's kernels for one target, ready for the plan.
struct StepKernelPtx {
  std::string ptx;
  std::vector<plan::KernelEntryT> entries;
  std::vector<plan::KernelEntryT> argmax; ///< KernelModule.argmax

  std::vector<uint32_t> uncovered;
  size_t distinctKernels = 0;
};

/// buildStepKernels, lowered to PTX (in its own MLIRContext).
llvm::Expected<StepKernelPtx> generateStepKernelPtx(const plan::PlanT &plan,
                                                    llvm::StringRef chip);

/// One distinct kernel's own PTX module.
struct KernelPtx {
  std::string name;
  std::string ptx;
  std::vector<uint32_t> steps; ///< the steps it implements
};

/// Like generateStepKernelPtx, but each distinct kernel in its own PTX module
/// (moec emit-ptx). `*uncovered` receives the steps without a kernel.
llvm::Expected<std::vector<KernelPtx>>
generateEachKernelPtx(const plan::PlanT &plan, llvm::StringRef chip,
                      std::vector<uint32_t> *uncovered);

} // namespace moec::ptx

#endif // MOEC_CODEGEN_STEPKERNELS_H
