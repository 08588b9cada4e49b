//===- QuantizeBench.cpp - FP8 weight quantization: bf16 bytes in per second ===//
//
// `moec compile --quantize=fp8` quantizes each weight while the plan's weights are
// packed (moec/cpu/quantize.h). Its goal is >= 1 GB/s of bf16 input on this 2-core
// machine: the `input_bytes_per_second` counter. A weight is quantized whole, codes
// and scales in one pass (the plan writer takes the scale weight from the codes'
// pass), into one reused output buffer; the input
// is replicated past the L3 like a checkpoint streamed from its mapping.
// `--moec_simd=avx2` measures the AVX2 code (what a Zen 3 machine runs).
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"

#include "moec/cpu/quantize.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

namespace moec::bench {
namespace {

void BM_QuantizeFp8Bf16(benchmark::State &state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  cpu::ScopedNumThreads threads(static_cast<int>(state.range(2)));
  std::vector<BenchWeight> copies;
  int64_t footprint = 0;
  for (uint64_t i = 1; footprint < kMinFootprintBytes; ++i) {
    copies.emplace_back(cpu::WeightType::BF16, rows, cols, i);
    footprint += rows * cols * 2;
  }
  std::vector<uint8_t> codes(size_t(rows * cols));
  std::vector<float> scales(size_t(((rows + 127) / 128) * ((cols + 127) / 128)));
  size_t next = 0;
  for (auto _ : state) {
    cpu::Fp8QuantizeBand band;
    band.type = cpu::WeightType::BF16;
    band.data = copies[next].view().data;
    band.rows = rows;
    band.cols = cols;
    band.rowEnd = rows;
    bool ok = cpu::quantizeFp8Band(band, codes.data(), scales.data());
    benchmark::DoNotOptimize(ok);
    benchmark::ClobberMemory();
    next = next + 1 == copies.size() ? 0 : next + 1;
  }
  state.counters["input_bytes_per_second"] = benchmark::Counter(
      double(rows * cols * 2) * double(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(cpu::simdLevel());
}

BENCHMARK(BM_QuantizeFp8Bf16)
    ->ArgNames({"out", "in", "threads"})
    ->Args({7168, 2048, 1})  // MoE expert down_proj
    ->Args({7168, 2048, 2})
    ->Args({18432, 7168, 2}) // dense MLP gate/up_proj
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

} // namespace
} // namespace moec::bench
