//===- LinearBench.cpp - linear at decode: weight bytes streamed per second ===//
//
// T = 1 against DeepSeek-V3 shapes ([out, in]). A weight smaller than
// kMinFootprintBytes is replicated and the copies are used in turn, so every
// iteration reads its weight from DRAM, as a decode step over a whole model does.
// The copies of each shape are kept for the whole run (about 2 GiB for all shapes).
// The `weight_bytes_per_second` counter is what the 70%-of-bandwidth goal refers
// to; compare it with BM_ReadBandwidth.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"
#include "KernelSet.h"

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <tuple>

namespace moec::bench {
namespace {

/// The copies of one weight shape, built on first use and kept for the run: the
/// benchmarks of every kernel set (KernelSet.h) then stream the same memory. On
/// this VM two allocations of equal size can stream at rates 40% apart.
const std::vector<BenchWeight> &weightCopies(cpu::WeightType type, int64_t rows,
                                             int64_t cols) {
  static std::map<std::tuple<cpu::WeightType, int64_t, int64_t>, std::vector<BenchWeight>>
      cache;
  std::vector<BenchWeight> &copies = cache[{type, rows, cols}];
  int64_t footprint = 0;
  for (const BenchWeight &w : copies)
    footprint += w.streamedBytes();
  for (uint64_t i = copies.size(); footprint < kMinFootprintBytes; ++i) {
    copies.emplace_back(type, rows, cols, i + 1);
    footprint += copies.back().streamedBytes();
  }
  return copies;
}

void runLinear(benchmark::State &state, const KernelSet *k, cpu::WeightType type,
               bool bf16Activations = false) {
  const int64_t rows = state.range(0), cols = state.range(1), T = state.range(2);
  const std::vector<BenchWeight> &copies = weightCopies(type, rows, cols);
  const std::vector<float> x = randomFloats(T * cols, 99);
  std::vector<float> y(static_cast<size_t>(T * rows));
  size_t next = 0;
  for (auto _ : state) {
    cpu::Weight view = copies[next].view();
    view.bf16Activations = bf16Activations;
    k->linear(x.data(), T, view, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
    next = next + 1 == copies.size() ? 0 : next + 1;
  }
  const double bytes = static_cast<double>(copies[0].streamedBytes());
  state.counters["weight_bytes_per_second"] =
      benchmark::Counter(bytes * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.counters["flops"] = benchmark::Counter(
      2.0 * static_cast<double>(rows * cols * T) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.counters["copies"] = static_cast<double>(copies.size());
  state.SetLabel(k->simdLevel());
}

void BM_LinearBf16(benchmark::State &state, const KernelSet *k) {
  runLinear(state, k, cpu::WeightType::BF16);
}
/// bf16 weights with bf16 activations (x rounded in the call; AMX-BF16 tiles at
/// prefill on the avx512-amx level).
void BM_LinearBf16Acts(benchmark::State &state, const KernelSet *k) {
  runLinear(state, k, cpu::WeightType::BF16, /*bf16Activations=*/true);
}
void BM_LinearFp8(benchmark::State &state, const KernelSet *k) {
  runLinear(state, k, cpu::WeightType::F8E4M3);
}
void BM_LinearI8(benchmark::State &state, const KernelSet *k) {
  runLinear(state, k, cpu::WeightType::I8);
}

/// Decode shapes {rows (out), cols (in), T}.
void decodeShapes(benchmark::internal::Benchmark *b) {
  b->ArgNames({"out", "in", "T"});
  b->Args({7168, 2048, 1});  // MoE expert down_proj
  b->Args({2048, 7168, 1});  // MoE expert gate/up_proj
  b->Args({4096, 4096, 1});
  b->Args({18432, 7168, 1}); // dense MLP gate/up_proj
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

} // namespace

void registerLinearBenchmarks(const KernelSet *k, const char *suffix) {
  const std::string bf16 = std::string("BM_LinearBf16") + suffix;
  const std::string fp8 = std::string("BM_LinearFp8") + suffix;
  const std::string i8 = std::string("BM_LinearI8") + suffix;
  benchmark::RegisterBenchmark(bf16.c_str(), BM_LinearBf16, k)->Apply(decodeShapes);
  benchmark::RegisterBenchmark(fp8.c_str(), BM_LinearFp8, k)->Apply(decodeShapes);
  benchmark::RegisterBenchmark(i8.c_str(), BM_LinearI8, k)->Apply(decodeShapes);
  // A prefill shape for reference (compute-bound: see the flops counter), in each
  // weight type (int8: W8A8, the activations quantized in the call), and bf16 with
  // bf16 activations.
  using Fn = void (*)(benchmark::State &, const KernelSet *);
  const std::string bf16Acts = std::string("BM_LinearBf16Acts") + suffix;
  for (auto [name, fn] : {std::pair<std::string, Fn>{bf16, &BM_LinearBf16},
                          std::pair<std::string, Fn>{bf16Acts, &BM_LinearBf16Acts},
                          std::pair<std::string, Fn>{fp8, &BM_LinearFp8},
                          std::pair<std::string, Fn>{i8, &BM_LinearI8}})
    benchmark::RegisterBenchmark(name.c_str(), fn, k)
        ->ArgNames({"out", "in", "T"})
        ->Args({4096, 4096, 64})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

} // namespace moec::bench
