//===- InitAll.cpp - register moec's dialects and passes ------------------===//

#include "moec/InitAll.h"

#include "moec/Codegen/PTX.h"
#include "moec/Dialect/Moe/IR/MoeDialect.h"
#include "moec/Transforms/Passes.h"
#include "moec/Transforms/Pipelines.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

void moec::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<mlir::moe::MoeDialect, mlir::func::FuncDialect,
                  mlir::tensor::TensorDialect>();
  ptx::registerPtxDialects(registry);
}

void moec::registerAllPasses() {
  // The registries refuse a second registration of a name: run once.
  static bool registered = [] {
    mlir::moe::registerMoePasses();
    mlir::moe::registerCompilePipeline(); // moe-compile
    // Upstream passes moec's pipelines are built from.
    mlir::registerTransformsPasses(); // canonicalize, cse, ...
    mlir::registerConversionPasses(); // convert-gpu-to-nvvm, convert-scf-to-cf, ...
    return true;
  }();
  (void)registered;
}
