//===- KernelFile.h - GPU kernels saved where the compiler is ---*- C++ -*-===//
//
// The GPU machine the device tool lends has no MLIR, so the kernels its checks run
// are generated where the compiler is and carried there in a file (tests/gpu/check.sh
// --prepare): moec_gpu_bench --save-kernels for the microbenchmarks, and the backend
// conformance test with MOEC_CONFORMANCE_KERNELS for its cases. A file holds, by name
// (e.g. "sm_90a/linear_7168x2048"), each set's target, PTX and launch entries, as
// JSON:
//   {"format": "moec-kernels 1",
//    "kernels": {"<name>": {"target": "sm_90a", "ptx": "...", "entries": [{...}]}}}
// Each entry has the plan.fbs KernelEntry fields a launch reads.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TESTS_RUNTIME_KERNELFILE_H
#define MOEC_TESTS_RUNTIME_KERNELFILE_H

#include "moec/runtime/Status.h"
#include "moec/schema/plan_generated.h"

#include <map>
#include <string>
#include <vector>

namespace moec::testing {

/// One set of kernels: what a step (or a one-step plan) runs on `target`.
struct SavedKernels {
  std::string target; ///< "sm_90a", "sm_80"
  std::string ptx;
  std::vector<plan::KernelEntryT> entries;
};

/// Kernel sets by name.
using KernelFile = std::map<std::string, SavedKernels>;

/// Writes `kernels` to `path` (atomically).
Status writeKernelFile(const std::string &path, const KernelFile &kernels);
/// Reads a file writeKernelFile wrote; a bad file is refused naming it.
Status readKernelFile(const std::string &path, KernelFile *kernels);

} // namespace moec::testing

#endif // MOEC_TESTS_RUNTIME_KERNELFILE_H
