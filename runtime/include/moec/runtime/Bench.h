//===- Bench.h - Prefill and decode speed of a plan, llama-bench style -*- C++ -*-===//
//
// runBench() measures a plan the way `llama-bench -p P -n N -r R` measures a
// model: after a warm-up, R repetitions of a P-token prefill followed by N decode
// steps (one token each, greedy) on a fresh sequence, each timed by the generator.
// Page faults on first touch happen before any timing: every page of every weight
// is read once (one byte per 4 KiB), then one untimed generation faults in the
// arena, the KV cache and the kernels' scratch. Before each repetition the
// machine's read bandwidth is measured with the same thread count
// (cpu::ReadBandwidthProbe), so decode's bytes per second can be set against the
// bandwidth of the same minute. `moec bench` prints the report (md or json).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_BENCH_H
#define MOEC_RUNTIME_BENCH_H

#include "moec/runtime/Plan.h"
#include "moec/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moec {

struct BenchOptions {
  int64_t promptTokens = 128;   ///< -p: tokens of each prefill
  int64_t generateTokens = 64;  ///< -n: decode steps after it
  int repetitions = 5;          ///< -r
  int threads = 0;              ///< the backend's threads; <= 0: the CPUs it may run on
  std::string backend = "cpu";  ///< registered backend name
  uint32_t seed = 1;            ///< the prompts' random token ids
  /// Bytes of the bandwidth probe's buffer; 0: no bandwidth measurement.
  int64_t bandwidthBytes = int64_t(1) << 30;
  /// Told what happens (warm-up, each repetition's result), for a progress line.
  std::function<void(const std::string &)> progress;
};

/// What one decode token reads, by the plan's decode entry point.
struct DecodeBytes {
  /// Weights: every weight of every step once (block scales included), but one
  /// row of the embedding table, and of routed experts top_k of every `experts`.
  uint64_t weights = 0;
  /// KV cache per token of context (all layers' states); a decode step at
  /// context c reads c times this.
  uint64_t kvPerContextToken = 0;
};
DecodeBytes decodeBytesPerToken(const Plan &plan);

struct BenchReport {
  std::string backend;            ///< e.g. "cpu"
  std::string simd;               ///< the CPU kernels' level ("avx512", "avx2")
  int threads = 0;                ///< resolved thread count
  int64_t promptTokens = 0, generateTokens = 0;
  std::vector<double> prefillTokensPerSecond;   ///< one per repetition
  std::vector<double> decodeTokensPerSecond;    ///< one per repetition
  std::vector<double> bandwidthBytesPerSecond;  ///< before each repetition (empty: none)
  int64_t bandwidthBufferBytes = 0;
  std::string bandwidthLoads;     ///< "avx512" or "avx2"
  DecodeBytes decodeBytes;
  /// Mean context of the timed decode steps: P + (N - 1) / 2 tokens.
  double meanDecodeContext = 0;
  uint64_t prefaultedBytes = 0;   ///< weight bytes touched before timing
  double warmupSeconds = 0;       ///< prefault + the untimed generation
};

/// Runs the benchmark. The plan must have a token bound (prompts are random ids
/// below it) and hold P + N tokens in a sequence.
Status runBench(const Plan &plan, const BenchOptions &options, BenchReport *report);

/// The median of `values` (the mean of the middle two for an even count; 0 when empty).
double median(std::vector<double> values);

} // namespace moec

#endif // MOEC_RUNTIME_BENCH_H
