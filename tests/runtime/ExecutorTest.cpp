//===- ExecutorTest.cpp - Logits of the executor against the reference ----===//
#include "LoadedModel.h"

#include "moec/runtime/KernelLaunch.h"

#include <algorithm>
#include <cstring>
#include <tuple>

namespace moec::test {
namespace {

const std::vector<int32_t> kPrompt = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38};

struct Variant {
  const char *name;
  TinyModelOptions options;
};

std::vector<Variant> variants() {
  std::vector<Variant> list;
  TinyModelOptions v3; // fp8, q_lora, sigmoid router with bias, absorbed, YaRN
  list.push_back({"fp8_qlora_v3_absorbed_yarn", v3});
  TinyModelOptions v2;
  v2.fp8 = false;
  v2.qLora = false;
  v2.v3Router = false;
  v2.prefillAbsorbed = v2.decodeAbsorbed = false;
  v2.yarn = false;
  list.push_back({"bf16_qproj_v2_naive", v2});
  TinyModelOptions mixed;
  mixed.fp8 = false;
  mixed.external = true;
  mixed.seed = 7;
  list.push_back({"bf16_qlora_v3_external", mixed});
  TinyModelOptions half; // rope rows stored half-split, rotated with RopeLayout::Half
  half.halfRope = true;
  list.push_back({"fp8_qlora_v3_half_rope", half});
  TinyModelOptions halfNoLora = v2;
  halfNoLora.halfRope = true;
  list.push_back({"bf16_qproj_v2_half_rope", halfNoLora});
  TinyModelOptions split; // what the compiler emits by default: naive prefill, absorbed decode
  split.prefillAbsorbed = false;
  list.push_back({"fp8_naive_prefill_absorbed_decode", split});
  return list;
}

class ExecutorVsReference : public ::testing::TestWithParam<Variant> {};

TEST_P(ExecutorVsReference, LogitsMatchPlainLoops) {
  LoadedModel loaded(GetParam().options);
  ASSERT_TRUE(loaded.executor);
  ReferenceResult ref = referenceForward(loaded.model, kPrompt);
  // Routing must not hinge on a near tie, or fp32 rounding could flip it.
  EXPECT_GT(ref.minRoutingMargin, 1e-4);
  std::vector<float> logits = loaded.run(kPrompt);
  double error = relativeError(logits, ref.logits);
  EXPECT_LT(error, 1e-4);
  RecordProperty("relative_error", std::to_string(error));
  std::printf("%s: relative error %.3g, routing margin %.3g\n", GetParam().name, error,
              ref.minRoutingMargin);
  // The logits are not degenerate: rows differ and values spread.
  double spread = 0;
  for (size_t i = 0; i < logits.size(); ++i)
    spread = std::max(spread, std::fabs(double(logits[i])));
  EXPECT_GT(spread, 0.1);
  EXPECT_NE(logits[0], logits[size_t(loaded.executor->vocabSize())]);
}

INSTANTIATE_TEST_SUITE_P(Tiny, ExecutorVsReference, ::testing::ValuesIn(variants()),
                         [](const ::testing::TestParamInfo<Variant> &info) {
                           return std::string(info.param.name);
                         });

TEST(Executor, RunsAPlanWithoutItsModelConfig) {
  // The config is metadata for people: the same model with the table removed gives
  // bit-identical logits.
  LoadedModel withConfig;
  ASSERT_TRUE(withConfig.executor);
  PlanWriter writer;
  TinyModel model;
  buildTinyModel({}, writer, &model);
  writer.plan().model.reset();
  TempDir dir;
  std::string path = dir.file("no-config.plan");
  ASSERT_TRUE(writer.write(path).ok());
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(path, &plan).ok());
  ASSERT_EQ(plan->root().model(), nullptr);
  std::unique_ptr<Executor> executor;
  ASSERT_TRUE(Executor::create(*plan, {}, &executor).ok());
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(executor->createCache(1, 64, &cache).ok());
  std::vector<int32_t> positions(kPrompt.size()), seqIds(kPrompt.size(), 0);
  std::iota(positions.begin(), positions.end(), 0);
  std::vector<float> logits(kPrompt.size() * size_t(executor->vocabSize()));
  ASSERT_TRUE(executor
                  ->forward({kPrompt.data(), positions.data(), seqIds.data(),
                             int64_t(kPrompt.size())},
                            *cache, logits.data())
                  .ok());
  EXPECT_EQ(logits, withConfig.run(kPrompt));
}

TEST(Executor, OnlyTheWantedLogitsRowsAreComputedAndTheyAreExact) {
  // TokenBatch::wantLogits: the last row alone (one run), rows 0 and 2 (gathered),
  // and none; each wanted row is bit for bit the row of a full run, and a row not
  // wanted is left as it was (the lm_head product skipped).
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  const int64_t vocab = loaded.executor->vocabSize(), T = int64_t(kPrompt.size());
  const std::vector<float> whole = loaded.run(kPrompt);
  std::vector<int32_t> positions(kPrompt.size()), seqIds(kPrompt.size(), 0);
  std::iota(positions.begin(), positions.end(), 0);
  for (std::vector<int> rows : {std::vector<int>{int(T) - 1}, std::vector<int>{0, 2},
                                std::vector<int>{}}) {
    std::vector<uint8_t> want(size_t(T), 0);
    for (int r : rows)
      want[size_t(r)] = 1;
    std::unique_ptr<KvCache> cache;
    ASSERT_TRUE(loaded.executor->createCache(1, 64, &cache).ok());
    // The arena keeps the last run's logits: poison them through a full run of
    // other tokens first, so a skipped row cannot pass by accident.
    std::vector<int32_t> other(kPrompt.size(), 1);
    std::vector<float> scratch(size_t(T * vocab));
    std::unique_ptr<KvCache> otherCache;
    ASSERT_TRUE(loaded.executor->createCache(1, 64, &otherCache).ok());
    ASSERT_TRUE(loaded.executor
                    ->forward({other.data(), positions.data(), seqIds.data(), T}, *otherCache,
                              scratch.data())
                    .ok());
    std::vector<float> logits(size_t(T * vocab), -1.f);
    TokenBatch batch{kPrompt.data(), positions.data(), seqIds.data(), T};
    batch.wantLogits = want.data();
    ASSERT_TRUE(loaded.executor->forward(batch, *cache, logits.data()).ok());
    for (int64_t r = 0; r < T; ++r) {
      const bool same = std::equal(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab,
                                   whole.begin() + r * vocab);
      if (want[size_t(r)])
        EXPECT_TRUE(same) << "wanted row " << r;
      else
        EXPECT_FALSE(same) << "row " << r << " was computed, not skipped";
    }
  }
}

TEST(Executor, PrefillThenDecodeEqualsOnePrefill) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  int64_t vocab = loaded.executor->vocabSize();
  std::vector<float> whole = loaded.run(kPrompt);

  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(1, 32, &cache).ok());
  std::vector<float> stepwise;
  size_t prefill = 4;
  std::vector<int32_t> positions = {0, 1, 2, 3}, seqIds = {0, 0, 0, 0};
  std::vector<float> logits(prefill * size_t(vocab));
  ASSERT_TRUE(loaded.executor
                  ->forward({kPrompt.data(), positions.data(), seqIds.data(), 4}, *cache,
                            logits.data())
                  .ok());
  stepwise = logits;
  for (size_t t = prefill; t < kPrompt.size(); ++t) {
    int32_t position = int32_t(t), seq = 0;
    std::vector<float> row(static_cast<size_t>(vocab));
    Status status = loaded.executor->forward({&kPrompt[t], &position, &seq, 1}, *cache, row.data());
    ASSERT_TRUE(status.ok()) << status.message();
    stepwise.insert(stepwise.end(), row.begin(), row.end());
  }
  EXPECT_EQ(cache->length(0), int64_t(kPrompt.size()));
  EXPECT_LT(relativeError(stepwise, whole), 1e-5);
}

TEST(Executor, AnObserverSeesEveryStepAndCanStopTheRun) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  const int64_t vocab = loaded.executor->vocabSize();
  std::vector<float> plain = loaded.run(kPrompt);
  const int64_t T = int64_t(kPrompt.size());
  std::vector<int32_t> positions(kPrompt.size()), seqIds(kPrompt.size(), 0);
  for (size_t i = 0; i < positions.size(); ++i)
    positions[i] = int32_t(i);
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(1, 64, &cache).ok());
  std::vector<uint32_t> seen;
  std::vector<float> lastValues, logits(size_t(T * vocab));
  Status status = loaded.executor->forward(
      {kPrompt.data(), positions.data(), seqIds.data(), T}, *cache, logits.data(),
      [&](uint32_t step, const float *values, int64_t rows, int64_t cols) {
        EXPECT_EQ(rows, T);
        seen.push_back(step);
        lastValues.assign(values, values + rows * cols);
        return Status();
      });
  ASSERT_TRUE(status.ok()) << status.message();
  // Observing changes nothing; the last observed step is the logits' step.
  EXPECT_EQ(logits, plain);
  EXPECT_EQ(lastValues, logits);
  ASSERT_GT(seen.size(), 5u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));

  // An observer's error stops the run and is the forward's error.
  std::unique_ptr<KvCache> other;
  ASSERT_TRUE(loaded.executor->createCache(1, 64, &other).ok());
  int calls = 0;
  status = loaded.executor->forward(
      {kPrompt.data(), positions.data(), seqIds.data(), T}, *other, logits.data(),
      [&](uint32_t, const float *, int64_t, int64_t) {
        return ++calls == 3 ? Status::error("enough") : Status();
      });
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "enough");
  EXPECT_EQ(calls, 3);
}

TEST(Executor, InterleavedSequencesEqualSeparateRuns) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  int64_t vocab = loaded.executor->vocabSize();
  std::vector<int32_t> a = {5, 9, 2, 6, 5, 3}, b = {8, 9, 7, 9};
  std::vector<float> aAlone = loaded.run(a), bAlone = loaded.run(b);

  // One batch: a0 b0 a1 b1 ... then the rest of a; sequence ids 1 (a) and 0 (b).
  std::vector<int32_t> tokens, positions, seqIds;
  std::vector<std::pair<int, size_t>> origin; // (sequence, index)
  for (size_t i = 0; i < a.size(); ++i) {
    tokens.push_back(a[i]), positions.push_back(int32_t(i)), seqIds.push_back(1);
    origin.push_back({1, i});
    if (i < b.size()) {
      tokens.push_back(b[i]), positions.push_back(int32_t(i)), seqIds.push_back(0);
      origin.push_back({0, i});
    }
  }
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(2, 16, &cache).ok());
  std::vector<float> logits(tokens.size() * size_t(vocab));
  Status status = loaded.executor->forward(
      {tokens.data(), positions.data(), seqIds.data(), int64_t(tokens.size())}, *cache,
      logits.data());
  ASSERT_TRUE(status.ok()) << status.message();
  std::vector<float> aBatched, bBatched;
  for (size_t r = 0; r < origin.size(); ++r) {
    std::vector<float> &dest = origin[r].first == 1 ? aBatched : bBatched;
    dest.insert(dest.end(), logits.begin() + ptrdiff_t(r * size_t(vocab)),
                logits.begin() + ptrdiff_t((r + 1) * size_t(vocab)));
  }
  EXPECT_LT(relativeError(aBatched, aAlone), 1e-5);
  EXPECT_LT(relativeError(bBatched, bAlone), 1e-5);
  EXPECT_EQ(cache->length(0), 4);
  EXPECT_EQ(cache->length(1), 6);

  // A decode step for both sequences in one batch equals decoding each alone.
  std::vector<int32_t> next = {7, 1}, nextPositions = {4, 6}, nextSeqs = {0, 1};
  std::vector<float> both(2 * size_t(vocab));
  ASSERT_TRUE(loaded.executor
                  ->forward({next.data(), nextPositions.data(), nextSeqs.data(), 2}, *cache,
                            both.data())
                  .ok());
  std::vector<int32_t> bLonger = b, aLonger = a;
  bLonger.push_back(7), aLonger.push_back(1);
  std::vector<float> bRef = loaded.run(bLonger), aRef = loaded.run(aLonger);
  std::vector<float> bLast(bRef.end() - vocab, bRef.end()), aLast(aRef.end() - vocab, aRef.end());
  EXPECT_LT(relativeError(std::vector<float>(both.begin(), both.begin() + vocab), bLast), 1e-5);
  EXPECT_LT(relativeError(std::vector<float>(both.begin() + vocab, both.end()), aLast), 1e-5);
}

// KvCache::share (GRPO groups): sequences 1 and 2 continue sequence 0's prompt
// without copying its rows; their decode steps equal runs with the prompt their own.
TEST(Executor, SequencesSharingAPrefixEqualSeparateRuns) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  int64_t vocab = loaded.executor->vocabSize();
  std::vector<int32_t> prompt = {5, 9, 2, 6, 5};
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(3, 16, &cache).ok());
  std::vector<int32_t> positions = {0, 1, 2, 3, 4}, seqs(5, 0);
  std::vector<float> logits(5 * size_t(vocab));
  ASSERT_TRUE(loaded.executor->forward({prompt.data(), positions.data(), seqs.data(), 5}, *cache,
                                       logits.data())
                  .ok());
  ASSERT_TRUE(cache->share(1, 0, 5).ok());
  ASSERT_TRUE(cache->share(2, 0, 5).ok());
  EXPECT_EQ(cache->length(1), 5);
  EXPECT_EQ(cache->sharedWith(2), 0);
  // Two samples, two steps each, decoded together.
  std::vector<int32_t> first = {7, 3}, second = {1, 8};
  std::vector<float> step1(2 * size_t(vocab)), step2(2 * size_t(vocab));
  std::vector<int32_t> p1 = {5, 5}, p2 = {6, 6}, s12 = {1, 2};
  ASSERT_TRUE(loaded.executor->forward({first.data(), p1.data(), s12.data(), 2}, *cache,
                                       step1.data())
                  .ok());
  ASSERT_TRUE(loaded.executor->forward({second.data(), p2.data(), s12.data(), 2}, *cache,
                                       step2.data())
                  .ok());
  for (int k = 0; k < 2; ++k) {
    std::vector<int32_t> alone = prompt;
    alone.push_back(first[size_t(k)]);
    alone.push_back(second[size_t(k)]);
    std::vector<float> ref = loaded.run(alone);
    std::vector<float> want(ref.end() - vocab, ref.end());
    std::vector<float> got(step2.begin() + k * vocab, step2.begin() + (k + 1) * vocab);
    EXPECT_LT(relativeError(got, want), 1e-5) << "sample " << k;
  }
  // The shared rows are read-only for the sharers; sharing is checked.
  std::vector<int32_t> again = {4}, at = {2}, one = {1};
  std::vector<float> row(static_cast<size_t>(vocab));
  EXPECT_EQ(loaded.executor->forward({again.data(), at.data(), one.data(), 1}, *cache, row.data())
                .message(),
            "forward: token 0 of sequence 1 at position 2 falls in the 5 rows it shares with "
            "sequence 0");
  EXPECT_EQ(cache->share(2, 1, 3).message(),
            "kv cache: sequence 1 shares rows itself; share from its source, sequence 0");
  EXPECT_EQ(cache->share(1, 0, 9).message(), "kv cache: sequence 0 holds 5 tokens, cannot share 9");
  cache->clear(1);
  EXPECT_EQ(cache->sharedRows(1), 0);
}

// Backends whose kernels read each sequence's own rows (the GPU backends) copy the
// shared rows once per share() call and state (SharedPrefixCopies).
TEST(Executor, SharedPrefixCopiesCopyEachShareOnce) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(3, 8, &cache).ok());
  std::vector<int32_t> prompt = {5, 9, 2, 6}, positions = {0, 1, 2, 3}, seqs(4, 0);
  std::vector<float> logits(4 * size_t(loaded.executor->vocabSize()));
  ASSERT_TRUE(loaded.executor->forward({prompt.data(), positions.data(), seqs.data(), 4}, *cache,
                                       logits.data())
                  .ok());
  const std::vector<StateBinding> &states = cache->bindings();
  ASSERT_FALSE(states.empty());
  Bindings b;
  b.states = states.data();
  b.numStates = states.size();
  b.numSequences = cache->numSequences();
  std::vector<std::tuple<uint8_t *, const uint8_t *, uint64_t>> copies;
  auto copy = [&](uint8_t *dst, const uint8_t *src, uint64_t bytes) {
    copies.emplace_back(dst, src, bytes);
    std::memcpy(dst, src, bytes);
    return Status();
  };
  SharedPrefixCopies prefix;
  ASSERT_TRUE(prefix.apply(b, copy).ok());
  EXPECT_TRUE(copies.empty()) << "nothing is shared yet";
  ASSERT_TRUE(cache->share(2, 0, 3).ok());
  ASSERT_TRUE(prefix.apply(b, copy).ok());
  ASSERT_EQ(copies.size(), states.size()) << "sequence 2's three rows of every state";
  for (size_t i = 0; i < states.size(); ++i) {
    const StateBinding &s = states[i];
    EXPECT_EQ(std::get<0>(copies[i]), s.data + 2 * s.sequenceStride);
    EXPECT_EQ(std::get<1>(copies[i]), s.data);
    EXPECT_EQ(std::get<2>(copies[i]), 3 * s.rowBytes);
    EXPECT_EQ(std::memcmp(s.data + 2 * s.sequenceStride, s.data, 3 * s.rowBytes), 0);
  }
  ASSERT_TRUE(prefix.apply(b, copy).ok());
  EXPECT_EQ(copies.size(), states.size()) << "copied once";
  // Shared again (even the same rows of the same parent): copied again, since the
  // parent's rows may have changed in between.
  cache->clear(2);
  ASSERT_TRUE(prefix.apply(b, copy).ok());
  EXPECT_EQ(copies.size(), states.size());
  ASSERT_TRUE(cache->share(2, 0, 3).ok());
  ASSERT_TRUE(cache->share(1, 0, 4).ok());
  ASSERT_TRUE(prefix.apply(b, copy).ok());
  EXPECT_EQ(copies.size(), 3 * states.size());
  const StateBinding &first = states[0];
  EXPECT_NE(std::find(copies.begin(), copies.end(),
                      std::make_tuple(first.data + first.sequenceStride,
                                      static_cast<const uint8_t *>(first.data),
                                      4 * first.rowBytes)),
            copies.end())
      << "sequence 1's four rows";
  EXPECT_EQ(prefix.copies(), 3 * states.size());
}

TEST(Executor, RefusesBadInputsBeforeRunning) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(2, 4, &cache).ok());
  std::vector<float> logits(32 * 160);
  auto forward = [&](std::vector<int32_t> tokens, std::vector<int32_t> positions,
                     std::vector<int32_t> seqIds) {
    return loaded.executor
        ->forward({tokens.data(), positions.data(), seqIds.data(), int64_t(tokens.size())},
                  *cache, logits.data())
        .message();
  };
  std::vector<int32_t> many(17, 1), manyPositions(17), manySeqs(17, 0);
  std::iota(manyPositions.begin(), manyPositions.end(), 0);
  EXPECT_EQ(forward(many, manyPositions, manySeqs),
            "forward: 17 tokens exceed the plan's max_tokens of 16; split the batch");
  EXPECT_EQ(forward({1, 160}, {0, 1}, {0, 0}),
            "forward: token 1 has id 160, the vocabulary has 160 tokens");
  EXPECT_EQ(forward({1, -2}, {0, 1}, {0, 0}),
            "forward: token 1 has id -2, the vocabulary has 160 tokens");
  EXPECT_EQ(forward({1, 2}, {0, 0}, {0, 2}),
            "forward: token 1 has sequence id 2, the KV cache has 2 sequences");
  EXPECT_EQ(forward({1, 2}, {0, -1}, {0, 0}), "forward: token 1 has negative position -1");
  // KV capacity: checked before any kernel writes a row.
  EXPECT_EQ(forward({1, 2, 3, 4, 5}, {0, 1, 2, 3, 4}, {0, 0, 0, 0, 0}),
            "forward: token 4 of sequence 0 at position 4 exceeds the KV cache capacity of 4 "
            "tokens");
  EXPECT_EQ(forward({1, 2, 3}, {0, 1, 3}, {1, 1, 1}),
            "forward: sequence 1: position 2 is missing; the cache holds 0 tokens and the batch "
            "reaches position 3");
  EXPECT_EQ(cache->length(0), 0);
  EXPECT_EQ(cache->length(1), 0);
  // Filling the cache exactly works; one more token does not.
  EXPECT_EQ(forward({1, 2, 3, 4}, {0, 1, 2, 3}, {0, 0, 0, 0}), "");
  EXPECT_EQ(cache->length(0), 4);
  EXPECT_EQ(forward({5}, {4}, {0}),
            "forward: token 0 of sequence 0 at position 4 exceeds the KV cache capacity of 4 "
            "tokens");
}

TEST(Executor, KvCacheHoldsThePlansStates) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(3, 10, &cache).ok());
  // Per layer the latent c (32 f32) and the roped k_pe (8 f32): 3 * (32 + 8) * 4 bytes.
  EXPECT_EQ(cache->bytesPerToken(), 480u);
  EXPECT_EQ(cache->totalBytes(), 480u * 10 * 3);
  ASSERT_EQ(cache->bindings().size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    const StateBinding &binding = cache->bindings()[i];
    uint64_t rowBytes = i % 2 == 0 ? 128 : 32;
    EXPECT_EQ(binding.rowBytes, rowBytes) << i;
    EXPECT_EQ(binding.capacity, 10) << i;
    EXPECT_EQ(binding.sequenceStride, rowBytes * 10) << i;
    ASSERT_NE(binding.data, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(binding.data) % 64, 0u) << i;
    // Zeroed at creation.
    std::vector<uint8_t> bytes(size_t(rowBytes * 30), 0xff);
    ASSERT_TRUE(loaded.executor->backend().copyToHost(bytes.data(), binding.data, bytes.size()).ok());
    EXPECT_EQ(std::count(bytes.begin(), bytes.end(), 0), ptrdiff_t(bytes.size())) << i;
  }
  EXPECT_TRUE(cache->fits(*loaded.plan));
  std::unique_ptr<KvCache> none;
  EXPECT_EQ(loaded.executor->createCache(0, 10, &none).message(),
            "kv cache: 0 sequences requested, need at least 1");
}

TEST(Executor, RefusesACacheMadeForAnotherPlan) {
  LoadedModel three; // 3 layers
  TinyModelOptions twoLayers;
  twoLayers.layers = 2;
  LoadedModel two(twoLayers);
  ASSERT_TRUE(three.executor && two.executor);
  std::unique_ptr<KvCache> small;
  ASSERT_TRUE(two.executor->createCache(1, 8, &small).ok());
  EXPECT_FALSE(small->fits(*three.plan));
  std::vector<int32_t> tokens = {1, 2}, positions = {0, 1}, seqIds = {0, 0};
  std::vector<float> logits(2 * 160);
  EXPECT_EQ(three.executor
                ->forward({tokens.data(), positions.data(), seqIds.data(), 2}, *small,
                          logits.data())
                .message(),
            "forward: the KV cache was made for another plan (4 states of 320 bytes per token, "
            "this plan has 6 states of 480)");
}

TEST(Executor, DecodeRunsForTheNextTokenOfDistinctSequences) {
  TinyModelOptions options;
  options.prefillAbsorbed = false; // the two entry points have different steps
  LoadedModel loaded(options);
  ASSERT_TRUE(loaded.executor);
  EXPECT_EQ(loaded.executor->lastEntry(), nullptr);
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(3, 16, &cache).ok());
  std::vector<float> logits(16 * 160);
  auto entryOf = [&](std::vector<int32_t> positions, std::vector<int32_t> seqIds) {
    std::vector<int32_t> tokens(positions.size(), 7);
    Status status = loaded.executor->forward(
        {tokens.data(), positions.data(), seqIds.data(), int64_t(tokens.size())}, *cache,
        logits.data());
    EXPECT_TRUE(status.ok()) << status.message();
    return loaded.executor->lastEntry() ? loaded.executor->lastEntry()->name : "none";
  };
  EXPECT_EQ(entryOf({0, 1, 2}, {0, 0, 0}), "prefill"); // a prompt
  EXPECT_EQ(entryOf({3}, {0}), "decode");              // its next token
  EXPECT_EQ(entryOf({0}, {1}), "decode");              // the first token of a sequence
  EXPECT_EQ(entryOf({4, 1}, {0, 1}), "decode");        // batched decode
  EXPECT_EQ(entryOf({2, 0}, {1, 2}), "decode");
  EXPECT_EQ(entryOf({5, 6}, {0, 0}), "prefill");       // two tokens of one sequence
  EXPECT_EQ(entryOf({6}, {0}), "prefill");             // rewrites a stored row
  EXPECT_EQ(entryOf({3, 0}, {1, 2}), "prefill");       // one next token, one rewrite
  EXPECT_EQ(cache->length(0), 7);
  EXPECT_EQ(cache->length(1), 4);
  EXPECT_EQ(cache->length(2), 1);
}

TEST(Executor, BatchesBelowPrefillsMinTokensRunDecode) {
  // What the compiler's MLA cost model records (moe-absorb-mla{form=auto}): from 4
  // tokens on the naive prefill is cheaper; smaller batches of any shape run the
  // absorbed decode entry point, and every split follows the reference.
  TinyModelOptions options;
  options.prefillAbsorbed = false;
  options.prefillMinTokens = 4;
  LoadedModel loaded(options);
  ASSERT_TRUE(loaded.executor);
  ASSERT_EQ(loaded.plan->findEntryPoint("prefill")->minTokens, 4);
  int64_t vocab = loaded.executor->vocabSize();
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(1, 32, &cache).ok());
  std::vector<float> all;
  std::vector<std::string> entries;
  // Chunks of 3 (decode), 5 (prefill), 1 (decode), then the rest.
  size_t at = 0;
  for (size_t chunk : {size_t(3), size_t(5), size_t(1), kPrompt.size() - 9}) {
    std::vector<int32_t> positions(chunk), seqIds(chunk, 0);
    for (size_t i = 0; i < chunk; ++i)
      positions[i] = int32_t(at + i);
    std::vector<float> rows(chunk * size_t(vocab));
    Status status = loaded.executor->forward(
        {&kPrompt[at], positions.data(), seqIds.data(), int64_t(chunk)}, *cache, rows.data());
    ASSERT_TRUE(status.ok()) << status.message();
    entries.push_back(loaded.executor->lastEntry()->name);
    all.insert(all.end(), rows.begin(), rows.end());
    at += chunk;
  }
  ASSERT_EQ(at, kPrompt.size());
  EXPECT_EQ(entries, (std::vector<std::string>{"decode", "prefill", "decode",
                                               kPrompt.size() - 9 >= 4 ? "prefill"
                                                                       : "decode"}));
  EXPECT_LT(relativeError(all, referenceForward(loaded.model, kPrompt).logits), 1e-4);
}

TEST(Executor, NaivePrefillThenAbsorbedDecodeFollowTheReference) {
  TinyModelOptions options;
  options.prefillAbsorbed = false;
  LoadedModel loaded(options);
  ASSERT_TRUE(loaded.executor);
  int64_t vocab = loaded.executor->vocabSize();
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(1, 32, &cache).ok());
  std::vector<int32_t> positions = {0, 1, 2, 3}, seqIds(4, 0);
  std::vector<float> all(4 * size_t(vocab));
  ASSERT_TRUE(loaded.executor
                  ->forward({kPrompt.data(), positions.data(), seqIds.data(), 4}, *cache,
                            all.data())
                  .ok());
  ASSERT_EQ(loaded.executor->lastEntry()->name, "prefill");
  for (size_t t = 4; t < kPrompt.size(); ++t) {
    int32_t position = int32_t(t), seq = 0;
    std::vector<float> row(static_cast<size_t>(vocab));
    Status status = loaded.executor->forward({&kPrompt[t], &position, &seq, 1}, *cache, row.data());
    ASSERT_TRUE(status.ok()) << status.message();
    ASSERT_EQ(loaded.executor->lastEntry()->name, "decode");
    all.insert(all.end(), row.begin(), row.end());
  }
  EXPECT_LT(relativeError(all, referenceForward(loaded.model, kPrompt).logits), 1e-4);
}

/// The CPU backend under another name, refusing head_linear steps while `refuse` is
/// set: the executor must name the step before anything runs.
class PickyBackend final : public Backend {
public:
  static bool refuse;
  static Status create(const BackendOptions &options, std::unique_ptr<Backend> *out) {
    auto picky = std::make_unique<PickyBackend>();
    MOEC_RETURN_IF_ERROR(createBackend("cpu", options, &picky->cpu_));
    *out = std::move(picky);
    return Status();
  }
  const char *name() const override { return "picky"; }
  std::vector<BufferType> bufferTypes() const override { return cpu_->bufferTypes(); }
  Status allocate(uint64_t bytes, DeviceBuffer *out, int type) override {
    return cpu_->allocate(bytes, out, type);
  }
  void release(DeviceBuffer &buffer) override { cpu_->release(buffer); }
  Status copyToDevice(void *device, const void *host, uint64_t bytes) override {
    return cpu_->copyToDevice(device, host, bytes);
  }
  Status copyToHost(void *host, const void *device, uint64_t bytes) override {
    return cpu_->copyToHost(host, device, bytes);
  }
  Status importHost(const void *host, uint64_t bytes, DeviceBuffer *out) override {
    return cpu_->importHost(host, bytes, out);
  }
  bool supportsStep(const StepTypes &types, std::string *why) const override {
    if (refuse && types.kind == plan::StepKind::HeadLinear) {
      if (why)
        *why = "f8e4m3 weights with block shape [128, 128]";
      return false;
    }
    return cpu_->supportsStep(types, why);
  }
  Status prepare(const Plan &plan, uint32_t entry, std::unique_ptr<Program> *out) override {
    return cpu_->prepare(plan, entry, out);
  }
  Status execute(Program &program, const Bindings &bindings) override {
    return cpu_->execute(program, bindings);
  }
  Status synchronize() override { return cpu_->synchronize(); }

private:
  std::unique_ptr<Backend> cpu_;
};
bool PickyBackend::refuse = false;

TEST(Executor, NamesTheFirstStepTheBackendCannotRun) {
  TinyModelOptions options;
  options.prefillAbsorbed = false; // head_linear only in decode
  LoadedModel loaded(options);
  ASSERT_TRUE(loaded.plan);
  registerBackend("picky", PickyBackend::create);
  ExecutorOptions executorOptions;
  executorOptions.backend = "picky";
  executorOptions.threads = 2;
  std::unique_ptr<Executor> executor;
  PickyBackend::refuse = true;
  Status status = Executor::create(*loaded.plan, executorOptions, &executor);
  PickyBackend::refuse = false;
  uint32_t first = loaded.plan->decode().firstStep;
  uint32_t wUk = first;
  while (loaded.plan->root().steps()->Get(wUk)->kind() != plan::StepKind::HeadLinear)
    ++wUk;
  EXPECT_EQ(loaded.plan->stepLabel(wUk), "steps[" + std::to_string(wUk) +
                                             "] (model.layers.0.self_attn.w_uk)");
  EXPECT_EQ(status.message(), loaded.plan->name() + ": " + loaded.plan->stepLabel(wUk) +
                                  ": the picky backend cannot run head_linear: f8e4m3 "
                                  "weights with block shape [128, 128]");
  // Without the refusal it runs like the CPU backend it wraps.
  ASSERT_TRUE(Executor::create(*loaded.plan, executorOptions, &executor).ok());
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(executor->createCache(1, 8, &cache).ok());
  std::vector<float> logits(3 * 160);
  std::vector<int32_t> positions = {0, 1, 2}, seqIds = {0, 0, 0};
  ASSERT_TRUE(executor->forward({kPrompt.data(), positions.data(), seqIds.data(), 3}, *cache,
                                logits.data()).ok());
  EXPECT_LT(relativeError(logits, loaded.run({kPrompt.begin(), kPrompt.begin() + 3})), 1e-6);
}

TEST(Executor, CpuBackendRefusesBlockShapesItHasNoKernelFor) {
  TinyModelOptions options;
  options.fp8Block = {64, 64};
  TempDir dir;
  std::string path = dir.file("blocks.plan");
  ASSERT_TRUE(writeTinyModel(options, path));
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(path, &plan).ok());
  std::unique_ptr<Executor> executor;
  std::string message = Executor::create(*plan, {}, &executor).message();
  // The first f8e4m3 projection; the reason is the backend's own words.
  EXPECT_EQ(message, path + ": steps[2] (model.layers.0.self_attn.q_a_proj): the cpu backend "
                            "cannot run linear: weight 0 is f8e4m3 with block shape [64, 64], "
                            "the cpu kernels implement [128, 128] only");
}

TEST(Executor, UnknownBackendIsNamed) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.plan);
  ExecutorOptions options;
  options.backend = "tpu";
  std::unique_ptr<Executor> executor;
  std::string known;
  for (const std::string &name : backendNames())
    known += (known.empty() ? "" : ", ") + name;
  EXPECT_EQ(Executor::create(*loaded.plan, options, &executor).message(),
            "unknown backend \"tpu\" (available: " + known + ")");
  EXPECT_NE(known.find("cpu"), std::string::npos);
}

} // namespace
} // namespace moec::test
