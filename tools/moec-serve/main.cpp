//===- main.cpp - moec-serve: an OpenAI-compatible server for a plan ------===//
//
// Parses the command line, loads the plan and its tokenizer, and hands them to the
// server library (runtime/serve). SIGINT and SIGTERM stop it cleanly.
//
//===----------------------------------------------------------------------===//
#include "../common/ToolArgs.h"
#include "moec/cpu/WaitPolicy.h"
#include "moec/runtime/ChatTemplate.h"
#include "moec/runtime/Runtime.h"
#include "moec/runtime/Tokenizer.h"
#include "moec/serve/Server.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <pthread.h>
#include <sstream>
#include <string>
#include <thread>

namespace {

using moec::tools::parseInt;

const char *const kHelp = R"(usage: moec-serve PLAN [options]

Serves a plan over HTTP with OpenAI's API (runtime only: no compiler inside):
  POST /v1/completions        {"prompt": "...", "max_tokens": 16, ...}
  POST /v1/chat/completions   {"messages": [{"role": "user", "content": "..."}], ...}
                              (the plan's chat template; thinking models answer
                              with "reasoning_content" apart from "content")
  GET  /v1/models, /health, /metrics (Prometheus text), and / (a chat page)
Both completion endpoints take "stream": true (Server-Sent Events, ending with
"data: [DONE]"), temperature, top_p, top_k, max_tokens, stop, seed, n (1-16)
and logprobs (the sampled tokens' log-probabilities). Concurrent requests are
batched: they share forward passes, joining and leaving at token granularity.
A bad request gets HTTP 400 with an OpenAI-style JSON error; a client that
disconnects mid-stream frees its sequence.

options:
  --host ADDR         address to listen on (default 127.0.0.1, loopback only)
  --port N            port (default 8080; 0: any free port, printed at start)
  --port-file FILE    write the port there once listening (for scripts)
  --slots N           sequences generated at once (default 16)
  --ctx-size N        KV-cache tokens per sequence, prompt + reply (default 2048)
  --model-name NAME   the model id /v1/models reports (default: the plan's file name)
  --chat-template FILE  a Jinja chat template instead of the plan's
  --threads N         compute threads (default: the CPUs this process may use)
  --backend NAME      backend (default: cpu)
  --help              show this help

example:
  moec-serve poems.plan --port 8080 &
  curl -s localhost:8080/v1/chat/completions -H 'Content-Type: application/json' \
      -d '{"messages": [{"role": "user", "content": "春晓"}], "max_tokens": 64}'
)";

moec::Status readFile(const std::string &path, std::string *out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return moec::Status::error("cannot read %s: %s", path.c_str(), std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return moec::Status();
}

int fail(const moec::Status &status) {
  std::fprintf(stderr, "moec-serve: %s\n", status.message().c_str());
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  moec::cpu::boundOpenMpSpinning(argv);
  moec::installMappedFileFaultHandler();
  std::string plan, portFile, chatTemplatePath, backend = "cpu";
  moec::ServerOptions options;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    }
    if (arg.rfind("--", 0) != 0) {
      if (!plan.empty()) {
        std::fprintf(stderr, "moec-serve: unexpected argument \"%s\" (the plan is %s)\n",
                     arg.c_str(), plan.c_str());
        return 2;
      }
      plan = arg;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "moec-serve: %s needs a value\n", arg.c_str());
      return 2;
    }
    std::string value = argv[++i];
    int64_t n = 0;
    auto bad = [&](const char *what) {
      std::fprintf(stderr, "moec-serve: %s: \"%s\" is not %s\n", arg.c_str(), value.c_str(),
                   what);
      return 2;
    };
    if (arg == "--host")
      options.host = value;
    else if (arg == "--port") {
      if (!parseInt(value, 0, 65535, &n))
        return bad("a port (0-65535)");
      options.port = int(n);
    } else if (arg == "--port-file")
      portFile = value;
    else if (arg == "--slots") {
      if (!parseInt(value, 1, 4096, &n))
        return bad("a count (1-4096)");
      options.slots = int32_t(n);
    } else if (arg == "--ctx-size") {
      if (!parseInt(value, 2, 1 << 24, &n))
        return bad("a token count (2-16777216)");
      options.contextTokens = n;
    } else if (arg == "--model-name")
      options.modelName = value;
    else if (arg == "--chat-template")
      chatTemplatePath = value;
    else if (arg == "--threads") {
      if (!parseInt(value, 1, 4096, &n))
        return bad("a thread count (1-4096)");
      threads = int(n);
    } else if (arg == "--backend")
      backend = value;
    else {
      std::fprintf(stderr, "moec-serve: unknown option %s (see --help)\n", arg.c_str());
      return 2;
    }
  }
  if (plan.empty()) {
    std::fprintf(stderr, "moec-serve: no plan given (see --help)\n");
    return 2;
  }
  if (options.modelName.empty())
    options.modelName = plan.substr(plan.find_last_of('/') + 1);

  std::unique_ptr<moec::Plan> loaded;
  if (moec::Status s = moec::Plan::load(plan, &loaded); !s.ok())
    return fail(s);
  const moec::plan::Tokenizer *table = loaded->root().tokenizer();
  if (!table)
    return fail(moec::Status::error("%s has no tokenizer: its checkpoint had no "
                                    "tokenizer.json, and the server speaks text",
                                    plan.c_str()));
  std::unique_ptr<moec::Tokenizer> tokenizer;
  if (moec::Status s = moec::Tokenizer::create(*table, loaded->tokenBound(), &tokenizer); !s.ok())
    return fail(s.withPrefix(plan));
  std::string templateSource = tokenizer->chatTemplate();
  std::string templateName = plan;
  if (!chatTemplatePath.empty()) {
    if (moec::Status s = readFile(chatTemplatePath, &templateSource); !s.ok())
      return fail(s.withPrefix("--chat-template"));
    templateName = chatTemplatePath;
  }
  std::unique_ptr<moec::ChatTemplate> chatTemplate;
  if (!templateSource.empty())
    if (moec::Status s = moec::ChatTemplate::parse(templateSource, &chatTemplate); !s.ok())
      return fail(s.withPrefix(templateName));

  moec::ExecutorOptions executorOptions;
  executorOptions.backend = backend;
  executorOptions.threads = threads;
  std::unique_ptr<moec::Executor> executor;
  if (moec::Status s = moec::Executor::create(*loaded, executorOptions, &executor); !s.ok())
    return fail(s);

  // SIGINT/SIGTERM go to one thread that stops the server.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::unique_ptr<moec::Server> server;
  if (moec::Status s = moec::Server::create(*executor, *tokenizer, chatTemplate.get(), options,
                                            &server);
      !s.ok())
    return fail(s);
  if (moec::Status s = server->bind(); !s.ok())
    return fail(s);
  if (!portFile.empty()) {
    std::string tmp = portFile + ".tmp";
    std::FILE *f = std::fopen(tmp.c_str(), "w");
    if (!f || std::fprintf(f, "%d\n", server->port()) < 0 || std::fclose(f) != 0 ||
        std::rename(tmp.c_str(), portFile.c_str()) != 0)
      return fail(moec::Status::error("--port-file: cannot write %s", portFile.c_str()));
  }
  std::fprintf(stderr,
               "moec-serve: listening on http://%s:%d (model %s; %d sequences x %lld tokens; "
               "chat %s)\n",
               options.host.c_str(), server->port(), options.modelName.c_str(), options.slots,
               static_cast<long long>(options.contextTokens),
               chatTemplate ? "on" : "off (no template)");
  std::thread watcher([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "moec-serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
    server->stop();
  });
  moec::Status served = server->serve();
  // serve() returned: if it was not a signal, wake the watcher so it can end.
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  server.reset();
  if (!served.ok())
    return fail(served);
  return 0;
}
