//===- Passes.h - moec transformation passes ---------------------*- C++ -*-===//
#ifndef MOEC_TRANSFORMS_PASSES_H
#define MOEC_TRANSFORMS_PASSES_H

#include "moec/Dialect/Moe/IR/MoeDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::moe {
#define GEN_PASS_DECL
#include "moec/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "moec/Transforms/Passes.h.inc"
} // namespace mlir::moe

#endif // MOEC_TRANSFORMS_PASSES_H
