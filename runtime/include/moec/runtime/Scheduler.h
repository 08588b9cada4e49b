//===- Scheduler.h - Continuous batching over one plan -----------*- C++ -*-===//
//
// Many sequences generate at once, sharing forward passes: each step gathers the
// next token of every sequence that is decoding and as much of the waiting prompts
// as the plan's max tokens allow, runs one forward over them (tokens carry their
// sequence id and position; the KV cache holds one sequence per slot), and samples
// each sequence's next token from its own row of logits with its own sampler. A
// request joins at the next step and leaves at the token that ends it, so requests
// come and go at token granularity (Orca's iteration-level scheduling, vLLM's
// continuous batching).
//
// Thread-safety: submit(), cancel() and stats() may be called from any thread;
// callbacks run on the scheduler's thread and must not block for long.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_SCHEDULER_H
#define MOEC_RUNTIME_SCHEDULER_H

#include "moec/runtime/Executor.h"
#include "moec/runtime/KvCache.h"
#include "moec/runtime/Sampler.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace moec {

/// One sequence to generate.
struct ScheduledRequest {
  std::vector<int32_t> prompt;     ///< at least one token
  int64_t maxNewTokens = 16;       ///< >= 1
  std::vector<int32_t> stopTokens; ///< generation ends after emitting one
  SamplingParams sampling;
  /// Also report the log-probabilities of this many most likely tokens per step.
  int32_t topLogprobs = 0;
  /// Called with each generated token and its log-probability under the sampling
  /// temperature (log_softmax(logits / T); T = 1 when greedy), and the `topLogprobs`
  /// most likely tokens with theirs (most likely first, ties by lower id). Returning
  /// false ends the sequence ("cancelled").
  std::function<bool(int32_t token, float logprob,
                     const std::vector<std::pair<int32_t, float>> &top)>
      onToken;
  /// Called once at the end: "stop" (a stop token), "length" (maxNewTokens),
  /// "cancelled", or "error" with the status.
  std::function<void(const std::string &finishReason, const Status &status)> onDone;
};

/// What the scheduler has done, for /metrics.
struct SchedulerStats {
  uint64_t submitted = 0, finished = 0;
  uint64_t promptTokens = 0, generatedTokens = 0;
  uint64_t forwardPasses = 0, batchedTokens = 0;
  double busySeconds = 0;      ///< time inside forward passes
  int64_t queued = 0, active = 0;
  int64_t kvTokensUsed = 0, kvTokensCapacity = 0;
};

class Scheduler {
public:
  /// Up to `slots` sequences at once, each of up to `contextTokens` tokens (prompt
  /// and generated). Starts the scheduling thread.
  static Status create(Executor &executor, int32_t slots, int64_t contextTokens,
                       std::unique_ptr<Scheduler> *out);
  ~Scheduler(); ///< stops the thread; unfinished requests end "cancelled"

  /// Queues a request; its callbacks report what happens. Returns an id for
  /// cancel(), or an error (prompt too long for the context, no tokens, ...).
  Status submit(ScheduledRequest request, uint64_t *id);
  /// Ends a request at its next step (a client went away).
  void cancel(uint64_t id);
  SchedulerStats stats() const;
  int64_t contextTokens() const { return contextTokens_; }

private:
  Scheduler(Executor &executor, std::unique_ptr<KvCache> cache, int32_t slots,
            int64_t contextTokens);
  struct Sequence;
  void loop();
  void step(std::vector<std::shared_ptr<Sequence>> &active);
  void finish(Sequence &s, const std::string &reason, const Status &status);

  Executor &executor_;
  std::unique_ptr<KvCache> cache_;
  int32_t slots_;
  int64_t contextTokens_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Sequence>> queue_;
  std::vector<std::shared_ptr<Sequence>> active_;
  std::vector<bool> slotUsed_;
  std::vector<uint64_t> cancelled_;
  uint64_t nextId_ = 1;
  SchedulerStats stats_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace moec

#endif // MOEC_RUNTIME_SCHEDULER_H
