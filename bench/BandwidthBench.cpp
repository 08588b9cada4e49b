//===- BandwidthBench.cpp - The machine's own DRAM read bandwidth ---------===//
//
// Every thread (moec's thread count) sums its contiguous slice of a 1 GiB buffer
// with the widest loads the CPU has, four independent accumulators each, and
// software prefetch as linear uses it: the ceiling that a weight-streaming kernel
// can approach (cpu::ReadBandwidthProbe, which `moec bench` uses too). On this
// VM the prefetch adds ~10% over plain loads.
//
//===----------------------------------------------------------------------===//

#include "moec/cpu/Bandwidth.h"
#include "moec/cpu/kernels.h"

#include <benchmark/benchmark.h>

#include <string>

namespace moec::bench {
namespace {

void BM_ReadBandwidth(benchmark::State &state) {
  cpu::ReadBandwidthProbe probe(cpu::numThreads());
  double rate = 0;
  for (auto _ : state)
    rate = probe.measure(1);
  state.counters["read_bytes_per_second"] = benchmark::Counter(
      static_cast<double>(probe.bytes()) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.counters["threads"] = probe.threads();
  state.SetLabel(std::string(probe.loads()) + " loads");
  benchmark::DoNotOptimize(rate);
}

BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
} // namespace moec::bench
