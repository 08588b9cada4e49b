//===- KernelLaunch.h - a plan kernel's arguments and launch shape -*- C++ -*-===//
//
// plan.fbs's KernelEntry convention in one place, for every executor of the
// plan's GPU kernels (the CUDA backend, and the kernel interpreter the tests run
// the same kernels with on the CPU): which addresses and integers a launch of an
// entry passes, in which order, and its grid for T tokens.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_KERNELLAUNCH_H
#define MOEC_RUNTIME_KERNELLAUNCH_H

#include "moec/runtime/Backend.h"
#include "moec/schema/plan_generated.h"

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

namespace moec {

class Plan;

/// Where step `index` of `plan` takes its kernel arguments from: its buffers' arena
/// offsets (operands, then results), its weights' plan indices in argument order (a
/// block-quantized weight's scale right after it), and its states.
struct StepArguments {
  std::vector<uint64_t> bufferOffsets;
  std::vector<int32_t> weights;
  std::vector<int32_t> states;
};
StepArguments stepArguments(const Plan &plan, uint32_t index);

/// Device addresses (and sizes) one step's kernels read.
struct KernelStepResources {
  std::vector<uint64_t> buffers;     ///< operands, then results (arena + offset)
  std::vector<uint64_t> weights;     ///< weights, each block scale right after its weight
  uint64_t weightTable = 0;          ///< `weights` as a device array (weight_table entries)
  std::vector<uint64_t> stateData;   ///< per state: row 0 of sequence 0
  std::vector<int64_t> stateRows;    ///< per state: rows per sequence
  uint64_t scratch = 0;              ///< the shared device scratch
  /// Entries with a `tma_box`: per FP8 weight of the step, in weight order, the
  /// device address of its CUtensorMap for that box.
  std::vector<uint64_t> tensorMaps;
};

/// One launch: the argument values in order, each widened to 64 bits (T, an i32,
/// is the last one, in the low half), and the launch shape.
struct KernelLaunch {
  std::vector<uint64_t> args;
  std::array<uint32_t, 3> grid{1, 1, 1};
  std::array<uint32_t, 3> block{1, 1, 1};
  uint32_t sharedBytes = 0;
};

/// Whether the kernels moec generates (codegen/ptx StepKernels.h) run a step of these
/// types on `target` ("sm_90a", "sm_80"): every kind, but not int8 (W8A8) weights,
/// (an FP8 KV cache on both targets). If not, `*why` says why.
bool generatedKernelsRun(const StepTypes &types, const std::string &target, std::string *why);

/// The most tokens `entry` runs for in `plan`: its max_tokens, or the plan's max
/// tokens without one (the scratch it needs is that times scratch_bytes_per_token).
uint64_t scratchTokens(const plan::KernelEntry &entry, const Plan &plan);
uint64_t scratchTokens(const plan::KernelEntryT &entry, const Plan &plan);

/// Whether `entry` runs for a call of `tokens` tokens (its min_tokens / max_tokens).
bool kernelEntryRuns(const plan::KernelEntry &entry, int32_t tokens);
bool kernelEntryRuns(const plan::KernelEntryT &entry, int32_t tokens);

/// The launch of `entry` over `tokens` tokens with the step's resources `r`.
KernelLaunch kernelLaunch(const plan::KernelEntry &entry, const KernelStepResources &r,
                          int32_t tokens);
/// The same for an entry in flatbuffers' object form (before the plan is written).
KernelLaunch kernelLaunch(const plan::KernelEntryT &entry, const KernelStepResources &r,
                          int32_t tokens);

/// Prefix sharing (KvCache::share) for backends whose kernels read each sequence's
/// own rows: the shared rows are copied into the sharing sequence's rows, once per
/// share() call and state, before a batch that runs with them. The prefill that
/// sharing saves stays saved (a GRPO group's prompt runs once); the copies move
/// rows x row bytes per sample, device to device.
class SharedPrefixCopies {
public:
  using Copy = std::function<Status(uint8_t *dst, const uint8_t *src, uint64_t bytes)>;
  /// Copies what `bindings` share and no earlier call copied, through `copy`.
  Status apply(const Bindings &bindings, const Copy &copy);
  /// How many row ranges apply() has copied (tests).
  uint64_t copies() const { return copies_; }

private:
  /// Per (state's memory, sequence): the share id its rows were copied for.
  std::map<std::pair<const uint8_t *, int32_t>, uint64_t> done_;
  uint64_t copies_ = 0;
};

} // namespace moec

#endif // MOEC_RUNTIME_KERNELLAUNCH_H
