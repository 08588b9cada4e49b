//===- moec-opt.cpp - mlir-opt with the moe dialect and moec passes --------===//

#include "moec/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  moec::registerAllDialects(registry);
  moec::registerAllPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "moec-opt: the moe dialect, moec passes and the upstream "
                  "dialects they use\n",
      registry));
}
