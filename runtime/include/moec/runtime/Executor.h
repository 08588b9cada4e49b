//===- Executor.h - Runs a plan's entry points on a backend -----*- C++ -*-===//
//
// The executor owns a backend and the activation arena (one block sized from the
// plan). At creation it checks every step of the "prefill" and "decode" entry
// points against the backend (supportsStep) and prepares both into programs. Each
// forward() call validates its inputs (token count, token ids against the plan's
// token bound, sequence ids and positions against the KV cache) before any kernel
// runs, picks the entry point (decode when every token is the next token of a
// distinct sequence, prefill otherwise), copies the token ids, positions and
// sequence ids into the arena, executes the program with the KV cache's states
// bound, and copies the logits out.
//
// Ownership: the executor borrows the Plan, which must outlive it. It owns its
// backend, its programs and its arena. KV caches made by createCache() borrow the
// executor's backend and must be destroyed before the executor.
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
  int threads = 0;             ///< the backend's worker threads; <= 0: the CPUs it may run on
  int device = 0;              ///< which device of the backend's kind (cuda:N)
};

/// A batch of tokens, each with its position and sequence.
struct TokenBatch {
  const int32_t *tokens = nullptr;    ///< token ids, [count]
  const int32_t *positions = nullptr; ///< position of each token in its sequence
  const int32_t *seqIds = nullptr;    ///< KV-cache sequence of each token
  int64_t count = 0;                  ///< tokens, 1..maxTokens()
  /// Per token: whether the caller reads its row of the logits (null: every row).
  /// Rows not wanted hold unspecified values; a backend may skip their lm_head
  /// product (a prompt's logits are needed at its last token only).
  const uint8_t *wantLogits = nullptr;
};

/// Sees a step's first result right after the step ran: the step's index in
/// Plan.steps and its [rows, cols] f32 values on the host (rows = the batch's
/// tokens). Only steps whose first result is an f32 buffer are shown.
using StepObserver =
    std::function<Status(uint32_t step, const float *values, int64_t rows, int64_t cols)>;

/// Runs a plan's forward pass.
class Executor {
public:
  /// Creates the backend, checks that it can run every step of "prefill" and
  /// "decode", prepares both and allocates the arena.
  static Status create(const Plan &plan, const ExecutorOptions &options,
                       std::unique_ptr<Executor> *out);
  ~Executor();
  Executor(const Executor &) = delete;
  Executor &operator=(const Executor &) = delete;

  /// Allocates a KV cache (the plan's states) for `numSequences` sequences of
  /// `capacity` tokens.
  Status createCache(int32_t numSequences, int64_t capacity, std::unique_ptr<KvCache> *out);

  /// Runs the forward pass on `batch`, storing its rows in `cache`, and writes the
  /// logits, [batch.count, vocabSize()], to host memory `logits`.
  Status forward(const TokenBatch &batch, KvCache &cache, float *logits);
  /// As forward(), and shows `observer` every step's result (copied to the host):
  /// slower, for inspection (moec compile --accuracy-report).
  Status forward(const TokenBatch &batch, KvCache &cache, float *logits,
                 const StepObserver &observer);
  /// As forward(), but writes only the greedy choice (greedyToken, Sampler.h) from
  /// logits row `row` (a row the batch wants) to `*token`: the logits stay on the
  /// device, where a GPU backend chooses (Backend::argmaxRows).
  Status forwardGreedy(const TokenBatch &batch, KvCache &cache, int64_t row, int32_t *token);

  /// The plan.
  const Plan &plan() const { return plan_; }
  /// The backend.
  Backend &backend() { return *backend_; }
  /// The largest batch one forward() call accepts.
  int64_t maxTokens() const { return plan_.maxTokens(); }
  /// The vocabulary size: token ids are below it; columns of the logits.
  int64_t vocabSize() const { return plan_.tokenBound(); }
  /// The entry point the last successful forward() ran ("prefill" or "decode");
  /// nullptr before the first.
  const EntryPointInfo *lastEntry() const { return lastEntry_; }

private:
  /// An entry point ready to run: its prepared program and where its inputs and
  /// outputs sit in the arena.
  struct Prepared {
    const EntryPointInfo *entry = nullptr; ///< in the plan
    std::unique_ptr<Program> program;      ///< from the backend
    uint8_t *tokens = nullptr;             ///< arena address of the token ids
    uint8_t *positions = nullptr;          ///< arena address of the positions
    uint8_t *seqIds = nullptr;             ///< arena address of the sequence ids
    uint8_t *logits = nullptr;             ///< arena address of the logits
  };

  explicit Executor(const Plan &plan) : plan_(plan) {}
  Status validate(const TokenBatch &batch) const;
  Status checkSteps(const EntryPointInfo &entry) const;
  Status prepare(const EntryPointInfo &entry, Prepared *out);
  /// forward() up to the logits, left on the device; `*ran`: the entry point run.
  Status runSteps(const TokenBatch &batch, KvCache &cache, const StepObserver &observer,
                  Prepared **ran);
  /// True when every token of `batch` is the next token of a distinct sequence.
  bool isDecode(const TokenBatch &batch, const KvCache &cache) const;

  const Plan &plan_;                     ///< borrowed
  std::unique_ptr<Backend> backend_;     ///< owned
  DeviceBuffer arena_;                   ///< activation arena on the backend
  Prepared prefill_, decode_;            ///< the two entry points
  const EntryPointInfo *lastEntry_ = nullptr; ///< the entry the last forward() ran
  std::vector<int64_t> newLengths_;      ///< per call: sequence lengths after the batch
  std::vector<int32_t> logitsRows_;      ///< per call: the wanted rows (TokenBatch::wantLogits)
};

} // namespace moec

#endif // MOEC_RUNTIME_EXECUTOR_H
