//===- EmulatedGpuTest.cpp - golden plans on the generated GPU kernels ----===//
//
// Every golden variant (as it is, and --quantize=fp8) is compiled, then run
// twice: on the CPU backend, and with the kernels codegen/ptx generates for
// sm_90a and for sm_80 interpreted on the CPU (EmulatedGpuBackend: the cuda
// backend's launch sequence and arguments, the kernels' own MLIR). The prompt's
// logits (prefill) and four greedy decode steps (decode, one token at a time
// over the KV cache) must agree with the CPU: the same bound and tokens the GPU
// check asks of a real GPU (relative error <= 1e-3, identical tokens).
//
//===----------------------------------------------------------------------===//

#include "EmulatedGpuBackend.h"

#include "../golden/GoldenVariants.h"

#include "moec/Driver/Driver.h"
#include "moec/cpu/kernels.h"
#include "moec/runtime/Executor.h"
#include "moec/runtime/Generator.h"
#include "moec/runtime/KvCache.h"
#include "moec/runtime/Plan.h"
#include "moec/runtime/Rollout.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>

namespace moec {
namespace {

const std::string kGolden = MOEC_GOLDEN_DIR;

struct Case {
  std::string variant, checkpoint, backend;
  bool quantizeFp8 = false;
  bool bf16Acts = false; ///< --activations=bf16
  bool kvFp8 = false;    ///< --kv-cache=fp8
  bool fp8Acts = false;  ///< --activations=fp8 (with FP8 weights)
  /// > 0: the prompt repeated to this many tokens: prefill batches from 16 tokens
  /// run the FP8 linears as wgmma GEMMs on sm_90a (70: two token tiles, the second
  /// partial).
  int longPrompt = 0;
};

/// Logits of a prompt and of `steps` greedy decode steps after it, and the tokens.
struct Outputs {
  std::vector<float> prompt, decode;
  std::vector<int32_t> tokens;
};

Outputs runPlan(const Plan &plan, const std::string &backend, const std::vector<int32_t> &prompt,
            int steps) {
  Outputs run;
  ExecutorOptions options;
  options.backend = backend;
  std::unique_ptr<Executor> executor;
  Status created = Executor::create(plan, options, &executor);
  EXPECT_TRUE(created.ok()) << created.message();
  if (!created.ok())
    return run;
  std::unique_ptr<KvCache> cache;
  Status cached = executor->createCache(1, int64_t(prompt.size()) + steps + 1, &cache);
  EXPECT_TRUE(cached.ok()) << cached.message();
  const int64_t V = plan.tokenBound(), T = int64_t(prompt.size());
  std::vector<int32_t> positions(prompt.size()), seqIds(prompt.size(), 0);
  for (size_t i = 0; i < positions.size(); ++i)
    positions[i] = int32_t(i);
  run.prompt.resize(size_t(T * V));
  TokenBatch batch{prompt.data(), positions.data(), seqIds.data(), T};
  Status s = executor->forward(batch, *cache, run.prompt.data());
  EXPECT_TRUE(s.ok()) << s.message();
  const float *last = run.prompt.data() + (T - 1) * V;
  int32_t token = int32_t(std::max_element(last, last + V) - last);
  for (int i = 0; i < steps && s.ok(); ++i) {
    run.tokens.push_back(token);
    int32_t position = int32_t(T + i), seq = 0;
    std::vector<float> logits(static_cast<size_t>(V));
    TokenBatch one{&token, &position, &seq, 1};
    s = executor->forward(one, *cache, logits.data());
    EXPECT_TRUE(s.ok()) << s.message();
    run.decode.insert(run.decode.end(), logits.begin(), logits.end());
    token = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  run.tokens.push_back(token);
  return run;
}

/// The largest difference relative to the largest |want|; infinite where the sizes
/// differ or a value is NaN or infinite on one side only (std::max would skip NaN).
double relativeError(const std::vector<float> &want, const std::vector<float> &got) {
  double scale = 0, worst = 0;
  for (float v : want)
    scale = std::max(scale, double(std::fabs(v)));
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    if (want[i] == got[i])
      continue;
    const double d = std::fabs(double(want[i]) - double(got[i]));
    if (!std::isfinite(d))
      return INFINITY;
    worst = std::max(worst, d);
  }
  return want.size() == got.size() ? worst / (scale > 0 ? scale : 1) : INFINITY;
}

class EmulatedGpu : public ::testing::TestWithParam<Case> {};

TEST_P(EmulatedGpu, AgreesWithTheCpuBackend) {
  const Case &c = GetParam();
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("moec-emulated-gpu", dir));
  driver::CompileOptions o;
  o.checkpointDir = c.checkpoint;
  o.output = (dir + "/model.plan").str();
  o.quiet = true;
  o.weights = WeightPlacement::External;
  o.maxTokens = c.longPrompt ? 96 : 32;
  o.quantize = c.quantizeFp8 ? driver::QuantizeMode::fp8 : driver::QuantizeMode::none;
  if (c.bf16Acts)
    o.activations = driver::ActivationElement::bf16;
  if (c.kvFp8)
    o.kvCache = driver::KvCacheElement::fp8;
  if (c.fp8Acts)
    o.activations = driver::ActivationElement::fp8;
  llvm::Error err = driver::compile(o);
  ASSERT_FALSE(static_cast<bool>(err)) << llvm::toString(std::move(err));
  std::unique_ptr<Plan> plan;
  Status loaded = Plan::load(o.output, &plan);
  ASSERT_TRUE(loaded.ok()) << loaded.message();

  std::ifstream promptFile(kGolden + "/data/" + c.variant + "/prompt.json");
  std::vector<int32_t> prompt = nlohmann::json::parse(promptFile)["tokens"];
  if (c.longPrompt) {
    const size_t n = prompt.size();
    while (prompt.size() < size_t(c.longPrompt))
      prompt.push_back(prompt[prompt.size() % n]);
  }
  registerEmulatedGpuBackends();
  // The CPU reference below AMX: the AMX-BF16 tiles read bf16 subnormals as zero
  // (kernels.h), which moves bf16-activation products by up to 1e-3 on the trained
  // model; every other level multiplies the rounded inputs exactly.
  if (cpu::detectedSimdLevel() == cpu::SimdLevel::Avx512Amx)
    ASSERT_TRUE(cpu::setSimdLevelForTesting(cpu::SimdLevel::Avx512Vnni));
  if (const char *trace = std::getenv("MOEC_EMULATED_GPU_TRACE")) {
    // The first step whose result differs by more than the relative error given
    // (MOEC_EMULATED_GPU_TRACE=1e-6; default 1e-4), for debugging a kernel.
    const double threshold = std::atof(trace) > 0 ? std::atof(trace) : 1e-4;
    std::map<uint32_t, std::vector<float>> cpuSteps;
    for (const char *backend : {"cpu", c.backend.c_str()}) {
      ExecutorOptions options;
      options.backend = backend;
      std::unique_ptr<Executor> executor;
      ASSERT_TRUE(Executor::create(*plan, options, &executor).ok());
      std::unique_ptr<KvCache> cache;
      ASSERT_TRUE(executor->createCache(1, 128, &cache).ok());
      std::vector<int32_t> positions(prompt.size()), seqIds(prompt.size(), 0);
      for (size_t i = 0; i < positions.size(); ++i)
        positions[i] = int32_t(i);
      std::vector<float> logits(prompt.size() * size_t(plan->tokenBound()));
      TokenBatch batch{prompt.data(), positions.data(), seqIds.data(), int64_t(prompt.size())};
      bool reported = false;
      Status s = executor->forward(batch, *cache, logits.data(),
                                   [&](uint32_t step, const float *v, int64_t rows, int64_t cols) {
                                     std::vector<float> got(v, v + rows * cols);
                                     if (std::string(backend) == "cpu") {
                                       cpuSteps[step] = got;
                                     } else if (!reported) {
                                       double e = relativeError(cpuSteps[step], got);
                                       if (e > threshold) {
                                         std::cout << "first difference: "
                                                   << plan->stepLabel(step) << " rel " << e
                                                   << "\n";
                                         reported = true;
                                       }
                                     }
                                     return Status();
                                   });
      ASSERT_TRUE(s.ok()) << s.message();
    }
  }
  Outputs cpu = runPlan(*plan, "cpu", prompt, 4);
  const uint64_t tmaBefore = emulatedTmaLaunches(), groupedBefore = emulatedGroupedLaunches();
  Outputs gpu = runPlan(*plan, c.backend, prompt, 4);
  // A long prompt on sm_90a with FP8 activations goes through the wgmma GEMMs, and
  // on the trained model's FP8 copy (whose experts have FP8 weights) through the
  // routed experts' grouped GEMM.
  const bool gemm = c.longPrompt > 0 && c.fp8Acts && c.backend == "emulated-sm_90a";
  EXPECT_EQ(emulatedTmaLaunches() > tmaBefore, gemm);
  EXPECT_EQ(emulatedGroupedLaunches() > groupedBefore, gemm && c.variant == "poems_fp8");
  double promptError = relativeError(cpu.prompt, gpu.prompt);
  double decodeError = relativeError(cpu.decode, gpu.decode);
  // With bf16 activations an fp32 difference in the order of sums (1e-6) can move an
  // input across a bf16 rounding boundary (2^-9 relative), and the tiny models carry
  // that on: the golden test's bound for that mode (GoldenTest.cpp), tokens identical.
  // FP8 activations likewise, with e4m3's coarser steps (1/16): the golden test
  // bounds that mode at 3e-2.
  const double bound = c.fp8Acts ? 3e-2 : c.bf16Acts ? 5e-3 : 1e-3;
  EXPECT_LE(promptError, bound);
  EXPECT_LE(decodeError, bound);
  EXPECT_EQ(gpu.tokens, cpu.tokens);
  RecordProperty("prompt_rel_error", std::to_string(promptError));
  RecordProperty("decode_rel_error", std::to_string(decodeError));
  std::cout << c.variant << (c.quantizeFp8 ? " (fp8)" : "") << (c.bf16Acts ? " (bf16 acts)" : "")
            << (c.fp8Acts ? " (fp8 acts)" : "")
            << (c.longPrompt ? " (" + std::to_string(c.longPrompt) + "-token prompt)" : "")
            << (c.kvFp8 ? " (fp8 kv cache)" : "") << " on " << c.backend
            << ": prompt logits rel. error " << promptError << ", decode " << decodeError
            << "\n";
  plan.reset();
  llvm::sys::fs::remove_directories(dir);
}

/// Compiles `checkpoint` (weights referenced) into `dir`/model.plan and loads it.
std::unique_ptr<Plan> compileAndLoad(const std::string &checkpoint, const std::string &dir) {
  driver::CompileOptions o;
  o.checkpointDir = checkpoint;
  o.output = dir + "/model.plan";
  o.quiet = true;
  o.weights = WeightPlacement::External;
  o.maxTokens = 32;
  llvm::Error err = driver::compile(o);
  EXPECT_FALSE(static_cast<bool>(err)) << llvm::toString(std::move(err));
  std::unique_ptr<Plan> plan;
  Status loaded = Plan::load(o.output, &plan);
  EXPECT_TRUE(loaded.ok()) << loaded.message();
  return plan;
}

// Greedy decoding on the device (KernelModule.argmax): the split and combine
// kernels pick, for every row, what greedyToken picks on the host: the largest
// logit, the lowest id on ties (also across the 32 parts of the vocabulary), NaN
// last, 0 for a row of NaN; infinities are ordinary values.
TEST(EmulatedGpuArgmax, KernelsPickTheGreedyTokenOfEachRow) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("moec-emulated-argmax", dir));
  std::unique_ptr<Plan> plan = compileAndLoad(kGolden + "/../../models/poems-v3", dir.str().str());
  ASSERT_TRUE(plan);
  const int64_t V = plan->tokenBound();
  ASSERT_GT(V, 64 * 32) << "the parts of the vocabulary below hold several columns";
  const int64_t part = (V + 31) / 32;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = INFINITY;
  std::vector<std::vector<float>> rows;
  std::vector<int32_t> want;
  auto row = [&](std::initializer_list<std::pair<int64_t, float>> set, float fill, int32_t w) {
    std::vector<float> r(size_t(V), fill);
    for (auto [i, v] : set)
      r[size_t(i)] = v;
    rows.push_back(r);
    want.push_back(w);
  };
  row({{17, 3.0f}}, 0.0f, 17);
  row({{V - 1, 1.0f}}, 0.0f, int32_t(V - 1));                      // the last column
  row({{part + 5, 2.0f}, {5, 2.0f}, {3 * part, 2.0f}}, 0.0f, 5);  // ties across parts
  row({{2 * part - 1, 2.0f}, {2 * part, 2.0f}}, -1.0f, int32_t(2 * part - 1)); // a part's edge
  row({{0, nan}, {9, 0.5f}}, -inf, 9);                               // NaN last
  row({}, nan, 0);                                                   // all NaN
  row({}, -inf, 0);                                                  // all -inf: the first
  row({{100, inf}, {40, inf}}, 1.0f, 40);                            // +inf ties
  row({{V / 2, -1e-30f}}, -1.0f, int32_t(V / 2));
  registerEmulatedGpuBackends();
  for (const char *name : {"emulated-sm_90a", "emulated-sm_80"}) {
    SCOPED_TRACE(name);
    std::unique_ptr<Backend> backend;
    ASSERT_TRUE(createBackend(name, BackendOptions(), &backend).ok());
    std::unique_ptr<Program> program;
    Status prepared = backend->prepare(*plan, 0, &program);
    ASSERT_TRUE(prepared.ok()) << prepared.message();
    std::vector<float> logits;
    for (const auto &r : rows)
      logits.insert(logits.end(), r.begin(), r.end());
    std::vector<int32_t> got(rows.size(), -1);
    const uint64_t before = emulatedArgmaxLaunches();
    Status s = backend->argmaxRows(*program, logits.data(), int64_t(rows.size()), V, got.data());
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_EQ(emulatedArgmaxLaunches(), before + 2) << "the split and the combine kernel ran";
    EXPECT_EQ(got, want);
    for (size_t i = 0; i < rows.size(); ++i)
      EXPECT_EQ(greedyToken(rows[i].data(), V), want[i]) << "row " << i;
  }
  plan.reset();
  llvm::sys::fs::remove_directories(dir);
}

// moec-run's greedy generation (generate() with temperature 0) chooses each token on
// the device: the trained model's continuation of its golden prompt is the CPU's.
/// The trained model compiled with its GPU kernels into a fresh folder (removed with
/// it), its golden prompt; the emulated backends registered and the CPU reference
/// below AMX, whose bf16 tiles read bf16 subnormals as zero.
struct TrainedModel {
  llvm::SmallString<128> dir;
  std::unique_ptr<Plan> plan;
  std::vector<int32_t> prompt;
  ~TrainedModel() {
    plan.reset();
    if (!dir.empty())
      llvm::sys::fs::remove_directories(dir);
  }
};

void loadTrainedModel(const char *tag, TrainedModel *m) {
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory(tag, m->dir));
  m->plan = compileAndLoad(kGolden + "/../../models/poems-v3", m->dir.str().str());
  ASSERT_TRUE(m->plan);
  std::ifstream promptFile(kGolden + "/data/poems/prompt.json");
  m->prompt = nlohmann::json::parse(promptFile)["tokens"].get<std::vector<int32_t>>();
  registerEmulatedGpuBackends();
  if (cpu::detectedSimdLevel() == cpu::SimdLevel::Avx512Amx)
    ASSERT_TRUE(cpu::setSimdLevelForTesting(cpu::SimdLevel::Avx512Vnni));
}

TEST(EmulatedGpuArgmax, GreedyGenerationChoosesOnTheDevice) {
  TrainedModel m;
  loadTrainedModel("moec-emulated-greedy", &m);
  ASSERT_FALSE(HasFatalFailure());
  Plan *plan = m.plan.get();
  const std::vector<int32_t> &prompt = m.prompt;
  std::map<std::string, std::vector<int32_t>> tokens;
  for (const char *name : {"cpu", "emulated-sm_90a", "emulated-sm_80"}) {
    ExecutorOptions options;
    options.backend = name;
    std::unique_ptr<Executor> executor;
    ASSERT_TRUE(Executor::create(*plan, options, &executor).ok());
    std::unique_ptr<KvCache> cache;
    ASSERT_TRUE(executor->createCache(1, 64, &cache).ok());
    GenerationOptions g;
    g.maxNewTokens = 6;
    const uint64_t before = emulatedArgmaxLaunches();
    Status s = generate(*executor, *cache, 0, prompt, g, nullptr, &tokens[name], nullptr);
    ASSERT_TRUE(s.ok()) << s.message();
    // One choice after the prompt, one per decode step: two kernels each.
    EXPECT_EQ(emulatedArgmaxLaunches() - before, std::string(name) == "cpu" ? 0u : 2u * 6u);
  }
  EXPECT_EQ(tokens["cpu"].size(), 6u);
  EXPECT_EQ(tokens["emulated-sm_90a"], tokens["cpu"]);
  EXPECT_EQ(tokens["emulated-sm_80"], tokens["cpu"]);
}

// GRPO rollouts share the prompt's KV rows (KvCache::share). The GPU backends' kernels
// read each sequence's own rows, so the backend copies the shared rows into each
// sample's sequence once (SharedPrefixCopies): every sample then equals the run in
// which each sample prefills the prompt itself, token for token, and the CPU's.
TEST(EmulatedGpuSharing, RolloutGroupsShareThePromptsRows) {
  TrainedModel m;
  loadTrainedModel("moec-emulated-share", &m);
  ASSERT_FALSE(HasFatalFailure());
  Plan *plan = m.plan.get();
  const std::vector<int32_t> &prompt = m.prompt;
  RolloutOptions o;
  o.groupSize = 3;
  o.maxNewTokens = 5;
  o.sampling.temperature = 1.0f;
  o.sampling.seed = 7;
  std::map<std::string, std::vector<RolloutSample>> runs;
  for (const char *name : {"cpu", "emulated-sm_90a"})
    for (bool share : {true, false}) {
      SCOPED_TRACE(std::string(name) + (share ? " shared" : " unshared"));
      ExecutorOptions options;
      options.backend = name;
      std::unique_ptr<Executor> executor;
      ASSERT_TRUE(Executor::create(*plan, options, &executor).ok());
      std::unique_ptr<KvCache> cache;
      ASSERT_TRUE(executor->createCache(o.groupSize + 1, 64, &cache).ok());
      o.share = share;
      RolloutStats stats;
      const uint64_t before = emulatedPrefixCopies();
      std::vector<RolloutSample> &samples = runs[std::string(name) + (share ? "+" : "-")];
      Status s = rolloutGroup(*executor, *cache, prompt, 0, o, &samples, &stats);
      ASSERT_TRUE(s.ok()) << s.message();
      EXPECT_EQ(stats.prefillTokens, int64_t(prompt.size()) * (share ? 1 : o.groupSize));
      // One copy per sample and state, and only where rows are shared on the GPU.
      const bool gpu = std::string(name) != "cpu";
      EXPECT_EQ(emulatedPrefixCopies() - before,
                gpu && share ? uint64_t(o.groupSize) * plan->numStates() : 0u);
    }
  const std::vector<RolloutSample> &reference = runs["cpu-"];
  ASSERT_EQ(reference.size(), 3u);
  for (const auto &[run, samples] : runs) {
    SCOPED_TRACE(run);
    ASSERT_EQ(samples.size(), reference.size());
    for (size_t i = 0; i < samples.size(); ++i) {
      EXPECT_EQ(samples[i].tokens, reference[i].tokens) << "sample " << i;
      ASSERT_EQ(samples[i].logprobs.size(), reference[i].logprobs.size());
      for (size_t t = 0; t < samples[i].logprobs.size(); ++t)
        EXPECT_NEAR(samples[i].logprobs[t], reference[i].logprobs[t], 1e-4) << i << ", " << t;
    }
  }
  // The emulated GPU's shared run equals its unshared one exactly.
  for (size_t i = 0; i < reference.size(); ++i)
    EXPECT_EQ(runs["emulated-sm_90a+"][i].logprobs, runs["emulated-sm_90a-"][i].logprobs);
  // Different seeds per sample: the group is not three copies of one sample.
  EXPECT_NE(reference[0].tokens, reference[1].tokens);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const testing::GoldenVariant &v : testing::goldenVariants(kGolden)) {
    const std::string &name = v.name, &dir = v.checkpoint;
    for (const char *backend : {"emulated-sm_90a", "emulated-sm_80"}) {
      out.push_back({name, dir, backend, false});
      if (name.find("fp8") == std::string::npos)
        out.push_back({name, dir, backend, true});
    }
    // The numeric modes: bf16 activations (the tensor-core linear, mma.sync), on the
    // trained model too (K up to 1024: several 128-wide scale blocks per product);
    // the FP8 KV cache (sm_90a's cvt.rn.satfinite.e4m3x2.f32).
    if (name == "poems") {
      out.push_back({name, dir, "emulated-sm_80", false, /*bf16Acts=*/true});
      out.push_back({name, dir, "emulated-sm_90a", true, /*bf16Acts=*/true});
    }
    if (name == "v3") {
      out.push_back({name, dir, "emulated-sm_90a", true, /*bf16Acts=*/true});
      out.push_back({name, dir, "emulated-sm_80", true, /*bf16Acts=*/true});
      out.push_back({name, dir, "emulated-sm_90a", false, false, /*kvFp8=*/true});
      // sm_80 stores e4m3 without cvt (integer arithmetic on the rounded float).
      out.push_back({name, dir, "emulated-sm_80", false, false, /*kvFp8=*/true});
    }
    // FP8 activations (DeepSeek's FP8 GEMM, quantized per 128 columns in the
    // products): on the trained model's FP8 copy and a quantized random one.
    if (name == "poems_fp8" || name == "v3_fp8")
      out.push_back({name, dir, "emulated-sm_90a", false, false, false, /*fp8Acts=*/true});
    if (name == "v3" || name == "v2_lite")
      out.push_back({name, dir, "emulated-sm_80", true, false, false, /*fp8Acts=*/true});
    // ... and their prefill through the wgmma GEMM (sm_90a, 16 tokens or more): K
    // of 64 (one partial 128-wide block: TMA fills the rest with zeros) on v3, up
    // to 1024 on the trained model (the two-stage pipeline).
    if (name == "v3")
      out.push_back({name, dir, "emulated-sm_90a", true, false, false, true, /*longPrompt=*/70});
    if (name == "poems_fp8") {
      out.push_back({name, dir, "emulated-sm_90a", false, false, false, true, /*longPrompt=*/24});
      // 96 tokens (the 6-token prompt 16 times) route more than 64 (token, choice)
      // pairs to an expert: several 64-row tiles of one expert in the grouped GEMM
      // (starting every tile at the expert's first pair moves the logits by 0.24).
      // Layer 1's attention differs by 5e-5 here (the first step over 1e-5,
      // MOEC_EMULATED_GPU_TRACE), which the FP8 activations' rounding carries to
      // 1.5e-2 in the logits (within the bound; tokens identical). Every step before
      // it is within 3.3e-7 (fp32 sums in another order): storing c and k_pe as bf16
      // in the cache turns such a difference into a whole bf16 step where a value
      // lies near a rounding boundary. With an f32 cache the first jump moves to
      // layer 1's first FP8 GEMM instead (4.3e-7 in, 1.7e-4 out: an e4m3 code
      // flipped), and the logits end at 1.3e-2 all the same.
      out.push_back({name, dir, "emulated-sm_90a", false, false, false, true, /*longPrompt=*/96});
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Golden, EmulatedGpu, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case> &info) {
                           std::string name = info.param.variant +
                                              (info.param.quantizeFp8 ? "_quantized_fp8" : "") +
                                              (info.param.bf16Acts ? "_bf16acts" : "") +
                                              (info.param.kvFp8 ? "_kv_fp8" : "") +
                                              (info.param.fp8Acts ? "_fp8acts" : "") +
                                              (info.param.longPrompt
                                                   ? "_long" + std::to_string(info.param.longPrompt)
                                                   : "") +
                                              "_" +
                                              info.param.backend;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

} // namespace
} // namespace moec
