//===- InitAll.h - register moec's dialects and passes -----------*- C++ -*-===//
#ifndef MOEC_INITALL_H
#define MOEC_INITALL_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace moec {
/// Registers the moe dialect and the upstream dialects moec's IR uses
/// (func, arith, tensor, scf, cf, gpu, nvvm, llvm) with their translations.
void registerAllDialects(mlir::DialectRegistry &registry);
/// Registers moec's passes, the moe-compile pipeline, and the upstream passes
/// its pipelines use. Safe to call more than once.
void registerAllPasses();
} // namespace moec

#endif // MOEC_INITALL_H
