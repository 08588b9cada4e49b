//===- ChatTemplateTest.cpp - moec's Jinja renderer against transformers --===//
//
// expected-chat.json (make_chat_fixture.py): DeepSeek-V3's, DeepSeek-R1's, the default
// model's and moec synth's templates, each rendering each conversation with and
// without the generation prompt, by transformers' apply_chat_template. moec's
// renderer must give the same text byte for byte.
//
//===----------------------------------------------------------------------===//
#include "moec/runtime/ChatTemplate.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace moec {
namespace {

using nlohmann::json;

json fixture() {
  std::ifstream in(std::string(MOEC_TOKENIZER_FIXTURES) + "/expected-chat.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return json::parse(buffer.str());
}

std::string render(const std::string &source, const std::vector<ChatMessage> &messages,
                   bool generationPrompt = true) {
  std::unique_ptr<ChatTemplate> t;
  Status parsed = ChatTemplate::parse(source, &t);
  if (!parsed.ok())
    return "PARSE: " + parsed.message();
  ChatRenderOptions options;
  options.addGenerationPrompt = generationPrompt;
  options.bosToken = "<s>";
  options.eosToken = "</s>";
  std::string out;
  Status rendered = t->render(messages, options, &out);
  return rendered.ok() ? out : "RENDER: " + rendered.message();
}

TEST(ChatTemplate, RendersAsTransformersDoes) {
  json f = fixture();
  ASSERT_EQ(f["cases"].size(), 56u);
  for (const json &c : f["cases"]) {
    std::string name = c["template"].get<std::string>() + "/" +
                       c["conversation"].get<std::string>() +
                       (c["add_generation_prompt"].get<bool>() ? "+gen" : "");
    std::unique_ptr<ChatTemplate> t;
    Status parsed = ChatTemplate::parse(f["templates"][c["template"].get<std::string>()], &t);
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.message();
    std::vector<ChatMessage> messages;
    for (const json &m : f["conversations"][c["conversation"].get<std::string>()])
      messages.push_back({m["role"], m["content"]});
    ChatRenderOptions options;
    options.addGenerationPrompt = c["add_generation_prompt"];
    options.bosToken = f["bos_token"];
    options.eosToken = f["eos_token"];
    std::string out;
    Status rendered = t->render(messages, options, &out);
    ASSERT_TRUE(rendered.ok()) << name << ": " << rendered.message();
    EXPECT_EQ(out, c["text"].get<std::string>()) << name;
  }
}

TEST(ChatTemplate, JinjaWhitespaceControlTrimAndLstripBlocks) {
  // "-" strips all whitespace on its side; trim_blocks drops the newline after a block
  // tag; lstrip_blocks drops indentation before one (transformers' environment).
  EXPECT_EQ(render("a  {{- 'b' -}}  c", {}), "abc");
  EXPECT_EQ(render("{% if true %}\nx\n{% endif %}\ny", {}), "x\ny");
  EXPECT_EQ(render("line\n    {% if true %}z{% endif %}", {}), "line\nz");
  EXPECT_EQ(render("q {% if true %}z{% endif %}", {}), "q z");
  EXPECT_EQ(render("{# comment #}k", {}), "k");
}

TEST(ChatTemplate, Expressions) {
  std::vector<ChatMessage> m = {{"user", "a</think>b"}, {"assistant", "c"}};
  EXPECT_EQ(render("{{ messages[0]['content'].split('</think>')[-1] }}", m), "b");
  EXPECT_EQ(render("{{ messages[-1].role }}{{ messages|length }}", m), "assistant2");
  EXPECT_EQ(render("{% for x in messages %}{{ loop.index }}{{ x.role[0] }}{% if not loop.last "
                   "%},{% endif %}{% endfor %}",
                   m),
            "1u,2a");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for x in messages %}{% set ns.n = ns.n + 1 "
                   "%}{% endfor %}{{ ns.n }}",
                   m),
            "2");
  // A plain set inside a loop does not leak out of it (why templates use namespace).
  EXPECT_EQ(render("{% set n = 0 %}{% for x in messages %}{% set n = 5 %}{% endfor %}{{ n }}", m),
            "0");
  EXPECT_EQ(render("{{ 'yes' if 'think' in messages[0].content else 'no' }}", m), "yes");
  EXPECT_EQ(render("{{ x is defined }}{{ none is none }}{{ 'a' ~ 1 }}{{ none }}", m),
            "FalseTruea1None");
  EXPECT_EQ(render("{{ bos_token }}{% if add_generation_prompt %}G{% endif %}{{ eos_token }}",
                   m, false),
            "<s></s>");
  EXPECT_EQ(render("{{ ' a b '|trim|upper }}{{ 'x'.startswith('x') }}", m), "A BTrue");
}

TEST(ChatTemplate, UnsupportedConstructsAreRefusedWithTheLine) {
  EXPECT_EQ(render("ok\n{% macro f() %}{% endmacro %}", {}),
            "PARSE: chat template, line 2: unsupported statement '{% macro %}'");
  EXPECT_EQ(render("{{ x|tojson }}", {}), "PARSE: chat template, line 1: unsupported filter "
                                          "'|tojson'");
  EXPECT_EQ(render("{% if true %}x", {}),
            "PARSE: chat template, line 1: missing '{% endif %}' at the end of the template");
  EXPECT_EQ(render("{{ 'a' + messages }}", {}),
            "RENDER: chat template, line 1: cannot add a string and a list");
  EXPECT_EQ(render("{{ raise_exception('only user and assistant roles') }}", {}),
            "RENDER: chat template, line 1: the template raised an error: only user and "
            "assistant roles");
  EXPECT_EQ(render("{{ nothing.attr }}", {}),
            "RENDER: chat template, line 1: 'nothing' is undefined (reading .attr)");
}

} // namespace
} // namespace moec
