//===- EmulatedGpuBackend.cpp - the plan's GPU kernels, run on the CPU ----===//

#include "EmulatedGpuBackend.h"

#include "moec/Codegen/KernelInterpreter.h"
#include "moec/Codegen/PTX.h"
#include "moec/Codegen/StepKernels.h"
#include "moec/runtime/Backend.h"
#include "moec/runtime/KernelLaunch.h"
#include "moec/runtime/Plan.h"

#include "mlir/IR/MLIRContext.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

namespace moec {
namespace {

std::atomic<uint64_t> tmaLaunches{0};
std::atomic<uint64_t> argmaxLaunches{0}; ///< greedy-decoding kernels interpreted
std::atomic<uint64_t> groupedLaunches{0}; ///< the routed experts' grouped GEMM kernels
std::atomic<uint64_t> prefixCopyCount{0}; ///< shared KV rows copied (SharedPrefixCopies)

struct EmulatedStep {
  uint32_t index = 0;
  std::vector<std::pair<plan::KernelEntryT, mlir::gpu::GPUFuncOp>> launches;
  KernelStepResources resources; ///< buffers as arena offsets until execute()
  std::vector<uint64_t> bufferOffsets;
  std::vector<int32_t> states;
};

class EmulatedProgram final : public Program {
public:
  std::unique_ptr<mlir::MLIRContext> context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::vector<EmulatedStep> steps;
  std::vector<std::unique_ptr<std::vector<uint64_t>>> tables; ///< weight tables, per step
  /// The tensor maps of the entries with a tma_box (the interpreter's stand-in).
  std::vector<std::unique_ptr<ptx::EmulatedTensorMap>> tensorMaps;
  std::vector<uint8_t> scratch;
  /// The greedy-decoding kernels (KernelModule.argmax), in launch order.
  std::vector<std::pair<plan::KernelEntryT, mlir::gpu::GPUFuncOp>> argmax;
  int64_t maxTokens = 0;
};

class EmulatedGpuBackend final : public Backend {
public:
  explicit EmulatedGpuBackend(std::string chip) : chip(std::move(chip)), label("emulated-" + this->chip) {}
  ~EmulatedGpuBackend() override {
    for (void *p : weightCopies)
      std::free(p);
  }
  const char *name() const override { return label.c_str(); }
  std::vector<BufferType> bufferTypes() const override {
    return {BufferType{"emulated", 256, /*hostVisible=*/true}};
  }
  Status allocate(uint64_t bytes, DeviceBuffer *out, int) override {
    void *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
    if (!p)
      return Status::error("%s: cannot allocate %llu bytes", label.c_str(),
                           static_cast<unsigned long long>(bytes));
    std::memset(p, 0, (bytes + 255) / 256 * 256 + 256);
    *out = DeviceBuffer{p, bytes, 0, true};
    return Status();
  }
  void release(DeviceBuffer &buffer) override {
    if (buffer.owned)
      std::free(buffer.data);
    buffer = DeviceBuffer();
  }
  Status copyToDevice(void *device, const void *host, uint64_t bytes) override {
    std::memcpy(device, host, bytes);
    return Status();
  }
  Status copyToHost(void *host, const void *device, uint64_t bytes) override {
    std::memcpy(host, device, bytes);
    return Status();
  }
  Status importHost(const void *host, uint64_t bytes, DeviceBuffer *out) override {
    MOEC_RETURN_IF_ERROR(allocate(bytes, out, 0));
    return copyToDevice(out->data, host, bytes);
  }
  bool supportsStep(const StepTypes &types, std::string *why) const override {
    return generatedKernelsRun(types, chip, why);
  }
  Status prepare(const Plan &plan, uint32_t entry, std::unique_ptr<Program> *out) override;
  Status execute(Program &program, const Bindings &bindings) override;
  Status synchronize() override { return Status(); }
  Status argmaxRows(Program &program, const void *logits, int64_t rows, int64_t vocab,
                    int32_t *tokens) override;

private:
  uint64_t weight(const Plan &plan, int32_t index) {
    auto found = weights.find(index);
    if (found != weights.end())
      return found->second;
    const WeightView &view = plan.weight(size_t(index));
    void *copy = std::aligned_alloc(256, (view.bytes + 255) / 256 * 256 + 256);
    std::memcpy(copy, view.data, view.bytes);
    weightCopies.push_back(copy);
    return weights[index] = reinterpret_cast<uint64_t>(copy);
  }

  std::string chip, label;
  SharedPrefixCopies prefixCopies; ///< as the CUDA backend: shared KV rows copied
  const Plan *weightsOf = nullptr;
  std::map<int32_t, uint64_t> weights;
  std::vector<void *> weightCopies;
};

Status EmulatedGpuBackend::prepare(const Plan &plan, uint32_t entry,
                                   std::unique_ptr<Program> *out) {
  if (weightsOf != &plan) {
    weights.clear(); // copies stay owned until the backend goes
    weightsOf = &plan;
  }
  auto program = std::make_unique<EmulatedProgram>();
  std::unique_ptr<plan::PlanT> unpacked(plan.root().UnPack());
  mlir::DialectRegistry registry;
  ptx::registerPtxDialects(registry);
  program->context = std::make_unique<mlir::MLIRContext>(registry);
  program->context->loadAllAvailableDialects();
  auto built = ptx::buildStepKernels(*program->context, *unpacked, chip);
  if (!built)
    return Status::error("%s: %s", label.c_str(), llvm::toString(built.takeError()).c_str());
  program->module = std::move(built->module);
  std::map<std::string, mlir::gpu::GPUFuncOp> functions;
  program->module->walk([&](mlir::gpu::GPUFuncOp f) { functions[f.getName().str()] = f; });
  std::multimap<int32_t, plan::KernelEntryT> byStep;
  for (plan::KernelEntryT &e : built->entries)
    byStep.emplace(e.step, e);

  const EntryPointInfo &info = plan.entryPoint(entry);
  uint64_t scratchBytes = 0;
  for (uint32_t i = 0; i < info.numSteps; ++i) {
    const uint32_t index = info.firstStep + i;
    const plan::Step *step = plan.root().steps()->Get(index);
    auto range = byStep.equal_range(int32_t(index));
    if (range.first == range.second)
      return Status::error("%s: %s: no kernel generated for %s", label.c_str(),
                           plan.stepLabel(index).c_str(), stepKindName(step->kind()));
    EmulatedStep s;
    s.index = index;
    for (auto it = range.first; it != range.second; ++it) {
      s.launches.emplace_back(it->second, functions.at(it->second.name));
      scratchBytes = std::max<uint64_t>(
          scratchBytes, it->second.scratch_bytes_per_token * scratchTokens(it->second, plan));
    }
    StepArguments args = stepArguments(plan, index);
    s.bufferOffsets = std::move(args.bufferOffsets);
    s.states = std::move(args.states);
    for (int32_t w : args.weights)
      s.resources.weights.push_back(weight(plan, w));
    // Tensor maps (KernelEntry.tma_box): one per FP8 weight, for the box the step's
    // kernels name (moec's GEMMs use one box per step).
    std::vector<uint32_t> box;
    for (const auto &launch : s.launches)
      if (!launch.first.tma_box.empty())
        box = launch.first.tma_box;
    if (box.size() == 2 && step->weights())
      for (int32_t w : *step->weights()) {
        const plan::Weight *pw = plan.root().weights()->Get(uint32_t(w));
        if (pw->dtype() != plan::DType::F8E4M3 || !pw->shape() || pw->shape()->size() != 2)
          continue;
        auto map = std::make_unique<ptx::EmulatedTensorMap>();
        map->base = weight(plan, w);
        map->dims[0] = uint64_t(pw->shape()->Get(1));
        map->dims[1] = uint64_t(pw->shape()->Get(0));
        map->rowStride = map->dims[0];
        map->box[0] = box[0];
        map->box[1] = box[1];
        s.resources.tensorMaps.push_back(reinterpret_cast<uint64_t>(map.get()));
        program->tensorMaps.push_back(std::move(map));
      }
    auto table = std::make_unique<std::vector<uint64_t>>(s.resources.weights);
    s.resources.weightTable = reinterpret_cast<uint64_t>(table->data());
    program->tables.push_back(std::move(table));
    program->steps.push_back(std::move(s));
  }
  for (plan::KernelEntryT &e : built->argmax) {
    scratchBytes = std::max<uint64_t>(scratchBytes,
                                      e.scratch_bytes_per_token * scratchTokens(e, plan));
    program->argmax.emplace_back(e, functions.at(e.name));
  }
  program->maxTokens = plan.maxTokens();
  program->scratch.assign(scratchBytes + 256, 0);
  *out = std::move(program);
  return Status();
}

Status EmulatedGpuBackend::execute(Program &base, const Bindings &bindings) {
  auto &program = static_cast<EmulatedProgram &>(base);
  const auto arena = reinterpret_cast<uint64_t>(bindings.arena);
  // The kernels read each sequence's own rows, as on the CUDA backend.
  MOEC_RETURN_IF_ERROR(
      prefixCopies.apply(bindings, [](uint8_t *dst, const uint8_t *src, uint64_t bytes) {
        std::memcpy(dst, src, bytes);
        ++prefixCopyCount;
        return Status();
      }));
  for (EmulatedStep &step : program.steps) {
    KernelStepResources r = step.resources;
    for (uint64_t offset : step.bufferOffsets)
      r.buffers.push_back(arena + offset);
    for (int32_t state : step.states) {
      r.stateData.push_back(reinterpret_cast<uint64_t>(bindings.states[state].data));
      r.stateRows.push_back(bindings.states[state].capacity);
    }
    r.scratch = reinterpret_cast<uint64_t>(program.scratch.data());
    for (auto &[entry, function] : step.launches) {
      if (!kernelEntryRuns(entry, int32_t(bindings.tokens)))
        continue;
      KernelLaunch k = kernelLaunch(entry, r, int32_t(bindings.tokens));
      if (!entry.tma_box.empty())
        ++tmaLaunches;
      if (entry.name.find("_grouped_") != std::string::npos)
        ++groupedLaunches;
      if (llvm::Error err = ptx::interpretKernel(function, k.grid, k.block, k.args))
        return Status::error("%s: step %u: %s", label.c_str(), step.index,
                             llvm::toString(std::move(err)).c_str());
    }
    if (bindings.afterStep)
      MOEC_RETURN_IF_ERROR((*bindings.afterStep)(step.index));
  }
  return Status();
}

Status EmulatedGpuBackend::argmaxRows(Program &base, const void *logits, int64_t rows,
                                      int64_t vocab, int32_t *tokens) {
  auto &program = static_cast<EmulatedProgram &>(base);
  if (program.argmax.empty() || rows > program.maxTokens)
    return Backend::argmaxRows(base, logits, rows, vocab, tokens);
  std::vector<int32_t> device(size_t(rows), -1);
  KernelStepResources r;
  r.buffers = {reinterpret_cast<uint64_t>(logits), reinterpret_cast<uint64_t>(device.data())};
  r.scratch = reinterpret_cast<uint64_t>(program.scratch.data());
  for (auto &[entry, function] : program.argmax) {
    KernelLaunch k = kernelLaunch(entry, r, int32_t(rows));
    if (llvm::Error err = ptx::interpretKernel(function, k.grid, k.block, k.args))
      return Status::error("%s: %s: %s", label.c_str(), entry.name.c_str(),
                           llvm::toString(std::move(err)).c_str());
    ++argmaxLaunches;
  }
  std::memcpy(tokens, device.data(), size_t(rows) * sizeof(int32_t));
  return Status();
}

Status createSm90(const BackendOptions &, std::unique_ptr<Backend> *out) {
  *out = std::make_unique<EmulatedGpuBackend>("sm_90a");
  return Status();
}
Status createSm80(const BackendOptions &, std::unique_ptr<Backend> *out) {
  *out = std::make_unique<EmulatedGpuBackend>("sm_80");
  return Status();
}

} // namespace

uint64_t emulatedTmaLaunches() { return tmaLaunches.load(); }
uint64_t emulatedArgmaxLaunches() { return argmaxLaunches.load(); }
uint64_t emulatedGroupedLaunches() { return groupedLaunches.load(); }
uint64_t emulatedPrefixCopies() { return prefixCopyCount.load(); }

void registerEmulatedGpuBackends() {
  static std::once_flag once;
  std::call_once(once, [] {
    registerBackend("emulated-sm_90a", &createSm90);
    registerBackend("emulated-sm_80", &createSm80);
  });
}

} // namespace moec
