//===- PTX.h - GPU kernels in MLIR to PTX text through LLVM NVPTX -*- C++ -*-===//
//
// The ahead-of-time PTX path: a kernel written in MLIR's gpu and nvvm
// dialects (plus arith/scf/llvm for its body) is lowered to the LLVM dialect,
// translated to LLVM IR, optimised, and printed as PTX by LLVM's NVPTX
// backend. No CUDA toolkit is needed to generate; `ptxas` only validates.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CODEGEN_PTX_H
#define MOEC_CODEGEN_PTX_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>

namespace mlir {
class DialectRegistry;
class MLIRContext;
} // namespace mlir

namespace moec::ptx {

/// The GPU architectures moec generates PTX for.
llvm::ArrayRef<llvm::StringRef> supportedChips();

/// Launch geometry of a generated kernel, for the plan's kernel modules.
struct KernelInfo {
  std::string entry;           ///< symbol name in the PTX
  unsigned blockDimX = 0;      ///< threads per block
  std::string gridDescription; ///< how the grid is sized, e.g. "rows"
};

/// Registers the dialects and LLVM IR translations the PTX path needs.
void registerPtxDialects(mlir::DialectRegistry &registry);

/// Lowers every gpu.module in `module` to PTX for `chip` (e.g. "sm_90a",
/// "sm_80") and returns the PTX text of the single gpu.module. The module is
/// lowered in place.
llvm::Expected<std::string> translateToPtx(mlir::ModuleOp module,
                                           llvm::StringRef chip);

/// Builds the row-wise fp32 RMSNorm kernel in the gpu + nvvm dialects:
/// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w, one warp per row.
/// Arguments: (x, w, out : !llvm.ptr<1>, cols : i32, eps : f32).
mlir::OwningOpRef<mlir::ModuleOp> buildRmsNormKernel(mlir::MLIRContext &ctx);

/// Launch information for the kernel buildRmsNormKernel produces.
KernelInfo rmsNormKernelInfo();

/// Convenience: builds the RMSNorm kernel and returns its PTX for `chip`.
llvm::Expected<std::string> emitRmsNormPtx(llvm::StringRef chip);

} // namespace moec::ptx

#endif // MOEC_CODEGEN_PTX_H
