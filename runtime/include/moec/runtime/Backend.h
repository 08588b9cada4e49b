//===- Backend.h - The device interface (HAL) the executor runs on -*- C++ -*-===//
//
// A backend is a device: it owns device memory, makes weights usable on the device,
// says which steps it can run, prepares an entry point of a plan into a program and
// executes programs. The executor is written against this interface only. Learned
// from ggml's backend interface (buffer types, supports_op, graph_compute) and
// IREE's HAL (executables prepared once, executed with bindings):
// - bufferTypes()/allocate(): device memory, per buffer type;
// - importHost(): host bytes (a mapped weight) made usable by the device; the CPU
//   uses them in place, a GPU uploads them;
// - supportsStep(): whether a step kind with given dtypes/block shapes can run here,
//   so a plan is checked against a device before it runs;
// - prepare(plan, entry) -> Program; execute(program, bindings): a program is the
//   unit a GPU backend can capture as a CUDA graph or launch kernel by kernel;
// - no global state: options (thread count) belong to the backend instance.
// Backends register by name; a dynamically loaded backend (CUDA, through dlopen)
// calls registerBackend() from its load function in the same way.
//
// Ownership: a backend owns the memory it allocates until release(). A Program
// borrows the Plan it was prepared from and the backend that prepared it; both must
// outlive it. Imported host memory stays owned by the caller and must outlive every
// program that uses it.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_BACKEND_H
#define MOEC_RUNTIME_BACKEND_H

#include "moec/runtime/PlanFormat.h"
#include "moec/runtime/Sampler.h"
#include "moec/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace moec {

class Plan;

/// A kind of memory a backend can allocate (ggml's buffer type).
struct BufferType {
  std::string name;       ///< e.g. "cpu", "cuda", "cuda_host"
  uint64_t alignment = 64; ///< every allocation is aligned to this
  bool hostVisible = true; ///< the host can read and write it directly
};

/// A block of device memory.
struct DeviceBuffer {
  void *data = nullptr; ///< device address (a host pointer on the CPU backend)
  uint64_t bytes = 0;   ///< size
  int bufferType = 0;   ///< index into the backend's bufferTypes()
  bool owned = true;    ///< false for importHost() of host memory used in place
};

/// The dtypes and block shapes of one step, enough to decide whether a backend
/// can run it (see stepTypes()).
struct StepTypes {
  plan::StepKind kind = plan::StepKind::Embedding; ///< what the step computes
  std::vector<plan::DType> operands;               ///< per operand buffer
  std::vector<plan::DType> results;                ///< per result buffer
  std::vector<plan::DType> weights;                ///< per weight
  /// Per weight: its block shape ([br, bc]), empty when not block-quantized.
  std::vector<std::vector<int64_t>> weightBlocks;
  std::vector<plan::DType> states;                 ///< per state
  /// Step.activations: what its matrix products round their inputs to (F32: none).
  plan::DType activations = plan::DType::F32;
};

/// The types of step `step` of `plan`.
StepTypes stepTypes(const Plan &plan, uint32_t step);

/// Whether steps of `kind` multiply by weights (linear, head_linear,
/// expanded_attention, the SwiGLU MLPs and routed experts): the kinds whose
/// Step.activations may say BF16.
bool multipliesWeights(plan::StepKind kind);

/// Where one persistent state (Plan.states[i]) lives on the device: row p of
/// sequence s starts at data + s * sequenceStride + p * rowBytes.
struct StateBinding {
  uint8_t *data = nullptr;     ///< device address of sequence 0, row 0
  uint64_t sequenceStride = 0; ///< bytes between sequences
  uint64_t rowBytes = 0;       ///< bytes of one row (dtype x State.shape)
  int64_t capacity = 0;        ///< rows per sequence
  /// Prefix sharing (KvCache::share), one entry per sequence, or null: sequence s
  /// reads its rows [0, prefixRows[s]) from sequence prefixSeq[s] (no copies).
  const int32_t *prefixSeq = nullptr;
  const int64_t *prefixRows = nullptr;
  /// Per sequence, or null: which KvCache::share call set its prefix (unique in the
  /// process; 0: none), for backends that copy the shared rows (SharedPrefixCopies).
  const uint64_t *shareIds = nullptr;
};

/// What one execution of a program needs besides the plan.
struct Bindings {
  int64_t tokens = 0;                  ///< T of this call (1..max_tokens)
  uint8_t *arena = nullptr;            ///< device address of the activation arena
  const StateBinding *states = nullptr; ///< one per Plan.states entry
  size_t numStates = 0;                ///< entries of `states`
  int32_t numSequences = 0;            ///< sequences the states hold
  /// If set, called with each step's index in Plan.steps right after the step ran
  /// (its results are in the arena, the backend synchronized up to it): for
  /// inspection, e.g. per-layer comparisons of two plans. A failure stops execute().
  const std::function<Status(uint32_t step)> *afterStep = nullptr;
  /// The rows of the entry point's logits the caller reads, ascending (count -1:
  /// all). A backend may leave the others unwritten.
  const int32_t *logitsRows = nullptr;
  int64_t numLogitsRows = -1;
};

/// An entry point prepared for one backend (opaque to the executor).
class Program {
public:
  virtual ~Program() = default;
};

/// Options given to a backend at creation.
struct BackendOptions {
  int threads = 0; ///< worker threads of this backend; <= 0: the CPUs it may run on
  int device = 0;  ///< which device of its kind (cuda:N)
};

/// A device that runs plan steps.
class Backend {
public:
  virtual ~Backend() = default;
  /// The registered name ("cpu").
  virtual const char *name() const = 0;

  /// The kinds of memory this backend allocates; index 0 is the default.
  virtual std::vector<BufferType> bufferTypes() const = 0;
  /// Allocates `bytes` of zeroed memory of buffer type `type`.
  virtual Status allocate(uint64_t bytes, DeviceBuffer *out, int type = 0) = 0;
  /// Frees memory from allocate() or importHost(); resets `buffer`.
  virtual void release(DeviceBuffer &buffer) = 0;
  /// Copies host memory to the device.
  virtual Status copyToDevice(void *device, const void *host, uint64_t bytes) = 0;
  /// Copies device memory to the host.
  virtual Status copyToHost(void *host, const void *device, uint64_t bytes) = 0;
  /// Makes `bytes` of host memory (a weight inside a mapped plan) usable by the
  /// device: the CPU uses them in place (out->owned = false), a GPU uploads.
  virtual Status importHost(const void *host, uint64_t bytes, DeviceBuffer *out) = 0;

  /// Whether this backend can run a step of these types; if not and `why` is set,
  /// says why in a few words that complete "cannot run <kind>: ..." (e.g. "weight 0
  /// is f8e4m3 with block shape [64, 64], the cpu kernels implement [128, 128] only").
  virtual bool supportsStep(const StepTypes &types, std::string *why = nullptr) const = 0;

  /// Prepares entry point `entry` (index into Plan.entry_points) of `plan`. Fails if a
  /// step is not supported, naming the step.
  virtual Status prepare(const Plan &plan, uint32_t entry, std::unique_ptr<Program> *out) = 0;
  /// Runs (or enqueues) every step of `program`.
  virtual Status execute(Program &program, const Bindings &bindings) = 0;
  /// Waits until everything executed has finished.
  virtual Status synchronize() = 0;

  /// Greedy decoding: writes to host `tokens` the greedyToken (Sampler.h) of each
  /// of `rows` rows of f32 logits [rows, vocab] at device address `logits`, which
  /// `program` (its plan) produced. This default copies the rows to the host and
  /// chooses there; a GPU backend chooses on the device and copies 4 bytes a row.
  /// (Inline, as every member: a backend library links without the runtime.)
  virtual Status argmaxRows(Program &/*program*/, const void *logits, int64_t rows, int64_t vocab,
                            int32_t *tokens) {
    std::vector<float> host(size_t(rows * vocab));
    MOEC_RETURN_IF_ERROR(copyToHost(host.data(), logits, host.size() * sizeof(float)));
    for (int64_t r = 0; r < rows; ++r)
      tokens[r] = greedyToken(host.data() + r * vocab, vocab);
    return Status();
  }
};

/// Creates a backend.
using BackendFactory = Status (*)(const BackendOptions &options, std::unique_ptr<Backend> *out);

/// Registers (or replaces) the backend called `name`. A dynamically loaded backend
/// calls this from its load function.
void registerBackend(const std::string &name, BackendFactory factory);
/// Creates the backend called `name`. Built-in backends are registered on first use.
Status createBackend(const std::string &name, const BackendOptions &options,
                     std::unique_ptr<Backend> *out);
/// Names of the registered backends, sorted.
std::vector<std::string> backendNames();

/// Registers the CPU backend as "cpu".
void registerCpuBackend();
/// Registers the CUDA backend as "cuda" (runtime/cuda): built in, it opens the
/// driver (libcuda.so.1, dlopen) only when a backend is created, so creating it
/// fails with one line on a machine without an NVIDIA driver or device.
void registerCudaBackend();

/// What a backend library receives to register its backends with (registerBackend).
using BackendRegistrar = void (*)(const char *name, BackendFactory factory);
/// The function a backend library exports, `extern "C"`, under this name: it calls
/// `registrar` once per backend it provides. The CUDA backend is such a library, so a
/// runtime without CUDA never links or loads it.
inline constexpr const char *kBackendLibraryEntry = "moec_register_backends";
/// Loads the backend library at `path` (dlopen) and lets it register its backends.
/// Errors name the file: "<path>: cannot load backend library: <reason>" or
/// "<path>: not a moec backend library (no moec_register_backends)".
Status loadBackendLibrary(const std::string &path);

} // namespace moec

#endif // MOEC_RUNTIME_BACKEND_H
