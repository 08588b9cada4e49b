//===- CudaDriver.cpp - open libcuda.so.1 and look up the driver API ------===//

#include "CudaDriver.h"

#include <dlfcn.h>

#include <mutex>

namespace moec::cuda {

std::string Driver::describe(CUresult result) const {
  const char *name = nullptr, *text = nullptr;
  if (cuGetErrorName)
    cuGetErrorName(result, &name);
  if (cuGetErrorString)
    cuGetErrorString(result, &text);
  std::string out = name ? name : "CUDA error " + std::to_string(result);
  if (text)
    out += std::string(": ") + text;
  return out;
}

Status Driver::check(CUresult result, const char *what) const {
  if (result == CUDA_SUCCESS)
    return Status();
  return Status::error("cuda: %s: %s", what, describe(result).c_str());
}

namespace {

/// Looks `name` up in `handle` into `fn`; false (with *missing set) if absent.
template <typename Fn>
bool resolve(void *handle, const char *name, Fn *fn, std::string *missing) {
  void *symbol = ::dlsym(handle, name);
  if (!symbol) {
    if (missing->empty())
      *missing = name;
    return false;
  }
  *fn = reinterpret_cast<Fn>(symbol);
  return true;
}

Status load(Driver *d) {
  void *handle = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = ::dlerror();
    return Status::error("cuda: cannot load libcuda.so.1 (is the NVIDIA driver installed?): %s",
                         why ? why : "unknown error");
  }
  std::string missing;
  resolve(handle, "cuInit", &d->cuInit, &missing);
  resolve(handle, "cuDriverGetVersion", &d->cuDriverGetVersion, &missing);
  resolve(handle, "cuDeviceGetCount", &d->cuDeviceGetCount, &missing);
  resolve(handle, "cuDeviceGet", &d->cuDeviceGet, &missing);
  resolve(handle, "cuDeviceGetName", &d->cuDeviceGetName, &missing);
  resolve(handle, "cuDeviceGetAttribute", &d->cuDeviceGetAttribute, &missing);
  resolve(handle, "cuDevicePrimaryCtxRetain", &d->cuDevicePrimaryCtxRetain, &missing);
  resolve(handle, "cuDevicePrimaryCtxRelease_v2", &d->cuDevicePrimaryCtxRelease, &missing);
  resolve(handle, "cuCtxSetCurrent", &d->cuCtxSetCurrent, &missing);
  resolve(handle, "cuCtxSynchronize", &d->cuCtxSynchronize, &missing);
  resolve(handle, "cuMemAlloc_v2", &d->cuMemAlloc, &missing);
  resolve(handle, "cuMemFree_v2", &d->cuMemFree, &missing);
  resolve(handle, "cuMemsetD8_v2", &d->cuMemsetD8, &missing);
  resolve(handle, "cuMemcpyHtoD_v2", &d->cuMemcpyHtoD, &missing);
  resolve(handle, "cuMemcpyDtoH_v2", &d->cuMemcpyDtoH, &missing);
  resolve(handle, "cuMemsetD8Async", &d->cuMemsetD8Async, &missing);
  resolve(handle, "cuMemcpyHtoDAsync_v2", &d->cuMemcpyHtoDAsync, &missing);
  resolve(handle, "cuMemcpyDtoHAsync_v2", &d->cuMemcpyDtoHAsync, &missing);
  resolve(handle, "cuMemcpyDtoDAsync_v2", &d->cuMemcpyDtoDAsync, &missing);
  resolve(handle, "cuModuleLoadData", &d->cuModuleLoadData, &missing);
  resolve(handle, "cuModuleUnload", &d->cuModuleUnload, &missing);
  resolve(handle, "cuModuleGetFunction", &d->cuModuleGetFunction, &missing);
  resolve(handle, "cuLaunchKernel", &d->cuLaunchKernel, &missing);
  resolve(handle, "cuStreamCreate", &d->cuStreamCreate, &missing);
  resolve(handle, "cuStreamDestroy_v2", &d->cuStreamDestroy, &missing);
  resolve(handle, "cuStreamSynchronize", &d->cuStreamSynchronize, &missing);
  resolve(handle, "cuStreamBeginCapture_v2", &d->cuStreamBeginCapture, &missing);
  resolve(handle, "cuStreamEndCapture", &d->cuStreamEndCapture, &missing);
  resolve(handle, "cuGraphInstantiateWithFlags", &d->cuGraphInstantiate, &missing);
  resolve(handle, "cuGraphLaunch", &d->cuGraphLaunch, &missing);
  resolve(handle, "cuGraphExecDestroy", &d->cuGraphExecDestroy, &missing);
  resolve(handle, "cuGraphDestroy", &d->cuGraphDestroy, &missing);
  resolve(handle, "cuMemcpyDtoD_v2", &d->cuMemcpyDtoD, &missing);
  resolve(handle, "cuEventCreate", &d->cuEventCreate, &missing);
  resolve(handle, "cuEventRecord", &d->cuEventRecord, &missing);
  resolve(handle, "cuEventSynchronize", &d->cuEventSynchronize, &missing);
  // CUDA 13's cuda.h maps cuEventElapsedTime to _v2 (12.8 and newer drivers).
  if (!::dlsym(handle, "cuEventElapsedTime_v2") ||
      !resolve(handle, "cuEventElapsedTime_v2", &d->cuEventElapsedTime, &missing))
    resolve(handle, "cuEventElapsedTime", &d->cuEventElapsedTime, &missing);
  resolve(handle, "cuEventDestroy_v2", &d->cuEventDestroy, &missing);
  resolve(handle, "cuGetErrorName", &d->cuGetErrorName, &missing);
  resolve(handle, "cuGetErrorString", &d->cuGetErrorString, &missing);
  // Optional: TMA kernels are refused without it.
  d->cuTensorMapEncodeTiled = reinterpret_cast<decltype(d->cuTensorMapEncodeTiled)>(
      ::dlsym(handle, "cuTensorMapEncodeTiled"));
  if (!missing.empty())
    return Status::error("cuda: libcuda.so.1 has no %s (the driver is too old)",
                         missing.c_str());
  return d->check(d->cuInit(0), "cuInit");
}

} // namespace

Status openDriver(const Driver **out) {
  static Driver driver;
  static Status status;
  static std::once_flag once;
  std::call_once(once, [] { status = load(&driver); });
  if (!status.ok())
    return status;
  *out = &driver;
  return Status();
}

std::string targetForComputeCapability(int major, int minor) {
  if (major == 9 && minor == 0)
    return "sm_90a";
  if (major >= 8)
    return "sm_80";
  return "";
}

} // namespace moec::cuda
