//===- GpuBench.cpp - moec_gpu_bench: the generated GPU kernels' speed ----===//
//
// The microbenchmarks of the GPU check (tests/gpu/check.sh), each with its
// reference measured in the same run on the same device:
//   copy     cuMemcpyDtoD of 1 GiB: the device's copy bandwidth (read + write);
//   gemv     decode: the FP8 linear kernel at T = 1 over DeepSeek-V3's shapes,
//            weight bytes per second, as a fraction of the copy bandwidth;
//   gemm     prefill: the same kernels at M = 4096 tokens, TFLOPS, as a fraction
//            of the dense FP8 peak given with --peak-tflops (H200: 1979), and
//            cuBLASLt's FP8 GEMM on the same shape (block scales as DeepSeek's
//            where the library has them), timed alternately with moec's;
//   mla      decode attention: the absorbed kernel over a 4096-token bf16 latent
//            cache (C 512, R 64) for 128 heads, cache bytes per second.
// The kernels are generated here exactly as moec compile --target generates them
// (codegen/ptx StepKernels.h), for the device's architecture, and run through the
// driver (libcuda.so.1, dlopen). Without a GPU it says so in one line and exits 2.
//
//   moec_gpu_bench [--peak-tflops X] [--reps N] [--kernels FILE] [--list-kernels]
//   moec_gpu_bench --ptx-only     no GPU needed: generate the benchmarks' kernels
//                                 for sm_90a and sm_80 and print ptxas's resources
//   moec_gpu_bench --save-kernels FILE
//                                 no GPU needed: write the benchmarks' kernels for
//                                 both targets (PTX and launch entries, JSON) for a
//                                 run elsewhere with --kernels FILE
//
// moec_gpu_bench_runtime is this program without the compiler (no MLIR): it runs
// only with --kernels, so that a GPU machine without MLIR measures kernels
// generated where the compiler is (tests/gpu/check.sh --prepare).
//
//===----------------------------------------------------------------------===//

#include "../runtime/cuda/CudaDriver.h"
#include "CublasLtGemm.h"
#include "KernelFile.h"

#ifdef MOEC_GPU_BENCH_CODEGEN
#include "moec/Codegen/Ptxas.h"
#include "moec/Codegen/StepKernels.h"
#include "llvm/Support/Error.h"
#endif
#include "moec/runtime/KernelLaunch.h"

#include <cmath>
#include <random>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using moec::cuda::CUdeviceptr;
using moec::cuda::Driver;
namespace plan = moec::plan;

[[noreturn]] void die(const std::string &message, int code = 1) {
  std::fprintf(stderr, "moec_gpu_bench: %s\n", message.c_str());
  std::exit(code);
}

void check(const Driver &d, moec::cuda::CUresult r, const char *what) {
  if (moec::Status s = d.check(r, what); !s.ok())
    die(s.message());
}

CUdeviceptr alloc(const Driver &d, uint64_t bytes) {
  CUdeviceptr p = 0;
  check(d, d.cuMemAlloc(&p, bytes), "cuMemAlloc");
  check(d, d.cuMemsetD8(p, 0, bytes), "cuMemsetD8");
  return p;
}

/// What a benchmark's inputs hold: never zeros, which can run faster than real data.
enum class Fill { F32, E4M3, BF16 };

/// `bytes` of device memory holding random values of `fill`: f32 and bf16 in
/// [-1, 1), e4m3 codes of magnitude up to 448 (never the NaN codes 0x7f / 0xff).
CUdeviceptr allocRandom(const Driver &d, uint64_t bytes, Fill fill) {
  CUdeviceptr p = alloc(d, bytes);
  static std::vector<uint8_t> pattern[3];
  std::vector<uint8_t> &host = pattern[int(fill)];
  if (host.empty()) {
    host.resize(uint64_t(16) << 20); // 16 MiB, repeated
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    for (size_t i = 0; i + 4 <= host.size(); i += 4) {
      if (fill == Fill::F32) {
        float v = unit(rng);
        std::memcpy(&host[i], &v, 4);
      } else if (fill == Fill::BF16) {
        for (int h = 0; h < 2; ++h) {
          float v = unit(rng);
          uint32_t bits;
          std::memcpy(&bits, &v, 4);
          uint16_t top = uint16_t(bits >> 16);
          std::memcpy(&host[i + 2 * h], &top, 2);
        }
      } else {
        for (int b = 0; b < 4; ++b) {
          uint8_t code = uint8_t(rng() & 0xff);
          host[i + b] = (code & 0x7f) == 0x7f ? uint8_t(code - 1) : code;
        }
      }
    }
  }
  for (uint64_t at = 0; at < bytes; at += host.size())
    check(d, d.cuMemcpyHtoD(p + at, host.data(), std::min<uint64_t>(host.size(), bytes - at)),
          "cuMemcpyHtoD");
  return p;
}

/// A one-step plan: `kind` with the given buffers and weights (only the fields the
/// generators read).
struct MiniPlan {
  plan::PlanT plan;
  int32_t buffer(std::vector<int64_t> shape, plan::DType dtype = plan::DType::F32) {
    auto b = std::make_unique<plan::BufferT>();
    b->dtype = dtype;
    b->shape = std::move(shape);
    plan.buffers.push_back(std::move(b));
    return int32_t(plan.buffers.size() - 1);
  }
  int32_t weight(std::vector<int64_t> shape, plan::DType dtype) {
    auto w = std::make_unique<plan::WeightT>();
    w->dtype = dtype;
    w->shape = shape;
    plan.weights.push_back(std::move(w));
    int32_t index = int32_t(plan.weights.size() - 1);
    if (dtype == plan::DType::F8E4M3) {
      int32_t scale = weight({(shape[0] + 127) / 128, (shape[1] + 127) / 128}, plan::DType::F32);
      plan.weights[size_t(index)]->block_scale = scale;
      plan.weights[size_t(index)]->block_shape = {128, 128};
    }
    return index;
  }
};

/// The FP8 linear step y = x W^T, W [N, K] with 128x128 block scales; with FP8
/// activations (DeepSeek's FP8 GEMM) sm_90a runs batches of 16 tokens or more as
/// the wgmma GEMM.
plan::PlanT linearPlan(int64_t N, int64_t K, bool fp8Acts = false) {
  MiniPlan m;
  int32_t x = m.buffer({-1, K}), y = m.buffer({-1, N});
  int32_t w = m.weight({N, K}, plan::DType::F8E4M3);
  auto step = std::make_unique<plan::StepT>();
  step->kind = plan::StepKind::Linear;
  step->operands = {x};
  step->results = {y};
  step->weights = {w};
  if (fp8Acts)
    step->activations = plan::DType::F8E4M3;
  m.plan.steps.push_back(std::move(step));
  return std::move(m.plan);
}

/// DeepSeek-V3's absorbed MLA decode: 128 heads, C 512, R 64, a bf16 latent cache.
constexpr int64_t kHeads = 128, kLatent = 512, kRope = 64, kNope = 128;
plan::PlanT mlaPlan() {
  MiniPlan m;
  int32_t qLat = m.buffer({-1, kHeads * kLatent}), q = m.buffer({-1, kHeads * (kNope + kRope)});
  int32_t pos = m.buffer({-1}, plan::DType::I32), seq = m.buffer({-1}, plan::DType::I32);
  int32_t o = m.buffer({-1, kHeads * kLatent});
  for (int64_t width : {kLatent, kRope}) {
    auto s = std::make_unique<plan::StateT>();
    s->dtype = plan::DType::BF16;
    s->shape = {width};
    m.plan.states.push_back(std::move(s));
  }
  auto step = std::make_unique<plan::StepT>();
  step->kind = plan::StepKind::LatentAttention;
  step->operands = {qLat, q, pos, seq};
  step->results = {o};
  step->states = {0, 1};
  plan::LatentAttentionAttrsT attrs;
  attrs.heads = kHeads;
  attrs.latent_dim = kLatent;
  attrs.rope_dim = kRope;
  attrs.q_stride = kNope + kRope;
  attrs.q_rope_offset = kNope;
  attrs.softmax_scale = 0.1f;
  step->attrs.Set(attrs);
  m.plan.steps.push_back(std::move(step));
  return std::move(m.plan);
}

const int64_t kShapes[][2] = {{7168, 2048}, {2048, 7168}, {24576, 1536}, {4096, 7168}};

/// A benchmark's kernels for one target: the PTX and its launch entries.
using Kernels = moec::testing::SavedKernels;

/// The name of benchmark `bench`'s kernels for `chip` in a kernels file.
std::string fileKey(const std::string &chip, const std::string &bench) { return chip + "/" + bench; }

/// The name of the linear step's kernels in a kernels file.
std::string linearKey(int64_t N, int64_t K, bool fp8Acts) {
  return "linear_" + std::to_string(N) + "x" + std::to_string(K) + (fp8Acts ? "_fp8acts" : "");
}

#ifdef MOEC_GPU_BENCH_CODEGEN
/// Every benchmark's one-step plan, by its name in a kernels file.
std::vector<std::pair<std::string, plan::PlanT>> benchPlans() {
  std::vector<std::pair<std::string, plan::PlanT>> plans;
  for (const auto &nk : kShapes)
    for (bool fp8Acts : {false, true})
      plans.emplace_back(linearKey(nk[0], nk[1], fp8Acts), linearPlan(nk[0], nk[1], fp8Acts));
  plans.emplace_back("mla", mlaPlan());
  return plans;
}

/// The kernels moec compile --target generates for step 0 of `p`.
Kernels generate(const plan::PlanT &p, const std::string &chip) {
  auto ptx = moec::ptx::generateStepKernelPtx(p, chip);
  if (!ptx)
    die(llvm::toString(ptx.takeError()));
  if (ptx->entries.empty())
    die("no kernel generated");
  return {chip, ptx->ptx, std::move(ptx->entries)};
}

/// --save-kernels: every benchmark's kernels for both targets, for a GPU machine
/// without the compiler (moec_gpu_bench_runtime --kernels FILE).
int saveKernels(const std::string &path) {
  moec::testing::KernelFile file;
  for (const char *chip : {"sm_90a", "sm_80"})
    for (const auto &[bench, p] : benchPlans())
      file[fileKey(chip, bench)] = generate(p, chip);
  if (moec::Status s = moec::testing::writeKernelFile(path, file); !s.ok())
    die(path + ": " + s.message());
  std::printf("moec_gpu_bench: wrote %s (%zu benchmarks, sm_90a and sm_80)\n", path.c_str(),
              benchPlans().size());
  return 0;
}

/// --ptx-only: the kernels, assembled by ptxas, with their resources.
int ptxOnly() {
  std::optional<std::string> ptxas = moec::ptx::findPtxas();
  if (!ptxas)
    die("ptxas not found (CUDA_HOME, PATH, /usr/local/cuda/bin)", 2);
  // The GEMM reference's library, opened as a GPU run opens it (no GPU needed).
  std::string cublasWhy;
  if (auto cublas = moec::bench::CublasLtGemm::open(&cublasWhy))
    std::printf("reference GEMM: %s (library found; measured on a GPU)\n", cublas->version().c_str());
  else
    std::printf("reference GEMM: cuBLASLt %s\n", cublasWhy.c_str());
  std::printf("target\tkernel\tregisters\tstack_bytes\tspill_bytes\n");
  for (const char *chip : {"sm_90a", "sm_80"})
    for (const auto &[bench, p] : benchPlans()) {
      Kernels k = generate(p, chip);
      auto assembled = moec::ptx::assemblePtx(*ptxas, k.ptx, chip);
      if (!assembled)
        die(llvm::toString(assembled.takeError()));
      for (const moec::ptx::KernelResources &r : assembled->kernels)
        std::printf("%s\t%s\t%u\t%llu\t%llu\n", chip, r.name.c_str(), r.registers,
                    (unsigned long long)r.stackBytes,
                    (unsigned long long)(r.spillStoreBytes + r.spillLoadBytes));
    }
  return 0;
}
#endif

/// --list-kernels: each benchmark's kernels and launch entries, one line each (no GPU
/// needed; a file read back lists as the kernels it was written from).
int listKernels(const moec::testing::KernelFile &all) {
  std::printf("target\tbenchmark\tkernel\tgrid\tblock\ttokens_per_block\tscratch\t"
              "weight_table\tmin_tokens\tmax_tokens\ttma_box\tptx_bytes\n");
  auto dims = [](const std::vector<uint32_t> &v) {
    std::string out;
    for (uint32_t x : v)
      out += (out.empty() ? "" : "x") + std::to_string(x);
    return out.empty() ? std::string("-") : out;
  };
  for (const auto &[key, k] : all)
    for (const plan::KernelEntryT &e : k.entries)
      std::printf("%s\t%s\t%s\t%s\t%s\t%u\t%llu\t%d\t%u\t%u\t%s\t%zu\n", k.target.c_str(),
                  key.substr(key.find('/') + 1).c_str(), e.name.c_str(), dims(e.grid).c_str(), dims(e.block).c_str(),
                  e.tokens_per_block, (unsigned long long)e.scratch_bytes_per_token,
                  int(e.weight_table), e.min_tokens, e.max_tokens, dims(e.tma_box).c_str(),
                  k.ptx.size());
  return 0;
}

/// Where the kernels come from: a --kernels file, or generated here.
moec::testing::KernelFile savedKernels;
bool fromFile = false;

/// The kernels of benchmark `bench` (plan `p`), loaded on the device.
struct Loaded {
  std::vector<plan::KernelEntryT> entries;
  std::vector<moec::cuda::CUfunction> functions;
};

Loaded load(const Driver &d, const std::string &bench, const plan::PlanT &p,
            const std::string &chip) {
  Kernels k;
  if (fromFile) {
    auto found = savedKernels.find(fileKey(chip, bench));
    if (found == savedKernels.end())
      die("the kernels file has no kernels of '" + bench + "' for " + chip);
    k = found->second;
  } else {
#ifdef MOEC_GPU_BENCH_CODEGEN
    k = generate(p, chip);
#else
    (void)p;
    die("built without the compiler: give --kernels FILE (moec_gpu_bench --save-kernels)", 2);
#endif
  }
  moec::cuda::CUmodule module = nullptr;
  check(d, d.cuModuleLoadData(&module, k.ptx.c_str()), "JIT-compiling the kernels");
  Loaded l;
  for (plan::KernelEntryT &e : k.entries) {
    moec::cuda::CUfunction f = nullptr;
    check(d, d.cuModuleGetFunction(&f, module, e.name.c_str()), "cuModuleGetFunction");
    l.functions.push_back(f);
    l.entries.push_back(std::move(e));
  }
  return l;
}

/// Milliseconds per run of `launch` (after one warm-up), over `reps` runs.
template <typename Fn> double time(const Driver &d, int reps, Fn launch) {
  moec::cuda::CUevent start = nullptr, stop = nullptr;
  check(d, d.cuEventCreate(&start, 0), "cuEventCreate");
  check(d, d.cuEventCreate(&stop, 0), "cuEventCreate");
  launch();
  check(d, d.cuCtxSynchronize(), "cuCtxSynchronize");
  check(d, d.cuEventRecord(start, nullptr), "cuEventRecord");
  for (int i = 0; i < reps; ++i)
    launch();
  check(d, d.cuEventRecord(stop, nullptr), "cuEventRecord");
  check(d, d.cuEventSynchronize(stop), "cuEventSynchronize");
  float ms = 0;
  check(d, d.cuEventElapsedTime(&ms, start, stop), "cuEventElapsedTime");
  d.cuEventDestroy(start);
  d.cuEventDestroy(stop);
  return double(ms) / reps;
}

void launchAll(const Driver &d, const Loaded &l, const moec::KernelStepResources &r,
               int32_t tokens) {
  for (size_t i = 0; i < l.entries.size(); ++i) {
    if (!moec::kernelEntryRuns(l.entries[i], tokens))
      continue;
    moec::KernelLaunch k = moec::kernelLaunch(l.entries[i], r, tokens);
    std::vector<void *> args;
    for (uint64_t &v : k.args)
      args.push_back(&v);
    check(d, d.cuLaunchKernel(l.functions[i], k.grid[0], k.grid[1], k.grid[2], k.block[0],
                              k.block[1], k.block[2], k.sharedBytes, nullptr, args.data(),
                              nullptr),
          "cuLaunchKernel");
  }
}

} // namespace

int main(int argc, char **argv) {
  double peak = 1979; // H100/H200 SXM dense FP8 tensor TFLOPS
  int reps = 20;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--peak-tflops" && i + 1 < argc)
      peak = std::atof(argv[++i]);
    else if (a == "--reps" && i + 1 < argc)
      reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--list-kernels")
      list = true;
    else if (a == "--kernels" && i + 1 < argc) {
      if (moec::Status s = moec::testing::readKernelFile(argv[++i], &savedKernels); !s.ok())
        die(s.message());
      fromFile = true;
    }
#ifdef MOEC_GPU_BENCH_CODEGEN
    else if (a == "--ptx-only")
      return ptxOnly();
    else if (a == "--save-kernels" && i + 1 < argc)
      return saveKernels(argv[++i]);
#endif
    else
      die("usage: moec_gpu_bench [--peak-tflops X] [--reps N] [--kernels FILE] "
          "[--list-kernels] | --ptx-only | --save-kernels FILE",
          2);
  }
#ifndef MOEC_GPU_BENCH_CODEGEN
  if (!fromFile)
    die("built without the compiler: give --kernels FILE (moec_gpu_bench --save-kernels)", 2);
#else
  if (list && !fromFile)
    for (const char *chip : {"sm_90a", "sm_80"})
      for (const auto &[bench, p] : benchPlans())
        savedKernels[fileKey(chip, bench)] = generate(p, chip);
#endif
  if (list)
    return listKernels(savedKernels);
  const Driver *dp = nullptr;
  if (moec::Status s = moec::cuda::openDriver(&dp); !s.ok())
    die(s.message(), 2);
  const Driver &d = *dp;
  moec::cuda::CUdevice device = 0;
  moec::cuda::CUcontext ctx = nullptr;
  check(d, d.cuDeviceGet(&device, 0), "cuDeviceGet");
  check(d, d.cuDevicePrimaryCtxRetain(&ctx, device), "cuDevicePrimaryCtxRetain");
  check(d, d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
  int major = 0, minor = 0;
  d.cuDeviceGetAttribute(&major, moec::cuda::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
  d.cuDeviceGetAttribute(&minor, moec::cuda::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
  char name[256] = {};
  d.cuDeviceGetName(name, sizeof(name) - 1, device);
  std::string chip = moec::cuda::targetForComputeCapability(major, minor);
  if (chip.empty())
    die("compute capability " + std::to_string(major) + "." + std::to_string(minor) +
        " is below 8.0");
  std::printf("device: %s (compute capability %d.%d, kernels for %s)\n\n", name, major, minor,
              chip.c_str());

  // copy: the reference bandwidth.
  const uint64_t copyBytes = uint64_t(1) << 30;
  CUdeviceptr src = alloc(d, copyBytes), dst = alloc(d, copyBytes);
  double copyMs = time(d, reps, [&] { check(d, d.cuMemcpyDtoD(dst, src, copyBytes), "copy"); });
  double copyGBs = 2.0 * double(copyBytes) / (copyMs * 1e-3) / 1e9;
  d.cuMemFree(src);
  d.cuMemFree(dst);
  // cuBLASLt, the GEMM reference (dlopen; absent: the rows say why).
  std::string cublasWhy;
  std::unique_ptr<moec::bench::CublasLtGemm> cublas = moec::bench::CublasLtGemm::open(&cublasWhy);
  if (cublas)
    std::printf("reference GEMM: %s\n\n", cublas->version().c_str());
  else
    std::printf("reference GEMM: cuBLASLt %s\n\n", cublasWhy.c_str());

  std::printf("| benchmark | shape | time | rate | vs reference |\n|---|---|---|---|---|\n");
  std::printf("| copy (DtoD, read + write) | 1 GiB | %.3f ms | %.0f GB/s | reference |\n", copyMs,
              copyGBs);

  // gemv / gemm: the FP8 linear kernel over DeepSeek-V3's shapes; the GEMM with
  // FP8 activations (on sm_90a the wgmma kernel, its weight through a tensor map).
  for (const auto &nk : kShapes) {
    const int64_t N = nk[0], K = nk[1];
    for (int64_t T : {int64_t(1), int64_t(4096)}) {
      Loaded l = load(d, linearKey(N, K, T > 1), linearPlan(N, K, /*fp8Acts=*/T > 1), chip);
      moec::KernelStepResources r;
      r.buffers = {allocRandom(d, uint64_t(T * K) * 4, Fill::F32), alloc(d, uint64_t(T * N) * 4)};
      r.weights = {allocRandom(d, uint64_t(N * K), Fill::E4M3),
                   allocRandom(d, uint64_t(((N + 127) / 128) * ((K + 127) / 128)) * 4, Fill::F32)};
      std::vector<uint32_t> box;
      for (const plan::KernelEntryT &e : l.entries)
        if (!e.tma_box.empty())
          box = e.tma_box;
      if (box.size() == 2) {
        if (!d.cuTensorMapEncodeTiled)
          die("the driver has no cuTensorMapEncodeTiled (CUDA 12 or newer)");
        const unsigned long long dims[2] = {uint64_t(K), uint64_t(N)}, strides[1] = {uint64_t(K)};
        const unsigned boxDims[2] = {box[0], box[1]}, elementStrides[2] = {1, 1};
        moec::cuda::CUtensorMap map{};
        check(d,
              d.cuTensorMapEncodeTiled(&map, moec::cuda::CU_TENSOR_MAP_DATA_TYPE_UINT8, 2,
                                       reinterpret_cast<void *>(r.weights[0]), dims, strides,
                                       boxDims, elementStrides,
                                       moec::cuda::CU_TENSOR_MAP_INTERLEAVE_NONE,
                                       moec::cuda::CU_TENSOR_MAP_SWIZZLE_NONE,
                                       moec::cuda::CU_TENSOR_MAP_L2_PROMOTION_L2_128B,
                                       moec::cuda::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
              "cuTensorMapEncodeTiled");
        CUdeviceptr mapMemory = alloc(d, sizeof(map));
        check(d, d.cuMemcpyHtoD(mapMemory, &map, sizeof(map)), "cuMemcpyHtoD");
        r.tensorMaps = {mapMemory};
      }
      int runs = T == 1 ? reps * 10 : std::max(1, reps / 4);
      double ms = time(d, runs, [&] { launchAll(d, l, r, int32_t(T)); });
      std::string reference = "cuBLASLt " + cublasWhy;
      if (T > 1 && cublas) {
        // cuBLASLt on the same shape, timed alternately with moec's kernels (the
        // best of two rounds each): Y (bf16) = X (e4m3) . W^T (e4m3).
        moec::bench::CublasLtGemm::ScaleFloats sf = moec::bench::CublasLtGemm::scaleFloats(T, N, K);
        CUdeviceptr x = allocRandom(d, uint64_t(T * K), Fill::E4M3),
                    w = allocRandom(d, uint64_t(N * K), Fill::E4M3),
                    y = alloc(d, uint64_t(T * N) * 2), xs = alloc(d, sf.x * 4),
                    ws = alloc(d, sf.w * 4),
                    work = alloc(d, moec::bench::CublasLtGemm::kWorkspaceBytes);
        std::vector<float> ones(std::max(sf.x, sf.w), 1.0f);
        check(d, d.cuMemcpyHtoD(xs, ones.data(), sf.x * 4), "cuMemcpyHtoD");
        check(d, d.cuMemcpyHtoD(ws, ones.data(), sf.w * 4), "cuMemcpyHtoD");
        std::string why;
        if (!cublas->prepare(T, N, K, x, xs, w, ws, y, work,
                             moec::bench::CublasLtGemm::kWorkspaceBytes, &why)) {
          reference = "cuBLASLt not measured: " + why;
        } else {
          double blasMs = 0;
          for (int round = 0; round < 2; ++round) {
            double b = time(d, runs, [&] {
              if (!cublas->run(&why))
                die(why);
            });
            blasMs = round == 0 ? b : std::min(blasMs, b);
            ms = std::min(ms, time(d, runs, [&] { launchAll(d, l, r, int32_t(T)); }));
          }
          double blasTflops = 2.0 * double(T) * double(N) * double(K) / (blasMs * 1e-3) / 1e12;
          std::printf("| cuBLASLt FP8 GEMM, %s | M=%lld, %lldx%lld | %.3f ms | %.1f TFLOPS | %.2f%% of %.0f peak; reference |\n",
                      cublas->scaling().c_str(), (long long)T, (long long)N, (long long)K, blasMs,
                      blasTflops, 100.0 * blasTflops / peak, peak);
          char ratio[64];
          std::snprintf(ratio, sizeof(ratio), "%.2fx cuBLASLt's throughput", blasMs / ms);
          reference = ratio;
        }
        for (CUdeviceptr p : {x, w, y, xs, ws, work})
          d.cuMemFree(p);
      }
      if (T == 1) {
        double gbs = double(N * K) / (ms * 1e-3) / 1e9;
        std::printf("| decode GEMV, FP8 weights | %lldx%lld, T=1 | %.4f ms | %.0f GB/s | %.1f%% of copy |\n",
                    (long long)N, (long long)K, ms, gbs, 100.0 * gbs / copyGBs);
      } else {
        double tflops = 2.0 * double(T) * double(N) * double(K) / (ms * 1e-3) / 1e12;
        std::printf("| moec FP8 GEMM (%s), FP8 activations | M=%lld, %lldx%lld | %.3f ms | %.1f TFLOPS | %.2f%% of %.0f peak; %s |\n",
                    box.empty() ? "SIMT" : "wgmma + TMA", (long long)T, (long long)N,
                    (long long)K, ms, tflops, 100.0 * tflops / peak, peak, reference.c_str());
      }
      for (uint64_t p : r.buffers)
        d.cuMemFree(p);
      for (uint64_t p : r.weights)
        d.cuMemFree(p);
      for (uint64_t p : r.tensorMaps)
        d.cuMemFree(p);
    }
  }

  // mla: absorbed decode attention, 128 heads over a 4096-token bf16 latent cache.
  {
    const int64_t H = kHeads, C = kLatent, R = kRope, rows = 4096;
    Loaded l = load(d, "mla", mlaPlan(), chip);
    moec::KernelStepResources r;
    CUdeviceptr position = alloc(d, 4);
    int32_t last = int32_t(rows - 1);
    check(d, d.cuMemcpyHtoD(position, &last, 4), "cuMemcpyHtoD");
    r.buffers = {allocRandom(d, uint64_t(H * C) * 4, Fill::F32),
                 allocRandom(d, uint64_t(H * (128 + R)) * 4, Fill::F32), position, alloc(d, 4),
                 alloc(d, uint64_t(H * C) * 4)};
    r.stateData = {allocRandom(d, uint64_t(rows * C) * 2, Fill::BF16),
                   allocRandom(d, uint64_t(rows * R) * 2, Fill::BF16)};
    r.stateRows = {rows, rows};
    uint64_t scratchBytes = 0; // the split form's partial softmaxes
    for (const plan::KernelEntryT &e : l.entries)
      scratchBytes = std::max<uint64_t>(scratchBytes, e.scratch_bytes_per_token);
    if (scratchBytes)
      r.scratch = alloc(d, scratchBytes);
    double ms = time(d, reps, [&] { launchAll(d, l, r, 1); });
    double bytes = double(rows * (C + R) * 2);
    double gbs = bytes / (ms * 1e-3) / 1e9;
    std::printf("| MLA decode (absorbed, split over the rows), bf16 cache | 128 heads, 4096 rows, C 512, R 64 | %.4f ms | %.0f GB/s of cache | %.1f%% of copy |\n",
                ms, gbs, 100.0 * gbs / copyGBs);
  }
  return 0;
}
