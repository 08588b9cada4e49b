//===- RolloutJob.h - moec-rollout: prompts in, GRPO groups out ---*- C++ -*-===//
//
// Reads prompts (JSON lines: {"id": ..., "prompt": "text"} or {"messages": [...]},
// with an optional "answer"), produces a rollout group per prompt (rolloutGroup: one
// prefill, G samples sharing its KV rows, decoded as one batch), rewards each sample
// and writes one JSON line per sample:
//   {"prompt_id", "sample", "tokens", "text", "logprobs", "reward", "advantage",
//    "finish_reason"}
// Rewards: "exact" (the answer after any </think>, trimmed, equals "answer"),
// "verse" (the default model's: 1 when the poem, prompt and completion together, has
// lines of clauses of 5 or 7 Han characters each, all alike, each clause ended by
// ，。？！ or ；, each line by 。？ or ！, else 0), or a command (--reward-cmd): run with
// `sh -c`, the completion's text on stdin, MOEC_PROMPT_ID, MOEC_PROMPT and
// MOEC_ANSWER in the environment; it prints one number.
// Advantages: A_i = (r_i - mean(r)) / (std(r) + 1e-4) within each group.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_SERVE_ROLLOUTJOB_H
#define MOEC_SERVE_ROLLOUTJOB_H

#include "moec/runtime/Rollout.h"

#include <string>

namespace moec {
class Tokenizer;
class ChatTemplate;

struct RolloutJobOptions {
  std::string promptsPath;     ///< JSON lines
  std::string outputPath;      ///< JSON lines, written atomically at the end
  std::string reward = "none"; ///< "none", "exact", "verse" (ignored with rewardCommand)
  std::string rewardCommand;   ///< a shell command, or empty
  bool bos = true;             ///< put BOS before a "prompt" (not before rendered chats)
  RolloutOptions rollout;
};

struct RolloutJobStats {
  int64_t prompts = 0, samples = 0, generatedTokens = 0;
  double seconds = 0, meanReward = 0;
  RolloutStats rollout;
};

/// 1 or 0 by the verse rule above.
double verseReward(const std::string &poem);

Status runRolloutJob(Executor &executor, const Tokenizer &tokenizer,
                     const ChatTemplate *chatTemplate, const RolloutJobOptions &options,
                     RolloutJobStats *stats);

} // namespace moec

#endif // MOEC_SERVE_ROLLOUTJOB_H
