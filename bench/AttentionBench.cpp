//===- AttentionBench.cpp - MLA attention decode over a latent cache ------===//
//
// One token attending over a 4096-row latent cache with DeepSeek's dims (C = 512,
// rope 64, nope 128, v 128), bf16 kv_b_proj, H = 16 (V2-Lite) and 128 (V3).
// The counter reports the cache + W_UK/W_UV bytes read per second.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"

#include <benchmark/benchmark.h>

#include <cmath>

namespace moec::bench {
namespace {

void runMla(benchmark::State &state, bool absorbed) {
  cpu::MlaDims d;
  d.heads = state.range(0);
  d.nope = 128;
  d.rope = 64;
  d.v = 128;
  d.kvLoraRank = 512;
  d.softmaxScale = 1.f / std::sqrt(192.f);
  const int64_t L = state.range(1);
  const BenchWeight kvB(cpu::WeightType::BF16, d.heads * (d.nope + d.v), d.kvLoraRank, 5);
  std::vector<float> latent = randomFloats(L * d.kvLoraRank, 1);
  std::vector<float> rope = randomFloats(L * d.rope, 2);
  const cpu::LatentKv cache{latent.data(), rope.data(), L};
  const std::vector<float> q = randomFloats(d.heads * (d.nope + d.rope), 3);
  const std::vector<float> cNew = randomFloats(d.kvLoraRank, 4);
  const std::vector<float> pe = randomFloats(d.rope, 6);
  std::vector<float> out(static_cast<size_t>(d.heads * d.v));
  const int32_t position = static_cast<int32_t>(L - 1), seq = 0;
  for (auto _ : state) {
    cpu::mlaAttention(q.data(), cNew.data(), pe.data(), 1, &position, &seq, &cache,
                      kvB.view(), d, absorbed, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double bytes =
      static_cast<double>(L * (d.kvLoraRank + d.rope) * 4 + kvB.streamedBytes());
  state.counters["bytes_per_second"] = benchmark::Counter(
      bytes * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(cpu::simdLevel());
}

void BM_MlaDecodeAbsorbed(benchmark::State &state) { runMla(state, true); }
void BM_MlaDecodeNaive(benchmark::State &state) { runMla(state, false); }

BENCHMARK(BM_MlaDecodeAbsorbed)
    ->ArgNames({"H", "L"})
    ->Args({16, 4096})
    ->Args({128, 4096})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
// The naive form recomputes k_nope and v for all 4096 rows: shown for contrast.
BENCHMARK(BM_MlaDecodeNaive)
    ->ArgNames({"H", "L"})
    ->Args({16, 4096})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

} // namespace
} // namespace moec::bench
