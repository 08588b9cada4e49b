//===- Generator.cpp - Prefill, then decode token by token ----------------===//
#include "moec/runtime/Generator.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>

namespace moec {

namespace {

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace

Status generate(Executor &executor, KvCache &cache, int32_t seq,
                const std::vector<int32_t> &prompt, const GenerationOptions &options,
                const TokenCallback &onToken, std::vector<int32_t> *generated,
                GenerationStats *stats, std::vector<float> *promptLogits,
                std::vector<float> *decodeLogits) {
  if (prompt.empty())
    return Status::error("generate: the prompt is empty");
  if (seq < 0 || seq >= cache.numSequences())
    return Status::error("generate: sequence %d does not exist, the KV cache has %d", seq,
                         cache.numSequences());
  if (options.maxNewTokens < 0)
    return Status::error("generate: max new tokens is %" PRId64 ", expected >= 0",
                         options.maxNewTokens);
  Status valid = Sampler::validate(options.sampling);
  if (!valid.ok())
    return valid.withPrefix("generate");
  // The last generated token is never fed back, so it needs no cache row.
  int64_t start = cache.length(seq), promptSize = int64_t(prompt.size());
  int64_t decoded = std::max<int64_t>(options.maxNewTokens - 1, 0);
  if (start + promptSize + decoded > cache.capacity())
    return Status::error("generate: sequence %d needs %" PRId64 " KV-cache rows (%" PRId64
                         " cached + %" PRId64 " prompt + %" PRId64 " decoded), capacity is %" PRId64,
                         seq, start + promptSize + decoded, start, promptSize, decoded,
                         cache.capacity());

  GenerationStats local;
  GenerationStats &s = stats ? *stats : local;
  s = GenerationStats();
  int64_t vocab = executor.vocabSize(), chunkMax = executor.maxTokens();
  std::vector<float> logits;
  std::vector<int32_t> positions, seqIds;
  if (promptLogits)
    promptLogits->clear();
  if (decodeLogits)
    decodeLogits->clear();

  std::vector<uint8_t> want;
  Sampler sampler(options.sampling);
  // Greedy choices without logits to keep are made where the logits are (on a GPU:
  // on the device, 4 bytes copied back instead of a row of the vocabulary).
  const bool choiceOnDevice = sampler.greedy() && !decodeLogits;
  // `wanted`: the rows of the logits to compute (null: all of them). With `greedy`
  // set, only the greedy choice from the last row is kept, in *greedy.
  auto run = [&](const int32_t *tokens, int64_t count, int64_t firstPosition,
                 const uint8_t *wanted = nullptr, int32_t *greedy = nullptr) -> Status {
    positions.resize(size_t(count));
    seqIds.assign(size_t(count), seq);
    for (int64_t i = 0; i < count; ++i)
      positions[size_t(i)] = int32_t(firstPosition + i);
    TokenBatch batch{tokens, positions.data(), seqIds.data(), count};
    batch.wantLogits = wanted;
    if (greedy)
      return executor.forwardGreedy(batch, cache, count - 1, greedy);
    logits.resize(size_t(count * vocab));
    return executor.forward(batch, cache, logits.data());
  };

  // Prefill in chunks the plan accepts. Unless the caller keeps the prompt's
  // logits, only the last token's row is computed: the first token is sampled from
  // it, and every other row would cost an lm_head product for nothing.
  auto prefillStart = std::chrono::steady_clock::now();
  int32_t token = -1; // the first generated token, once chosen
  for (int64_t offset = 0; offset < promptSize; offset += chunkMax) {
    int64_t count = std::min(chunkMax, promptSize - offset);
    const bool last = offset + count == promptSize;
    const uint8_t *wanted = nullptr;
    if (!promptLogits) {
      want.assign(size_t(count), 0);
      if (last)
        want.back() = 1;
      wanted = want.data();
    }
    int32_t *greedy =
        last && choiceOnDevice && !promptLogits && options.maxNewTokens > 0 ? &token : nullptr;
    MOEC_RETURN_IF_ERROR(run(prompt.data() + offset, count, start + offset, wanted, greedy));
    if (promptLogits)
      promptLogits->insert(promptLogits->end(), logits.begin(), logits.end());
  }
  s.promptTokens = promptSize;
  s.prefillSeconds = secondsSince(prefillStart);
  if (options.maxNewTokens == 0)
    return Status();

  if (token < 0) {
    int64_t lastRow = int64_t(logits.size()) / vocab - 1;
    token = sampler.sample(logits.data() + lastRow * vocab, vocab);
  }
  int64_t position = start + promptSize;
  auto decodeStart = std::chrono::steady_clock::now();
  for (;;) {
    ++s.generatedTokens;
    if (generated)
      generated->push_back(token);
    bool keepGoing = onToken ? onToken(token) : true;
    bool stop = std::find(options.stopTokens.begin(), options.stopTokens.end(), token) !=
                options.stopTokens.end();
    if (!keepGoing || stop || s.generatedTokens >= options.maxNewTokens)
      break;
    if (choiceOnDevice) {
      int32_t next = -1;
      MOEC_RETURN_IF_ERROR(run(&token, 1, position++, nullptr, &next));
      ++s.decodedTokens;
      token = next;
      continue;
    }
    MOEC_RETURN_IF_ERROR(run(&token, 1, position++));
    ++s.decodedTokens;
    if (decodeLogits)
      decodeLogits->insert(decodeLogits->end(), logits.begin(), logits.end());
    token = sampler.sample(logits.data(), vocab);
  }
  s.decodeSeconds = secondsSince(decodeStart);
  return Status();
}

} // namespace moec
