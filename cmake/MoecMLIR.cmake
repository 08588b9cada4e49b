# Finds Debian's packaged LLVM/MLIR 22 and sets up TableGen and lit for the compiler side.
# Only included when MOEC_BUILD_COMPILER is ON.

set(MOEC_LLVM_ROOT "/usr/lib/llvm-22" CACHE PATH "Root of the LLVM/MLIR 22 installation")
if(NOT MLIR_DIR)
  set(MLIR_DIR "${MOEC_LLVM_ROOT}/lib/cmake/mlir")
endif()
# Each Debian package of LLVM/MLIR 22 the build and the tests use, checked first so that
# a missing one is named (cmake/MoecRequire.cmake): llvm-22-dev (libLLVM.so, LLVMConfig),
# mlir-22-tools (mlir-tblgen, run by the build), llvm-22-tools (FileCheck, not, lit).
include(${CMAKE_CURRENT_LIST_DIR}/MoecRequire.cmake)
moec_find_library(MOEC_LIBLLVM LLVM HINTS "${MOEC_LLVM_ROOT}/lib" NO_DEFAULT_PATH
                  DEBIAN llvm-22-dev WHAT "LLVM 22 (libLLVM.so)")
moec_find_program(MOEC_MLIR_TBLGEN mlir-tblgen HINTS "${MOEC_LLVM_ROOT}/bin" NO_DEFAULT_PATH
                  DEBIAN mlir-22-tools WHAT "mlir-tblgen (MLIR 22)")
moec_find_program(MOEC_FILECHECK FileCheck HINTS "${MOEC_LLVM_ROOT}/bin" NO_DEFAULT_PATH
                  DEBIAN llvm-22-tools WHAT "FileCheck (LLVM 22)")
moec_find_package(MLIR CONFIG DEBIAN libmlir-22-dev WHAT "MLIR 22 (MLIRConfig.cmake)")
if(NOT LLVM_VERSION_MAJOR EQUAL 22)
  message(FATAL_ERROR " moec needs LLVM/MLIR 22, found ${LLVM_PACKAGE_VERSION} at ${MLIR_DIR}: "
                      "install the Debian packages llvm-22-dev libmlir-22-dev (scripts/setup.sh installs everything)")
endif()
message(STATUS "moec: MLIR from ${MLIR_DIR}, LLVM ${LLVM_PACKAGE_VERSION}")

list(APPEND CMAKE_MODULE_PATH "${MLIR_CMAKE_DIR}" "${LLVM_CMAKE_DIR}")
set(LLVM_RUNTIME_OUTPUT_INTDIR ${CMAKE_BINARY_DIR}/bin)
set(LLVM_LIBRARY_OUTPUT_INTDIR ${CMAKE_BINARY_DIR}/lib)
set(MLIR_BINARY_DIR ${CMAKE_BINARY_DIR})
include(TableGen)
include(AddLLVM)
include(AddMLIR)
include(HandleLLVMOptions)

include_directories(SYSTEM ${LLVM_INCLUDE_DIRS} ${MLIR_INCLUDE_DIRS})
include_directories(
  ${PROJECT_SOURCE_DIR}/dialects/include ${PROJECT_BINARY_DIR}/dialects/include
  ${PROJECT_SOURCE_DIR}/compiler/include ${PROJECT_BINARY_DIR}/compiler/include
  ${PROJECT_SOURCE_DIR}/codegen/ptx/include)
link_directories(${LLVM_BUILD_LIBRARY_DIR})
separate_arguments(MOEC_LLVM_DEFINITIONS NATIVE_COMMAND ${LLVM_DEFINITIONS})
add_definitions(${MOEC_LLVM_DEFINITIONS})

# Packaged LLVM points LLVM_EXTERNAL_LIT at a path that does not exist; use the package's lit.
if(NOT LLVM_EXTERNAL_LIT OR NOT EXISTS "${LLVM_EXTERNAL_LIT}")
  set(LLVM_EXTERNAL_LIT "${MOEC_LLVM_ROOT}/bin/lit" CACHE FILEPATH "lit" FORCE)
endif()

# Link against the shared libMLIR.so / libLLVM.so (short link times, one copy at run time).
set(MOEC_MLIR_LIBS MLIR)
set(MOEC_LLVM_LIBS LLVM)
