//===- Backend.h - The device interface the executor runs on ----*- C++ -*-===//
//
// A backend owns a device's memory and runs plan steps on it. The executor is
// written against this interface only: the CPU backend (built-in kernels,
// runtime/cpu) registers itself here, and a CUDA backend (PTX from the plan's
// kernel modules, driver loaded with dlopen) will register the same way.
//
// Ownership: a backend is created for one Plan and borrows it; the Plan must
// outlive it. Memory from allocate() belongs to the caller until release().
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_BACKEND_H
#define MOEC_RUNTIME_BACKEND_H

#include "moec/runtime/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moec {

class Plan;

/// One sequence's rows of one layer of the latent KV cache, in device memory.
struct LatentKvSlot {
  float *latent = nullptr; ///< [capacity, kv_lora_rank]: normalised c
  float *rope = nullptr;   ///< [capacity, qk_rope_head_dim]: roped k_pe
  int64_t capacity = 0;    ///< rows allocated
};

/// A block of device memory.
struct DeviceBuffer {
  void *data = nullptr; ///< device address (a host pointer on the CPU backend)
  uint64_t bytes = 0;   ///< size
};

/// What one step needs at run time besides the plan.
struct StepLaunch {
  uint32_t step = 0;       ///< index in Plan.steps
  int64_t tokens = 0;      ///< T of this call (<= max_tokens)
  uint8_t *arena = nullptr; ///< device address of the activation arena
  /// Attention steps: `caches[layer * numSequences + seq]`.
  const LatentKvSlot *caches = nullptr;
  int32_t numSequences = 0; ///< sequences in the KV cache
};

/// Options given to a backend at creation.
struct BackendOptions {
  int threads = 0; ///< worker threads; <= 0 uses every core
};

/// A device that runs plan steps.
class Backend {
public:
  virtual ~Backend() = default;
  /// The registered name ("cpu").
  virtual const char *name() const = 0;
  /// Allocates `bytes` of zeroed device memory, 64-byte aligned.
  virtual Status allocate(uint64_t bytes, DeviceBuffer *out) = 0;
  /// Frees memory from allocate(); resets `buffer`.
  virtual void release(DeviceBuffer &buffer) = 0;
  /// Copies host memory to the device.
  virtual Status copyToDevice(void *device, const void *host, uint64_t bytes) = 0;
  /// Copies device memory to the host.
  virtual Status copyToHost(void *host, const void *device, uint64_t bytes) = 0;
  /// Runs (or enqueues) one step.
  virtual Status launch(const StepLaunch &launch) = 0;
  /// Waits until every launched step has finished.
  virtual Status synchronize() = 0;
};

/// Creates a backend for a plan.
using BackendFactory = Status (*)(const Plan &plan, const BackendOptions &options,
                                  std::unique_ptr<Backend> *out);

/// Registers (or replaces) the backend called `name`.
void registerBackend(const std::string &name, BackendFactory factory);
/// Creates the backend called `name` for `plan`. Built-in backends are registered
/// on first use.
Status createBackend(const std::string &name, const Plan &plan, const BackendOptions &options,
                     std::unique_ptr<Backend> *out);
/// Names of the registered backends, sorted.
std::vector<std::string> backendNames();

/// Registers the CPU backend as "cpu".
void registerCpuBackend();

} // namespace moec

#endif // MOEC_RUNTIME_BACKEND_H
