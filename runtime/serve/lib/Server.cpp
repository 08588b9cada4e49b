//===- Server.cpp - OpenAI-compatible endpoints over the Scheduler --------===//
#include "moec/serve/Server.h"

#include "ChatPage.h"

#include "moec/runtime/Chat.h"
#include "moec/runtime/ChatTemplate.h"
#include "moec/runtime/Executor.h"
#include "moec/runtime/Scheduler.h"
#include "moec/runtime/Tokenizer.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>

namespace moec {

using nlohmann::json;

namespace {

/// A request the server refuses: HTTP status and OpenAI-style error body.
struct BadRequest {
  int status;
  std::string message;
  std::string param;
  std::string code;
};

[[noreturn]] void refuse(const std::string &message, const std::string &param = "",
                         const std::string &code = "", int status = 400) {
  throw BadRequest{status, message, param, code};
}

json errorBody(const BadRequest &e) {
  json err = {{"message", e.message},
              {"type", e.status == 404 ? "not_found_error" : "invalid_request_error"}};
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return {{"error", err}};
}

int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string randomId(const char *prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t base = std::random_device{}();
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%s-%016" PRIx64 "%04" PRIx64, prefix, base,
                counter.fetch_add(1) & 0xffff);
  return buffer;
}

/// Length of the longest prefix of `s` that ends on a UTF-8 character boundary.
size_t utf8Boundary(const std::string &s, size_t upTo) {
  size_t k = std::min(upTo, s.size());
  while (k > 0 && k < s.size() && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80)
    --k;
  return k;
}

/// Stop strings over streamed text: text is released only once no stop string can
/// still begin inside it; a match ends the text before it.
class StopFilter {
public:
  explicit StopFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {
    for (const std::string &s : stops_)
      hold_ = std::max(hold_, s.size() - 1);
  }
  /// Adds text; returns what may be released now. Sets stopped() at a match.
  std::string push(const std::string &piece) {
    if (stopped_)
      return {};
    text_ += piece;
    size_t from = emitted_ > hold_ ? emitted_ - hold_ : 0;
    size_t match = std::string::npos;
    for (const std::string &s : stops_) {
      size_t at = text_.find(s, from);
      if (at != std::string::npos && at < match)
        match = at;
    }
    size_t until;
    if (match != std::string::npos) {
      stopped_ = true;
      until = match;
    } else {
      until = utf8Boundary(text_, text_.size() > hold_ ? text_.size() - hold_ : 0);
    }
    if (until <= emitted_)
      return {};
    std::string out = text_.substr(emitted_, until - emitted_);
    emitted_ = until;
    return out;
  }
  /// The held-back rest, at the end.
  std::string finish() {
    if (stopped_ || emitted_ >= text_.size())
      return {};
    std::string out = text_.substr(emitted_);
    emitted_ = text_.size();
    return out;
  }
  bool stopped() const { return stopped_; }

private:
  std::vector<std::string> stops_;
  size_t hold_ = 0;
  std::string text_;
  size_t emitted_ = 0;
  bool stopped_ = false;
};

/// What one choice (one of n samples) has produced, shared between the scheduler's
/// callbacks and the HTTP thread that answers.
struct Choice {
  int index = 0;
  uint64_t requestId = 0;
  std::mutex m;
  std::condition_variable cv;
  // Filled by the scheduler's thread:
  std::string content, reasoning;            ///< all of it so far
  size_t sentContent = 0, sentReasoning = 0; ///< streamed so far (HTTP thread)
  size_t sentTokens = 0;                     ///< tokens whose logprobs were streamed
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<std::vector<std::pair<int32_t, float>>> topLogprobs; ///< per token
  bool done = false;
  std::string finishReason;
  std::string error;
  // Text processing (scheduler's thread only):
  std::unique_ptr<ReasoningSplitter> splitter; ///< chat: thinking apart from the answer
  std::unique_ptr<TextStream> plain;           ///< completions: all text as it comes
  std::unique_ptr<StopFilter> stops;
  /// The text of `token` (and what it completes) to `sink`.
  void text(int32_t token, const ReasoningSplitter::Sink &sink) {
    if (splitter)
      splitter->push(token, sink);
    else
      sink(ReplyPart::Answer, plain->push(token));
  }
  void finishText(const ReasoningSplitter::Sink &sink) {
    if (splitter)
      splitter->finish(sink);
    else
      sink(ReplyPart::Answer, plain->finish());
  }
};

/// Fields common to both endpoints.
struct Params {
  int64_t maxTokens = 16;
  SamplingParams sampling;
  bool seeded = false;
  int n = 1;
  bool stream = false;
  std::vector<std::string> stop;
  bool logprobs = false;
  int topLogprobs = 0; ///< alternatives per token (0-20)
};

double number(const json &body, const char *key, double fallback, double lo, double hi) {
  if (!body.contains(key) || body[key].is_null())
    return fallback;
  if (!body[key].is_number())
    refuse(std::string("'") + key + "' must be a number", key);
  double v = body[key].get<double>();
  if (!(v >= lo && v <= hi))
    refuse(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
               std::to_string(hi),
           key);
  return v;
}

int64_t integer(const json &body, const char *key, int64_t fallback, int64_t lo, int64_t hi) {
  if (!body.contains(key) || body[key].is_null())
    return fallback;
  if (!body[key].is_number_integer())
    refuse(std::string("'") + key + "' must be an integer", key);
  int64_t v = body[key].get<int64_t>();
  if (v < lo || v > hi)
    refuse(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
               std::to_string(hi),
           key);
  return v;
}

Params readParams(const json &body, bool chat) {
  Params p;
  const char *maxKey = chat && body.contains("max_completion_tokens") ? "max_completion_tokens"
                                                                       : "max_tokens";
  p.maxTokens = integer(body, maxKey, chat ? 512 : 16, 1, int64_t(1) << 24);
  p.sampling.temperature = float(number(body, "temperature", 1.0, 0, 100));
  p.sampling.topP = float(number(body, "top_p", 1.0, 1e-9, 1));
  p.sampling.topK = integer(body, "top_k", 0, 0, int64_t(1) << 31);
  if (body.contains("seed") && !body["seed"].is_null()) {
    p.sampling.seed = uint64_t(integer(body, "seed", 0, INT64_MIN, INT64_MAX));
    p.seeded = true;
  }
  p.n = int(integer(body, "n", 1, 1, 16));
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean())
      refuse("'stream' must be a boolean", "stream");
    p.stream = body["stream"].get<bool>();
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json &s = body["stop"];
    if (s.is_string())
      p.stop.push_back(s.get<std::string>());
    else if (s.is_array() && s.size() <= 4)
      for (const json &x : s) {
        if (!x.is_string())
          refuse("'stop' must be a string or a list of up to 4 strings", "stop");
        p.stop.push_back(x.get<std::string>());
      }
    else
      refuse("'stop' must be a string or a list of up to 4 strings", "stop");
    for (const std::string &x : p.stop)
      if (x.empty())
        refuse("'stop' strings must not be empty", "stop");
  }
  if (body.contains("logprobs") && !body["logprobs"].is_null()) {
    const json &l = body["logprobs"];
    if (chat ? !l.is_boolean() : !l.is_number_integer())
      refuse(chat ? "'logprobs' must be a boolean" : "'logprobs' must be an integer",
             "logprobs");
    if (chat) {
      p.logprobs = l.get<bool>();
    } else {
      int64_t k = integer(body, "logprobs", 0, 0, 20);
      p.logprobs = true; // 0 still returns the sampled tokens' logprobs
      p.topLogprobs = int(k);
    }
  }
  if (chat && body.contains("top_logprobs") && !body["top_logprobs"].is_null()) {
    p.topLogprobs = int(integer(body, "top_logprobs", 0, 0, 20));
    if (!p.logprobs)
      refuse("'top_logprobs' needs 'logprobs': true", "top_logprobs");
  }
  return p;
}

/// The text of a chat message's content: a string, or a list of {"type": "text"} parts.
std::string messageText(const json &content, size_t index) {
  if (content.is_string())
    return content.get<std::string>();
  if (content.is_null())
    return "";
  if (content.is_array()) {
    std::string text;
    for (const json &part : content) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
          !part["text"].is_string())
        refuse("messages[" + std::to_string(index) + "].content: only text parts are supported",
               "messages");
      text += part["text"].get<std::string>();
    }
    return text;
  }
  refuse("messages[" + std::to_string(index) + "].content must be a string or a list of text "
         "parts",
         "messages");
}

} // namespace

struct Server::Impl {
  const Tokenizer *tokenizer = nullptr;
  const ChatTemplate *chatTemplate = nullptr;
  ServerOptions options;
  std::unique_ptr<Scheduler> scheduler;
  httplib::Server http;
  int boundPort = -1;
  std::mutex metricsMutex;
  std::map<std::string, uint64_t> requests; ///< by endpoint and status

  void count(const std::string &endpoint, int status) {
    std::lock_guard<std::mutex> lock(metricsMutex);
    ++requests[endpoint + "\",code=\"" + std::to_string(status)];
  }

  /// Queues n choices of `prompt`.
  /// `chat`: the reply's thinking is split from its answer (starting inside the
  /// thinking when `thinking`); otherwise the text is the completion, tags and all.
  std::vector<std::shared_ptr<Choice>> start(const std::vector<int32_t> &prompt,
                                             const Params &p, bool chat, bool thinking) {
    std::vector<std::shared_ptr<Choice>> choices;
    uint64_t seed = p.seeded ? p.sampling.seed : std::random_device{}();
    for (int i = 0; i < p.n; ++i) {
      auto c = std::make_shared<Choice>();
      c->index = i;
      if (chat)
        c->splitter = std::make_unique<ReasoningSplitter>(*tokenizer, thinking);
      else
        c->plain = std::make_unique<TextStream>(*tokenizer);
      c->stops = std::make_unique<StopFilter>(p.stop);
      ScheduledRequest r;
      r.prompt = prompt;
      r.maxNewTokens = p.maxTokens;
      if (tokenizer->eosId() >= 0)
        r.stopTokens.push_back(tokenizer->eosId());
      r.sampling = p.sampling;
      r.sampling.seed = seed + uint64_t(i);
      r.topLogprobs = p.topLogprobs;
      std::weak_ptr<Choice> weak = c;
      int32_t eos = tokenizer->eosId();
      r.onToken = [weak, eos](int32_t token, float logprob,
                              const std::vector<std::pair<int32_t, float>> &top) {
        auto c = weak.lock();
        if (!c)
          return false;
        std::lock_guard<std::mutex> lock(c->m);
        c->tokens.push_back(token);
        c->logprobs.push_back(logprob);
        c->topLogprobs.push_back(top);
        if (token != eos)
          c->text(token, [&](ReplyPart part, const std::string &text) {
            if (part == ReplyPart::Thinking)
              c->reasoning += text;
            else
              c->content += c->stops->push(text);
          });
        c->cv.notify_all();
        return !c->stops->stopped();
      };
      r.onDone = [weak](const std::string &reason, const Status &status) {
        auto c = weak.lock();
        if (!c)
          return;
        std::lock_guard<std::mutex> lock(c->m);
        c->finishText([&](ReplyPart part, const std::string &text) {
          if (part == ReplyPart::Thinking)
            c->reasoning += text;
          else
            c->content += c->stops->push(text);
        });
        c->content += c->stops->finish();
        c->finishReason = c->stops->stopped() ? "stop" : reason;
        if (!status.ok())
          c->error = status.message();
        c->done = true;
        c->cv.notify_all();
      };
      Status s = scheduler->submit(std::move(r), &c->requestId);
      if (!s.ok()) {
        for (auto &started : choices)
          scheduler->cancel(started->requestId);
        refuse(s.message(), "", "context_length_exceeded");
      }
      choices.push_back(c);
    }
    return choices;
  }

  void cancel(const std::vector<std::shared_ptr<Choice>> &choices) {
    for (auto &c : choices)
      scheduler->cancel(c->requestId);
  }

  /// Waits for every choice to finish.
  void waitAll(const std::vector<std::shared_ptr<Choice>> &choices) {
    for (auto &c : choices) {
      std::unique_lock<std::mutex> lock(c->m);
      c->cv.wait(lock, [&] { return c->done; });
    }
  }

  /// Logprobs of tokens [from, to) of `c` (all of them by default), in the endpoint's shape.
  json logprobsJson(Choice &c, bool chat, size_t from = 0, size_t to = SIZE_MAX) {
    to = std::min(to, c.tokens.size());
    if (chat) {
      json content = json::array();
      auto entry = [&](int32_t id, float logprob) {
        std::string_view bytes = tokenizer->tokenBytes(id);
        json raw = json::array();
        for (unsigned char b : bytes)
          raw.push_back(int(b));
        return json{{"token", sanitizeUtf8(bytes)}, {"logprob", logprob}, {"bytes", raw}};
      };
      for (size_t k = from; k < to; ++k) {
        json item = entry(c.tokens[k], c.logprobs[k]);
        json alternatives = json::array();
        for (const auto &[id, lp] : c.topLogprobs[k])
          alternatives.push_back(entry(id, lp));
        item["top_logprobs"] = alternatives;
        content.push_back(item);
      }
      return {{"content", content}};
    }
    json tokens = json::array(), lps = json::array(), tops = json::array();
    bool anyTop = false;
    for (size_t k = from; k < to; ++k) {
      tokens.push_back(sanitizeUtf8(tokenizer->tokenBytes(c.tokens[k])));
      lps.push_back(c.logprobs[k]);
      json alternatives = json::object();
      for (const auto &[id, lp] : c.topLogprobs[k]) {
        alternatives[sanitizeUtf8(tokenizer->tokenBytes(id))] = lp;
        anyTop = true;
      }
      tops.push_back(alternatives);
    }
    return {{"tokens", tokens},
            {"token_logprobs", lps},
            {"top_logprobs", anyTop ? tops : json(nullptr)}};
  }

  /// Answers a completion request (chat or not), as JSON or as an SSE stream.
  void answer(httplib::Response &res, const std::string &endpoint,
              std::vector<std::shared_ptr<Choice>> choices, const Params &p,
              int64_t promptTokens, bool chat) {
    std::string id = randomId(chat ? "chatcmpl" : "cmpl");
    int64_t created = nowSeconds();
    std::string object = chat ? "chat.completion" : "text_completion";
    if (!p.stream) {
      waitAll(choices);
      json out = {{"id", id}, {"object", object}, {"created", created},
                  {"model", options.modelName}};
      json list = json::array();
      int64_t completion = 0;
      for (auto &c : choices) {
        std::lock_guard<std::mutex> lock(c->m);
        if (!c->error.empty()) {
          res.status = 500;
          res.set_content(errorBody({500, c->error, "", ""}).dump(), "application/json");
          count(endpoint, 500);
          return;
        }
        completion += int64_t(c->tokens.size());
        json item = {{"index", c->index}, {"finish_reason", c->finishReason}};
        if (chat) {
          json message = {{"role", "assistant"}, {"content", c->content}};
          if (!c->reasoning.empty())
            message["reasoning_content"] = c->reasoning;
          item["message"] = message;
        } else {
          item["text"] = c->content;
        }
        item["logprobs"] = p.logprobs ? logprobsJson(*c, chat) : json(nullptr);
        list.push_back(item);
      }
      out["choices"] = list;
      out["usage"] = {{"prompt_tokens", promptTokens},
                      {"completion_tokens", completion},
                      {"total_tokens", promptTokens + completion}};
      res.set_content(out.dump(), "application/json");
      count(endpoint, 200);
      return;
    }
    count(endpoint, 200);
    auto state = std::make_shared<std::vector<std::shared_ptr<Choice>>>(std::move(choices));
    auto sentRole = std::make_shared<std::vector<bool>>(state->size(), false);
    auto finished = std::make_shared<std::vector<bool>>(state->size(), false);
    std::string chunkObject = chat ? "chat.completion.chunk" : "text_completion";
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, state, sentRole, finished, id, created, chunkObject, chat, promptTokens,
         wantLogprobs = p.logprobs](size_t, httplib::DataSink &sink) {
          auto send = [&](const json &j) {
            std::string line = "data: " + j.dump() + "\n\n";
            return sink.write(line.data(), line.size());
          };
          // Wait for something new on any choice (or the client going away).
          bool allDone = true;
          for (size_t i = 0; i < state->size(); ++i) {
            Choice &c = *(*state)[i];
            std::unique_lock<std::mutex> lock(c.m);
            if ((*finished)[i])
              continue;
            c.cv.wait_for(lock, std::chrono::milliseconds(50), [&] {
              return c.done || c.sentContent < c.content.size() ||
                     c.sentReasoning < c.reasoning.size();
            });
            json delta = json::object();
            if (chat && !(*sentRole)[i]) {
              delta["role"] = "assistant";
              delta["content"] = "";
              (*sentRole)[i] = true;
            }
            std::string reasoning = c.reasoning.substr(c.sentReasoning);
            std::string content = c.content.substr(c.sentContent);
            c.sentReasoning = c.reasoning.size();
            c.sentContent = c.content.size();
            bool doneNow = c.done;
            std::string reason = c.finishReason, error = c.error;
            json logprobs = nullptr;
            if (wantLogprobs && c.sentTokens < c.tokens.size()) {
              logprobs = logprobsJson(c, chat, c.sentTokens);
              c.sentTokens = c.tokens.size();
            }
            lock.unlock();
            if (!reasoning.empty() || !content.empty() || delta.contains("role") ||
                !logprobs.is_null()) {
              json item = {{"index", c.index}, {"finish_reason", nullptr},
                           {"logprobs", logprobs}};
              if (chat) {
                if (!reasoning.empty())
                  delta["reasoning_content"] = reasoning;
                if (!content.empty())
                  delta["content"] = content;
                item["delta"] = delta;
              } else {
                item["text"] = content;
              }
              if (!send({{"id", id}, {"object", chunkObject}, {"created", created},
                         {"model", options.modelName}, {"choices", json::array({item})}}))
                return false;
            }
            if (doneNow) {
              (*finished)[i] = true;
              if (!error.empty()) {
                send(errorBody({500, error, "", ""}));
              } else {
                json item = {{"index", c.index}, {"finish_reason", reason}};
                if (chat)
                  item["delta"] = json::object();
                else {
                  item["text"] = "";
                  item["logprobs"] = nullptr;
                }
                if (!send({{"id", id}, {"object", chunkObject}, {"created", created},
                           {"model", options.modelName}, {"choices", json::array({item})}}))
                  return false;
              }
            } else {
              allDone = false;
            }
          }
          if (!sink.is_writable())
            return false;
          if (allDone) {
            int64_t completion = 0;
            for (auto &c : *state) {
              std::lock_guard<std::mutex> lock(c->m);
              completion += int64_t(c->tokens.size());
            }
            send({{"id", id}, {"object", chunkObject}, {"created", created},
                  {"model", options.modelName}, {"choices", json::array()},
                  {"usage", {{"prompt_tokens", promptTokens},
                             {"completion_tokens", completion},
                             {"total_tokens", promptTokens + completion}}}});
            std::string end = "data: [DONE]\n\n";
            sink.write(end.data(), end.size());
            sink.done();
          }
          return true;
        },
        [this, state](bool) {
          // The stream ended: finished, or the client went away. Either way the
          // sequences are freed (cancel is a no-op for finished ones).
          cancel(*state);
        });
  }

  void completions(const httplib::Request &req, httplib::Response &res) {
    json body = parseBody(req);
    if (!body.contains("prompt"))
      refuse("'prompt' is required", "prompt");
    std::string prompt;
    if (body["prompt"].is_string())
      prompt = body["prompt"].get<std::string>();
    else if (body["prompt"].is_array() && body["prompt"].size() == 1 &&
             body["prompt"][0].is_string())
      prompt = body["prompt"][0].get<std::string>();
    else
      refuse("'prompt' must be a string (one prompt per request)", "prompt");
    Params p = readParams(body, false);
    std::vector<int32_t> ids = tokenizer->encodePrompt(prompt, /*bos=*/true);
    auto choices = start(ids, p, /*chat=*/false, false);
    answer(res, "/v1/completions", std::move(choices), p, int64_t(ids.size()), false);
  }

  void chatCompletions(const httplib::Request &req, httplib::Response &res) {
    json body = parseBody(req);
    if (!chatTemplate)
      refuse("this model has no chat template (its tokenizer_config.json had none); use "
             "/v1/completions");
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
      refuse("'messages' must be a non-empty list", "messages");
    std::vector<ChatMessage> messages;
    for (size_t i = 0; i < body["messages"].size(); ++i) {
      const json &m = body["messages"][i];
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        refuse("messages[" + std::to_string(i) + "] needs a 'role'", "messages");
      std::string role = m["role"].get<std::string>();
      if (role == "developer")
        role = "system";
      if (role != "system" && role != "user" && role != "assistant" && role != "tool")
        refuse("messages[" + std::to_string(i) + "].role '" + role + "' is not system, user, "
               "assistant or tool",
               "messages");
      messages.push_back({role, messageText(m.contains("content") ? m["content"] : json(), i)});
    }
    Params p = readParams(body, true);
    ChatRenderOptions render;
    render.bosToken = std::string(tokenizer->tokenBytes(tokenizer->bosId()));
    render.eosToken = std::string(tokenizer->tokenBytes(tokenizer->eosId()));
    std::string text;
    Status rendered = chatTemplate->render(messages, render, &text);
    if (!rendered.ok())
      refuse(rendered.message(), "messages");
    std::vector<int32_t> ids = tokenizer->encode(text);
    auto choices = start(ids, p, /*chat=*/true, endsInThinking(text));
    answer(res, "/v1/chat/completions", std::move(choices), p, int64_t(ids.size()), true);
  }

  static json parseBody(const httplib::Request &req) {
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded())
      refuse("the request body is not valid JSON");
    if (!body.is_object())
      refuse("the request body must be a JSON object");
    return body;
  }

  std::string metrics() {
    SchedulerStats s = scheduler->stats();
    std::string out;
    auto line = [&](const char *name, const char *type, const char *help, double value,
                    const std::string &labels = "") {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
      char buffer[64];
      std::snprintf(buffer, sizeof(buffer), "%.17g", value);
      out += std::string(name) + labels + " " + buffer + "\n";
    };
    {
      std::lock_guard<std::mutex> lock(metricsMutex);
      out += "# HELP moec_requests_total HTTP requests answered, by endpoint and status\n"
             "# TYPE moec_requests_total counter\n";
      for (const auto &[key, n] : requests)
        out += "moec_requests_total{endpoint=\"" + key + "\"} " + std::to_string(n) + "\n";
    }
    line("moec_prompt_tokens_total", "counter", "prompt tokens submitted", double(s.promptTokens));
    line("moec_generated_tokens_total", "counter", "tokens generated", double(s.generatedTokens));
    line("moec_forward_passes_total", "counter", "batched forward passes", double(s.forwardPasses));
    line("moec_batched_tokens_total", "counter", "tokens run through forward passes",
         double(s.batchedTokens));
    line("moec_busy_seconds_total", "counter", "seconds spent in forward passes", s.busySeconds);
    line("moec_generated_tokens_per_busy_second", "gauge",
         "generated tokens per second of forward passes, since the start",
         s.busySeconds > 0 ? double(s.generatedTokens) / s.busySeconds : 0);
    line("moec_queue_depth", "gauge", "requests waiting for a sequence slot", double(s.queued));
    line("moec_active_sequences", "gauge", "sequences being generated", double(s.active));
    line("moec_kv_cache_tokens_used", "gauge", "KV-cache rows holding tokens",
         double(s.kvTokensUsed));
    line("moec_kv_cache_tokens_capacity", "gauge", "KV-cache rows in all",
         double(s.kvTokensCapacity));
    return out;
  }

  template <typename F> auto guarded(const std::string &endpoint, F handler) {
    return [this, endpoint, handler](const httplib::Request &req, httplib::Response &res) {
      try {
        handler(req, res);
      } catch (const BadRequest &e) {
        res.status = e.status;
        res.set_content(errorBody(e).dump(), "application/json");
        count(endpoint, e.status);
      } catch (const std::exception &e) {
        res.status = 500;
        res.set_content(errorBody({500, std::string("internal error: ") + e.what(), "", ""}).dump(),
                        "application/json");
        count(endpoint, 500);
      }
    };
  }

  void routes() {
    http.Post("/v1/completions", guarded("/v1/completions", [this](const auto &q, auto &r) {
                completions(q, r);
              }));
    http.Post("/v1/chat/completions",
              guarded("/v1/chat/completions",
                      [this](const auto &q, auto &r) { chatCompletions(q, r); }));
    http.Get("/v1/models", [this](const httplib::Request &, httplib::Response &res) {
      json model = {{"id", options.modelName}, {"object", "model"}, {"created", nowSeconds()},
                    {"owned_by", "moec"}};
      res.set_content(json{{"object", "list"}, {"data", json::array({model})}}.dump(),
                      "application/json");
      count("/v1/models", 200);
    });
    http.Get("/health", [this](const httplib::Request &, httplib::Response &res) {
      res.set_content(R"({"status":"ok"})", "application/json");
      count("/health", 200);
    });
    http.Get("/metrics", [this](const httplib::Request &, httplib::Response &res) {
      res.set_content(metrics(), "text/plain; version=0.0.4");
    });
    http.Get("/", [this](const httplib::Request &, httplib::Response &res) {
      res.set_content(kChatPage, "text/html; charset=utf-8");
      count("/", 200);
    });
    http.set_error_handler([](const httplib::Request &req, httplib::Response &res) {
      if (!res.body.empty())
        return;
      BadRequest e{res.status,
                   res.status == 404 ? "no such endpoint: " + req.method + " " + req.path
                                     : "the request was refused (HTTP " +
                                           std::to_string(res.status) + ")",
                   "", ""};
      res.set_content(errorBody(e).dump(), "application/json");
    });
  }
};

Server::Server() : impl_(new Impl) {}
Server::~Server() {
  impl_->http.stop();
}

Status Server::create(Executor &executor, const Tokenizer &tokenizer,
                      const ChatTemplate *chatTemplate, const ServerOptions &options,
                      std::unique_ptr<Server> *out) {
  std::unique_ptr<Server> s(new Server());
  Impl &impl = *s->impl_;
  impl.tokenizer = &tokenizer;
  impl.chatTemplate = chatTemplate;
  impl.options = options;
  MOEC_RETURN_IF_ERROR(
      Scheduler::create(executor, options.slots, options.contextTokens, &impl.scheduler));
  int threads = std::max(4, options.httpThreads);
  impl.http.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  impl.http.set_payload_max_length(8 << 20);
  impl.http.set_keep_alive_max_count(1000);
  impl.routes();
  *out = std::move(s);
  return Status();
}

Status Server::bind() {
  Impl &impl = *impl_;
  if (impl.options.port == 0) {
    impl.boundPort = impl.http.bind_to_any_port(impl.options.host.c_str());
    if (impl.boundPort < 0)
      return Status::error("cannot listen on %s (any port)", impl.options.host.c_str());
  } else {
    if (!impl.http.bind_to_port(impl.options.host.c_str(), impl.options.port))
      return Status::error("cannot listen on %s:%d (in use, or not an address of this machine)",
                           impl.options.host.c_str(), impl.options.port);
    impl.boundPort = impl.options.port;
  }
  return Status();
}

Status Server::serve() {
  if (!impl_->http.listen_after_bind())
    return Status::error("the server stopped with an error");
  return Status();
}

void Server::stop() { impl_->http.stop(); }
int Server::port() const { return impl_->boundPort; }

} // namespace moec
