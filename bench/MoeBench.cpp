//===- MoeBench.cpp - One MoE layer at decode, and its small kernels ------===//
//
// BM_MoeLayerDecode runs the feed-forward half of one decoder layer for T tokens,
// as the runtime's steps do: rmsNorm (bf16 gamma), router over E experts, the K
// routed experts, the shared experts, and the two residual adds. Weights are bf16.
//   V2-Lite: D 2048, E 64, K 6, expert width 1408, 2 shared experts (softmax, greedy).
//     All 64 experts exist (1.1 GiB) and the router's own choice is used; the input
//     cycles through 64 random vectors so the selection changes every iteration.
//   V3:      D 7168, E 256, K 8, expert width 2048, 1 shared expert (sigmoid,
//     8 groups keep 4, bias, renormalised). 256 bf16 experts would be 22 GiB, more
//     than this machine has: the router runs over all 256 (its gate is real), then
//     its choice is replaced by K distinct experts of a pool of 16 (1.3 GiB) taken in
//     turn, so every call streams K different 84 MiB experts from DRAM.
// Every expert is larger than the 32 MiB L3 and consecutive calls never reuse one,
// so the layer is memory-bound like a real model. `weight_bytes_per_second` counts
// the gate, the distinct routed experts of the call and the shared experts; compare
// it with BM_ReadBandwidth of the same run.
//
// BM_SwigluMlp is one SwiGLU MLP (V2-Lite's shared experts, D 2048, I 2816) with
// gate and up apart or fused (moe-fuse-gate-up), at decode and for a 256-token
// prefill. BM_MoeExpertsDecode is moeExperts alone on the V3 shapes; BM_RopeDecode the two
// rope calls of an MLA layer at decode (q_pe of 128 heads, k_pe), BM_RmsNormDecode
// one rmsNorm of 7168 values with a bf16 gamma.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"
#include "KernelSet.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <string>

namespace moec::bench {
namespace {

/// One MoE layer's shapes and router.
struct MoeConfig {
  int64_t hidden;            ///< D
  int64_t expertWidth;       ///< moe_intermediate_size
  int64_t sharedExperts;     ///< n_shared_experts
  int64_t pool;              ///< distinct routed experts held in memory
  cpu::RouterParams router;  ///< E, K, groups, score function
};

MoeConfig v2Lite() {
  MoeConfig c{2048, 1408, 2, 64, {}};
  c.router.experts = 64;
  c.router.topK = 6;
  c.router.score = cpu::ScoreFunc::Softmax;
  return c;
}

MoeConfig v3() {
  MoeConfig c{7168, 2048, 1, 16, {}};
  c.router.experts = 256;
  c.router.topK = 8;
  c.router.groups = 8;
  c.router.topkGroups = 4;
  c.router.score = cpu::ScoreFunc::Sigmoid;
  c.router.groupScore = cpu::GroupScore::Top2Sum;
  c.router.normTopkProb = true;
  c.router.routedScalingFactor = 2.5f;
  return c;
}

/// The weights of one SwiGLU MLP.
struct BenchMlp {
  BenchWeight gate, up, down;
  BenchMlp(int64_t D, int64_t I, uint64_t seed)
      : gate(cpu::WeightType::BF16, I, D, seed), up(cpu::WeightType::BF16, I, D, seed + 1),
        down(cpu::WeightType::BF16, D, I, seed + 2) {}
  cpu::SwigluWeights view() const { return {gate.view(), up.view(), down.view()}; }
  int64_t streamedBytes() const {
    return gate.streamedBytes() + up.streamedBytes() + down.streamedBytes();
  }
};

/// A layer's weights, built once per configuration and kept for the whole run
/// (building 1.3 GiB of weights per repetition would dominate the run time).
struct MoeWeights {
  MoeConfig config;
  BenchWeight norm, gate;
  std::vector<float> bias;
  std::vector<std::unique_ptr<BenchMlp>> experts;
  std::vector<cpu::SwigluWeights> views;
  BenchMlp shared;

  explicit MoeWeights(const MoeConfig &c)
      : config(c), norm(cpu::WeightType::BF16, 1, c.hidden, 3),
        gate(cpu::WeightType::BF16, c.router.experts, c.hidden, 4),
        bias(randomFloats(c.router.experts, 5)),
        shared(c.hidden, c.sharedExperts * c.expertWidth, 6) {
    for (float &b : bias)
      b *= 0.05f;
    for (int64_t e = 0; e < c.pool; ++e) {
      experts.push_back(std::make_unique<BenchMlp>(c.hidden, c.expertWidth, 100 + 3 * e));
      views.push_back(experts.back()->view());
    }
  }

  static const MoeWeights &get(bool isV3) {
    static std::unique_ptr<MoeWeights> cache[2];
    std::unique_ptr<MoeWeights> &w = cache[isV3 ? 1 : 0];
    if (!w)
      w = std::make_unique<MoeWeights>(isV3 ? v3() : v2Lite());
    return *w;
  }
};

/// Args: {config (0 V2-Lite, 1 V3), T}.
void BM_MoeLayerDecode(benchmark::State &state, const KernelSet *k) {
  const MoeWeights &w = MoeWeights::get(state.range(0) == 1);
  const MoeConfig &c = w.config;
  const int64_t T = state.range(1), D = c.hidden, K = c.router.topK;
  const bool remap = c.pool < c.router.experts;
  constexpr int64_t kInputs = 64;
  const std::vector<float> inputs = randomFloats(kInputs * T * D, 7);
  std::vector<float> f(static_cast<size_t>(T * D)), routed(f.size()), shared(f.size()),
      h(f.size());
  std::vector<int32_t> idx(static_cast<size_t>(T * K));
  std::vector<float> weights(idx.size());
  std::vector<char> seen(static_cast<size_t>(c.pool));
  const int64_t expertBytes = w.experts[0]->streamedBytes();
  double bytes = 0;
  int64_t next = 0, turn = 0;
  for (auto _ : state) {
    const float *x = inputs.data() + next * T * D;
    next = next + 1 == kInputs ? 0 : next + 1;
    k->rmsNorm(x, T, D, w.norm.view(), 1e-6f, f.data());
    k->router(f.data(), T, w.gate.view(), c.router.score == cpu::ScoreFunc::Sigmoid
                                                  ? w.bias.data() : nullptr,
                c.router, idx.data(), weights.data());
    if (remap) // K distinct pool experts per token, in turn (see the file comment)
      for (int64_t t = 0; t < T; ++t, turn += K)
        for (int64_t k = 0; k < K; ++k)
          idx[t * K + k] = static_cast<int32_t>((turn + k) % c.pool);
    k->moeExperts(f.data(), T, w.views.data(), c.pool, idx.data(), weights.data(), K,
                    routed.data());
    k->swigluMlp(f.data(), T, w.shared.view(), shared.data());
    k->add(routed.data(), shared.data(), T * D, routed.data());
    k->add(x, routed.data(), T * D, h.data());
    benchmark::DoNotOptimize(h.data());
    benchmark::ClobberMemory();
    std::fill(seen.begin(), seen.end(), 0);
    int64_t distinct = 0;
    for (int32_t e : idx)
      distinct += seen[e] ? 0 : (seen[e] = 1);
    bytes += static_cast<double>(distinct * expertBytes + w.shared.streamedBytes() +
                                 w.gate.streamedBytes());
  }
  state.counters["weight_bytes_per_second"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsRate);
  state.counters["MiB_per_call"] =
      bytes / static_cast<double>(state.iterations()) / (1 << 20);
  state.SetLabel(k->simdLevel());
}


/// A SwiGLU MLP with gate and up apart, or fused (moe-fuse-gate-up: one weight of
/// 2I rows interleaved by 128-row units, silu(g) * u as the product's epilogue).
struct SwigluPool {
  static constexpr int64_t kPool = 6; ///< MLPs taken in turn, so decode streams from DRAM
  std::vector<std::unique_ptr<BenchMlp>> apart;
  std::vector<std::unique_ptr<BenchWeight>> gateUps;
  std::vector<cpu::SwigluWeights> views[2]; ///< [fused]

  SwigluPool(int64_t D, int64_t I) {
    for (int64_t i = 0; i < kPool; ++i) {
      apart.push_back(std::make_unique<BenchMlp>(D, I, 200 + 3 * i));
      views[0].push_back(apart.back()->view());
      gateUps.push_back(
          std::make_unique<BenchWeight>(cpu::WeightType::BF16, 2 * I, D, 300 + i));
      cpu::SwigluWeights fused;
      fused.gateUp = gateUps.back()->view();
      fused.gateUpRows = 128;
      fused.down = apart.back()->down.view();
      views[1].push_back(fused);
    }
  }
  static const SwigluPool &get() {
    // DeepSeek-V2-Lite's shared experts (2 x 1408) at its width.
    static const SwigluPool pool(2048, 2 * 1408);
    return pool;
  }
};

/// Args: {fused, T}. One MLP of the pool per call, in turn.
void BM_SwigluMlp(benchmark::State &state, const KernelSet *k) {
  const SwigluPool &pool = SwigluPool::get();
  const bool fused = state.range(0) != 0;
  const int64_t T = state.range(1), D = 2048;
  const std::vector<float> x = randomFloats(T * D, 16);
  std::vector<float> out(static_cast<size_t>(T * D));
  size_t next = 0;
  for (auto _ : state) {
    k->swigluMlp(x.data(), T, pool.views[fused][next], out.data());
    next = next + 1 == pool.views[fused].size() ? 0 : next + 1;
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["weight_bytes_per_second"] = benchmark::Counter(
      static_cast<double>(pool.apart[0]->streamedBytes()) *
          static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.SetLabel(k->simdLevel());
}

/// moeExperts alone, V3 shapes: K = 8 distinct experts per call, in turn.
void BM_MoeExpertsDecode(benchmark::State &state, const KernelSet *k) {
  const MoeWeights &w = MoeWeights::get(true);
  const MoeConfig &c = w.config;
  const int64_t D = c.hidden, K = c.router.topK;
  const std::vector<float> x = randomFloats(D, 8);
  const std::vector<float> weights = randomFloats(K, 9);
  std::vector<float> out(static_cast<size_t>(D));
  std::vector<int32_t> idx(static_cast<size_t>(K));
  int64_t turn = 0;
  for (auto _ : state) {
    for (int64_t k = 0; k < K; ++k)
      idx[k] = static_cast<int32_t>((turn + k) % c.pool);
    turn += K;
    k->moeExperts(x.data(), 1, w.views.data(), c.pool, idx.data(), weights.data(), K,
                    out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.counters["weight_bytes_per_second"] = benchmark::Counter(
      static_cast<double>(K * w.experts[0]->streamedBytes()) *
          static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.SetLabel(k->simdLevel());
}


/// The two rope calls of one MLA layer at decode: q_pe of 128 heads (head stride
/// 192, rope at column 128) and the one shared k_pe, V3's YaRN frequencies.
void BM_RopeDecode(benchmark::State &state, const KernelSet *k) {
  const int64_t heads = 128, headDim = 192, offset = 128;
  cpu::RopeParams p;
  p.dim = 64;
  p.yarn = true;
  p.factor = 40.f;
  std::vector<float> freqs(32);
  cpu::ropeFrequencies(p, freqs.data());
  std::vector<float> q = randomFloats(heads * headDim, 10), kPe = randomFloats(64, 11);
  int32_t position = 1000;
  for (auto _ : state) {
    k->rope(q.data(), 1, heads, heads * headDim, headDim, offset, p, freqs.data(),
              &position, cpu::RopeLayout::Interleaved);
    k->rope(kPe.data(), 1, 1, 64, 64, 0, p, freqs.data(), &position,
              cpu::RopeLayout::Interleaved);
    position = position == 4000 ? 1000 : position + 1;
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(k->simdLevel());
}


/// rmsNorm of one 7168-value token with a bf16 gamma.
void BM_RmsNormDecode(benchmark::State &state, const KernelSet *k) {
  const int64_t D = 7168;
  const BenchWeight gamma(cpu::WeightType::BF16, 1, D, 12);
  const std::vector<float> x = randomFloats(D, 13);
  std::vector<float> out(static_cast<size_t>(D));
  for (auto _ : state) {
    k->rmsNorm(x.data(), 1, D, gamma.view(), 1e-6f, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(k->simdLevel());
}


/// The router alone at decode, V3 (E 256, D 7168, bf16 gate). Arg cold = 1: gate
/// copies in turn so that every call reads its gate from DRAM, as a real layer
/// does; cold = 0: one gate, which stays in the L3, to show the work besides it.
void BM_RouterDecode(benchmark::State &state, const KernelSet *k) {
  const MoeConfig c = v3();
  const int64_t D = c.hidden;
  std::vector<BenchWeight> gates;
  int64_t footprint = 0;
  const int64_t minFootprint = state.range(0) ? kMinFootprintBytes : 1;
  for (uint64_t i = 0; footprint < minFootprint; ++i) {
    gates.emplace_back(cpu::WeightType::BF16, c.router.experts, D, 20 + i);
    footprint += gates.back().streamedBytes();
  }
  std::vector<float> bias = randomFloats(c.router.experts, 14);
  for (float &b : bias)
    b *= 0.05f;
  const std::vector<float> x = randomFloats(D, 15);
  std::vector<int32_t> idx(static_cast<size_t>(c.router.topK));
  std::vector<float> weights(idx.size());
  size_t next = 0;
  for (auto _ : state) {
    k->router(x.data(), 1, gates[next].view(), bias.data(), c.router, idx.data(),
                weights.data());
    next = next + 1 == gates.size() ? 0 : next + 1;
    benchmark::DoNotOptimize(weights.data());
    benchmark::ClobberMemory();
  }
  state.counters["weight_bytes_per_second"] = benchmark::Counter(
      static_cast<double>(gates[0].streamedBytes()) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.SetLabel(k->simdLevel());
}


} // namespace

void registerMoeBenchmarks(const KernelSet *k, const char *suffix) {
  const auto name = [&](const char *base) { return std::string(base) + suffix; };
  benchmark::RegisterBenchmark(name("BM_MoeLayerDecode").c_str(), BM_MoeLayerDecode, k)
      ->ArgNames({"V3", "T"})
      ->Args({0, 1})
      ->Args({1, 1})
      ->Args({0, 4})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("BM_MoeExpertsDecode").c_str(), BM_MoeExpertsDecode, k)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("BM_SwigluMlp").c_str(), BM_SwigluMlp, k)
      ->ArgNames({"fused", "T"})
      ->ArgsProduct({{0, 1}, {1, 256}})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("BM_RopeDecode").c_str(), BM_RopeDecode, k)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("BM_RmsNormDecode").c_str(), BM_RmsNormDecode, k)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(name("BM_RouterDecode").c_str(), BM_RouterDecode, k)
      ->ArgName("cold")
      ->Arg(1)
      ->Arg(0)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
}

} // namespace moec::bench
