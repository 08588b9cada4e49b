//===- Generator.h - Prefill, then decode token by token --------*- C++ -*-===//
//
// Generation for one sequence of a KV cache: the prompt runs through the forward
// pass (in chunks of at most max_tokens), then each sampled token is fed back one at
// a time. Generation stops after maxNewTokens tokens or after emitting a stop token
// (the stop token is emitted), or when the callback returns false.
//
// Ownership: generate() borrows everything it is given for the duration of the call.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_GENERATOR_H
#define MOEC_RUNTIME_GENERATOR_H

#include "moec/runtime/Executor.h"
#include "moec/runtime/Sampler.h"

#include <functional>
#include <vector>

namespace moec {

/// What to generate.
struct GenerationOptions {
  int64_t maxNewTokens = 16;       ///< upper bound of generated tokens
  std::vector<int32_t> stopTokens; ///< generation ends after emitting one of these
  SamplingParams sampling;         ///< how to choose each token
};

/// Timings of one generate() call.
struct GenerationStats {
  int64_t promptTokens = 0;    ///< tokens prefilled
  double prefillSeconds = 0;   ///< time of the prefill forward passes
  int64_t decodedTokens = 0;   ///< tokens fed back through the model
  double decodeSeconds = 0;    ///< time of those forward passes
  int64_t generatedTokens = 0; ///< tokens emitted
};

/// Receives each token as soon as it is chosen; returning false stops generation.
using TokenCallback = std::function<bool(int32_t token)>;

/// Generates after `prompt` for sequence `seq` of `cache`, continuing from the tokens
/// the cache already holds for it. The prompt must not be empty. `generated`,
/// `stats`, `promptLogits`, `decodeLogits` and `onToken` may be null.
/// `promptLogits` receives the prefill's logits, [prompt size, vocab];
/// `decodeLogits` receives those of each decode step, [decoded tokens, vocab]: row i
/// is the distribution that chose generated token i + 1 (row i's step consumed
/// generated token i). Both are replaced, not appended to.
Status generate(Executor &executor, KvCache &cache, int32_t seq,
                const std::vector<int32_t> &prompt, const GenerationOptions &options,
                const TokenCallback &onToken, std::vector<int32_t> *generated,
                GenerationStats *stats, std::vector<float> *promptLogits = nullptr,
                std::vector<float> *decodeLogits = nullptr);

} // namespace moec

#endif // MOEC_RUNTIME_GENERATOR_H
