//===- CudaDriver.h - the CUDA driver API, loaded with dlopen ----*- C++ -*-===//
//
// The runtime never links CUDA: the driver (libcuda.so.1, installed with the
// NVIDIA driver) is opened at run time and the few entry points the CUDA backend
// uses are looked up by name. The declarations below are the driver API's own
// C ABI (cuda.h, CUDA 12/13; the _v2 entry points are the 64-bit ones cuda.h
// maps its names to), restated so that the runtime builds on machines without
// the CUDA toolkit.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_CUDA_CUDADRIVER_H
#define MOEC_RUNTIME_CUDA_CUDADRIVER_H

#include "moec/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace moec::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUgraph = struct CUgraph_st *;
using CUgraphExec = struct CUgraphExec_st *;
using CUevent = struct CUevent_st *;

/// cuda.h's CUtensorMap: 128 opaque bytes (TMA descriptors, CUDA 12 and newer).
struct alignas(128) CUtensorMap {
  unsigned long long opaque[16];
};

inline constexpr CUresult CUDA_SUCCESS = 0;
// cuTensorMapEncodeTiled's enums, the values moec passes (cuda.h).
inline constexpr int CU_TENSOR_MAP_DATA_TYPE_UINT8 = 0;
inline constexpr int CU_TENSOR_MAP_INTERLEAVE_NONE = 0;
inline constexpr int CU_TENSOR_MAP_SWIZZLE_NONE = 0;
inline constexpr int CU_TENSOR_MAP_L2_PROMOTION_L2_128B = 2;
inline constexpr int CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0; // out of bounds reads zero
inline constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
inline constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
inline constexpr unsigned CU_STREAM_NON_BLOCKING = 1;
inline constexpr int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;

/// The driver entry points the CUDA backend calls.
struct Driver {
  CUresult (*cuInit)(unsigned flags) = nullptr;
  CUresult (*cuDriverGetVersion)(int *version) = nullptr;
  CUresult (*cuDeviceGetCount)(int *count) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice *device, int ordinal) = nullptr;
  CUresult (*cuDeviceGetName)(char *name, int len, CUdevice device) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *ctx, CUdevice device) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext ctx) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr *ptr, size_t bytes) = nullptr;      // cuMemAlloc_v2
  CUresult (*cuMemFree)(CUdeviceptr ptr) = nullptr;                      // cuMemFree_v2
  CUresult (*cuMemsetD8)(CUdeviceptr ptr, unsigned char value, size_t n) = nullptr; // _v2
  CUresult (*cuMemcpyHtoD)(CUdeviceptr dst, const void *src, size_t n) = nullptr;  // _v2
  CUresult (*cuMemcpyDtoH)(void *dst, CUdeviceptr src, size_t n) = nullptr;        // _v2
  CUresult (*cuMemsetD8Async)(CUdeviceptr ptr, unsigned char value, size_t n,
                              CUstream stream) = nullptr;
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t n,
                                CUstream stream) = nullptr; // _v2
  CUresult (*cuMemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t n,
                                CUstream stream) = nullptr; // _v2
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t n,
                                CUstream stream) = nullptr; // _v2
  CUresult (*cuModuleLoadData)(CUmodule *module, const void *image) = nullptr;
  CUresult (*cuModuleUnload)(CUmodule module) = nullptr;
  CUresult (*cuModuleGetFunction)(CUfunction *fn, CUmodule module, const char *name) = nullptr;
  CUresult (*cuLaunchKernel)(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                             unsigned by, unsigned bz, unsigned sharedBytes, CUstream stream,
                             void **params, void **extra) = nullptr;
  CUresult (*cuStreamCreate)(CUstream *stream, unsigned flags) = nullptr;
  CUresult (*cuStreamDestroy)(CUstream stream) = nullptr;   // cuStreamDestroy_v2
  CUresult (*cuStreamSynchronize)(CUstream stream) = nullptr;
  // CUDA graphs (decode replayed from one capture).
  CUresult (*cuStreamBeginCapture)(CUstream stream, int mode) = nullptr; // _v2
  CUresult (*cuStreamEndCapture)(CUstream stream, CUgraph *graph) = nullptr;
  CUresult (*cuGraphInstantiate)(CUgraphExec *exec, CUgraph graph,
                                 unsigned long long flags) = nullptr; // WithFlags
  CUresult (*cuGraphLaunch)(CUgraphExec exec, CUstream stream) = nullptr;
  CUresult (*cuGraphExecDestroy)(CUgraphExec exec) = nullptr;
  CUresult (*cuGraphDestroy)(CUgraph graph) = nullptr;
  // Timing and device copies (moec_gpu_bench).
  CUresult (*cuMemcpyDtoD)(CUdeviceptr dst, CUdeviceptr src, size_t n) = nullptr; // _v2
  CUresult (*cuEventCreate)(CUevent *event, unsigned flags) = nullptr;
  CUresult (*cuEventRecord)(CUevent event, CUstream stream) = nullptr;
  CUresult (*cuEventSynchronize)(CUevent event) = nullptr;
  CUresult (*cuEventElapsedTime)(float *ms, CUevent start, CUevent end) = nullptr;
  CUresult (*cuEventDestroy)(CUevent event) = nullptr; // _v2
  /// TMA descriptors (plan KernelEntry.tma_box); null on drivers before CUDA 12,
  /// where the kernels that need one are refused.
  CUresult (*cuTensorMapEncodeTiled)(CUtensorMap *map, int dtype, unsigned rank, void *address,
                                     const unsigned long long *dims,
                                     const unsigned long long *strides, const unsigned *box,
                                     const unsigned *elementStrides, int interleave, int swizzle,
                                     int l2Promotion, int oobFill) = nullptr;
  CUresult (*cuGetErrorName)(CUresult error, const char **name) = nullptr;
  CUresult (*cuGetErrorString)(CUresult error, const char **text) = nullptr;

  /// "CUDA_ERROR_OUT_OF_MEMORY: out of memory" for a driver result.
  std::string describe(CUresult result) const;
  /// A Status for a failed call: "cuda: <what>: <describe(result)>"; ok on success.
  Status check(CUresult result, const char *what) const;
};

/// The driver, opened once per process. Fails (with one line that says why:
/// no libcuda.so.1, a symbol missing, cuInit failing) on machines without an
/// NVIDIA driver or device.
Status openDriver(const Driver **out);

/// The kernel-module target for a device of compute capability major.minor:
/// "sm_90a" for 9.0 (its arch-specific features run only there), "sm_80" for
/// every other 8.x and newer device (sm_80 PTX and cubins run on them), empty
/// below 8.0.
std::string targetForComputeCapability(int major, int minor);

} // namespace moec::cuda

#endif // MOEC_RUNTIME_CUDA_CUDADRIVER_H
