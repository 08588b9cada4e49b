//===- Server.h - moec-serve: an OpenAI-compatible HTTP server --*- C++ -*-===//
//
// The HTTP face of a plan: POST /v1/completions and /v1/chat/completions (JSON, or
// Server-Sent Events with "stream": true), GET /v1/models, /health, /metrics
// (Prometheus text) and a small chat page at /. Requests run on the Scheduler
// (continuous batching): concurrent requests share forward passes. Thinking models'
// replies carry `reasoning_content` apart from `content`, in the message and in each
// streamed delta, as DeepSeek's API does. Bad requests get an HTTP 4xx with an
// OpenAI-style JSON error body; the server keeps serving. A client that disconnects
// mid-stream frees its sequence at the next step.
//
// cpp-httplib (Debian's libcpp-httplib-dev) serves; nlohmann-json parses.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_SERVE_SERVER_H
#define MOEC_SERVE_SERVER_H

#include "moec/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace moec {
class Plan;
class Executor;
class Tokenizer;
class ChatTemplate;

struct ServerOptions {
  std::string host = "127.0.0.1"; ///< loopback unless told otherwise
  int port = 8080;                ///< 0: any free port (port() says which)
  int32_t slots = 16;             ///< sequences decoding at once
  int64_t contextTokens = 2048;   ///< KV-cache tokens per sequence
  std::string modelName;          ///< the id /v1/models reports
  int httpThreads = 64;           ///< connections served at once
};

class Server {
public:
  /// Borrows the executor, tokenizer and chat template (may be null: then
  /// /v1/chat/completions answers 400).
  static Status create(Executor &executor, const Tokenizer &tokenizer,
                       const ChatTemplate *chatTemplate, const ServerOptions &options,
                       std::unique_ptr<Server> *out);
  ~Server();
  /// Binds the address; port() is known after this.
  Status bind();
  /// Serves until stop() (blocks).
  Status serve();
  /// Makes serve() return (callable from another thread or a signal-watching thread).
  void stop();
  int port() const;

  struct Impl;

private:
  Server();
  std::unique_ptr<Impl> impl_;
};

} // namespace moec

#endif // MOEC_SERVE_SERVER_H
