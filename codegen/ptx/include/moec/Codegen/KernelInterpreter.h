//===- KernelInterpreter.h - run generated kernels on the CPU ---*- C++ -*-===//
//
// The check of a kernel's logic that needs no GPU: the very gpu.func the
// generators build (before it is lowered to PTX) is interpreted on the CPU,
// warp by warp, its 32 lanes in lockstep with an active mask (loops and
// branches that lanes take differently are masked, as the hardware does), with
// host memory standing for global memory. Warp shuffles exchange lane values;
// the NVVM intrinsics the generators call are evaluated in IEEE arithmetic
// (ex2.approx as exp2f, the e4m3 conversions exactly). It covers the ops the
// step-kernel generators emit; any other op is an error naming it.
//
// Kernels marked moec.warpgroup (the wgmma GEMMs) run a whole 128-thread block
// in lockstep instead, with the block's shared memory (the module's address
// space 3 globals), barriers, mbarriers whose phases complete as the copies do
// (all at once: a wait on a phase that can never complete is an error), TMA tensor
// copies (EmulatedTensorMap) and wgmma from shared-memory descriptors.
//
// What it does not check: the lowering to PTX (ptxas and the GPU check do), the
// driver's tensor-map encoding, the tensor cores' internal accumulation order and
// precision, and anything about speed.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CODEGEN_KERNELINTERPRETER_H
#define MOEC_CODEGEN_KERNELINTERPRETER_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <array>
#include <cstdint>

namespace moec::ptx {

/// What the interpreter's cp.async.bulk.tensor reads at a tensor map's address:
/// the driver's CUtensorMap encoding is opaque, so a backend that runs kernels
/// through the interpreter writes this in its place (plan.fbs KernelEntry.tma_box:
/// 2-D, bytes, no swizzle, out-of-bounds elements zero).
struct EmulatedTensorMap {
  uint64_t base = 0;          ///< host address of element (0, 0)
  uint64_t dims[2] = {0, 0};  ///< elements: innermost (columns), then rows
  uint64_t rowStride = 0;     ///< bytes from one row to the next
  uint32_t box[2] = {0, 0};   ///< the box a copy moves: columns, rows
};

/// Runs `kernel` over `grid` blocks of `block` threads (block x a multiple of
/// 32, y = z = 1). `args` holds one value per kernel argument, each widened to 64
/// bits (pointers are host addresses).
llvm::Error interpretKernel(mlir::gpu::GPUFuncOp kernel, std::array<uint32_t, 3> grid,
                            std::array<uint32_t, 3> block, llvm::ArrayRef<uint64_t> args);

} // namespace moec::ptx

#endif // MOEC_CODEGEN_KERNELINTERPRETER_H
