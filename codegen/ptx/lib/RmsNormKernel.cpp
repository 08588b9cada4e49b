//===- RmsNormKernel.cpp - row-wise fp32 RMSNorm written in gpu + nvvm -----===//

#include "moec/Codegen/PTX.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

using namespace mlir;

namespace moec::ptx {

/// One warp per row. Each lane accumulates x^2 over a strided slice of the
/// row, a butterfly of nvvm.shfl.sync sums the warp, and every lane then
/// scales its slice. sqrt.rn and div.rn are IEEE-rounded (no libdevice:
/// the NVPTX intrinsic is called directly, as convert-gpu-to-nvvm would
/// otherwise route sqrt to libdevice),
/// so the result matches the CPU kernel to rounding.
static constexpr const char kRmsNormSource[] = R"mlir(
module attributes {gpu.container_module} {
  gpu.module @moec_kernels {
    gpu.func @moec_rms_norm_f32(%x: !llvm.ptr<1>, %w: !llvm.ptr<1>, %out: !llvm.ptr<1>,
                                %cols: i32, %eps: f32) kernel
        attributes {known_block_size = array<i32: 32, 1, 1>} {
      %rowIdx = gpu.block_id x
      %laneIdx = gpu.thread_id x
      %row = arith.index_cast %rowIdx : index to i64
      %lane = arith.index_cast %laneIdx : index to i64
      %c32 = arith.constant 32 : i64
      %zero = arith.constant 0.0 : f32
      %ncols = arith.extsi %cols : i32 to i64
      %base = arith.muli %row, %ncols : i64
      %partial = scf.for %j = %lane to %ncols step %c32 iter_args(%acc = %zero) -> (f32) : i64 {
        %i = arith.addi %base, %j : i64
        %p = llvm.getelementptr inbounds %x[%i] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, f32
        %v = llvm.load %p : !llvm.ptr<1> -> f32
        %acc2 = llvm.intr.fma(%v, %v, %acc) : (f32, f32, f32) -> f32
        scf.yield %acc2 : f32
      }
      %all = arith.constant -1 : i32
      %clamp = arith.constant 31 : i32
      %o16 = arith.constant 16 : i32
      %o8 = arith.constant 8 : i32
      %o4 = arith.constant 4 : i32
      %o2 = arith.constant 2 : i32
      %o1 = arith.constant 1 : i32
      %r16 = nvvm.shfl.sync bfly %all, %partial, %o16, %clamp : f32 -> f32
      %s16 = arith.addf %partial, %r16 : f32
      %r8 = nvvm.shfl.sync bfly %all, %s16, %o8, %clamp : f32 -> f32
      %s8 = arith.addf %s16, %r8 : f32
      %r4 = nvvm.shfl.sync bfly %all, %s8, %o4, %clamp : f32 -> f32
      %s4 = arith.addf %s8, %r4 : f32
      %r2 = nvvm.shfl.sync bfly %all, %s4, %o2, %clamp : f32 -> f32
      %s2 = arith.addf %s4, %r2 : f32
      %r1 = nvvm.shfl.sync bfly %all, %s2, %o1, %clamp : f32 -> f32
      %sum = arith.addf %s2, %r1 : f32
      %fcols = arith.sitofp %cols : i32 to f32
      %mean = arith.divf %sum, %fcols : f32
      %var = arith.addf %mean, %eps : f32
      %root = llvm.call_intrinsic "llvm.nvvm.sqrt.rn.f"(%var) : (f32) -> f32
      %one = arith.constant 1.0 : f32
      %inv = arith.divf %one, %root : f32
      scf.for %j = %lane to %ncols step %c32 : i64 {
        %i = arith.addi %base, %j : i64
        %px = llvm.getelementptr inbounds %x[%i] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, f32
        %pw = llvm.getelementptr inbounds %w[%j] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, f32
        %po = llvm.getelementptr inbounds %out[%i] : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, f32
        %xv = llvm.load %px : !llvm.ptr<1> -> f32
        %wv = llvm.load %pw : !llvm.ptr<1> -> f32
        %n = arith.mulf %xv, %inv : f32
        %y = arith.mulf %n, %wv : f32
        llvm.store %y, %po : f32, !llvm.ptr<1>
      }
      gpu.return
    }
  }
}
)mlir";

OwningOpRef<ModuleOp> buildRmsNormKernel(MLIRContext &ctx) {
  return parseSourceString<ModuleOp>(kRmsNormSource, &ctx, "moec_rms_norm.mlir");
}

KernelInfo rmsNormKernelInfo() {
  return KernelInfo{"moec_rms_norm_f32", 32, "one block per row"};
}

} // namespace moec::ptx
