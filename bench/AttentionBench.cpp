//===- AttentionBench.cpp - MLA attention decode over a latent cache ------===//
//
// One token attending over a 4096-row latent cache with DeepSeek's dims (C = 512,
// rope 64, nope 128, v 128), bf16 kv_b_proj, H = 16 (V2-Lite) and 128 (V3).
// - BM_MlaDecodeAbsorbed: cache_store, then head_linear (W_UK, transposed) ->
//   latent_attention -> head_linear (W_UV), the steps the absorbed form compiles
//   to. Through the KernelSet, so a baseline build from before the split (one
//   mlaAttention kernel) runs the same call as BM_MlaDecodeAbsorbed_baseline.
// - BM_MlaDecodeNaive: cache_store, then expanded_attention (shown for contrast).
// - BM_MlaDecodeStage: each step of the absorbed chain alone (this build only).
// - BM_LatentAttentionCache: latent_attention alone over an f32 and a bf16 latent
//   cache (moec compile --kv-cache), the cache bytes read per second.
// The counter reports the cache + W_UK/W_UV bytes read per second.
//
//===----------------------------------------------------------------------===//

#include "BenchSupport.h"
#include "KernelSet.h"

#include <benchmark/benchmark.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>

namespace moec::bench {
namespace {

constexpr int64_t kNope = 128, kRope = 64, kV = 128, kLatent = 512;

/// The inputs of one (H, L) shape, built once and shared by every kernel set.
struct MlaInputs {
  int64_t heads, rows;
  BenchWeight kvB;
  cpu::Weight kvBView;
  std::vector<float> latent, rope, q, cNew, pe, qLat, oLat, out;
  int32_t position, seq = 0;

  MlaInputs(int64_t H, int64_t L)
      : heads(H), rows(L), kvB(cpu::WeightType::BF16, H * (kNope + kV), kLatent, 5),
        kvBView(kvB.view()), latent(randomFloats(L * kLatent, 1)),
        rope(randomFloats(L * kRope, 2)), q(randomFloats(H * (kNope + kRope), 3)),
        cNew(randomFloats(kLatent, 4)), pe(randomFloats(kRope, 6)),
        qLat(static_cast<size_t>(H * kLatent)), oLat(qLat.size()),
        out(static_cast<size_t>(H * kV)), position(static_cast<int32_t>(L - 1)) {}

  static MlaInputs &get(int64_t H, int64_t L) {
    static std::map<std::pair<int64_t, int64_t>, std::unique_ptr<MlaInputs>> cache;
    std::unique_ptr<MlaInputs> &entry = cache[{H, L}];
    if (!entry)
      entry = std::make_unique<MlaInputs>(H, L);
    return *entry;
  }

  MlaDecodeCall call() {
    MlaDecodeCall c;
    c.heads = heads;
    c.nope = kNope;
    c.rope = kRope;
    c.v = kV;
    c.latentDim = kLatent;
    c.softmaxScale = 1.f / std::sqrt(static_cast<float>(kNope + kRope));
    c.q = q.data();
    c.cNew = cNew.data();
    c.pe = pe.data();
    c.T = 1;
    c.positions = &position;
    c.seqIds = &seq;
    c.latent = latent.data();
    c.ropeCache = rope.data();
    c.capacity = rows;
    c.kvB = &kvBView;
    c.qLat = qLat.data();
    c.oLat = oLat.data();
    c.out = out.data();
    return c;
  }

  /// Cache rows + the kv_b_proj bytes the absorbed form reads.
  double bytes() const {
    return static_cast<double>(rows * (kLatent + kRope) * 4 + kvB.streamedBytes());
  }
};

/// Args: {H, L}.
void BM_MlaDecode(benchmark::State &state, const KernelSet *k, bool absorbed) {
  MlaInputs &in = MlaInputs::get(state.range(0), state.range(1));
  const MlaDecodeCall call = in.call();
  for (auto _ : state) {
    k->mlaDecode(call, absorbed);
    benchmark::DoNotOptimize(in.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["bytes_per_second"] = benchmark::Counter(
      in.bytes() * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(k->simdLevel());
}

/// One step of the absorbed chain alone. Args: {stage (0 head_linear W_UK,
/// 1 latent_attention, 2 head_linear W_UV), H, L}.
void BM_MlaDecodeStage(benchmark::State &state) {
  const int64_t stage = state.range(0);
  MlaInputs &in = MlaInputs::get(state.range(1), state.range(2));
  const int64_t H = in.heads, qk = kNope + kRope;
  cpu::StateView latent, rope;
  latent.data = in.latent.data();
  latent.rowStride = kLatent;
  latent.sequenceStride = in.rows * kLatent;
  latent.capacity = in.rows;
  rope.data = in.rope.data();
  rope.rowStride = kRope;
  rope.sequenceStride = in.rows * kRope;
  rope.capacity = in.rows;
  cpu::HeadLinearParams uk;
  uk.heads = H;
  uk.inStride = qk;
  uk.inWidth = kNope;
  uk.rowStride = kNope + kV;
  uk.rows = kNope;
  uk.transpose = true;
  cpu::HeadLinearParams uv;
  uv.heads = H;
  uv.inStride = kLatent;
  uv.inWidth = kLatent;
  uv.rowStride = kNope + kV;
  uv.rowOffset = kNope;
  uv.rows = kV;
  cpu::LatentAttentionParams la;
  la.heads = H;
  la.latentDim = kLatent;
  la.ropeDim = kRope;
  la.qStride = qk;
  la.qRopeOffset = kNope;
  la.softmaxScale = 1.f / std::sqrt(static_cast<float>(qk));
  for (auto _ : state) {
    switch (stage) {
    case 0:
      cpu::headLinear(in.q.data(), 1, H * qk, in.kvBView, uk, in.qLat.data());
      break;
    case 1:
      cpu::latentAttention(in.qLat.data(), in.q.data(), H * qk, 1, &in.position, &in.seq,
                           latent, rope, la, in.oLat.data());
      break;
    default:
      cpu::headLinear(in.oLat.data(), 1, H * kLatent, in.kvBView, uv, in.out.data());
      break;
    }
    benchmark::ClobberMemory();
  }
  static const char *const names[] = {"head_linear W_UK", "latent_attention",
                                      "head_linear W_UV"};
  state.SetLabel(std::string(cpu::simdLevel()) + " " + names[stage < 3 ? stage : 2]);
}

/// latent_attention over an f32 or a bf16 cache. Args: {bf16 (0 or 1), H, L}.
void BM_LatentAttentionCache(benchmark::State &state) {
  const bool bf16 = state.range(0) != 0;
  MlaInputs &in = MlaInputs::get(state.range(1), state.range(2));
  const int64_t H = in.heads, qk = kNope + kRope;
  std::vector<uint16_t> latentHalves, ropeHalves;
  cpu::StateView latent, rope;
  latent.data = in.latent.data();
  rope.data = in.rope.data();
  if (bf16) {
    for (float v : in.latent)
      latentHalves.push_back(cpu::floatToBf16(v));
    for (float v : in.rope)
      ropeHalves.push_back(cpu::floatToBf16(v));
    latent.data = latentHalves.data();
    rope.data = ropeHalves.data();
    latent.element = rope.element = cpu::StateElement::BF16;
  }
  latent.rowStride = kLatent;
  latent.sequenceStride = in.rows * kLatent;
  latent.capacity = in.rows;
  rope.rowStride = kRope;
  rope.sequenceStride = in.rows * kRope;
  rope.capacity = in.rows;
  cpu::LatentAttentionParams la;
  la.heads = H;
  la.latentDim = kLatent;
  la.ropeDim = kRope;
  la.qStride = qk;
  la.qRopeOffset = kNope;
  la.softmaxScale = 1.f / std::sqrt(static_cast<float>(qk));
  for (auto _ : state) {
    cpu::latentAttention(in.qLat.data(), in.q.data(), H * qk, 1, &in.position, &in.seq, latent,
                         rope, la, in.oLat.data());
    benchmark::ClobberMemory();
  }
  const double cacheBytes = double(in.rows) * double(kLatent + kRope) * (bf16 ? 2 : 4);
  state.counters["cache_GB/s"] = benchmark::Counter(
      cacheBytes * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(cpu::simdLevel()) + (bf16 ? " bf16 cache" : " f32 cache"));
}

} // namespace

void registerAttentionBenchmarks(const KernelSet *k, const char *suffix) {
  const auto name = [&](const char *base) { return std::string(base) + suffix; };
  benchmark::RegisterBenchmark(name("BM_MlaDecodeAbsorbed").c_str(), BM_MlaDecode, k, true)
      ->ArgNames({"H", "L"})
      ->Args({16, 4096})
      ->Args({128, 4096})
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  // The naive form recomputes k_nope and v for all 4096 rows: shown for contrast.
  benchmark::RegisterBenchmark(name("BM_MlaDecodeNaive").c_str(), BM_MlaDecode, k, false)
      ->ArgNames({"H", "L"})
      ->Args({16, 4096})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

BENCHMARK(BM_LatentAttentionCache)
    ->ArgNames({"bf16", "H", "L"})
    ->ArgsProduct({{0, 1}, {16, 128}, {4096, 32768}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

BENCHMARK(BM_MlaDecodeStage)
    ->ArgNames({"stage", "H", "L"})
    ->ArgsProduct({{0, 1, 2}, {16, 128}, {4096}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

} // namespace moec::bench
