//===- GenerationTest.cpp - Prefill + decode, sampling, stopping ----------===//
#include "LoadedModel.h"

namespace moec::test {
namespace {

const std::vector<int32_t> kPrompt = {3, 14, 15, 92, 65};

std::vector<int32_t> generateTokens(LoadedModel &loaded, const GenerationOptions &options,
                                    std::string *error = nullptr, int64_t capacity = 64) {
  std::unique_ptr<KvCache> cache;
  EXPECT_TRUE(loaded.executor->createCache(1, capacity, &cache).ok());
  std::vector<int32_t> tokens, streamed;
  Status status = generate(*loaded.executor, *cache, 0, kPrompt, options,
                           [&](int32_t token) {
                             streamed.push_back(token);
                             return true;
                           },
                           &tokens, nullptr);
  if (error)
    *error = status.message();
  else
    EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(streamed, tokens);
  return tokens;
}

TEST(Generation, GreedyFollowsTheReferenceArgmax) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  GenerationOptions options;
  options.maxNewTokens = 6;
  std::vector<int32_t> tokens = generateTokens(loaded, options);
  ASSERT_EQ(tokens.size(), 6u);
  // Each token is the reference's argmax after the prompt and the tokens before it.
  std::vector<int32_t> sequence = kPrompt;
  int64_t vocab = loaded.executor->vocabSize();
  for (int32_t token : tokens) {
    ReferenceResult ref = referenceForward(loaded.model, sequence);
    const double *last = ref.logits.data() + (sequence.size() - 1) * size_t(vocab);
    int32_t best = argmax(last, vocab);
    std::vector<double> sorted(last, last + vocab);
    std::sort(sorted.rbegin(), sorted.rend());
    ASSERT_GT(sorted[0] - sorted[1], 1e-4) << "near tie: the test would be fragile";
    EXPECT_EQ(token, best);
    sequence.push_back(token);
  }
}

TEST(Generation, NaivePrefillAbsorbedDecodeGeneratesTheSameTokens) {
  LoadedModel absorbed;
  TinyModelOptions options;
  options.prefillAbsorbed = false; // the compiler's default forms
  LoadedModel split(options);
  ASSERT_TRUE(absorbed.executor && split.executor);
  GenerationOptions generation;
  generation.maxNewTokens = 6;
  std::vector<int32_t> tokens = generateTokens(split, generation);
  EXPECT_EQ(tokens, generateTokens(absorbed, generation));
  ASSERT_NE(split.executor->lastEntry(), nullptr);
  EXPECT_EQ(split.executor->lastEntry()->name, "decode");
}

TEST(Generation, SameSeedSameTokensOtherSeedOtherTokens) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  GenerationOptions options;
  options.maxNewTokens = 12;
  options.sampling.temperature = 1.5f;
  options.sampling.topK = 40;
  options.sampling.topP = 0.95f;
  options.sampling.seed = 11;
  std::vector<int32_t> first = generateTokens(loaded, options);
  std::vector<int32_t> again = generateTokens(loaded, options);
  EXPECT_EQ(first, again);
  options.sampling.seed = 12;
  std::vector<int32_t> other = generateTokens(loaded, options);
  EXPECT_NE(first, other);
  GenerationOptions greedy;
  greedy.maxNewTokens = 12;
  EXPECT_NE(first, generateTokens(loaded, greedy));
}

TEST(Generation, StopsAfterTheStopToken) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  GenerationOptions options;
  options.maxNewTokens = 8;
  std::vector<int32_t> free = generateTokens(loaded, options);
  ASSERT_EQ(free.size(), 8u);
  // Stop on the third token's id: generation ends at its first occurrence.
  int32_t stop = free[2];
  size_t firstAt = size_t(std::find(free.begin(), free.end(), stop) - free.begin());
  options.stopTokens = {stop};
  std::vector<int32_t> stopped = generateTokens(loaded, options);
  EXPECT_EQ(stopped, std::vector<int32_t>(free.begin(), free.begin() + ptrdiff_t(firstAt + 1)));
  EXPECT_EQ(stopped.back(), stop);
}

TEST(Generation, CallbackCanStopAndStatsCount) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(1, 64, &cache).ok());
  GenerationOptions options;
  options.maxNewTokens = 10;
  GenerationStats stats;
  std::vector<int32_t> tokens;
  ASSERT_TRUE(generate(*loaded.executor, *cache, 0, kPrompt, options,
                       [&](int32_t) { return tokens.size() < 3; }, &tokens, &stats)
                  .ok());
  EXPECT_EQ(tokens.size(), 3u);
  EXPECT_EQ(stats.promptTokens, 5);
  EXPECT_EQ(stats.generatedTokens, 3);
  EXPECT_EQ(stats.decodedTokens, 2);
  EXPECT_EQ(cache->length(0), 7); // prompt + the two tokens fed back
}

TEST(Generation, RefusesToOutgrowTheCache) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  GenerationOptions options;
  options.maxNewTokens = 8;
  std::string error;
  std::vector<int32_t> tokens = generateTokens(loaded, options, &error, 10);
  EXPECT_TRUE(tokens.empty());
  EXPECT_EQ(error, "generate: sequence 0 needs 12 KV-cache rows (0 cached + 5 prompt + 7 "
                   "decoded), capacity is 10");
  // 5 + 6 rows fit exactly in 11.
  error.clear();
  tokens = generateTokens(loaded, options, &error, 12);
  EXPECT_EQ(error, "");
  EXPECT_EQ(tokens.size(), 8u);
}

TEST(Generation, LongPromptIsPrefilledInChunks) {
  TinyModelOptions options;
  options.maxTokens = 4;
  LoadedModel loaded(options);
  ASSERT_TRUE(loaded.executor);
  std::vector<int32_t> prompt = {3, 14, 15, 92, 65, 35, 89, 79, 32, 38};
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(1, 16, &cache).ok());
  GenerationOptions generation;
  generation.maxNewTokens = 1;
  std::vector<float> promptLogits;
  std::vector<int32_t> tokens;
  ASSERT_TRUE(generate(*loaded.executor, *cache, 0, prompt, generation, nullptr, &tokens,
                       nullptr, &promptLogits)
                  .ok());
  ReferenceResult ref = referenceForward(loaded.model, prompt);
  EXPECT_LT(relativeError(promptLogits, ref.logits), 1e-4);
  int64_t vocab = loaded.executor->vocabSize();
  EXPECT_EQ(tokens, std::vector<int32_t>{argmax(ref.logits.data() + 9 * vocab, vocab)});
}

TEST(Generation, DecodeLogitsAreTheDistributionsOfEachStep) {
  LoadedModel loaded;
  ASSERT_TRUE(loaded.executor);
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(loaded.executor->createCache(1, 16, &cache).ok());
  GenerationOptions generation;
  generation.maxNewTokens = 5;
  std::vector<float> promptLogits = {1.0f}, decodeLogits = {2.0f}; // replaced, not appended to
  std::vector<int32_t> tokens;
  ASSERT_TRUE(generate(*loaded.executor, *cache, 0, kPrompt, generation, nullptr, &tokens,
                       nullptr, &promptLogits, &decodeLogits)
                  .ok());
  ASSERT_EQ(tokens.size(), 5u);
  int64_t vocab = loaded.executor->vocabSize();
  ASSERT_EQ(promptLogits.size(), kPrompt.size() * size_t(vocab));
  ASSERT_EQ(decodeLogits.size(), 4 * size_t(vocab)); // the last token is never fed back
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ(argmax(decodeLogits.data() + i * size_t(vocab), vocab), tokens[i + 1]) << i;
  // Prompt rows then decode rows: one full forward over prompt + fed-back tokens.
  std::vector<int32_t> sequence = kPrompt;
  sequence.insert(sequence.end(), tokens.begin(), tokens.end() - 1);
  std::vector<float> all = promptLogits;
  all.insert(all.end(), decodeLogits.begin(), decodeLogits.end());
  EXPECT_LT(relativeError(all, referenceForward(loaded.model, sequence).logits), 1e-4);
}

} // namespace
} // namespace moec::test
