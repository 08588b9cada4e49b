//===- Chat.cpp - Conversations: template, KV-cache reuse, reasoning ------===//
#include "moec/runtime/Chat.h"

#include <algorithm>
#include <cinttypes>

namespace moec {

ReasoningSplitter::ReasoningSplitter(const Tokenizer &tokenizer, bool thinking)
    : tokenizer_(tokenizer), open_(tokenizer.addedTokenId("<think>")),
      close_(tokenizer.addedTokenId("</think>")), thinking_(thinking && open_ >= 0),
      stream_(tokenizer) {}

void ReasoningSplitter::push(int32_t id, const Sink &sink) {
  bool opens = id == open_ && open_ >= 0 && !thinking_;
  bool closes = id == close_ && close_ >= 0 && thinking_;
  if (opens || closes) {
    std::string rest = stream_.finish();
    if (!rest.empty())
      sink(thinking_ ? ReplyPart::Thinking : ReplyPart::Answer, rest);
    thinking_ = opens;
    return;
  }
  if (thinking_)
    ++thinkingTokens_;
  std::string text = stream_.push(id);
  if (!text.empty())
    sink(thinking_ ? ReplyPart::Thinking : ReplyPart::Answer, text);
}

void ReasoningSplitter::finish(const Sink &sink) {
  std::string rest = stream_.finish();
  if (!rest.empty())
    sink(thinking_ ? ReplyPart::Thinking : ReplyPart::Answer, rest);
}

bool endsInThinking(const std::string &text) {
  size_t end = text.size();
  while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == ' ' || text[end - 1] == '\t' ||
                     text[end - 1] == '\r'))
    --end;
  static const std::string open = "<think>";
  return end >= open.size() && text.compare(end - open.size(), open.size(), open) == 0;
}

ChatSession::ChatSession(Executor &executor, KvCache &cache, int32_t seq,
                         const Tokenizer &tokenizer, const ChatTemplate &chatTemplate,
                         ChatRenderOptions render)
    : executor_(executor), cache_(cache), seq_(seq), tokenizer_(tokenizer),
      template_(chatTemplate), render_(std::move(render)) {
  cache_.clear(seq_);
}

Status ChatSession::turn(const std::string &user, const GenerationOptions &options,
                         const ReasoningSplitter::Sink &sink, TurnStats *stats) {
  TurnStats local;
  TurnStats &s = stats ? *stats : local;
  s = TurnStats();
  messages_.push_back({"user", user});
  auto undo = [&](Status status) {
    messages_.pop_back();
    return status;
  };
  std::string text;
  ChatRenderOptions render = render_;
  render.addGenerationPrompt = true;
  Status rendered = template_.render(messages_, render, &text);
  if (!rendered.ok())
    return undo(rendered);
  std::vector<int32_t> ids = tokenizer_.encode(text);
  if (ids.empty())
    return undo(Status::error("the rendered conversation encodes to no tokens"));
  // Reuse what the cache holds up to where the new rendering departs from it; at
  // least one token runs, for the logits of the first reply token.
  size_t reuse = 0;
  while (reuse < cached_.size() && reuse < ids.size() && cached_[reuse] == ids[reuse])
    ++reuse;
  reuse = std::min(reuse, ids.size() - 1);
  int64_t capacity = cache_.capacity();
  int64_t room = capacity - int64_t(ids.size()) + 1; // the last reply token needs no row
  if (room < 1)
    return undo(Status::error("the conversation needs %zu tokens of context, the KV cache "
                              "holds %" PRId64 ": start a new conversation or give a larger "
                              "context",
                              ids.size(), capacity));
  cache_.truncate(seq_, int64_t(reuse));
  cached_.resize(reuse);
  std::vector<int32_t> prompt(ids.begin() + std::ptrdiff_t(reuse), ids.end());
  GenerationOptions turnOptions = options;
  turnOptions.maxNewTokens = std::min(options.maxNewTokens, room);
  if (tokenizer_.eosId() >= 0 &&
      std::find(turnOptions.stopTokens.begin(), turnOptions.stopTokens.end(),
                tokenizer_.eosId()) == turnOptions.stopTokens.end())
    turnOptions.stopTokens.push_back(tokenizer_.eosId());
  auto isStop = [&](int32_t t) {
    return std::find(turnOptions.stopTokens.begin(), turnOptions.stopTokens.end(), t) !=
           turnOptions.stopTokens.end();
  };
  ReasoningSplitter splitter(tokenizer_, endsInThinking(text));
  std::vector<int32_t> generated;
  Status status = generate(
      executor_, cache_, seq_, prompt, turnOptions,
      [&](int32_t token) {
        if (!isStop(token))
          splitter.push(token, sink);
        return true;
      },
      &generated, &s.generation);
  splitter.finish(sink);
  if (!status.ok()) {
    cache_.clear(seq_);
    cached_.clear();
    return undo(status);
  }
  s.reusedTokens = int64_t(reuse);
  s.thinkingTokens = splitter.thinkingTokens();
  s.promptTokens = int64_t(ids.size());
  bool stopped = !generated.empty() && isStop(generated.back());
  s.finishReason = stopped ? "stop" : "length";
  // The cache now holds the rendering and every generated token but the last.
  cached_ = ids;
  if (!generated.empty())
    cached_.insert(cached_.end(), generated.begin(), generated.end() - 1);
  std::vector<int32_t> reply(generated.begin(), generated.end() - (stopped ? 1 : 0));
  std::string replyText;
  MOEC_RETURN_IF_ERROR(tokenizer_.decode(reply, /*skipSpecial=*/false, &replyText));
  // A reply that began inside the thinking keeps its opening tag in the history.
  if (endsInThinking(text) && tokenizer_.addedTokenId("<think>") >= 0)
    replyText = text.substr(text.rfind("<think>")) + replyText;
  messages_.push_back({"assistant", replyText});
  return Status();
}

} // namespace moec
