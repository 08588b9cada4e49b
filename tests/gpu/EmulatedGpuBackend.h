//===- EmulatedGpuBackend.h - the plan's GPU kernels, run on the CPU -*- C++ -*-===//
//
// A test backend that executes a plan exactly as the cuda backend does (the
// kernels codegen/ptx generates for each step, in launch order, with
// KernelLaunch's arguments, weights copied once, scratch and weight tables in
// "device" memory) except that each kernel's gpu.func is interpreted on the CPU
// (KernelInterpreter.h) instead of being run from its PTX on a GPU. Registered as
// "emulated-sm_90a" and "emulated-sm_80": the two targets' kernels differ (FP8
// widening through cvt.rn.f16x2.e4m3x2 on sm_90a, an integer decode on sm_80).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TESTS_GPU_EMULATEDGPUBACKEND_H
#define MOEC_TESTS_GPU_EMULATEDGPUBACKEND_H

#include <cstdint>

namespace moec {
/// Registers "emulated-sm_90a" and "emulated-sm_80" (idempotent).
void registerEmulatedGpuBackends();
/// Launches of TMA kernels (KernelEntry.tma_box: the wgmma GEMMs) since the
/// process started, for tests that must see them run.
uint64_t emulatedTmaLaunches();
/// Launches of the routed experts' grouped-GEMM kernels (names with "_grouped_")
/// since the process started.
uint64_t emulatedGroupedLaunches();
/// Launches of greedy-decoding kernels (KernelModule.argmax) since the process
/// started.
uint64_t emulatedArgmaxLaunches();
/// Row ranges copied for prefix sharing (KvCache::share) since the process started.
uint64_t emulatedPrefixCopies();
} // namespace moec

#endif // MOEC_TESTS_GPU_EMULATEDGPUBACKEND_H
