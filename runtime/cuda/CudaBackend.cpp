//===- CudaBackend.cpp - run a plan's generated kernels on an NVIDIA GPU ---===//
//
// The "cuda" backend: the plan's kernel module for the device (the cubin when
// it was assembled for this very architecture, else the PTX, compiled by the
// driver's JIT), weights uploaded once per program, the activation arena and
// the KV cache in device memory, one stream. A step runs its kernel entries in
// order with the arguments of plan.fbs's KernelEntry convention. Everything
// goes through the driver API opened with dlopen (CudaDriver.h).
//
//===----------------------------------------------------------------------===//

#include "CudaDriver.h"

#include "moec/runtime/Backend.h"
#include "moec/runtime/KernelLaunch.h"

#include "moec/runtime/Plan.h"
#include "moec/runtime/PlanFormat.h"

#include <algorithm>
#include <cinttypes>
#include <cstdlib>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace moec {
namespace {

using cuda::CUdeviceptr;
using cuda::Driver;

/// One kernel launch of a prepared step.
struct Launch {
  cuda::CUfunction function = nullptr;
  const plan::KernelEntry *entry = nullptr;
};

/// A prepared step: its launches and where its arguments come from.
struct CudaStep {
  uint32_t index = 0;
  std::vector<Launch> launches;
  std::vector<uint64_t> bufferOffsets; ///< operands then results, arena offsets
  std::vector<CUdeviceptr> weights;    ///< device addresses, scales after their weights
  CUdeviceptr weightTable = 0;         ///< `weights` in device memory (weight_table entries)
  std::vector<CUdeviceptr> tensorMaps; ///< per FP8 weight, its CUtensorMap (tma_box entries)
  std::vector<int32_t> states;         ///< Plan.states indices
};

class CudaProgram final : public Program {
public:
  CudaProgram(const Plan &plan) : plan(plan) {}
  const Plan &plan;
  std::vector<CudaStep> steps;
};

class CudaBackend final : public Backend {
public:
  CudaBackend(const Driver &driver, int ordinal) : d(driver), ordinal(ordinal) {}
  ~CudaBackend() override {
    if (context) {
      d.cuCtxSetCurrent(context);
      if (stream)
        d.cuStreamSynchronize(stream);
    }
    for (auto &[index, memory] : weightMemory)
      d.cuMemFree(memory);
    for (CUdeviceptr table : weightTables)
      d.cuMemFree(table);
    for (auto &[key, map] : tensorMaps)
      d.cuMemFree(map);
    for (CapturedGraph &g : graphs) {
      d.cuGraphExecDestroy(g.exec);
      d.cuGraphDestroy(g.graph);
    }
    for (cuda::CUmodule module : modules)
      d.cuModuleUnload(module);
    if (scratch)
      d.cuMemFree(scratch);
    if (greedyTokens)
      d.cuMemFree(greedyTokens);
    if (stream)
      d.cuStreamDestroy(stream);
    if (context)
      d.cuDevicePrimaryCtxRelease(device);
  }

  Status open() {
    int count = 0;
    MOEC_RETURN_IF_ERROR(d.check(d.cuDeviceGetCount(&count), "cuDeviceGetCount"));
    if (ordinal < 0 || ordinal >= count)
      return Status::error("cuda: no device %d (this machine has %d)", ordinal, count);
    MOEC_RETURN_IF_ERROR(d.check(d.cuDeviceGet(&device, ordinal), "cuDeviceGet"));
    MOEC_RETURN_IF_ERROR(d.check(d.cuDevicePrimaryCtxRetain(&context, device),
                                 "cuDevicePrimaryCtxRetain"));
    MOEC_RETURN_IF_ERROR(d.check(d.cuCtxSetCurrent(context), "cuCtxSetCurrent"));
    int major = 0, minor = 0;
    MOEC_RETURN_IF_ERROR(d.check(
        d.cuDeviceGetAttribute(&major, cuda::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
        "cuDeviceGetAttribute"));
    MOEC_RETURN_IF_ERROR(d.check(
        d.cuDeviceGetAttribute(&minor, cuda::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
        "cuDeviceGetAttribute"));
    char name[256] = {};
    d.cuDeviceGetName(name, sizeof(name) - 1, device);
    deviceName = name;
    capabilityMajor = major;
    capabilityMinor = minor;
    target = cuda::targetForComputeCapability(major, minor);
    if (target.empty())
      return Status::error("cuda: device %d (%s) has compute capability %d.%d; moec's kernels "
                           "need 8.0 or newer",
                           ordinal, name, major, minor);
    if (const char *graphs = std::getenv("MOEC_CUDA_GRAPHS"); graphs && std::string(graphs) == "0")
      graphsEnabled = false;
    return d.check(d.cuStreamCreate(&stream, cuda::CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  }

  const char *name() const override { return "cuda"; }
  std::vector<BufferType> bufferTypes() const override {
    return {BufferType{"cuda", 256, /*hostVisible=*/false}};
  }
  // Every copy and memset goes through the backend's own stream, then waits for it:
  // the stream does not synchronize with the legacy default stream (non-blocking), so
  // the synchronous cuMemcpy/cuMemset calls, which may return before their DMA is
  // done, could race with the kernels. Every call makes the context current first:
  // a caller may use the backend from another thread than the one that made it.
  Status allocate(uint64_t bytes, DeviceBuffer *out, int type) override {
    if (type != 0)
      return Status::error("cuda: no buffer type %d (the cuda backend has one, \"cuda\")", type);
    MOEC_RETURN_IF_ERROR(bind());
    CUdeviceptr memory = 0;
    MOEC_RETURN_IF_ERROR(d.check(d.cuMemAlloc(&memory, bytes ? bytes : 1), "cuMemAlloc"));
    Status s = d.check(d.cuMemsetD8Async(memory, 0, bytes ? bytes : 1, stream), "cuMemsetD8Async");
    if (s.ok())
      s = synchronize();
    if (!s.ok()) {
      d.cuMemFree(memory);
      return s;
    }
    out->data = reinterpret_cast<void *>(memory);
    out->bytes = bytes;
    out->bufferType = 0;
    out->owned = true;
    return Status();
  }
  void release(DeviceBuffer &buffer) override {
    if (buffer.data && buffer.owned && bind().ok() && synchronize().ok())
      d.cuMemFree(reinterpret_cast<CUdeviceptr>(buffer.data));
    buffer = DeviceBuffer();
  }
  Status copyToDevice(void *device, const void *host, uint64_t bytes) override {
    MOEC_RETURN_IF_ERROR(bind());
    MOEC_RETURN_IF_ERROR(d.check(
        d.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(device), host, bytes, stream),
        "cuMemcpyHtoDAsync"));
    return synchronize(); // the host's bytes may change as soon as this returns
  }
  Status copyToHost(void *host, const void *device, uint64_t bytes) override {
    MOEC_RETURN_IF_ERROR(bind());
    MOEC_RETURN_IF_ERROR(d.check(
        d.cuMemcpyDtoHAsync(host, reinterpret_cast<CUdeviceptr>(device), bytes, stream),
        "cuMemcpyDtoHAsync"));
    return synchronize();
  }
  Status importHost(const void *host, uint64_t bytes, DeviceBuffer *out) override {
    MOEC_RETURN_IF_ERROR(allocate(bytes, out, 0));
    return copyToDevice(out->data, host, bytes);
  }

  bool supportsStep(const StepTypes &types, std::string *why) const override {
    // The kinds codegen/ptx generates kernels for; prepare then checks that the plan
    // really carries a kernel for every step.
    return generatedKernelsRun(types, target, why);
  }

  Status prepare(const Plan &plan, uint32_t entry, std::unique_ptr<Program> *out) override;
  Status execute(Program &program, const Bindings &bindings) override;
  /// Launches every step of `program` on the stream (or into a capture).
  Status launchAll(CudaProgram &program, const Bindings &bindings);
  /// One kernel of a step (or of the argmax) for `tokens` tokens; `what` ends the
  /// error's "launching NAME" (e.g. " for STEP").
  Status launchOne(const Launch &launch, const KernelStepResources &r, int32_t tokens,
                   const std::string &what);
  /// The plan's argmax kernels (KernelModule.argmax) on the device, when it has them.
  Status argmaxRows(Program &program, const void *logits, int64_t rows, int64_t vocab,
                    int32_t *tokens) override;
  Status synchronize() override {
    MOEC_RETURN_IF_ERROR(bind());
    return d.check(d.cuStreamSynchronize(stream), "cuStreamSynchronize");
  }
  /// Makes this backend's context the calling thread's.
  Status bind() { return d.check(d.cuCtxSetCurrent(context), "cuCtxSetCurrent"); }

private:
  /// The device copy of plan weight `index` (uploaded on first use).
  Status weight(const Plan &plan, int32_t index, CUdeviceptr *out);
  /// Loads the plan's module for this device once; fills `functions`.
  Status loadModule(const Plan &plan, const plan::KernelModule **out);

  const Driver &d;
  int ordinal = 0;
  cuda::CUdevice device = 0;
  cuda::CUcontext context = nullptr;
  cuda::CUstream stream = nullptr;
  std::string deviceName, target;
  int capabilityMajor = 0, capabilityMinor = 0;
  const Plan *loadedPlan = nullptr;
  const plan::KernelModule *loadedModule = nullptr;
  std::vector<cuda::CUmodule> modules;
  std::map<std::string, cuda::CUfunction> functions;
  std::map<int32_t, CUdeviceptr> weightMemory;
  std::vector<CUdeviceptr> weightTables;
  /// CUtensorMaps in device memory, by (weight index, box columns, box rows).
  std::map<std::tuple<int32_t, uint32_t, uint32_t>, CUdeviceptr> tensorMaps;
  Status tensorMap(const Plan &plan, int32_t index, const std::vector<uint32_t> &box,
                   CUdeviceptr *out);
  CUdeviceptr scratch = 0;
  uint64_t scratchBytes = 0, scratchAllocated = 0;
  /// The loaded module's greedy-decoding kernels (KernelModule.argmax), in order.
  std::vector<Launch> argmaxLaunches;
  CUdeviceptr greedyTokens = 0; ///< their output, i32 per row
  int64_t greedyCapacity = 0;   ///< rows greedyTokens holds

  /// What a captured graph was launched with: replayed only for the same.
  struct GraphKey {
    const Program *program = nullptr;
    int64_t tokens = 0;
    uint64_t arena = 0;
    std::vector<uint64_t> states; ///< per state: address, rows per sequence
    bool operator==(const GraphKey &o) const {
      return program == o.program && tokens == o.tokens && arena == o.arena &&
             states == o.states;
    }
  };
  struct CapturedGraph {
    GraphKey key;
    cuda::CUgraph graph = nullptr;
    cuda::CUgraphExec exec = nullptr;
  };
  static constexpr int64_t kGraphTokens = 16; ///< batches up to this size replay graphs
  static constexpr size_t kMaxGraphs = 32;
  bool graphsEnabled = true;
  SharedPrefixCopies prefixCopies; ///< KvCache::share rows copied per sharing sequence
  std::vector<CapturedGraph> graphs;
};

/// The CUtensorMap plan.fbs describes for a tma_box entry (2-D bytes {cols, rows},
/// no swizzle, zeros out of bounds), encoded by the driver and kept in device memory.
Status CudaBackend::tensorMap(const Plan &plan, int32_t index, const std::vector<uint32_t> &box,
                              CUdeviceptr *out) {
  const auto key = std::make_tuple(index, box[0], box[1]);
  if (auto found = tensorMaps.find(key); found != tensorMaps.end()) {
    *out = found->second;
    return Status();
  }
  if (!d.cuTensorMapEncodeTiled)
    return Status::error("cuda: %s: the driver has no cuTensorMapEncodeTiled (CUDA 12 or "
                         "newer is needed for the TMA kernels of sm_90a)",
                         plan.name().c_str());
  const plan::Weight *w = plan.root().weights()->Get(uint32_t(index));
  if (!w->shape() || w->shape()->size() != 2)
    return Status::error("cuda: %s: weight %d is not 2-D: no tensor map", plan.name().c_str(),
                         index);
  CUdeviceptr weightMemory = 0;
  MOEC_RETURN_IF_ERROR(weight(plan, index, &weightMemory));
  const unsigned long long dims[2] = {uint64_t(w->shape()->Get(1)), uint64_t(w->shape()->Get(0))};
  const unsigned long long strides[1] = {dims[0]};
  const unsigned boxDims[2] = {box[0], box[1]}, elementStrides[2] = {1, 1};
  cuda::CUtensorMap map{};
  MOEC_RETURN_IF_ERROR(d.check(
      d.cuTensorMapEncodeTiled(&map, cuda::CU_TENSOR_MAP_DATA_TYPE_UINT8, 2,
                               reinterpret_cast<void *>(weightMemory), dims, strides, boxDims,
                               elementStrides, cuda::CU_TENSOR_MAP_INTERLEAVE_NONE,
                               cuda::CU_TENSOR_MAP_SWIZZLE_NONE,
                               cuda::CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                               cuda::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
      ("cuTensorMapEncodeTiled for " + std::string(w->name() ? w->name()->c_str() : "a weight"))
          .c_str()));
  CUdeviceptr memory = 0;
  MOEC_RETURN_IF_ERROR(d.check(d.cuMemAlloc(&memory, sizeof(map)), "cuMemAlloc (tensor map)"));
  tensorMaps[key] = memory;
  MOEC_RETURN_IF_ERROR(copyToDevice(reinterpret_cast<void *>(memory), &map, sizeof(map)));
  *out = memory;
  return Status();
}

Status CudaBackend::weight(const Plan &plan, int32_t index, CUdeviceptr *out) {
  auto found = weightMemory.find(index);
  if (found == weightMemory.end()) {
    const WeightView &view = plan.weight(size_t(index));
    DeviceBuffer buffer;
    MOEC_RETURN_IF_ERROR(importHost(view.data, view.bytes, &buffer));
    found = weightMemory.emplace(index, reinterpret_cast<CUdeviceptr>(buffer.data)).first;
  }
  *out = found->second;
  return Status();
}

Status CudaBackend::loadModule(const Plan &plan, const plan::KernelModule **out) {
  if (loadedPlan == &plan) {
    *out = loadedModule;
    return Status();
  }
  const auto *list = plan.root().kernel_modules();
  const plan::KernelModule *chosen = nullptr;
  std::string available;
  for (flatbuffers::uoffset_t i = 0; list && i < list->size(); ++i) {
    const plan::KernelModule *m = list->Get(i);
    std::string arch = m->target_arch() ? m->target_arch()->str() : "";
    available += (available.empty() ? "" : ", ") + arch;
    if (arch == target)
      chosen = m;
  }
  // sm_80 PTX also runs, through the JIT, on a 9.0 device whose plan has no sm_90a module.
  if (!chosen && target == "sm_90a")
    for (flatbuffers::uoffset_t i = 0; list && i < list->size(); ++i)
      if (list->Get(i)->target_arch() && list->Get(i)->target_arch()->str() == "sm_80")
        chosen = list->Get(i);
  if (!chosen || !chosen->ptx() || chosen->ptx()->size() == 0)
    return Status::error("cuda: %s has no kernels for %s (device %d: %s, compute capability "
                         "%d.%d; the plan has %s): compile it with moec compile --target=%s",
                         plan.name().c_str(), target.c_str(), ordinal, deviceName.c_str(),
                         capabilityMajor, capabilityMinor,
                         available.empty() ? "none" : available.c_str(), target.c_str());
  // The cubin runs only on the architecture it was assembled for; otherwise the
  // driver compiles the PTX (a NUL-terminated image).
  bool useCubin = chosen->cubin() && chosen->cubin()->size() > 0 &&
                  chosen->target_arch()->str() == target &&
                  (target != "sm_80" || capabilityMajor == 8);
  std::string ptx;
  const void *image = nullptr;
  if (useCubin) {
    image = chosen->cubin()->data();
  } else {
    ptx = chosen->ptx()->str();
    image = ptx.c_str();
  }
  cuda::CUmodule module = nullptr;
  MOEC_RETURN_IF_ERROR(d.check(d.cuModuleLoadData(&module, image),
                               useCubin ? "loading the plan's cubin"
                                        : "JIT-compiling the plan's PTX"));
  modules.push_back(module);
  functions.clear();
  // Each kernel's function, looked up once by name.
  auto lookUp = [&](const plan::KernelEntry *entry) -> Status {
    const std::string fn = entry->name()->str();
    if (functions.count(fn))
      return Status();
    cuda::CUfunction function = nullptr;
    MOEC_RETURN_IF_ERROR(d.check(d.cuModuleGetFunction(&function, module, fn.c_str()),
                                 ("looking up kernel " + fn).c_str()));
    functions[fn] = function;
    return Status();
  };
  for (flatbuffers::uoffset_t k = 0; chosen->kernels() && k < chosen->kernels()->size(); ++k)
    MOEC_RETURN_IF_ERROR(lookUp(chosen->kernels()->Get(k)));
  argmaxLaunches.clear();
  for (flatbuffers::uoffset_t k = 0; chosen->argmax() && k < chosen->argmax()->size(); ++k) {
    const plan::KernelEntry *entry = chosen->argmax()->Get(k);
    MOEC_RETURN_IF_ERROR(lookUp(entry));
    argmaxLaunches.push_back({functions[entry->name()->str()], entry});
  }
  loadedPlan = &plan;
  loadedModule = chosen;
  *out = chosen;
  return Status();
}

Status CudaBackend::prepare(const Plan &plan, uint32_t entry, std::unique_ptr<Program> *out) {
  MOEC_RETURN_IF_ERROR(bind());
  if (entry >= plan.numEntryPoints())
    return Status::error("cuda: %s: no entry point %u (the plan has %zu)", plan.name().c_str(),
                         entry, plan.numEntryPoints());
  const plan::KernelModule *module = nullptr;
  MOEC_RETURN_IF_ERROR(loadModule(plan, &module));
  std::multimap<int32_t, const plan::KernelEntry *> byStep;
  for (flatbuffers::uoffset_t k = 0; module->kernels() && k < module->kernels()->size(); ++k)
    byStep.emplace(module->kernels()->Get(k)->step(), module->kernels()->Get(k));

  const EntryPointInfo &info = plan.entryPoint(entry);
  auto program = std::make_unique<CudaProgram>(plan);
  for (uint32_t i = 0; i < info.numSteps; ++i) {
    const uint32_t index = info.firstStep + i;
    const plan::Step *step = plan.root().steps()->Get(index);
    auto range = byStep.equal_range(int32_t(index));
    if (range.first == range.second)
      return Status::error("cuda: %s: %s: no %s kernel for %s in this plan (moec's GPU "
                           "kernels do not cover every step kind yet)",
                           plan.name().c_str(), plan.stepLabel(index).c_str(),
                           module->target_arch()->c_str(), stepKindName(step->kind()));
    CudaStep s;
    s.index = index;
    for (auto it = range.first; it != range.second; ++it) {
      Launch launch{functions.at(it->second->name()->str()), it->second};
      scratchBytes = std::max<uint64_t>(
          scratchBytes, it->second->scratch_bytes_per_token() * scratchTokens(*it->second, plan));
      s.launches.push_back(launch);
    }
    StepArguments args = stepArguments(plan, index);
    s.bufferOffsets = std::move(args.bufferOffsets);
    s.states = std::move(args.states);
    for (int32_t w : args.weights) {
      CUdeviceptr memory = 0;
      MOEC_RETURN_IF_ERROR(weight(plan, w, &memory));
      s.weights.push_back(memory);
    }
    // TMA kernels (KernelEntry.tma_box): a tensor map per FP8 weight of the step.
    std::vector<uint32_t> box;
    for (const Launch &launch : s.launches)
      if (launch.entry->tma_box() && launch.entry->tma_box()->size() > 0)
        box.assign(launch.entry->tma_box()->begin(), launch.entry->tma_box()->end());
    if (!box.empty() && step->weights())
      for (int32_t w : *step->weights())
        if (plan.root().weights()->Get(uint32_t(w))->dtype() == plan::DType::F8E4M3) {
          CUdeviceptr map = 0;
          MOEC_RETURN_IF_ERROR(tensorMap(plan, w, box, &map));
          s.tensorMaps.push_back(map);
        }
    bool table = false;
    for (const Launch &launch : s.launches)
      table |= launch.entry->weight_table();
    if (table && !s.weights.empty()) {
      const uint64_t bytes = s.weights.size() * sizeof(CUdeviceptr);
      MOEC_RETURN_IF_ERROR(d.check(d.cuMemAlloc(&s.weightTable, bytes), "cuMemAlloc (weights)"));
      weightTables.push_back(s.weightTable);
      MOEC_RETURN_IF_ERROR(copyToDevice(reinterpret_cast<void *>(s.weightTable),
                                        s.weights.data(), bytes));
    }
    program->steps.push_back(std::move(s));
  }
  for (const Launch &launch : argmaxLaunches)
    scratchBytes = std::max<uint64_t>(
        scratchBytes, launch.entry->scratch_bytes_per_token() * scratchTokens(*launch.entry, plan));
  // The scratch grows to the largest any program needs; captured graphs, which hold
  // the old addresses, are dropped with it (and whenever a program is prepared: a new
  // one may take a freed one's address).
  for (CapturedGraph &g : graphs) {
    d.cuGraphExecDestroy(g.exec);
    d.cuGraphDestroy(g.graph);
  }
  graphs.clear();
  if (scratchBytes > scratchAllocated) {
    if (scratch)
      d.cuMemFree(scratch);
    scratch = 0;
    scratchAllocated = 0;
    MOEC_RETURN_IF_ERROR(d.check(d.cuMemAlloc(&scratch, scratchBytes), "cuMemAlloc (scratch)"));
    scratchAllocated = scratchBytes;
  }
  *out = std::move(program);
  return Status();
}

Status CudaBackend::execute(Program &base, const Bindings &bindings) {
  MOEC_RETURN_IF_ERROR(bind());
  auto &program = static_cast<CudaProgram &>(base);
  if (bindings.tokens < 1 || bindings.tokens > program.plan.maxTokens())
    return Status::error("cuda: %" PRId64 " tokens, the plan takes 1..%" PRId64,
                         bindings.tokens, program.plan.maxTokens());
  // The kernels read each sequence's own rows: rows shared with another sequence
  // (KvCache::share) are copied there first, on the stream, once per share.
  MOEC_RETURN_IF_ERROR(prefixCopies.apply(
      bindings, [&](uint8_t *dst, const uint8_t *src, uint64_t bytes) {
        return d.check(d.cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(dst),
                                           reinterpret_cast<CUdeviceptr>(src), bytes, stream),
                       "cuMemcpyDtoDAsync (shared KV rows)");
      }));
  // Small batches (decode) replay a CUDA graph captured on the first call with the
  // same arguments; MOEC_CUDA_GRAPHS=0 turns graphs off.
  if (graphsEnabled && !bindings.afterStep && bindings.tokens <= kGraphTokens) {
    GraphKey key{&program, bindings.tokens, reinterpret_cast<uint64_t>(bindings.arena), {}};
    for (size_t s = 0; s < bindings.numStates; ++s) {
      key.states.push_back(reinterpret_cast<uint64_t>(bindings.states[s].data));
      key.states.push_back(uint64_t(bindings.states[s].capacity));
    }
    for (const CapturedGraph &g : graphs)
      if (g.key == key)
        return d.check(d.cuGraphLaunch(g.exec, stream), "cuGraphLaunch");
    MOEC_RETURN_IF_ERROR(
        d.check(d.cuStreamBeginCapture(stream, cuda::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
                "cuStreamBeginCapture"));
    Status launched = launchAll(program, bindings);
    CapturedGraph g{key, nullptr, nullptr};
    Status ended = d.check(d.cuStreamEndCapture(stream, &g.graph), "cuStreamEndCapture");
    MOEC_RETURN_IF_ERROR(launched);
    MOEC_RETURN_IF_ERROR(ended);
    if (Status s = d.check(d.cuGraphInstantiate(&g.exec, g.graph, 0), "cuGraphInstantiate");
        !s.ok()) {
      d.cuGraphDestroy(g.graph);
      return s;
    }
    if (graphs.size() >= kMaxGraphs) {
      d.cuGraphExecDestroy(graphs.front().exec);
      d.cuGraphDestroy(graphs.front().graph);
      graphs.erase(graphs.begin());
    }
    graphs.push_back(std::move(g));
    return d.check(d.cuGraphLaunch(graphs.back().exec, stream), "cuGraphLaunch");
  }
  return launchAll(program, bindings);
}

Status CudaBackend::launchOne(const Launch &launch, const KernelStepResources &r,
                              int32_t tokens, const std::string &what) {
  // Every argument is passed from a 64-bit slot; the driver reads T's 4 bytes from
  // the low half of its slot (little-endian).
  KernelLaunch k = kernelLaunch(*launch.entry, r, tokens);
  std::vector<void *> args;
  for (uint64_t &value : k.args)
    args.push_back(&value);
  return d.check(d.cuLaunchKernel(launch.function, k.grid[0], k.grid[1], k.grid[2], k.block[0],
                                  k.block[1], k.block[2], k.sharedBytes, stream, args.data(),
                                  nullptr),
                 ("launching " + launch.entry->name()->str() + what).c_str());
}

Status CudaBackend::launchAll(CudaProgram &program, const Bindings &bindings) {
  const auto arena = reinterpret_cast<CUdeviceptr>(bindings.arena);
  const int32_t tokens = int32_t(bindings.tokens);
  for (const CudaStep &step : program.steps) {
    KernelStepResources r;
    for (uint64_t offset : step.bufferOffsets)
      r.buffers.push_back(arena + offset);
    r.weights.assign(step.weights.begin(), step.weights.end());
    r.weightTable = step.weightTable;
    r.tensorMaps.assign(step.tensorMaps.begin(), step.tensorMaps.end());
    for (int32_t state : step.states) {
      if (size_t(state) >= bindings.numStates)
        return Status::error("cuda: %s: state %d is not bound",
                             program.plan.stepLabel(step.index).c_str(), state);
      r.stateData.push_back(reinterpret_cast<uint64_t>(bindings.states[state].data));
      r.stateRows.push_back(bindings.states[state].capacity);
    }
    r.scratch = scratch;
    for (const Launch &launch : step.launches) {
      if (!kernelEntryRuns(*launch.entry, tokens))
        continue; // the alternative for other batch sizes
      MOEC_RETURN_IF_ERROR(
          launchOne(launch, r, tokens, " for " + program.plan.stepLabel(step.index)));
    }
    if (bindings.afterStep) {
      MOEC_RETURN_IF_ERROR(synchronize());
      MOEC_RETURN_IF_ERROR((*bindings.afterStep)(step.index));
    }
  }
  return Status();
}

Status CudaBackend::argmaxRows(Program &base, const void *logits, int64_t rows, int64_t vocab,
                               int32_t *tokens) {
  auto &program = static_cast<CudaProgram &>(base);
  // Plans compiled before the argmax kernels choose on the host.
  if (argmaxLaunches.empty() || loadedPlan != &program.plan || rows > program.plan.maxTokens())
    return Backend::argmaxRows(base, logits, rows, vocab, tokens);
  MOEC_RETURN_IF_ERROR(bind());
  if (rows > greedyCapacity) {
    if (greedyTokens)
      d.cuMemFree(greedyTokens);
    greedyTokens = 0;
    greedyCapacity = 0;
    const int64_t capacity = program.plan.maxTokens();
    MOEC_RETURN_IF_ERROR(d.check(d.cuMemAlloc(&greedyTokens, uint64_t(capacity) * 4),
                                 "cuMemAlloc (greedy tokens)"));
    greedyCapacity = capacity;
  }
  KernelStepResources r;
  r.buffers = {reinterpret_cast<CUdeviceptr>(logits), greedyTokens};
  r.scratch = scratch;
  for (const Launch &launch : argmaxLaunches)
    MOEC_RETURN_IF_ERROR(launchOne(launch, r, int32_t(rows), ""));
  return copyToHost(tokens, reinterpret_cast<void *>(greedyTokens), uint64_t(rows) * 4);
}

Status createCudaBackend(const BackendOptions &options, std::unique_ptr<Backend> *out) {
  const Driver *driver = nullptr;
  MOEC_RETURN_IF_ERROR(cuda::openDriver(&driver));
  auto backend = std::make_unique<CudaBackend>(*driver, options.device);
  MOEC_RETURN_IF_ERROR(backend->open());
  *out = std::move(backend);
  return Status();
}

} // namespace

void registerCudaBackend() { registerBackend("cuda", &createCudaBackend); }

} // namespace moec
