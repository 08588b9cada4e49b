//===- ChatTemplate.h - Jinja chat templates, rendered as HF does --*- C++ -*-===//
//
// A chat template (tokenizer_config.json's `chat_template`, carried in the plan)
// rendered the way transformers' apply_chat_template renders it: Jinja with
// trim_blocks and lstrip_blocks, the messages as `messages`, `bos_token`,
// `eos_token`, `add_generation_prompt`, plus any extra boolean variables (e.g.
// `thinking`). Debian packages no C++ Jinja engine, so this is an interpreter of the
// part of Jinja that DeepSeek's templates (V2, V3, R1) and the default model's use:
//
//   text, {{ expr }}, {% if/elif/else/endif %}, {% for x in expr %} (with `loop`),
//   {% set name = expr %}, {% set ns.attr = expr %}, {# comments #}, whitespace
//   control (-), string/int/bool/none literals, lists, names, .attr and [index]
//   (negative indices), namespace(...), raise_exception(...), + - ~ == != < > <= >=,
//   and/or/not, in/not in, `is [not] defined/none/string/number`, `a if c else b`,
//   the string methods split/strip/lstrip/rstrip/startswith/endswith/lower/upper/
//   replace, dict get/items/keys, and the filters trim/length/string/lower/upper.
//
// Anything else is refused when the template is parsed, with the line and what was
// found, so a plan whose template this renderer cannot follow says so at once
// rather than rendering it differently.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_CHATTEMPLATE_H
#define MOEC_RUNTIME_CHATTEMPLATE_H

#include "moec/runtime/Status.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moec {

/// One message of a conversation.
struct ChatMessage {
  std::string role;    ///< "system", "user", "assistant", "tool"
  std::string content; ///< the text
};

/// What a render sees besides the messages.
struct ChatRenderOptions {
  bool addGenerationPrompt = true; ///< end with the assistant's turn opening
  std::string bosToken;            ///< `bos_token`
  std::string eosToken;            ///< `eos_token`
  /// Extra boolean variables, e.g. {"thinking", true} for templates that read it.
  std::map<std::string, bool> flags;
};

class ChatTemplate {
public:
  ~ChatTemplate();
  ChatTemplate(const ChatTemplate &) = delete;
  ChatTemplate &operator=(const ChatTemplate &) = delete;

  /// Parses `source`; an error names the line and the construct not supported.
  static Status parse(const std::string &source, std::unique_ptr<ChatTemplate> *out);

  /// Renders the conversation.
  Status render(const std::vector<ChatMessage> &messages, const ChatRenderOptions &options,
                std::string *out) const;

  struct Node;

private:
  ChatTemplate();
  std::vector<std::unique_ptr<Node>> body_;
};

} // namespace moec

#endif // MOEC_RUNTIME_CHATTEMPLATE_H
