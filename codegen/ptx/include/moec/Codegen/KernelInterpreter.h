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
// What it does not check: the lowering to PTX (ptxas and the GPU check do) and
// anything about speed.
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

/// Runs `kernel` over `grid` blocks of `block` threads (block x a multiple of
/// 32, y = z = 1). `args` holds one value per kernel argument, each widened to 64
/// bits (pointers are host addresses).
llvm::Error interpretKernel(mlir::gpu::GPUFuncOp kernel, std::array<uint32_t, 3> grid,
                            std::array<uint32_t, 3> block, llvm::ArrayRef<uint64_t> args);

} // namespace moec::ptx

#endif // MOEC_CODEGEN_KERNELINTERPRETER_H
