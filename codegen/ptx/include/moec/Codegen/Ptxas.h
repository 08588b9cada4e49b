//===- Ptxas.h - the CUDA toolkit's ptxas: assemble and report -*- C++ -*-===//
//
// moec generates PTX with LLVM alone; the CUDA toolkit's `ptxas`, when it is
// installed, assembles that PTX into a cubin for the plan and reports each
// kernel's resources (registers, shared memory, spills). Nothing here is needed
// to generate PTX.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CODEGEN_PTXAS_H
#define MOEC_CODEGEN_PTXAS_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moec::ptx {

/// ptxas: $CUDA_HOME/bin/ptxas, then PATH, then /usr/local/cuda/bin/ptxas.
std::optional<std::string> findPtxas();

/// What `ptxas -v` reported for one kernel.
struct KernelResources {
  std::string name;
  unsigned registers = 0;
  uint64_t sharedBytes = 0;
  uint64_t stackBytes = 0;
  uint64_t spillStoreBytes = 0;
  uint64_t spillLoadBytes = 0;
};

/// The result of assembling one PTX module.
struct PtxasResult {
  std::vector<uint8_t> cubin;
  std::vector<KernelResources> kernels; ///< in ptxas's order
  std::string version;                  ///< e.g. "13.0.88"
  std::string log;                      ///< ptxas -v output
};

/// Parses the per-kernel lines of `ptxas -v` output.
std::vector<KernelResources> parsePtxasLog(llvm::StringRef log);

/// Assembles `ptx` for `chip` with `ptxas -v`; fails with ptxas's messages.
llvm::Expected<PtxasResult> assemblePtx(llvm::StringRef ptxas, llvm::StringRef ptx,
                                        llvm::StringRef chip);

} // namespace moec::ptx

#endif // MOEC_CODEGEN_PTXAS_H
