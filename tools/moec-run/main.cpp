//===- main.cpp - moec-run: run a compiled plan ---------------------------===//
//
// Parses the command line and hands the work to the runtime library: load the plan,
// prefill the prompt, generate tokens, streaming them to stdout, and optionally dump
// the prompt's (and the decode steps') logits as .npy. Statistics go to stderr.
// With --dump-plan it prints the plan itself as JSON instead.
//
//===----------------------------------------------------------------------===//
#include "../common/ToolArgs.h"
#include "moec/cpu/WaitPolicy.h"
#include "moec/runtime/MemoryPlan.h"
#include "moec/runtime/PlanJson.h"
#include "moec/runtime/Runtime.h"
#include "moec/runtime/AtomicFile.h"
#include "moec/runtime/Chat.h"
#include "moec/runtime/Tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace {

const char *const kHelp = R"(usage: moec-run PLAN --tokens IDS [options]
       moec-run PLAN --prompt TEXT [options]
       moec-run PLAN --chat [--prompt TEXT] [options]
       moec-run PLAN --tokenize TEXT
       moec-run PLAN --detokenize IDS
       moec-run PLAN --dump-plan
       moec-run PLAN --memory-plan[=json]
       moec-run PLAN --verify

Runs a plan compiled by `moec compile` on a backend (the CPU by default):
prefills the prompt with the plan's "prefill" entry point, then generates
tokens one at a time with its "decode" entry point, streaming their ids to
stdout on one line. A prompt shorter than the prefill entry point's
min_tokens (the batch size from which the compiler's MLA cost model found
prefill's form cheaper; --dump-plan shows it) runs the decode entry point.
Statistics (prefill and decode tokens/s, peak memory, KV-cache bytes per
token) go to stderr.

input:
  --tokens IDS          prompt token ids, comma-separated (e.g. 3,14,15); a
                        warning tells when positions pass the model's
                        context (YaRN factor x original_max_position_embeddings)
  --prompt TEXT         prompt text, encoded by the plan's tokenizer (compiled
                        from the checkpoint's tokenizer.json); the generated
                        text streams to stdout as it is decoded, UTF-8 whole
                        across token boundaries. The tokenizer's BOS token
                        goes first (DeepSeek models are trained with it)
                        unless --no-bos or the text already begins with it.
                        Generation stops at the tokenizer's EOS token.
  --no-bos              with --prompt: do not put BOS first

chat (the plan's chat template from tokenizer_config.json, rendered as
transformers' apply_chat_template renders it):
  --chat                talk to the model: each line of stdin is your turn ("> "
                        on a terminal; /reset starts over, /exit or end of input
                        quits); the reply streams as it is generated. The KV
                        cache is kept between turns: only the part of the
                        re-rendered conversation the cache does not hold runs.
                        With --prompt TEXT: that one turn, then exit.
  --system TEXT         a system message first
  --reasoning MODE      the thinking of reasoning models (<think> ... </think>):
                        show (default): on a terminal dimmed under a "thinking"
                        header, the answer after it; elsewhere between <think>
                        and </think> lines. hide: left out (stderr says how many
                        tokens it took). separate: the answer on stdout, the
                        thinking on stderr or in --reasoning-file FILE
  --reasoning-file FILE with --reasoning separate: write the thinking there
  --chat-template FILE  render with this Jinja template instead of the plan's
  --chat-log FILE       at the end, write the conversation as JSON:
                        {"messages": [{"role": ..., "content": ...}, ...]}
                        (replies as generated, thinking included)
  --ctx-size N          KV-cache tokens for the conversation (default 4096)

text (needs a plan compiled from a checkpoint with tokenizer.json):
  --tokenize TEXT       print TEXT's token ids on one line, space-separated, and
                        exit (no BOS added; added tokens in TEXT are recognised)
  --detokenize IDS      print the text of comma-separated token ids and exit

inspection:
  --verify              read every weight file in full and check it against the
                        plan's checksums (every load already checks the plan's
                        metadata checksum and each weight file's size and first
                        64 KiB); alone, it verifies and exits
  --dump-plan           print the whole plan as JSON to stdout and exit: entry
                        points, steps with their attributes, buffers, KV-cache
                        states, weights (names, dtypes, shapes, block shapes,
                        placement; never their bytes), provenance and the model
                        metadata. Needs no --tokens.
  --memory-plan[=json]  print the compiler's arena plan and exit: every
                        activation buffer's arena offset, bytes (for the plan's
                        max tokens) and live steps in each entry point ("in" =
                        before the first step, "out" = after the last), the
                        arena's size (the peak) and the bytes saved against
                        giving each buffer memory of its own; as a table, or
                        as JSON. Needs no --tokens.

output:
  --dump-logits FILE    write the logits at every prompt position as a float32
                        .npy array of shape [prompt tokens, vocab]. Without
                        --max-new-tokens nothing is generated.
  --dump-decode-logits FILE
                        with --max-new-tokens N >= 1: write the prompt's logits
                        followed by those of every decode step as a float32
                        .npy array of shape [prompt tokens + N - 1, vocab]
                        (fewer rows if a stop token ends generation early).
                        Row T-1+i (T prompt tokens) is the distribution that
                        chose generated token i; the first T rows are what
                        --dump-logits writes.
  --max-new-tokens N    generate up to N tokens (default 16 unless --dump-logits)
  --stop-token ID       stop after generating ID (repeatable; the stop token is
                        printed; ID must be below the plan's vocabulary size)

sampling (default: greedy, the most likely token):
  --temperature T       sample from softmax(logits / T); T <= 0 is greedy
  --top-k K             sample among the K most likely tokens only
  --top-p P             sample among the fewest tokens whose probability
                        reaches P, 0 < P <= 1
  --seed S              random seed; the same seed gives the same tokens

execution:
  --threads N           worker threads (default: the CPUs this process may run
                        on, as sched_getaffinity reports them, e.g. under taskset
                        or a cgroup cpuset; OMP_NUM_THREADS overrides it).
                        Idle workers spin briefly (GOMP_SPINCOUNT=500), then
                        sleep, so decode keeps its pace when other processes load
                        the CPUs; OMP_WAIT_POLICY or GOMP_SPINCOUNT, when set,
                        decide instead
  --backend NAME        backend to run on (default: cpu). The CPU kernels use the
                        best instruction set this CPU has (avx512-amx,
                        avx512-vnni, avx512, avx2-vnni, avx2, scalar);
                        MOEC_SIMD=LEVEL caps it
  --device DEV          cpu (default), cuda or cuda:N: an NVIDIA GPU through the
                        CUDA driver (libcuda.so.1, opened at run time), running
                        the kernels `moec compile --target=sm_90a,sm_80` put into
                        the plan; a plan without kernels for the GPU's
                        architecture is refused
  --help                show this help

examples:
  moec-run model.plan --dump-plan | python3 -m json.tool | less
  moec-run model.plan --tokens 3,14,15 --dump-logits logits.npy
  moec-run model.plan --tokens 3,14,15 --max-new-tokens 32
  moec-run poems.plan --prompt "床前明月光，" --max-new-tokens 48
  moec-run poems.plan --tokenize "床前明月光，"
  moec-run poems.plan --chat --system "你是诗人。" --temperature 0.8 --seed 1
  moec-run r1.plan --chat --prompt "1+1?" --reasoning separate --reasoning-file t.txt
  moec-run model.plan --tokens 3,14,15 --max-new-tokens 16 \
      --dump-decode-logits all-logits.npy
  moec-run model.plan --tokens 3,14,15 --max-new-tokens 64 --temperature 0.7 \
      --top-p 0.9 --seed 1 --stop-token 2 --threads 8
)";

/// Command-line settings.
struct Options {
  std::string plan;                  ///< plan path
  std::vector<int32_t> tokens;       ///< the prompt
  std::string dumpLogits;            ///< .npy path, or empty
  std::string dumpDecodeLogits;      ///< .npy path (prompt + decode logits), or empty
  int64_t maxNewTokens = -1;         ///< -1: not given
  std::vector<int32_t> stopTokens;   ///< --stop-token values
  moec::SamplingParams sampling;     ///< --temperature, --top-k, --top-p, --seed
  int threads = 0;                   ///< --threads
  std::string backend = "cpu";       ///< --backend, or --device's kind
  int device = 0;                    ///< --device cuda:N
  bool dumpPlan = false;             ///< --dump-plan
  std::string memoryPlan;            ///< --memory-plan ("text" or "json"), or empty
  bool verify = false;               ///< --verify
  bool hasPrompt = false;            ///< --prompt given
  std::string prompt;                ///< --prompt
  bool noBos = false;                ///< --no-bos
  bool hasTokenize = false;          ///< --tokenize given
  std::string tokenize;              ///< --tokenize
  bool hasDetokenize = false;        ///< --detokenize given
  std::vector<int32_t> detokenize;   ///< --detokenize
  bool chat = false;                 ///< --chat
  std::string system;                ///< --system
  std::string reasoning = "show";    ///< --reasoning
  std::string reasoningFile;         ///< --reasoning-file
  std::string chatTemplate;          ///< --chat-template (a path)
  std::string chatLog;               ///< --chat-log
  int64_t ctxSize = 4096;            ///< --ctx-size
};

using moec::tools::parseFloat;
using moec::tools::parseInt;

/// A comma-separated list of token ids.
moec::Status parseIds(const char *flag, const std::string &value, std::vector<int32_t> *ids) {
  ids->clear();
  size_t start = 0;
  for (;;) {
    size_t comma = value.find(',', start);
    std::string item = value.substr(start, comma == std::string::npos ? comma : comma - start);
    int64_t number = 0;
    if (!parseInt(item, 0, INT32_MAX, &number))
      return moec::Status::error("%s: \"%s\" is not a comma-separated list of token ids (bad "
                                 "item \"%s\")",
                                 flag, value.c_str(), item.c_str());
    ids->push_back(int32_t(number));
    if (comma == std::string::npos)
      return moec::Status();
    start = comma + 1;
  }
}

/// Parses argv; on error returns a message for "moec-run: MESSAGE".
moec::Status parseArgs(int argc, char **argv, Options *options, bool *help) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return moec::Status();
    }
    if (arg.rfind("--", 0) != 0) {
      if (!options->plan.empty())
        return moec::Status::error("unexpected argument \"%s\" (the plan is %s)", arg.c_str(),
                                   options->plan.c_str());
      options->plan = arg;
      continue;
    }
    if (arg == "--dump-plan") {
      options->dumpPlan = true;
      continue;
    }
    if (arg == "--verify") {
      options->verify = true;
      continue;
    }
    if (arg == "--no-bos") {
      options->noBos = true;
      continue;
    }
    if (arg == "--chat") {
      options->chat = true;
      continue;
    }
    if (arg == "--memory-plan" || arg == "--memory-plan=json") {
      options->memoryPlan = arg == "--memory-plan" ? "text" : "json";
      continue;
    }
    if (i + 1 >= argc)
      return moec::Status::error("%s needs a value", arg.c_str());
    std::string value = argv[++i];
    int64_t number = 0;
    if (arg == "--tokens") {
      MOEC_RETURN_IF_ERROR(parseIds("--tokens", value, &options->tokens));
    } else if (arg == "--prompt") {
      options->hasPrompt = true;
      options->prompt = value;
    } else if (arg == "--system") {
      options->system = value;
    } else if (arg == "--reasoning") {
      if (value != "show" && value != "hide" && value != "separate")
        return moec::Status::error("--reasoning: \"%s\" is not show, hide or separate",
                                   value.c_str());
      options->reasoning = value;
    } else if (arg == "--reasoning-file") {
      options->reasoningFile = value;
    } else if (arg == "--chat-log") {
      options->chatLog = value;
    } else if (arg == "--chat-template") {
      options->chatTemplate = value;
    } else if (arg == "--ctx-size") {
      if (!parseInt(value, 1, int64_t(1) << 24, &number))
        return moec::Status::error("--ctx-size: \"%s\" is not a token count (1..16777216)",
                                   value.c_str());
      options->ctxSize = number;
    } else if (arg == "--tokenize") {
      options->hasTokenize = true;
      options->tokenize = value;
    } else if (arg == "--detokenize") {
      options->hasDetokenize = true;
      MOEC_RETURN_IF_ERROR(parseIds("--detokenize", value, &options->detokenize));    } else if (arg == "--dump-logits") {
      options->dumpLogits = value;
    } else if (arg == "--dump-decode-logits") {
      options->dumpDecodeLogits = value;
    } else if (arg == "--max-new-tokens") {
      if (!parseInt(value, 0, INT32_MAX, &number))
        return moec::Status::error("--max-new-tokens: \"%s\" is not a count >= 0", value.c_str());
      options->maxNewTokens = number;
    } else if (arg == "--stop-token") {
      if (!parseInt(value, 0, INT32_MAX, &number))
        return moec::Status::error("--stop-token: \"%s\" is not a token id", value.c_str());
      options->stopTokens.push_back(int32_t(number));
    } else if (arg == "--temperature") {
      if (!parseFloat(value, &options->sampling.temperature))
        return moec::Status::error("--temperature: \"%s\" is not a number", value.c_str());
    } else if (arg == "--top-k") {
      if (!parseInt(value, 0, INT32_MAX, &number))
        return moec::Status::error("--top-k: \"%s\" is not a count >= 0", value.c_str());
      options->sampling.topK = number;
    } else if (arg == "--top-p") {
      if (!parseFloat(value, &options->sampling.topP))
        return moec::Status::error("--top-p: \"%s\" is not a number", value.c_str());
    } else if (arg == "--seed") {
      if (!parseInt(value, 0, INT64_MAX, &number))
        return moec::Status::error("--seed: \"%s\" is not a number >= 0", value.c_str());
      options->sampling.seed = uint64_t(number);
    } else if (arg == "--threads") {
      if (!parseInt(value, 1, 4096, &number))
        return moec::Status::error("--threads: \"%s\" is not a thread count (1..4096)",
                                   value.c_str());
      options->threads = int(number);
    } else if (arg == "--backend") {
      options->backend = value;
    } else if (arg == "--device") {
      // cpu, cuda or cuda:N: a backend and the device of its kind.
      std::string name = value, index;
      if (size_t colon = value.find(':'); colon != std::string::npos) {
        name = value.substr(0, colon);
        index = value.substr(colon + 1);
      }
      if (name != "cpu" && name != "cuda")
        return moec::Status::error("--device: \"%s\" is not cpu, cuda or cuda:N",
                                   value.c_str());
      if (!index.empty() && (name != "cuda" || !parseInt(index, 0, 1023, &number)))
        return moec::Status::error("--device: \"%s\" is not cpu, cuda or cuda:N",
                                   value.c_str());
      options->backend = name;
      options->device = index.empty() ? 0 : int(number);
    } else {
      return moec::Status::error("unknown option %s (see --help)", arg.c_str());
    }
  }
  if (options->plan.empty())
    return moec::Status::error("no plan given (see --help)");
  if (options->hasTokenize + options->hasDetokenize + options->hasPrompt +
          !options->tokens.empty() > 1)
    return moec::Status::error("give one of --tokens, --prompt, --tokenize and --detokenize");
  if (options->dumpPlan || !options->memoryPlan.empty() || options->hasTokenize ||
      options->hasDetokenize || (options->verify && options->tokens.empty() && !options->hasPrompt))
    return moec::Status();
  if (options->chat) {
    if (!options->tokens.empty() || options->hasTokenize || options->hasDetokenize ||
        !options->dumpLogits.empty() || !options->dumpDecodeLogits.empty())
      return moec::Status::error("--chat takes text: --tokens, --tokenize, --detokenize and "
                                 "the logit dumps do not go with it");
    if (!options->reasoningFile.empty() && options->reasoning != "separate")
      return moec::Status::error("--reasoning-file needs --reasoning separate");
    if (options->maxNewTokens < 0)
      options->maxNewTokens = 512;
    moec::Status sampling = moec::Sampler::validate(options->sampling);
    return sampling.ok() ? sampling : sampling.withPrefix("sampling");
  }
  if (!options->system.empty() || !options->reasoningFile.empty() ||
      !options->chatTemplate.empty() || !options->chatLog.empty())
    return moec::Status::error("--system, --reasoning-file, --chat-template and --chat-log go "
                               "with --chat");
  if (options->tokens.empty() && !options->hasPrompt)
    return moec::Status::error("--tokens, --prompt or --chat is required (see --help)");
  if (!options->dumpDecodeLogits.empty() && options->maxNewTokens < 1)
    return moec::Status::error("--dump-decode-logits needs --max-new-tokens N with N >= 1");
  if (options->maxNewTokens < 0)
    options->maxNewTokens = options->dumpLogits.empty() ? 16 : 0;
  moec::Status sampling = moec::Sampler::validate(options->sampling);
  return sampling.ok() ? sampling : sampling.withPrefix("sampling");
}

double rate(int64_t tokens, double seconds) { return seconds > 0 ? double(tokens) / seconds : 0; }

/// The number of positions the model was made for, or 0 when the plan does not say.
/// Plan format 2 records no max_position_embeddings (its ModelConfig metadata lacks
/// it), but a YaRN-scaled rope step records the context the scaling was configured for:
/// factor x original_max_position_embeddings, which is config.json's
/// max_position_embeddings in every DeepSeek release (4096 x 40 = 163840 for V2/V3).
/// Plans with plain RoPE have no bound here.
int64_t maxPositions(const moec::Plan &plan) {
  int64_t bound = 0;
  const auto *steps = plan.root().steps();
  for (flatbuffers::uoffset_t i = 0; steps && i < steps->size(); ++i) {
    const moec::plan::Step *step = steps->Get(i);
    if (step->kind() != moec::plan::StepKind::Rope)
      continue;
    const moec::plan::RopeAttrs *attrs = step->attrs_as_RopeAttrs();
    const moec::plan::YarnParams *yarn = attrs ? attrs->yarn() : nullptr;
    if (!yarn)
      continue;
    double positions = double(yarn->factor()) * double(yarn->original_max_position_embeddings());
    if (!(positions >= 1 && positions < 1e15))
      continue;
    int64_t stepBound = int64_t(std::llround(positions));
    bound = bound == 0 ? stepBound : std::min(bound, stepBound);
  }
  return bound;
}

/// Warns once on stderr when a position at or past `bound` (when known) is run.
class PositionWarning {
public:
  explicit PositionWarning(int64_t bound) : bound_(bound) {}
  void check(int64_t position) {
    if (warned_ || bound_ <= 0 || position < bound_)
      return;
    warned_ = true;
    std::fprintf(stderr,
                 "moec-run: warning: this run reaches position %" PRId64
                 ", past the model's %" PRId64
                 " positions (YaRN factor x original_max_position_embeddings): tokens from "
                 "position %" PRId64 " on are beyond the context the model was made for\n",
                 position, bound_, bound_);
  }

private:
  int64_t bound_;
  bool warned_ = false;
};

/// The plan's tokenizer, or an error saying the plan has none.
moec::Status planTokenizer(const moec::Plan &plan, const std::string &path,
                           std::unique_ptr<moec::Tokenizer> *out) {
  const moec::plan::Tokenizer *table = plan.root().tokenizer();
  if (!table)
    return moec::Status::error("%s has no tokenizer: its checkpoint had no tokenizer.json "
                               "(compile one that has it, or give token ids with --tokens)",
                               path.c_str());
  moec::Status status = moec::Tokenizer::create(*table, plan.tokenBound(), out);
  return status.ok() ? status : status.withPrefix(path);
}

/// Writes `text` to stdout now.
void emit(const std::string &text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

/// Prints a reply's parts as --reasoning asks.
class ReplyPrinter {
public:
  ReplyPrinter(const Options &options) : mode_(options.reasoning), tty_(isatty(STDOUT_FILENO)) {}

  void operator()(moec::ReplyPart part, const std::string &text) {
    if (part == moec::ReplyPart::Thinking) {
      thinkingSeen_ = true;
      if (mode_ == "hide")
        return;
      if (mode_ == "separate") {
        if (toFile_)
          thinking_ += text;
        else
          std::fwrite(text.data(), 1, text.size(), stderr);
        return;
      }
      if (!inThinking_) {
        emit(tty_ ? "\x1b[2m\x1b[1mthinking\x1b[22m\x1b[2m\n" : "<think>\n");
        inThinking_ = true;
      }
      emit(text);
      return;
    }
    closeThinking();
    emit(text);
  }

  /// Ends a turn's output.
  void endTurn() {
    closeThinking();
    emit("\n");
    if (mode_ == "separate" && !toFile_ && thinkingSeen_)
      std::fputc('\n', stderr);
  }

  void writeThinkingTo(bool file) { toFile_ = file; }
  const std::string &thinking() const { return thinking_; }
  bool thinkingSeen() const { return thinkingSeen_; }

private:
  void closeThinking() {
    if (!inThinking_)
      return;
    inThinking_ = false;
    emit(tty_ ? "\x1b[0m\n\n" : "\n</think>\n");
  }

  std::string mode_;
  bool tty_;
  bool toFile_ = false;
  bool inThinking_ = false;
  bool thinkingSeen_ = false;
  std::string thinking_;
};

/// `text` as a JSON string (UTF-8 kept; quotes, backslashes and control bytes escaped).
std::string jsonString(const std::string &text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buffer[8];
      std::snprintf(buffer, sizeof(buffer), "\\u%04x", c);
      out += buffer;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

/// moec-run --chat: a conversation on the plan's chat template.
moec::Status runChat(const Options &options, const moec::Plan &plan,
                     const moec::Tokenizer &tokenizer) {
  std::string source = tokenizer.chatTemplate(), templateName = options.plan;
  if (!options.chatTemplate.empty()) {
    FILE *f = std::fopen(options.chatTemplate.c_str(), "rb");
    if (!f)
      return moec::Status::error("--chat-template: cannot read %s: %s",
                                 options.chatTemplate.c_str(), std::strerror(errno));
    source.clear();
    char buffer[4096];
    for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), f)) > 0;)
      source.append(buffer, n);
    std::fclose(f);
    templateName = options.chatTemplate;
  } else if (source.empty()) {
    return moec::Status::error("%s has no chat template (its tokenizer_config.json had none); "
                               "give one with --chat-template FILE",
                               options.plan.c_str());
  }
  std::unique_ptr<moec::ChatTemplate> chatTemplate;
  MOEC_RETURN_IF_ERROR(moec::ChatTemplate::parse(source, &chatTemplate).withPrefix(templateName));

  moec::ExecutorOptions executorOptions;
  executorOptions.backend = options.backend;
  executorOptions.device = options.device;
  executorOptions.threads = options.threads;
  std::unique_ptr<moec::Executor> executor;
  MOEC_RETURN_IF_ERROR(moec::Executor::create(plan, executorOptions, &executor));
  std::unique_ptr<moec::KvCache> cache;
  MOEC_RETURN_IF_ERROR(executor->createCache(1, options.ctxSize, &cache));

  moec::ChatRenderOptions render;
  render.bosToken = std::string(tokenizer.tokenBytes(tokenizer.bosId()));
  render.eosToken = std::string(tokenizer.tokenBytes(tokenizer.eosId()));
  auto newSession = [&] {
    auto session = std::make_unique<moec::ChatSession>(*executor, *cache, 0, tokenizer,
                                                       *chatTemplate, render);
    if (!options.system.empty())
      session->add({"system", options.system});
    return session;
  };
  std::unique_ptr<moec::ChatSession> session = newSession();
  moec::GenerationOptions generation;
  generation.maxNewTokens = options.maxNewTokens;
  generation.stopTokens = options.stopTokens;
  generation.sampling = options.sampling;
  ReplyPrinter printer(options);
  printer.writeThinkingTo(!options.reasoningFile.empty());
  bool interactive = isatty(STDIN_FILENO) && !options.hasPrompt;
  int64_t prefilled = 0, decoded = 0, thinkingTokens = 0, turns = 0;
  double prefillSeconds = 0, decodeSeconds = 0;
  auto turn = [&](const std::string &text) -> moec::Status {
    moec::ChatSession::TurnStats stats;
    moec::Status status = session->turn(
        text, generation,
        [&](moec::ReplyPart part, const std::string &piece) { printer(part, piece); }, &stats);
    printer.endTurn();
    MOEC_RETURN_IF_ERROR(status);
    ++turns;
    thinkingTokens += stats.thinkingTokens;
    prefilled += stats.generation.promptTokens;
    decoded += stats.generation.decodedTokens;
    prefillSeconds += stats.generation.prefillSeconds;
    decodeSeconds += stats.generation.decodeSeconds;
    if (stats.finishReason == "length")
      std::fprintf(stderr, "moec-run: the reply reached --max-new-tokens %" PRId64 "\n",
                   generation.maxNewTokens);
    return moec::Status();
  };
  if (options.hasPrompt) {
    MOEC_RETURN_IF_ERROR(turn(options.prompt));
  } else {
    std::string line;
    for (;;) {
      if (interactive) {
        emit("> ");
      }
      line.clear();
      int c;
      while ((c = std::fgetc(stdin)) != EOF && c != '\n')
        line += char(c);
      if (c == EOF && line.empty())
        break;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
        line.pop_back();
      if (line.empty())
        continue;
      if (line == "/exit" || line == "/quit")
        break;
      if (line == "/reset") {
        session = newSession();
        emit(interactive ? "(new conversation)\n" : "");
        continue;
      }
      moec::Status status = turn(line);
      if (!status.ok()) // one bad turn (a full context) does not end the conversation
        std::fprintf(stderr, "moec-run: %s\n", status.message().c_str());
      if (c == EOF)
        break;
    }
    if (interactive)
      emit("\n");
  }
  if (!options.chatLog.empty()) {
    std::string log = "{\"messages\": [";
    const auto &messages = session->messages();
    for (size_t i = 0; i < messages.size(); ++i)
      log += std::string(i ? ",\n  " : "\n  ") + "{\"role\": " + jsonString(messages[i].role) +
             ", \"content\": " + jsonString(messages[i].content) + "}";
    log += "\n]}\n";
    MOEC_RETURN_IF_ERROR(moec::writeFileAtomically(options.chatLog, [&](moec::OutputFile &file) {
      return file.write(log.data(), log.size());
    }));
  }
  if (!options.reasoningFile.empty())
    MOEC_RETURN_IF_ERROR(moec::writeFileAtomically(
        options.reasoningFile, [&](moec::OutputFile &file) {
          return file.write(printer.thinking().data(), printer.thinking().size());
        }));
  if (options.reasoning == "hide" && printer.thinkingSeen())
    std::fprintf(stderr, "moec-run: the thinking (%" PRId64 " tokens) was hidden; "
                 "--reasoning show shows it\n", thinkingTokens);
  std::fprintf(stderr, "chat: %" PRId64 " turn(s); prefill %" PRId64 " tokens in %.3f s "
               "(%.1f tokens/s), decode %" PRId64 " tokens in %.3f s (%.1f tokens/s)\n",
               turns, prefilled, prefillSeconds, rate(prefilled, prefillSeconds), decoded,
               decodeSeconds, rate(decoded, decodeSeconds));
  return moec::Status();
}

moec::Status run(Options options) {
  std::unique_ptr<moec::Plan> plan;
  MOEC_RETURN_IF_ERROR(moec::Plan::load(options.plan, &plan));
  std::unique_ptr<moec::Tokenizer> tokenizer;
  if (options.hasTokenize || options.hasDetokenize || options.hasPrompt || options.chat)
    MOEC_RETURN_IF_ERROR(planTokenizer(*plan, options.plan, &tokenizer));
  if (options.chat)
    return runChat(options, *plan, *tokenizer);
  if (options.hasTokenize) {
    std::vector<int32_t> ids = tokenizer->encode(options.tokenize);
    std::string line;
    for (size_t i = 0; i < ids.size(); ++i)
      line += (i ? " " : "") + std::to_string(ids[i]);
    emit(line + "\n");
    return moec::Status();
  }
  if (options.hasDetokenize) {
    std::string text;
    MOEC_RETURN_IF_ERROR(tokenizer->decode(options.detokenize, false, &text)
                             .withPrefix("--detokenize"));
    emit(text + "\n");
    return moec::Status();
  }
  if (options.hasPrompt) {
    options.tokens = tokenizer->encodePrompt(options.prompt, !options.noBos);
    if (options.tokens.empty())
      return moec::Status::error("--prompt: the text encodes to no tokens");
    if (tokenizer->eosId() >= 0 &&
        std::find(options.stopTokens.begin(), options.stopTokens.end(), tokenizer->eosId()) ==
            options.stopTokens.end())
      options.stopTokens.push_back(tokenizer->eosId());
  }
  if (options.verify) {
    bool tty = isatty(STDERR_FILENO);
    uint64_t total = 0;
    MOEC_RETURN_IF_ERROR(plan->verifyChecksums([&](uint64_t done, uint64_t all) {
      total = all;
      if (tty)
        std::fprintf(stderr, "\rmoec-run: verifying weights: %3d%%", int(100.0 * done / all));
    }));
    std::fprintf(stderr, "%smoec-run: %s: metadata and %.1f MB of weights match their "
                 "checksums\n", tty && total ? "\r" : "", options.plan.c_str(), total / 1e6);
    if (options.tokens.empty() && !options.hasPrompt && !options.hasTokenize &&
        !options.hasDetokenize && !options.dumpPlan && options.memoryPlan.empty())
      return moec::Status();
  }
  if (!options.memoryPlan.empty()) {
    moec::MemoryPlan memory = moec::describeMemoryPlan(*plan);
    std::string text = options.memoryPlan == "json" ? moec::memoryPlanJson(memory)
                                                    : moec::memoryPlanText(memory);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return std::fflush(stdout) == 0 ? moec::Status()
                                    : moec::Status::error("--memory-plan: cannot write stdout");
  }
  if (options.dumpPlan) {
    std::string json;
    MOEC_RETURN_IF_ERROR(moec::planToJson(*plan, &json));
    std::fwrite(json.data(), 1, json.size(), stdout);
    return std::fflush(stdout) == 0 ? moec::Status()
                                    : moec::Status::error("--dump-plan: cannot write stdout");
  }
  // Stop tokens are ids of the plan's vocabulary, like the prompt's.
  for (int32_t stop : options.stopTokens)
    if (stop >= plan->tokenBound())
      return moec::Status::error("--stop-token: %d is not a token id of this plan (the "
                                 "vocabulary has %" PRId64 " tokens)",
                                 stop, plan->tokenBound());
  moec::ExecutorOptions executorOptions;
  executorOptions.backend = options.backend;
  executorOptions.device = options.device;
  executorOptions.threads = options.threads;
  std::unique_ptr<moec::Executor> executor;
  MOEC_RETURN_IF_ERROR(moec::Executor::create(*plan, executorOptions, &executor));
  // Room for the prompt and every generated token but the last (never fed back).
  int64_t capacity = int64_t(options.tokens.size()) + std::max<int64_t>(options.maxNewTokens, 1);
  std::unique_ptr<moec::KvCache> cache;
  MOEC_RETURN_IF_ERROR(executor->createCache(1, capacity, &cache));

  moec::GenerationOptions generation;
  generation.maxNewTokens = options.maxNewTokens;
  generation.stopTokens = options.stopTokens;
  generation.sampling = options.sampling;
  moec::GenerationStats stats;
  bool wantPromptLogits = !options.dumpLogits.empty() || !options.dumpDecodeLogits.empty();
  std::vector<float> promptLogits, decodeLogits;
  // Positions 0..T-1 hold the prompt; generated token i is fed back at position T + i
  // unless it is the last one (a stop token or the N-th).
  int64_t promptSize = int64_t(options.tokens.size()), generatedCount = 0;
  PositionWarning positionWarning(maxPositions(*plan));
  positionWarning.check(promptSize - 1);
  bool first = true;
  std::unique_ptr<moec::TextStream> text;
  if (tokenizer)
    text = std::make_unique<moec::TextStream>(*tokenizer);
  auto onToken = [&](int32_t token) {
    bool stop = std::find(options.stopTokens.begin(), options.stopTokens.end(), token) !=
                options.stopTokens.end();
    if (text) {
      if (!stop) // the stop token (EOS) ends the text, it is not part of it
        emit(text->push(token));
    } else {
      std::printf(first ? "%d" : " %d", token);
      std::fflush(stdout);
    }
    first = false;
    bool last = ++generatedCount >= options.maxNewTokens || stop;
    if (!last)
      positionWarning.check(promptSize + generatedCount - 1);
    return true;
  };
  moec::Status status =
      moec::generate(*executor, *cache, 0, options.tokens, generation, onToken, nullptr, &stats,
                     wantPromptLogits ? &promptLogits : nullptr,
                     options.dumpDecodeLogits.empty() ? nullptr : &decodeLogits);
  if (text)
    emit(text->finish() + "\n");
  else if (!first) {
    std::printf("\n");
    std::fflush(stdout);
  }
  MOEC_RETURN_IF_ERROR(status);
  int64_t vocab = executor->vocabSize(), promptTokens = int64_t(options.tokens.size());
  if (!options.dumpLogits.empty())
    MOEC_RETURN_IF_ERROR(
        moec::writeNpyF32(options.dumpLogits, {promptTokens, vocab}, promptLogits.data()));
  if (!options.dumpDecodeLogits.empty()) {
    promptLogits.insert(promptLogits.end(), decodeLogits.begin(), decodeLogits.end());
    MOEC_RETURN_IF_ERROR(moec::writeNpyF32(options.dumpDecodeLogits,
                                           {promptTokens + stats.decodedTokens, vocab},
                                           promptLogits.data()));
  }

  struct rusage usage;
  ::getrusage(RUSAGE_SELF, &usage);
  std::fprintf(stderr, "prefill: %" PRId64 " tokens in %.3f s (%.1f tokens/s)\n",
               stats.promptTokens, stats.prefillSeconds,
               rate(stats.promptTokens, stats.prefillSeconds));
  std::fprintf(stderr, "decode: %" PRId64 " tokens in %.3f s (%.1f tokens/s)\n",
               stats.decodedTokens, stats.decodeSeconds,
               rate(stats.decodedTokens, stats.decodeSeconds));
  std::fprintf(stderr, "peak memory: %.1f MiB (max RSS)\n", double(usage.ru_maxrss) / 1024.0);
  std::fprintf(stderr, "kv cache: %" PRIu64 " bytes per token\n", cache->bytesPerToken());
  return moec::Status();
}

} // namespace

int main(int argc, char **argv) {
  // Idle OpenMP workers spin briefly, then sleep (may re-execute moec-run once).
  moec::cpu::boundOpenMpSpinning(argv);
  // A plan truncated while mapped becomes one clear line, not a bare SIGBUS.
  moec::installMappedFileFaultHandler();
  Options options;
  bool help = false;
  moec::Status parsed = parseArgs(argc, argv, &options, &help);
  if (help) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!parsed.ok()) {
    std::fprintf(stderr, "moec-run: %s\n", parsed.message().c_str());
    return 2;
  }
  moec::Status status = run(options);
  if (!status.ok()) {
    std::fprintf(stderr, "moec-run: %s\n", status.message().c_str());
    return 1;
  }
  return 0;
}
