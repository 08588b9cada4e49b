//===- Bench.cpp - moec bench: a plan's prefill and decode speed ----------===//
//
// Runs moec::runBench (the runtime's) and prints its report: a markdown table in
// the spirit of llama-bench's (pp<P> and tg<N> rows: median tokens/s and the
// repetitions' range), the bytes one decode token reads, the machine's read
// bandwidth measured between the repetitions and the fraction of it decode
// achieved; or the same as JSON.
//
//===----------------------------------------------------------------------===//

#include "moec/Driver/Driver.h"

#include "moec/runtime/Backend.h"
#include "moec/runtime/Bench.h"
#include "moec/runtime/Plan.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>

using namespace llvm;
using json = nlohmann::ordered_json;

namespace moec::driver {
namespace {

Error fail(const std::string &message) {
  return createStringError(inconvertibleErrorCode(), "%s", message.c_str());
}

/// The CPU's model name from /proc/cpuinfo (empty when there is none).
std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos)
        return StringRef(line).substr(colon + 1).trim().str();
    }
  return {};
}

json spread(const std::vector<double> &values) {
  json j = json::object();
  j["median"] = median(values);
  j["min"] = values.empty() ? 0.0 : *std::min_element(values.begin(), values.end());
  j["max"] = values.empty() ? 0.0 : *std::max_element(values.begin(), values.end());
  j["runs"] = values;
  return j;
}

/// Bytes one decode token reads at the mean context of the timed steps.
double decodeBytes(const BenchReport &r) {
  return double(r.decodeBytes.weights) +
         double(r.decodeBytes.kvPerContextToken) * r.meanDecodeContext;
}

/// "lo–hi" of `v`, each divided by `unit`.
std::string range(const std::vector<double> &v, const char *format, double unit = 1) {
  if (v.empty())
    return "-";
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return formatv(format, *lo / unit).str() + "–" + formatv(format, *hi / unit).str();
}

/// What a plan computes in, for reading a measurement: its matrix weights by dtype
/// (2-D weights other than block-scale tensors), the steps whose products take bf16
/// activations (Step.activations), and the KV cache's dtype.
struct Numerics {
  std::map<std::string, int64_t> weights; ///< dtype name -> matrix weights
  int64_t bf16ActivationSteps = 0;
  int64_t fp8ActivationSteps = 0;
  int64_t productSteps = 0;               ///< steps that multiply by weights
  std::string kvCache;                    ///< the states' dtype ("" without states)
};

Numerics numericsOf(const Plan &plan) {
  Numerics n;
  const plan::Plan &root = plan.root();
  std::vector<bool> isScale(root.weights() ? root.weights()->size() : 0, false);
  if (root.weights())
    for (const plan::Weight *w : *root.weights())
      if (w->block_scale() >= 0 && size_t(w->block_scale()) < isScale.size())
        isScale[size_t(w->block_scale())] = true;
  if (root.weights())
    for (flatbuffers::uoffset_t i = 0; i < root.weights()->size(); ++i) {
      const plan::Weight *w = root.weights()->Get(i);
      if (!isScale[i] && w->shape() && w->shape()->size() == 2)
        ++n.weights[plan::EnumNameDType(w->dtype())];
    }
  if (root.steps())
    for (const plan::Step *s : *root.steps()) {
      n.productSteps += multipliesWeights(s->kind());
      n.bf16ActivationSteps += s->activations() == plan::DType::BF16;
      n.fp8ActivationSteps += s->activations() == plan::DType::F8E4M3;
    }
  if (root.states() && root.states()->size() > 0)
    n.kvCache = plan::EnumNameDType(root.states()->Get(0)->dtype());
  return n;
}

} // namespace

Error bench(const BenchCommandOptions &options) {
  std::unique_ptr<Plan> plan;
  if (Status s = Plan::load(options.plan, &plan); !s.ok())
    return fail("moec bench: " + s.message());
  BenchOptions b;
  b.promptTokens = options.promptTokens;
  b.generateTokens = options.generateTokens;
  b.repetitions = options.repetitions;
  b.threads = options.threads;
  b.seed = options.seed;
  if (!options.bandwidth)
    b.bandwidthBytes = 0;
  if (!options.quiet)
    b.progress = [](const std::string &what) { errs() << "moec bench: " << what << "\n"; };
  BenchReport r;
  if (Status s = runBench(*plan, b, &r); !s.ok())
    return fail("moec bench: " + options.plan + ": " + s.message());

  const double decode = median(r.decodeTokensPerSecond);
  const double bandwidth = median(r.bandwidthBytesPerSecond);
  const double achieved = decode * decodeBytes(r);
  const std::string planName = sys::path::filename(options.plan).str();
  const std::string backend = r.backend + " (" + r.simd + ")";
  const Numerics numerics = numericsOf(*plan);

  if (options.format == BenchFormat::Json) {
    json j = json::object();
    j["plan"] = options.plan;
    j["backend"] = r.backend;
    j["simd"] = r.simd;
    j["cpu"] = cpuModel();
    j["threads"] = r.threads;
    j["prompt_tokens"] = r.promptTokens;
    j["generate_tokens"] = r.generateTokens;
    j["repetitions"] = options.repetitions;
    j["numerics"] = {{"matrix_weights", numerics.weights},
                     {"product_steps", numerics.productSteps},
                     {"bf16_activation_steps", numerics.bf16ActivationSteps},
                     {"fp8_activation_steps", numerics.fp8ActivationSteps},
                     {"kv_cache", numerics.kvCache.empty() ? json(nullptr) : json(numerics.kvCache)}};
    j["prefill_tokens_per_second"] = spread(r.prefillTokensPerSecond);
    j["decode_tokens_per_second"] = spread(r.decodeTokensPerSecond);
    j["decode_bytes_per_token"] = {{"weights", r.decodeBytes.weights},
                                   {"kv_cache_per_context_token", r.decodeBytes.kvPerContextToken},
                                   {"mean_context", r.meanDecodeContext},
                                   {"total", decodeBytes(r)}};
    if (r.bandwidthBytesPerSecond.empty())
      j["read_bandwidth"] = nullptr;
    else
      j["read_bandwidth"] = {{"bytes_per_second", spread(r.bandwidthBytesPerSecond)},
                             {"buffer_bytes", r.bandwidthBufferBytes},
                             {"loads", r.bandwidthLoads}};
    j["decode_bandwidth_fraction"] =
        bandwidth > 0 && decode > 0 ? json(achieved / bandwidth) : json(nullptr);
    j["warmup"] = {{"prefaulted_weight_bytes", r.prefaultedBytes},
                   {"seconds", r.warmupSeconds}};
    outs() << j.dump(2) << "\n";
    return Error::success();
  }

  std::string table;
  raw_string_ostream os(table);
  os << "| plan | backend | threads | test | tokens/s | range |\n"
     << "|---|---|---|---|---|---|\n";
  os << formatv("| {0} | {1} | {2} | pp{3} | {4:f1} | {5} |\n", planName, backend, r.threads,
                r.promptTokens, median(r.prefillTokensPerSecond),
                range(r.prefillTokensPerSecond, "{0:f1}"));
  if (r.generateTokens > 0)
    os << formatv("| {0} | {1} | {2} | tg{3} | {4:f1} | {5} |\n", planName, backend,
                  r.threads, r.generateTokens, decode,
                  range(r.decodeTokensPerSecond, "{0:f1}"));
  os << "\n"
     << formatv("{0} repetition{1}; median tokens/s, and the range over the repetitions.\n",
                options.repetitions, options.repetitions == 1 ? "" : "s");
  os << formatv("decode reads {0:f2} MB per token: {1:f2} MB of weights + {2:f3} MB of KV "
                "cache ({3} bytes per context token, mean context {4:f1})\n",
                decodeBytes(r) / 1e6, r.decodeBytes.weights / 1e6,
                r.decodeBytes.kvPerContextToken * r.meanDecodeContext / 1e6,
                r.decodeBytes.kvPerContextToken, r.meanDecodeContext);
  if (bandwidth > 0) {
    os << formatv("read bandwidth {0:f1} GB/s (median, measured before each repetition "
                  "with {1} threads, {2} loads over {3} MiB; range {4} GB/s)\n",
                  bandwidth / 1e9, r.threads, r.bandwidthLoads,
                  r.bandwidthBufferBytes >> 20,
                  range(r.bandwidthBytesPerSecond, "{0:f1}", 1e9));
    if (decode > 0)
      os << formatv("decode: {0:f1} tokens/s x {1:f2} MB = {2:f2} GB/s, {3:f2} of the "
                    "read bandwidth\n",
                    decode, decodeBytes(r) / 1e6, achieved / 1e9, achieved / bandwidth);
  }
  std::string weights;
  for (const auto &[dtype, count] : numerics.weights)
    weights += (weights.empty() ? "" : ", ") + std::to_string(count) + " " + dtype;
  os << "numerics: matrix weights " << (weights.empty() ? "none" : weights) << "; activations "
     << (numerics.bf16ActivationSteps != 0
             ? formatv("bf16 in {0} of {1} weight-product steps", numerics.bf16ActivationSteps,
                       numerics.productSteps)
                   .str()
         : numerics.fp8ActivationSteps != 0
             ? formatv("e4m3 (1x128 blocks) in {0} of {1} weight-product steps",
                       numerics.fp8ActivationSteps, numerics.productSteps)
                   .str()
             : std::string("f32"))
     << "; KV cache " << (numerics.kvCache.empty() ? "none" : numerics.kvCache) << "\n";
  os << formatv("warm-up (not timed): {0:f1} MB of weights touched page by page, then one "
                "generation; {1:f2} s\n",
                r.prefaultedBytes / 1e6, r.warmupSeconds);
  const std::string model = cpuModel();
  if (!model.empty())
    os << "cpu: " << model << "\n";
  outs() << table;
  return Error::success();
}

} // namespace moec::driver
