//===- Bench.cpp - Prefill and decode speed of a plan, llama-bench style --===//

#include "moec/runtime/Bench.h"

#include "moec/cpu/Bandwidth.h"
#include "moec/cpu/kernels.h"
#include "moec/runtime/Executor.h"
#include "moec/runtime/Generator.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <random>
#include <set>

namespace moec {

double median(std::vector<double> values) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

DecodeBytes decodeBytesPerToken(const Plan &plan) {
  const plan::Plan &root = plan.root();
  // A weight's bytes with its block scales.
  auto bytesOf = [&](int32_t w) {
    uint64_t bytes = plan.weight(size_t(w)).bytes;
    const int32_t scale = root.weights()->Get(uint32_t(w))->block_scale();
    if (scale >= 0)
      bytes += plan.weight(size_t(scale)).bytes;
    return bytes;
  };
  DecodeBytes out;
  std::set<int32_t> counted;
  const EntryPointInfo &decode = plan.decode();
  for (uint32_t i = decode.firstStep; i < decode.firstStep + decode.numSteps; ++i) {
    const plan::Step *step = root.steps()->Get(i);
    const auto *weights = step->weights();
    if (!weights || weights->size() == 0)
      continue;
    switch (step->kind()) {
    case plan::StepKind::Embedding: {
      // One row of the table per token.
      const WeightView &table = plan.weight(size_t(weights->Get(0)));
      out.weights += table.rows > 0 ? table.bytes / uint64_t(table.rows) : table.bytes;
      break;
    }
    case plan::StepKind::MoeExperts:
    case plan::StepKind::FusedMoeExperts: {
      // top_k of the experts, which are all of one size.
      const plan::MoeAttrs *moe = step->attrs_as_MoeAttrs();
      uint64_t all = 0;
      for (int32_t w : *weights)
        all += bytesOf(w);
      if (moe && moe->experts() > 0)
        out.weights += all / uint64_t(moe->experts()) * uint64_t(moe->top_k());
      break;
    }
    default:
      for (int32_t w : *weights)
        if (counted.insert(w).second)
          out.weights += bytesOf(w);
    }
  }
  for (size_t s = 0; s < plan.numStates(); ++s)
    out.kvPerContextToken += plan.state(s).rowBytes;
  return out;
}

namespace {

/// Reads one byte of every 4 KiB page of every weight: the mappings' page faults
/// happen here, not in a timed run.
uint64_t prefaultWeights(const Plan &plan) {
  constexpr uint64_t kPage = 4096;
  uint64_t bytes = 0;
  volatile uint8_t sink = 0;
  for (size_t w = 0; w < plan.numWeights(); ++w) {
    const WeightView &weight = plan.weight(w);
    const auto *data = static_cast<const uint8_t *>(weight.data);
    if (!data)
      continue;
    uint8_t acc = 0;
    for (uint64_t offset = 0; offset < weight.bytes; offset += kPage)
      acc ^= data[offset];
    if (weight.bytes)
      acc ^= data[weight.bytes - 1];
    sink = sink ^ acc;
    bytes += weight.bytes;
  }
  return bytes;
}

} // namespace

Status runBench(const Plan &plan, const BenchOptions &options, BenchReport *report) {
  if (options.promptTokens < 1 || options.generateTokens < 0 || options.repetitions < 1)
    return Status::error("bench: -p must be at least 1, -n at least 0 and -r at least 1 "
                         "(got %" PRId64 ", %" PRId64 ", %d)",
                         options.promptTokens, options.generateTokens, options.repetitions);
  const int64_t vocab = plan.tokenBound();
  if (vocab < 1)
    return Status::error("bench: the plan has no token ids to prompt with");
  auto say = [&](const std::string &what) {
    if (options.progress)
      options.progress(what);
  };
  BenchReport r;
  r.backend = options.backend;
  r.simd = cpu::simdLevel();
  r.threads = options.threads > 0 ? options.threads : cpu::defaultNumThreads();
  r.promptTokens = options.promptTokens;
  r.generateTokens = options.generateTokens;
  r.decodeBytes = decodeBytesPerToken(plan);
  r.meanDecodeContext =
      double(options.promptTokens) + double(std::max<int64_t>(options.generateTokens - 1, 0)) / 2;

  ExecutorOptions executorOptions;
  executorOptions.backend = options.backend;
  executorOptions.threads = r.threads;
  std::unique_ptr<Executor> executor;
  MOEC_RETURN_IF_ERROR(Executor::create(plan, executorOptions, &executor));
  // The prompt, then every generated token but the last (never fed back).
  const int64_t capacity = options.promptTokens + options.generateTokens + 1;
  std::unique_ptr<KvCache> cache;
  MOEC_RETURN_IF_ERROR(executor->createCache(1, capacity, &cache));

  std::mt19937 rng(options.seed);
  std::uniform_int_distribution<int32_t> token(0, int32_t(vocab - 1));
  auto prompt = [&] {
    std::vector<int32_t> ids(size_t(options.promptTokens));
    for (int32_t &id : ids)
      id = token(rng);
    return ids;
  };
  // N decode steps: N + 1 tokens generated, the last one not fed back.
  GenerationOptions generation;
  generation.maxNewTokens = options.generateTokens + 1;

  say("warm-up: touching every weight page, then one untimed generation");
  const auto warmStart = std::chrono::steady_clock::now();
  r.prefaultedBytes = prefaultWeights(plan);
  {
    GenerationOptions warm = generation;
    warm.maxNewTokens = std::min<int64_t>(generation.maxNewTokens, 3);
    MOEC_RETURN_IF_ERROR(
        generate(*executor, *cache, 0, prompt(), warm, nullptr, nullptr, nullptr));
  }
  std::unique_ptr<cpu::ReadBandwidthProbe> probe;
  if (options.bandwidthBytes > 0) {
    try {
      probe = std::make_unique<cpu::ReadBandwidthProbe>(r.threads, options.bandwidthBytes);
      r.bandwidthBufferBytes = probe->bytes();
      r.bandwidthLoads = probe->loads();
    } catch (const std::bad_alloc &) {
      say("no memory for the bandwidth probe's buffer: bandwidth not measured");
    }
  }
  r.warmupSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - warmStart).count();

  for (int rep = 0; rep < options.repetitions; ++rep) {
    if (probe)
      r.bandwidthBytesPerSecond.push_back(probe->measure(2));
    cache->clear(0);
    GenerationStats stats;
    MOEC_RETURN_IF_ERROR(
        generate(*executor, *cache, 0, prompt(), generation, nullptr, nullptr, &stats));
    const double pre = stats.prefillSeconds > 0 ? stats.promptTokens / stats.prefillSeconds : 0;
    const double dec = stats.decodeSeconds > 0 ? stats.decodedTokens / stats.decodeSeconds : 0;
    r.prefillTokensPerSecond.push_back(pre);
    if (options.generateTokens > 0)
      r.decodeTokensPerSecond.push_back(dec);
    char line[160];
    std::snprintf(line, sizeof line, "repetition %d/%d: prefill %.1f tokens/s, decode %.1f tokens/s",
                  rep + 1, options.repetitions, pre, dec);
    say(line);
  }
  *report = std::move(r);
  return Status();
}

} // namespace moec
