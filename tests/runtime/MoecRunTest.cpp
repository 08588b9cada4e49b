//===- MoecRunTest.cpp - moec-run end to end on a tiny plan ---------------===//
//
// Runs the real binary (its path comes from CMake) and checks its files, stdout,
// stderr and exit codes against the runtime driven in-process.
//
//===----------------------------------------------------------------------===//
#include "LoadedModel.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sys/wait.h>

#ifndef MOEC_RUN_PATH
#error "MOEC_RUN_PATH must name the moec-run binary"
#endif

namespace moec::test {
namespace {

/// The result of one moec-run invocation.
struct RunResult {
  int exitCode = -1;   ///< the process's exit status
  std::string out;     ///< stdout
  std::string err;     ///< stderr
};

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

RunResult runMoecRun(const TempDir &dir, const std::string &arguments) {
  std::string errPath = dir.file("stderr.txt");
  std::string command = std::string(MOEC_RUN_PATH) + " " + arguments + " 2>" + errPath;
  RunResult result;
  if (FILE *pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0)
      result.out.append(buffer, n);
    int status = ::pclose(pipe);
    result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  result.err = readText(errPath);
  return result;
}

/// A float32 .npy file as moec-run writes it.
struct NpyF32 {
  std::string shape;         ///< the header's shape tuple, e.g. "(4, 160)"
  std::vector<float> values; ///< the data, C order
};

NpyF32 readNpyF32(const std::string &path) {
  NpyF32 npy;
  std::string bytes = readText(path);
  if (bytes.size() < 10 || bytes.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) != 0) {
    ADD_FAILURE() << path << ": not a version 1.0 .npy file";
    return npy;
  }
  size_t headerLength = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8;
  std::string header = bytes.substr(10, headerLength);
  size_t open = header.find("'shape': ("), close = header.find(')', open);
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  if (open == std::string::npos || close == std::string::npos) {
    ADD_FAILURE() << path << ": no shape in header " << header;
    return npy;
  }
  npy.shape = header.substr(open + 9, close - open - 8);
  size_t dataStart = 10 + headerLength;
  EXPECT_EQ((bytes.size() - dataStart) % sizeof(float), 0u) << path;
  npy.values.resize((bytes.size() - dataStart) / sizeof(float));
  std::memcpy(npy.values.data(), bytes.data() + dataStart, npy.values.size() * sizeof(float));
  return npy;
}

std::vector<int32_t> parseIds(const std::string &line) {
  std::vector<int32_t> ids;
  const char *p = line.c_str();
  char *end;
  for (long v = std::strtol(p, &end, 10); end != p; v = std::strtol(p, &end, 10)) {
    ids.push_back(int32_t(v));
    p = end;
  }
  return ids;
}

class MoecRun : public ::testing::Test {
protected:
  LoadedModel loaded;
  std::string plan = loaded.dir.file("tiny.plan");
};

TEST_F(MoecRun, DumpsPromptLogitsAsNpy) {
  std::string npy = loaded.dir.file("logits.npy");
  RunResult run = runMoecRun(loaded.dir, plan + " --tokens 3,14,15,92 --dump-logits " + npy +
                                             " --threads 2");
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.out, ""); // nothing generated without --max-new-tokens
  std::string bytes = readText(npy);
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  size_t headerLength = uint8_t(bytes[8]) | size_t(uint8_t(bytes[9])) << 8;
  EXPECT_EQ((10 + headerLength) % 64, 0u);
  std::string header = bytes.substr(10, headerLength);
  EXPECT_EQ(header.substr(0, header.find('}') + 1),
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 160), }");
  EXPECT_EQ(header.back(), '\n');
  ASSERT_EQ(bytes.size(), 10 + headerLength + 4 * 160 * sizeof(float));
  std::vector<float> values(4 * 160);
  std::memcpy(values.data(), bytes.data() + 10 + headerLength, values.size() * sizeof(float));

  std::vector<int32_t> prompt = {3, 14, 15, 92};
  EXPECT_LT(relativeError(values, loaded.run(prompt)), 1e-6);
  EXPECT_LT(relativeError(values, referenceForward(loaded.model, prompt).logits), 1e-4);
  EXPECT_NE(run.err.find("kv cache: 480 bytes per token"), std::string::npos) << run.err;
}

TEST_F(MoecRun, DumpsDecodeLogitsAfterPromptLogits) {
  constexpr int64_t kVocab = 160;
  std::vector<int32_t> prompt = {3, 14, 15, 92};
  std::string promptNpy = loaded.dir.file("prompt.npy"), allNpy = loaded.dir.file("all.npy");
  RunResult promptRun = runMoecRun(
      loaded.dir, plan + " --tokens 3,14,15,92 --dump-logits " + promptNpy + " --threads 2");
  ASSERT_EQ(promptRun.exitCode, 0) << promptRun.err;
  RunResult run = runMoecRun(loaded.dir, plan + " --tokens 3,14,15,92 --max-new-tokens 6 "
                                                "--dump-decode-logits " + allNpy + " --threads 2");
  ASSERT_EQ(run.exitCode, 0) << run.err;
  std::vector<int32_t> ids = parseIds(run.out);
  ASSERT_EQ(ids.size(), 6u) << run.out;

  // [T + N - 1, vocab]: the prompt's rows are exactly what --dump-logits writes.
  NpyF32 promptLogits = readNpyF32(promptNpy), all = readNpyF32(allNpy);
  EXPECT_EQ(promptLogits.shape, "(4, 160)");
  ASSERT_EQ(all.shape, "(9, 160)");
  ASSERT_EQ(all.values.size(), size_t(9 * kVocab));
  EXPECT_EQ(std::vector<float>(all.values.begin(), all.values.begin() + 4 * kVocab),
            promptLogits.values);
  // Row T-1+i chose generated token i (greedy: its argmax).
  for (size_t i = 0; i < ids.size(); ++i)
    EXPECT_EQ(argmax(all.values.data() + (3 + i) * kVocab, kVocab), ids[i]) << "token " << i;
  // The decode steps (KV cache) agree with one full forward over prompt + tokens.
  std::vector<int32_t> full = prompt;
  full.insert(full.end(), ids.begin(), ids.end() - 1);
  EXPECT_LT(relativeError(all.values, referenceForward(loaded.model, full).logits), 1e-4);

  // A stop token ends generation early: one row per token fed back.
  RunResult stopped = runMoecRun(loaded.dir, plan + " --tokens 3,14,15,92 --max-new-tokens 6 "
                                                    "--dump-decode-logits " + allNpy +
                                                    " --stop-token " + std::to_string(ids[0]));
  ASSERT_EQ(stopped.exitCode, 0) << stopped.err;
  EXPECT_EQ(parseIds(stopped.out), std::vector<int32_t>{ids[0]});
  EXPECT_EQ(readNpyF32(allNpy).shape, "(4, 160)");
}

TEST_F(MoecRun, GeneratesGreedilyAndReportsSpeed) {
  RunResult run = runMoecRun(loaded.dir, plan + " --tokens 3,14,15 --max-new-tokens 8");
  ASSERT_EQ(run.exitCode, 0) << run.err;
  ASSERT_FALSE(run.out.empty());
  EXPECT_EQ(run.out.back(), '\n');
  EXPECT_EQ(std::count(run.out.begin(), run.out.end(), '\n'), 1);
  std::vector<int32_t> ids = parseIds(run.out);

  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(1, 16, &cache).ok());
  GenerationOptions options;
  options.maxNewTokens = 8;
  std::vector<int32_t> expected;
  ASSERT_TRUE(
      generate(*loaded.executor, *cache, 0, {3, 14, 15}, options, nullptr, &expected, nullptr)
          .ok());
  EXPECT_EQ(ids, expected);
  for (const char *line : {"prefill: 3 tokens in ", "decode: 7 tokens in ", "tokens/s",
                           "peak memory: ", "MiB (max RSS)", "kv cache: 480 bytes per token"})
    EXPECT_NE(run.err.find(line), std::string::npos) << line << "\n" << run.err;

  // A stop token ends the line right after it.
  RunResult stopped = runMoecRun(
      loaded.dir, plan + " --tokens 3,14,15 --max-new-tokens 8 --stop-token " +
                      std::to_string(expected[1]));
  ASSERT_EQ(stopped.exitCode, 0) << stopped.err;
  size_t firstAt = size_t(std::find(expected.begin(), expected.end(), expected[1]) - expected.begin());
  EXPECT_EQ(parseIds(stopped.out),
            std::vector<int32_t>(expected.begin(), expected.begin() + ptrdiff_t(firstAt + 1)));
}

TEST_F(MoecRun, SeededSamplingIsReproducible) {
  std::string args = plan + " --tokens 3,14,15 --max-new-tokens 10 --temperature 1.2 --top-k 50 "
                            "--top-p 0.9 --seed 99 --threads 1";
  RunResult a = runMoecRun(loaded.dir, args), b = runMoecRun(loaded.dir, args);
  ASSERT_EQ(a.exitCode, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(parseIds(a.out).size(), 10u);
}

TEST_F(MoecRun, ErrorsAreOneClearLine) {
  struct Case {
    std::string args;
    int exitCode;
    std::string err;
  };
  std::string missing = loaded.dir.file("missing.plan");
  std::vector<Case> cases = {
      {missing + " --tokens 1", 1,
       "moec-run: " + missing + ": cannot open: No such file or directory\n"},
      {plan + " --tokens 1,999", 1,
       "moec-run: forward: token 1 has id 999, the vocabulary has 160 tokens\n"},
      {plan + " --tokens 1,x", 2,
       "moec-run: --tokens: \"1,x\" is not a comma-separated list of token ids (bad item \"x\")\n"},
      {plan, 2, "moec-run: --tokens, --prompt or --chat is required (see --help)\n"},
      {plan + " --tokens 1 --top-p 2", 2, "moec-run: sampling: top-p 2 is outside (0, 1]\n"},
      {plan + " --tokens 1 --frobnicate 3", 2, "moec-run: unknown option --frobnicate (see --help)\n"},
      {plan + " --tokens 1 --dump-decode-logits x.npy", 2,
       "moec-run: --dump-decode-logits needs --max-new-tokens N with N >= 1\n"},
      {plan + " --tokens 1 --max-new-tokens 0 --dump-decode-logits x.npy", 2,
       "moec-run: --dump-decode-logits needs --max-new-tokens N with N >= 1\n"},
      {plan + " --tokens 1 --backend tpu", 1,
       "moec-run: unknown backend \"tpu\" (available: cpu, cuda)\n"},
      {plan + " --tokens 1 --device tpu", 2,
       "moec-run: --device: \"tpu\" is not cpu, cuda or cuda:N\n"},
      {plan + " --tokens 1 --device cuda:x", 2,
       "moec-run: --device: \"cuda:x\" is not cpu, cuda or cuda:N\n"},
      {plan + " --tokens 1 --device cpu:1", 2,
       "moec-run: --device: \"cpu:1\" is not cpu, cuda or cuda:N\n"},
  };
  for (const Case &c : cases) {
    RunResult run = runMoecRun(loaded.dir, c.args);
    EXPECT_EQ(run.exitCode, c.exitCode) << c.args;
    EXPECT_EQ(run.err, c.err) << c.args;
    EXPECT_EQ(run.out, "") << c.args;
  }
  // A bad plan file: the loader's message, naming the file.
  std::string bad = loaded.dir.file("bad.plan");
  std::ofstream(bad) << "not a plan at all";
  RunResult run = runMoecRun(loaded.dir, bad + " --tokens 1");
  EXPECT_EQ(run.exitCode, 1);
  EXPECT_EQ(run.err, "moec-run: " + bad +
                         ": not a moec plan: file identifier is \"an a\", expected \"MOEP\"\n");
}

TEST_F(MoecRun, DumpsThePlanAsJson) {
  // Naive prefill and absorbed decode: both attention forms appear.
  TinyModelOptions options;
  options.prefillAbsorbed = false;
  std::string split = loaded.dir.file("split.plan");
  ASSERT_TRUE(writeTinyModel(options, split));
  std::unique_ptr<Plan> expected;
  ASSERT_TRUE(Plan::load(split, &expected).ok());
  RunResult run = runMoecRun(loaded.dir, split + " --dump-plan");
  ASSERT_EQ(run.exitCode, 0) << run.err;
  EXPECT_EQ(run.err, "");
  ASSERT_FALSE(run.out.empty());
  EXPECT_EQ(run.out.back(), '\n');
  // No weight bytes: the text is far smaller than the weights.
  EXPECT_LT(run.out.size(), expected->weightBytes() / 4);
  nlohmann::json plan = nlohmann::json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(plan.is_discarded()) << "not valid JSON:\n" << run.out.substr(0, 2000);

  EXPECT_EQ(plan["version"], 8);
  EXPECT_EQ(plan["max_tokens"], 16);
  // The integrity record: the metadata hash and the embedded blob's digest.
  EXPECT_TRUE(plan["integrity"]["metadata_xxh3"].is_number());
  ASSERT_EQ(plan["integrity"]["weight_files"].size(), 1u);
  // The blob: every weight, plus padding to 64-byte offsets.
  EXPECT_GE(plan["integrity"]["weight_files"][0]["size"].get<uint64_t>(), expected->weightBytes());
  EXPECT_EQ(plan["arena_size"], expected->arenaSize());
  EXPECT_EQ(plan["model"]["architecture"], "DeepseekV3ForCausalLM");
  EXPECT_EQ(plan["provenance"]["compiler_version"], "tiny-model-builder");

  const nlohmann::json &entries = plan["entry_points"];
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]["name"], "prefill");
  EXPECT_EQ(entries[1]["name"], "decode");
  EXPECT_EQ(entries[1]["token_bound"], 160);
  EXPECT_EQ(entries[1]["first_step"], expected->decode().firstStep);
  EXPECT_EQ(entries[1]["num_steps"], expected->decode().numSteps);
  EXPECT_EQ(entries[0]["inputs"], nlohmann::json({0, 1, 2}));

  const nlohmann::json &states = plan["states"];
  ASSERT_EQ(states.size(), 6u);
  EXPECT_EQ(states[0]["name"], "model.layers.0.self_attn.latent_cache");
  EXPECT_EQ(states[0]["dtype"], "F32");
  EXPECT_EQ(states[0]["shape"], nlohmann::json({32}));
  EXPECT_EQ(states[5]["shape"], nlohmann::json({8}));

  const nlohmann::json &weights = plan["weights"];
  ASSERT_EQ(weights.size(), expected->numWeights());
  const nlohmann::json *kvB = nullptr;
  for (const nlohmann::json &weight : weights) {
    EXPECT_FALSE(weight.contains("data"));
    if (weight["name"] == "model.layers.0.self_attn.kv_b_proj.weight")
      kvB = &weight;
  }
  ASSERT_NE(kvB, nullptr);
  EXPECT_EQ((*kvB)["dtype"], "F8E4M3");
  EXPECT_EQ((*kvB)["shape"], nlohmann::json({112, 32}));
  EXPECT_EQ((*kvB)["block_shape"], nlohmann::json({128, 128}));
  EXPECT_FALSE(kvB->contains("file")); // absent: the plan's own weight blob
  EXPECT_EQ((*kvB)["offset"].get<uint64_t>() % 64, 0u);
  const nlohmann::json &scale = weights[(*kvB)["block_scale"].get<size_t>()];
  EXPECT_EQ(scale["name"], "model.layers.0.self_attn.kv_b_proj.weight_scale_inv");
  EXPECT_EQ(scale["dtype"], "F32");

  ASSERT_EQ(plan["buffers"].size(), size_t(expected->root().buffers()->size()));
  EXPECT_EQ(plan["buffers"][0]["name"], "tokens");
  EXPECT_EQ(plan["buffers"][0]["dtype"], "I32");
  EXPECT_EQ(plan["buffers"][0]["shape"], nlohmann::json({-1}));

  // Steps with their attributes, by name.
  std::map<std::string, nlohmann::json> decodeSteps, prefillSteps;
  const nlohmann::json &steps = plan["steps"];
  ASSERT_EQ(steps.size(), size_t(expected->root().steps()->size()));
  for (size_t i = 0; i < steps.size(); ++i)
    (i < expected->decode().firstStep ? prefillSteps : decodeSteps)[steps[i]["name"]] = steps[i];
  const std::string a = "model.layers.0.self_attn.";
  EXPECT_EQ(prefillSteps[a + "attention"]["kind"], "ExpandedAttention");
  EXPECT_EQ(prefillSteps[a + "attention"]["attrs_type"], "ExpandedAttentionAttrs");
  EXPECT_EQ(prefillSteps[a + "attention"]["attrs"]["v_dim"], 12);
  const nlohmann::json &wUk = decodeSteps[a + "w_uk"];
  EXPECT_EQ(wUk["kind"], "HeadLinear");
  EXPECT_EQ(wUk["attrs"]["transpose"], true);
  EXPECT_EQ(wUk["attrs"]["row_stride"], 28);
  EXPECT_EQ(wUk["attrs"]["rows"], 16);
  EXPECT_EQ(wUk["attrs"]["in_stride"], 24);
  const nlohmann::json &core = decodeSteps[a + "attention"];
  EXPECT_EQ(core["kind"], "LatentAttention");
  EXPECT_EQ(core["states"], nlohmann::json({0, 1}));
  EXPECT_EQ(core["attrs"]["latent_dim"], 32);
  EXPECT_NEAR(core["attrs"]["softmax_scale"].get<double>(), 0.264642, 1e-6);
  const nlohmann::json &rope = decodeSteps[a + "rope_q"];
  EXPECT_EQ(rope["attrs"]["rope_dim"], 8);
  EXPECT_EQ(rope["attrs"]["offset"], 16);
  EXPECT_EQ(rope["attrs"]["layout"], "Interleaved");
  EXPECT_EQ(rope["attrs"]["theta"], 10000.0);
  EXPECT_EQ(rope["attrs"]["yarn"]["factor"], 4.0);
  EXPECT_EQ(rope["attrs"]["yarn"]["attention_factor"], 1.0);
  EXPECT_EQ(decodeSteps[a + "cache_store"]["kind"], "CacheStore");

  // A bad plan is refused as usual, nothing on stdout.
  RunResult missing = runMoecRun(loaded.dir, loaded.dir.file("none.plan") + " --dump-plan");
  EXPECT_EQ(missing.exitCode, 1);
  EXPECT_EQ(missing.out, "");
}

TEST_F(MoecRun, MalformedIdsAndOutOfVocabularyStopTokensAreRefused) {
  // strtoll would accept leading blanks and '+': ids are digits only.
  for (const char *tokens : {"' 3'", "+5", "1,+5", "'1, 2'", "'3 '", "''", "1,,2"}) {
    RunResult run = runMoecRun(loaded.dir, plan + " --tokens " + tokens);
    EXPECT_EQ(run.exitCode, 2) << tokens;
    EXPECT_EQ(run.err.rfind("moec-run: --tokens: ", 0), 0u) << tokens << "\n" << run.err;
    EXPECT_NE(run.err.find("is not a comma-separated list of token ids"), std::string::npos)
        << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
    EXPECT_EQ(run.out, "") << tokens;
  }
  RunResult plus = runMoecRun(loaded.dir, plan + " --tokens +5");
  EXPECT_EQ(plus.err, "moec-run: --tokens: \"+5\" is not a comma-separated list of token ids "
                      "(bad item \"+5\")\n");
  RunResult blank = runMoecRun(loaded.dir, plan + " --tokens ' 3'");
  EXPECT_EQ(blank.err, "moec-run: --tokens: \" 3\" is not a comma-separated list of token ids "
                       "(bad item \" 3\")\n");
  // The same rule for every integer option.
  RunResult count = runMoecRun(loaded.dir, plan + " --tokens 3 --max-new-tokens ' 4'");
  EXPECT_EQ(count.exitCode, 2);
  EXPECT_EQ(count.err, "moec-run: --max-new-tokens: \" 4\" is not a count >= 0\n");
  RunResult stopPlus = runMoecRun(loaded.dir, plan + " --tokens 3 --stop-token +7");
  EXPECT_EQ(stopPlus.exitCode, 2);
  EXPECT_EQ(stopPlus.err, "moec-run: --stop-token: \"+7\" is not a token id\n");

  // A stop token outside the vocabulary (160 tokens) could never stop anything.
  RunResult outside =
      runMoecRun(loaded.dir, plan + " --tokens 3 --stop-token 5 --stop-token 160");
  EXPECT_EQ(outside.exitCode, 1);
  EXPECT_EQ(outside.err, "moec-run: --stop-token: 160 is not a token id of this plan (the "
                         "vocabulary has 160 tokens)\n");
  EXPECT_EQ(outside.out, "");
  RunResult inside =
      runMoecRun(loaded.dir, plan + " --tokens 3 --max-new-tokens 2 --stop-token 159");
  EXPECT_EQ(inside.exitCode, 0) << inside.err;
}

TEST_F(MoecRun, WarnsOnceWhenPositionsPassTheModelsContext) {
  // The tiny model's YaRN: factor 4 x original_max_position_embeddings 16 = 64 positions.
  const std::string warning =
      "moec-run: warning: this run reaches position 64, past the model's 64 positions (YaRN "
      "factor x original_max_position_embeddings): tokens from position 64 on are beyond the "
      "context the model was made for\n";
  auto warnings = [](const std::string &err) {
    size_t n = 0;
    for (size_t at = err.find("warning:"); at != std::string::npos;
         at = err.find("warning:", at + 1))
      ++n;
    return n;
  };
  // 3 prompt tokens and N new ones feed positions 0 .. N: the last token is not fed back.
  RunResult within = runMoecRun(loaded.dir, plan + " --tokens 3,14,15 --max-new-tokens 62");
  ASSERT_EQ(within.exitCode, 0) << within.err;
  EXPECT_EQ(warnings(within.err), 0u) << within.err;
  RunResult past = runMoecRun(loaded.dir, plan + " --tokens 3,14,15 --max-new-tokens 63");
  ASSERT_EQ(past.exitCode, 0) << past.err;
  EXPECT_EQ(warnings(past.err), 1u) << past.err;
  EXPECT_EQ(past.err.rfind(warning, 0), 0u) << past.err;
  EXPECT_EQ(parseIds(past.out).size(), 63u);
  RunResult farPast = runMoecRun(loaded.dir, plan + " --tokens 3,14,15 --max-new-tokens 90");
  ASSERT_EQ(farPast.exitCode, 0) << farPast.err;
  EXPECT_EQ(warnings(farPast.err), 1u) << farPast.err; // once, not per token

  // A prompt longer than the context warns before anything is generated.
  std::string longPrompt = "1";
  for (int i = 1; i < 70; ++i)
    longPrompt += "," + std::to_string(i % 150);
  RunResult prompt = runMoecRun(loaded.dir, plan + " --tokens " + longPrompt +
                                                " --max-new-tokens 1");
  ASSERT_EQ(prompt.exitCode, 0) << prompt.err;
  EXPECT_EQ(warnings(prompt.err), 1u) << prompt.err;
  EXPECT_NE(prompt.err.find("warning: this run reaches position 69, past the model's 64 "
                            "positions"),
            std::string::npos)
      << prompt.err;

  // Plain RoPE records no context: nothing to warn about.
  TinyModelOptions options;
  options.yarn = false;
  std::string plain = loaded.dir.file("plain.plan");
  ASSERT_TRUE(writeTinyModel(options, plain));
  RunResult unbounded = runMoecRun(loaded.dir, plain + " --tokens 3,14,15 --max-new-tokens 90");
  ASSERT_EQ(unbounded.exitCode, 0) << unbounded.err;
  EXPECT_EQ(warnings(unbounded.err), 0u) << unbounded.err;
}

TEST_F(MoecRun, HelpTeachesWithExamples) {
  RunResult run = runMoecRun(loaded.dir, "--help");
  EXPECT_EQ(run.exitCode, 0);
  for (const char *text : {"usage: moec-run PLAN --tokens IDS", "moec-run PLAN --dump-plan",
                           "--dump-logits FILE",
                           "--dump-decode-logits FILE",
                           "--max-new-tokens N", "--temperature T", "--top-k K", "--top-p P",
                           "--seed S", "--threads N", "--stop-token ID", "examples:"})
    EXPECT_NE(run.out.find(text), std::string::npos) << text;
}

} // namespace
} // namespace moec::test
