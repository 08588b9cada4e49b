//===- Executor.h - Runs a plan's forward pass on a backend -----*- C++ -*-===//
//
// The executor owns a backend and the activation arena (one block sized from the
// plan) and runs the "forward" entry point: copy the token ids, positions and
// sequence ids into the arena, run every step in order, copy the logits out.
// Inputs are validated per call (token count, token ids, sequence ids, positions
// against the KV cache) before any kernel runs.
//
// Ownership: the executor borrows the Plan, which must outlive it. It owns its
// backend and arena. KV caches made by createCache() borrow the executor's backend
// and must be destroyed before the executor.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_EXECUTOR_H
#define MOEC_RUNTIME_EXECUTOR_H

#include "moec/runtime/Backend.h"
#include "moec/runtime/KvCache.h"
#include "moec/runtime/Plan.h"

namespace moec {

/// How to create an executor.
struct ExecutorOptions {
  std::string backend = "cpu"; ///< registered backend name
  int threads = 0;             ///< worker threads; <= 0 uses every core
};

/// A batch of tokens, each with its position and sequence.
struct TokenBatch {
  const int32_t *tokens = nullptr;    ///< token ids, [count]
  const int32_t *positions = nullptr; ///< position of each token in its sequence
  const int32_t *seqIds = nullptr;    ///< KV-cache sequence of each token
  int64_t count = 0;                  ///< tokens, 1..maxTokens()
};

/// Runs a plan's forward pass.
class Executor {
public:
  /// Creates the backend and the arena for `plan`.
  static Status create(const Plan &plan, const ExecutorOptions &options,
                       std::unique_ptr<Executor> *out);
  ~Executor();
  Executor(const Executor &) = delete;
  Executor &operator=(const Executor &) = delete;

  /// Allocates a KV cache for `numSequences` sequences of `capacity` tokens.
  Status createCache(int32_t numSequences, int64_t capacity, std::unique_ptr<KvCache> *out);

  /// Runs the forward pass on `batch`, appending its rows to `cache`, and writes the
  /// logits, [batch.count, vocab], to host memory `logits`.
  Status forward(const TokenBatch &batch, KvCache &cache, float *logits);

  /// The plan.
  const Plan &plan() const { return plan_; }
  /// The backend.
  Backend &backend() { return *backend_; }
  /// The largest batch one forward() call accepts.
  int64_t maxTokens() const { return plan_.maxTokens(); }
  /// The vocabulary size (columns of the logits).
  int64_t vocabSize() const { return plan_.config().vocab_size(); }

private:
  explicit Executor(const Plan &plan) : plan_(plan) {}
  Status validate(const TokenBatch &batch) const;

  const Plan &plan_;                 ///< borrowed
  std::unique_ptr<Backend> backend_; ///< owned
  DeviceBuffer arena_;               ///< activation arena on the backend
};

} // namespace moec

#endif // MOEC_RUNTIME_EXECUTOR_H
