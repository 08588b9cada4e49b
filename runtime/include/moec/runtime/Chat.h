//===- Chat.h - Conversations over a plan: template, KV reuse, reasoning -*- C++ -*-===//
//
// A ChatSession holds one conversation on one sequence of a KV cache. Each turn
// appends the user's message, renders the whole conversation with the plan's chat
// template (the generation prompt included), encodes it, and runs only the tokens
// past the longest prefix the cache already holds (templates may rewrite earlier
// turns, e.g. DeepSeek-R1's drops the thinking of past answers; the cache is cut
// back to where the new rendering departs from it). The reply streams as it is
// generated, split by ReasoningSplitter into thinking (between <think> and </think>)
// and answer.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_CHAT_H
#define MOEC_RUNTIME_CHAT_H

#include "moec/runtime/ChatTemplate.h"
#include "moec/runtime/Generator.h"
#include "moec/runtime/Tokenizer.h"

#include <functional>
#include <string>
#include <vector>

namespace moec {

/// Which part of a reply a piece of text belongs to.
enum class ReplyPart { Thinking, Answer };

/// Splits a stream of generated tokens into thinking and answer text. The tokens
/// <think> and </think> (added tokens of DeepSeek's tokenizers) switch parts and are
/// not part of either text; without them in the vocabulary everything is answer.
class ReasoningSplitter {
public:
  /// `thinking`: the reply starts inside the thinking (the generation prompt ended
  /// with <think>, as DeepSeek-R1's does).
  ReasoningSplitter(const Tokenizer &tokenizer, bool thinking);
  using Sink = std::function<void(ReplyPart, const std::string &)>;
  void push(int32_t id, const Sink &sink);
  void finish(const Sink &sink);
  bool thinking() const { return thinking_; }
  int64_t thinkingTokens() const { return thinkingTokens_; }

private:
  const Tokenizer &tokenizer_;
  int32_t open_, close_;
  bool thinking_;
  int64_t thinkingTokens_ = 0;
  TextStream stream_;
};

/// True when `text` ends with <think> and optional whitespace: the reply begins in
/// the thinking.
bool endsInThinking(const std::string &text);

class ChatSession {
public:
  /// Borrows everything; the session uses sequence `seq` of `cache`.
  ChatSession(Executor &executor, KvCache &cache, int32_t seq, const Tokenizer &tokenizer,
              const ChatTemplate &chatTemplate, ChatRenderOptions render);

  /// Adds a message without generating (a system prompt, or a past turn).
  void add(ChatMessage message) { messages_.push_back(std::move(message)); }

  /// What one turn did.
  struct TurnStats {
    GenerationStats generation;
    int64_t reusedTokens = 0;   ///< rendered tokens the cache already held
    int64_t promptTokens = 0;   ///< rendered tokens in all
    std::string finishReason;   ///< "stop" (EOS or a stop token) or "length"
    int64_t thinkingTokens = 0; ///< reply tokens inside the thinking
  };

  /// The user's message, then the assistant's reply, streamed to `sink`; the reply
  /// (its text as generated, thinking included) is appended to the conversation.
  Status turn(const std::string &user, const GenerationOptions &options,
              const ReasoningSplitter::Sink &sink, TurnStats *stats);

  const std::vector<ChatMessage> &messages() const { return messages_; }

private:
  Executor &executor_;
  KvCache &cache_;
  int32_t seq_;
  const Tokenizer &tokenizer_;
  const ChatTemplate &template_;
  ChatRenderOptions render_;
  std::vector<ChatMessage> messages_;
  std::vector<int32_t> cached_; ///< the tokens the cache holds for seq_, in order
};

} // namespace moec

#endif // MOEC_RUNTIME_CHAT_H
