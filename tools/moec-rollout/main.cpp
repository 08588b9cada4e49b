//===- main.cpp - moec-rollout: GRPO rollout groups from a plan -----------===//
//
// Parses the command line and hands the work to the rollout library
// (runtime/serve/RolloutJob): prompts in, one JSON line per sample out.
//
//===----------------------------------------------------------------------===//
#include "../common/ToolArgs.h"
#include "moec/cpu/WaitPolicy.h"
#include "moec/runtime/ChatTemplate.h"
#include "moec/runtime/Runtime.h"
#include "moec/runtime/Tokenizer.h"
#include "moec/serve/RolloutJob.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using moec::tools::parseFloat;
using moec::tools::parseInt;

const char *const kHelp = R"(usage: moec-rollout PLAN --prompts FILE -o FILE [options]

GRPO's rollout groups from a compiled plan (runtime only: no compiler inside).
For every prompt, the prompt is prefilled once; G samples continue it, sharing its
KV-cache rows (no copies), decoded together as one batch; each sample gets a
reward and the group-relative advantage A_i = (r_i - mean(r)) / (std(r) + 1e-4)
(population standard deviation).

input (--prompts, JSON lines):
  {"id": "q1", "prompt": "床前明月光，"}            text, BOS first (unless --no-bos)
  {"id": "q2", "messages": [{"role": "user", "content": "1+1?"}], "answer": "2"}
                                                    a chat, rendered with the plan's
                                                    chat template
output (-o, JSON lines, one per sample, written when all are done):
  {"prompt_id", "sample", "tokens", "text", "logprobs", "reward", "advantage",
   "finish_reason"}; logprobs are log_softmax(logits / temperature) of the sampled
  tokens (temperature 1 when greedy), as GRPO's ratio needs.

options:
  --group-size G        samples per prompt (default 4)
  --reward NAME         built-in reward: exact (the reply after any </think>,
                        trimmed, equals the prompt's "answer"), verse (the default
                        model's: 1 when prompt + completion is a regular poem, lines of
                        5- or 7-character clauses, each ended by ，。？！；and
                        each line by 。？！; else 0), or none (default: 0)
  --reward-cmd CMD      reward from a command instead: sh -c CMD gets the sample's
                        text on stdin and MOEC_PROMPT_ID, MOEC_PROMPT, MOEC_ANSWER
                        in its environment, and prints one number
  --max-new-tokens N    per sample (default 128)
  --temperature T       sampling temperature (default 1.0)
  --top-k K, --top-p P  sampling filters (default: none)
  --seed S              base seed (default 0); sample i of prompt g draws from
                        seed(S, g, i), so any sample can be reproduced alone
  --stop-token ID       also stop at ID (the tokenizer's EOS always stops)
  --no-share            prefill the prompt for every sample (the reference the
                        shared run equals, token for token; slower)
  --no-bos              do not put BOS before "prompt" texts
  --threads N           compute threads; --backend NAME (default cpu)
  --help                show this help

example:
  moec-rollout poems.plan --prompts prompts.jsonl --group-size 8 --reward verse \
      --temperature 0.8 --max-new-tokens 64 -o rollouts.jsonl
)";

} // namespace

int main(int argc, char **argv) {
  moec::cpu::boundOpenMpSpinning(argv);
  moec::installMappedFileFaultHandler();
  std::string plan, backend = "cpu";
  int threads = 0;
  moec::RolloutJobOptions job;
  job.rollout.maxNewTokens = 128;
  job.rollout.sampling.temperature = 1.0f;
  std::vector<int32_t> stops;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (arg == "--no-share") {
      job.rollout.share = false;
      continue;
    }
    if (arg == "--no-bos") {
      job.bos = false;
      continue;
    }
    if (arg.rfind("-", 0) != 0) {
      if (!plan.empty()) {
        std::fprintf(stderr, "moec-rollout: unexpected argument \"%s\"\n", arg.c_str());
        return 2;
      }
      plan = arg;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "moec-rollout: %s needs a value\n", arg.c_str());
      return 2;
    }
    std::string value = argv[++i];
    int64_t n = 0;
    auto bad = [&](const char *what) {
      std::fprintf(stderr, "moec-rollout: %s: \"%s\" is not %s\n", arg.c_str(), value.c_str(),
                   what);
      return 2;
    };
    if (arg == "--prompts")
      job.promptsPath = value;
    else if (arg == "-o" || arg == "--output")
      job.outputPath = value;
    else if (arg == "--group-size") {
      if (!parseInt(value, 1, 1024, &n))
        return bad("a group size (1-1024)");
      job.rollout.groupSize = int32_t(n);
    } else if (arg == "--reward") {
      if (value != "exact" && value != "verse" && value != "none")
        return bad("exact, verse or none");
      job.reward = value;
    } else if (arg == "--reward-cmd")
      job.rewardCommand = value;
    else if (arg == "--max-new-tokens") {
      if (!parseInt(value, 1, 1 << 24, &n))
        return bad("a token count >= 1");
      job.rollout.maxNewTokens = n;
    } else if (arg == "--temperature") {
      if (!parseFloat(value, &job.rollout.sampling.temperature))
        return bad("a number");
    } else if (arg == "--top-p") {
      if (!parseFloat(value, &job.rollout.sampling.topP))
        return bad("a number");
    } else if (arg == "--top-k") {
      if (!parseInt(value, 0, INT32_MAX, &n))
        return bad("a count >= 0");
      job.rollout.sampling.topK = n;
    } else if (arg == "--seed") {
      if (!parseInt(value, 0, INT64_MAX, &n))
        return bad("a seed >= 0");
      job.rollout.sampling.seed = uint64_t(n);
    } else if (arg == "--stop-token") {
      if (!parseInt(value, 0, INT32_MAX, &n))
        return bad("a token id");
      stops.push_back(int32_t(n));
    } else if (arg == "--threads") {
      if (!parseInt(value, 1, 4096, &n))
        return bad("a thread count");
      threads = int(n);
    } else if (arg == "--backend")
      backend = value;
    else {
      std::fprintf(stderr, "moec-rollout: unknown option %s (see --help)\n", arg.c_str());
      return 2;
    }
  }
  if (plan.empty() || job.promptsPath.empty() || job.outputPath.empty()) {
    std::fprintf(stderr, "moec-rollout: PLAN, --prompts FILE and -o FILE are required "
                         "(see --help)\n");
    return 2;
  }
  auto fail = [](const moec::Status &s) {
    std::fprintf(stderr, "moec-rollout: %s\n", s.message().c_str());
    return 1;
  };
  std::unique_ptr<moec::Plan> loaded;
  if (moec::Status s = moec::Plan::load(plan, &loaded); !s.ok())
    return fail(s);
  const moec::plan::Tokenizer *table = loaded->root().tokenizer();
  if (!table)
    return fail(moec::Status::error("%s has no tokenizer: its checkpoint had no tokenizer.json",
                                    plan.c_str()));
  std::unique_ptr<moec::Tokenizer> tokenizer;
  if (moec::Status s = moec::Tokenizer::create(*table, loaded->tokenBound(), &tokenizer); !s.ok())
    return fail(s.withPrefix(plan));
  std::unique_ptr<moec::ChatTemplate> chatTemplate;
  if (!tokenizer->chatTemplate().empty())
    if (moec::Status s = moec::ChatTemplate::parse(tokenizer->chatTemplate(), &chatTemplate);
        !s.ok())
      return fail(s.withPrefix(plan));
  for (int32_t t : stops)
    if (t >= loaded->tokenBound())
      return fail(moec::Status::error("--stop-token: %d is not a token id of this plan", t));
  job.rollout.stopTokens = stops;
  if (tokenizer->eosId() >= 0)
    job.rollout.stopTokens.push_back(tokenizer->eosId());
  if (moec::Status s = moec::Sampler::validate(job.rollout.sampling); !s.ok())
    return fail(s.withPrefix("sampling"));

  moec::ExecutorOptions executorOptions;
  executorOptions.backend = backend;
  executorOptions.threads = threads;
  std::unique_ptr<moec::Executor> executor;
  if (moec::Status s = moec::Executor::create(*loaded, executorOptions, &executor); !s.ok())
    return fail(s);
  moec::RolloutJobStats stats;
  if (moec::Status s = moec::runRolloutJob(*executor, *tokenizer, chatTemplate.get(), job, &stats);
      !s.ok())
    return fail(s);
  const moec::RolloutStats &r = stats.rollout;
  std::fprintf(stderr,
               "moec-rollout: %" PRId64 " prompts x %d samples: %" PRId64 " tokens generated in "
               "%.3f s (%.1f tokens/s); prefill %" PRId64 " tokens in %.3f s%s; decode %" PRId64
               " tokens in %" PRId64 " batched steps, %.3f s (%.1f tokens/s); mean reward %.4f; "
               "wrote %s\n",
               stats.prompts, job.rollout.groupSize, stats.generatedTokens, stats.seconds,
               stats.seconds > 0 ? stats.generatedTokens / stats.seconds : 0.0, r.prefillTokens,
               r.prefillSeconds, job.rollout.share ? " (once per group)" : " (once per sample)",
               r.decodeTokens, r.decodeSteps, r.decodeSeconds,
               r.decodeSeconds > 0 ? r.decodeTokens / r.decodeSeconds : 0.0, stats.meanReward,
               job.outputPath.c_str());
  return 0;
}
