//===- TokenizerTest.cpp - The runtime tokenizer against HF tokenizers ----===//
//
// Every case of corpus.json, encoded by moec's runtime tokenizer (built from the
// plan table `moec compile` writes), must give Hugging Face's ids exactly, and
// decode back to the text (invalid UTF-8 as U+FFFD). Expected values come from
// make_fixture.py; DeepSeek-V3's tokenizer.json is unpacked by the build.
//
//===----------------------------------------------------------------------===//
#include "moec/checkpoint/Tokenizer.h"
#include "moec/runtime/Chat.h"
#include "moec/runtime/Tokenizer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace moec {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string fromHex(const std::string &hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

/// A tokenizer compiled as `moec compile` compiles it, held with its table.
struct Compiled {
  flatbuffers::FlatBufferBuilder fbb;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string error; ///< from the compiler side or the runtime, else empty
};

std::unique_ptr<Compiled> compile(const std::string &dir, int64_t vocabSize) {
  auto result = std::make_unique<Compiled>();
  auto table = checkpoint::readTokenizer(dir, vocabSize);
  if (!table) {
    result->error = llvm::toString(table.takeError());
    return result;
  }
  if (!*table) {
    result->error = "no tokenizer.json";
    return result;
  }
  result->fbb.Finish(plan::Tokenizer::Pack(result->fbb, table->get()));
  Status status = Tokenizer::create(
      *flatbuffers::GetRoot<plan::Tokenizer>(result->fbb.GetBufferPointer()), vocabSize,
      &result->tokenizer);
  if (!status.ok())
    result->error = status.message();
  return result;
}

struct Fixture {
  const char *name;
  std::string dir;
  int64_t vocabSize; ///< the model's (config.json vocab_size)
};

std::vector<Fixture> fixtures() {
  return {{"deepseek-v3", MOEC_DSV3_TOKENIZER_DIR, 129280},
          {"poems-v3", std::string(MOEC_MODELS_DIR) + "/poems-v3", 4096}};
}

class TokenizerGolden : public ::testing::TestWithParam<Fixture> {};

TEST_P(TokenizerGolden, IdsAndDecodeMatchHuggingFace) {
  const Fixture &f = GetParam();
  auto compiled = compile(f.dir, f.vocabSize);
  ASSERT_EQ(compiled->error, "");
  const Tokenizer &tok = *compiled->tokenizer;
  json expected = json::parse(
      readAll(std::string(MOEC_TOKENIZER_FIXTURES) + "/expected-" + f.name + ".json"));
  ASSERT_GE(expected["cases"].size(), 40u);
  size_t checkedIds = 0;
  for (const json &c : expected["cases"]) {
    std::string name = c["name"], raw = fromHex(c["bytes_hex"]);
    std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    std::vector<int32_t> got = tok.encode(raw);
    EXPECT_EQ(got, want) << f.name << ": case " << name;
    checkedIds += want.size();
    // The reference saw the text with invalid UTF-8 replaced; moec replaces the same.
    std::string decoded;
    ASSERT_TRUE(tok.decode(got, /*skipSpecial=*/false, &decoded).ok());
    EXPECT_EQ(decoded, c["decoded"].get<std::string>()) << f.name << ": case " << name;
    EXPECT_EQ(sanitizeUtf8(raw), c["decoded"].get<std::string>()) << "case " << name;
    // Streaming: token by token, each chunk whole UTF-8, the same text in the end.
    TextStream stream(tok);
    std::string streamed;
    for (int32_t id : got) {
      std::string chunk = stream.push(id);
      EXPECT_EQ(sanitizeUtf8(chunk), chunk) << "case " << name;
      streamed += chunk;
    }
    streamed += stream.finish();
    EXPECT_EQ(streamed, decoded) << f.name << ": case " << name;
  }
  EXPECT_GT(checkedIds, 1000u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerGolden, ::testing::ValuesIn(fixtures()),
                         [](const auto &info) {
                           std::string n = info.param.name;
                           for (char &c : n)
                             if (c == '-')
                               c = '_';
                           return n;
                         });

TEST(Tokenizer, DeepSeekV3SpecialTokensAndConfig) {
  auto compiled = compile(MOEC_DSV3_TOKENIZER_DIR, 129280);
  ASSERT_EQ(compiled->error, "");
  const Tokenizer &tok = *compiled->tokenizer;
  EXPECT_EQ(tok.size(), 128815);
  EXPECT_EQ(tok.bosId(), 0);
  EXPECT_EQ(tok.eosId(), 1);
  EXPECT_FALSE(tok.addBos());
  EXPECT_EQ(tok.addedTokenId("<｜User｜>"), 128803);
  EXPECT_EQ(tok.addedTokenId("<think>"), 128798);
  EXPECT_EQ(tok.addedTokenId("not a token"), -1);
  EXPECT_TRUE(tok.isSpecial(0));
  EXPECT_NE(tok.chatTemplate().find("<｜Assistant｜>"), std::string::npos);
  std::string text;
  ASSERT_TRUE(tok.decode({0, 128803, 128798}, /*skipSpecial=*/true, &text).ok());
  EXPECT_EQ(text, "<｜User｜><think>"); // neither is special in DeepSeek-V3's file
  // Ids the model has and the tokenizer does not (128815..129279) decode to nothing.
  ASSERT_TRUE(tok.decode({128815, 129279}, false, &text).ok());
  EXPECT_EQ(text, "");
  Status bad = tok.decode({5, 129280}, false, &text);
  EXPECT_EQ(bad.message(), "token id 129280 is outside the vocabulary of 129280 tokens");
}

TEST(Reasoning, SplitsAtTheThinkTokens) {
  auto compiled = compile(MOEC_DSV3_TOKENIZER_DIR, 129280);
  ASSERT_EQ(compiled->error, "");
  const Tokenizer &tok = *compiled->tokenizer;
  int32_t open = tok.addedTokenId("<think>"), close = tok.addedTokenId("</think>");
  ASSERT_EQ(open, 128798);
  ASSERT_EQ(close, 128799);
  auto split = [&](const std::vector<int32_t> &ids, bool thinking, int64_t *thought) {
    std::vector<std::string> parts;
    ReasoningSplitter splitter(tok, thinking);
    auto sink = [&](ReplyPart part, const std::string &text) {
      std::string tag = part == ReplyPart::Thinking ? "T:" : "A:";
      if (!parts.empty() && parts.back().compare(0, 2, tag) == 0)
        parts.back() += text;
      else
        parts.push_back(tag + text);
    };
    for (int32_t id : ids)
      splitter.push(id, sink);
    splitter.finish(sink);
    *thought = splitter.thinkingTokens();
    return parts;
  };
  std::vector<int32_t> thinking = tok.encode("想一想：1+1"), answer = tok.encode("等于2。");
  std::vector<int32_t> ids = {open};
  ids.insert(ids.end(), thinking.begin(), thinking.end());
  ids.push_back(close);
  ids.insert(ids.end(), answer.begin(), answer.end());
  int64_t thought = 0;
  EXPECT_EQ(split(ids, false, &thought), (std::vector<std::string>{"T:想一想：1+1", "A:等于2。"}));
  EXPECT_EQ(thought, int64_t(thinking.size()));
  // DeepSeek-R1's generation prompt opened the thinking: the reply starts inside it.
  std::vector<int32_t> r1(ids.begin() + 1, ids.end());
  EXPECT_EQ(split(r1, true, &thought), (std::vector<std::string>{"T:想一想：1+1", "A:等于2。"}));
  // No thinking: all answer.
  EXPECT_EQ(split(answer, false, &thought), (std::vector<std::string>{"A:等于2。"}));
  EXPECT_EQ(thought, 0);
  EXPECT_TRUE(endsInThinking("<｜Assistant｜><think>\n"));
  EXPECT_FALSE(endsInThinking("<｜Assistant｜>"));
}

TEST(Tokenizer, StreamHoldsBackSplitCharacters) {
  auto compiled = compile(std::string(MOEC_MODELS_DIR) + "/poems-v3", 4096);
  ASSERT_EQ(compiled->error, "");
  const Tokenizer &tok = *compiled->tokenizer;
  // Byte tokens of 床 (E5 BA 8A) one at a time: nothing until the third.
  std::vector<int32_t> single;
  // Find byte-level tokens for the bytes directly (ids whose bytes are one byte).
  for (uint8_t b : {0xE5, 0xBA, 0x8A})
    for (int32_t id = 0; id < tok.size(); ++id)
      if (tok.tokenBytes(id) == std::string(1, char(b))) {
        single.push_back(id);
        break;
      }
  ASSERT_EQ(single.size(), 3u);
  TextStream stream(tok);
  EXPECT_EQ(stream.push(single[0]), "");
  EXPECT_EQ(stream.push(single[1]), "");
  EXPECT_EQ(stream.push(single[2]), "床");
  // A dangling lead byte at the end becomes U+FFFD.
  EXPECT_EQ(stream.push(single[0]), "");
  EXPECT_EQ(stream.finish(), "\xEF\xBF\xBD");
}

TEST(Tokenizer, SanitizeUtf8MaximalSubparts) {
  EXPECT_EQ(sanitizeUtf8("ok"), "ok");
  EXPECT_EQ(sanitizeUtf8("a\x80" "b"), "a\xEF\xBF\xBD" "b");
  // E5 BA without its third byte is one maximal subpart: one U+FFFD.
  EXPECT_EQ(sanitizeUtf8("\xE5\xBA" "A"), "\xEF\xBF\xBD" "A");
  // Overlong C0 AF: two invalid bytes, two replacements; surrogate ED A0 80: three.
  EXPECT_EQ(sanitizeUtf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(sanitizeUtf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

/// A copy of the poems-v3 tokenizer directory with tokenizer.json edited by `edit`.
std::string editedTokenizer(const std::string &name, const std::function<void(json &)> &edit) {
  fs::path dir = fs::temp_directory_path() / ("moec-tokenizer-test-" + name);
  fs::create_directories(dir);
  json t = json::parse(readAll(std::string(MOEC_MODELS_DIR) + "/poems-v3/tokenizer.json"));
  edit(t);
  std::ofstream(dir / "tokenizer.json") << t.dump();
  fs::copy_file(std::string(MOEC_MODELS_DIR) + "/poems-v3/tokenizer_config.json",
                dir / "tokenizer_config.json", fs::copy_options::overwrite_existing);
  return dir.string();
}

TEST(Tokenizer, UnsupportedFormsAreRefusedNamingTheField) {
  std::string dir = editedTokenizer("wordpiece", [](json &t) { t["model"]["type"] = "WordPiece"; });
  EXPECT_EQ(compile(dir, 4096)->error,
            dir + "/tokenizer.json: model.type is not \"BPE\": only byte-level BPE tokenizers "
                  "(DeepSeek's) are supported");
  dir = editedTokenizer("metaspace", [](json &t) {
    t["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Metaspace"}};
  });
  EXPECT_NE(compile(dir, 4096)->error.find("pre_tokenizer: pretokenizers[0] is \"Metaspace\""),
            std::string::npos);
  dir = editedTokenizer("badregex", [](json &t) {
    t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  });
  EXPECT_NE(compile(dir, 4096)->error.find("tokenizer: split regex 0: missing closing "
                                           "parenthesis"),
            std::string::npos)
      << compile(dir, 4096)->error;
  dir = editedTokenizer("badmerge", [](json &t) { t["model"]["merges"][0] = "nosuchtoken x"; });
  EXPECT_NE(compile(dir, 4096)->error.find("model.merges[0]"), std::string::npos);
}

TEST(Tokenizer, TokenizerLargerThanTheModelIsRefused) {
  auto compiled = compile(MOEC_DSV3_TOKENIZER_DIR, 102400);
  EXPECT_EQ(compiled->error,
            std::string(MOEC_DSV3_TOKENIZER_DIR) +
                "/tokenizer.json: token id 128814 is outside the model's vocabulary of 102400 "
                "tokens (config.json vocab_size): this tokenizer does not fit the model");
}

// A plan's tokenizer table comes from a file: every inconsistency is refused with one
// line when the runtime builds the tokenizer, never read past.
TEST(Tokenizer, MalformedTablesAreRefused) {
  auto table = checkpoint::readTokenizer(std::string(MOEC_MODELS_DIR) + "/poems-v3", 4096);
  ASSERT_TRUE(bool(table) && *table);
  auto build = [&](const std::function<void(plan::TokenizerT &)> &corrupt, int64_t vocab = 4096) {
    plan::TokenizerT copy(**table);
    corrupt(copy);
    flatbuffers::FlatBufferBuilder fbb;
    fbb.Finish(plan::Tokenizer::Pack(fbb, &copy));
    std::unique_ptr<Tokenizer> t;
    return Tokenizer::create(*flatbuffers::GetRoot<plan::Tokenizer>(fbb.GetBufferPointer()),
                             vocab, &t)
        .message();
  };
  EXPECT_EQ(build([](plan::TokenizerT &) {}), "");
  EXPECT_EQ(build([](plan::TokenizerT &t) { t.kind = "wordpiece"; }),
            "tokenizer: unsupported kind \"wordpiece\" (this runtime reads \"byte_level_bpe\")");
  EXPECT_EQ(build([](plan::TokenizerT &) {}, 100),
            "tokenizer: 4096 token ids, but the model's vocabulary has 100");
  EXPECT_EQ(build([](plan::TokenizerT &t) { t.token_offsets.back() += 1; }),
            "tokenizer: token offsets do not span the token bytes");
  EXPECT_EQ(build([](plan::TokenizerT &t) { std::swap(t.token_offsets[5], t.token_offsets[6]); }),
            "tokenizer: token offsets decrease at id 5");
  EXPECT_EQ(build([](plan::TokenizerT &t) { t.byte_ids.pop_back(); }),
            "tokenizer: byte_ids must hold 256 entries");
  EXPECT_EQ(build([](plan::TokenizerT &t) { t.byte_ids[7] = 4096; }),
            "tokenizer: byte_ids[7] = 4096 is outside the vocabulary");
  EXPECT_EQ(build([](plan::TokenizerT &t) { t.merges.push_back(1); }),
            "tokenizer: merges hold 11500 values, not triples");
  EXPECT_EQ(build([](plan::TokenizerT &t) { t.merges[4] = -1; }),
            "tokenizer: merge 1 refers to an id outside the vocabulary");
  EXPECT_EQ(build([](plan::TokenizerT &t) { t.added_tokens[0]->id = 5000; }),
            "tokenizer: added token 0: id 5000 outside the vocabulary or no content");
  EXPECT_EQ(build([](plan::TokenizerT &t) { t.eos_id = 4096; }),
            "tokenizer: eos id 4096 is outside the vocabulary");
  EXPECT_NE(build([](plan::TokenizerT &t) { t.split_regexes[0] = "[unclosed"; })
                .find("tokenizer: split regex 0: missing terminating ] for character class"),
            std::string::npos);
}

TEST(Tokenizer, NoTokenizerJsonIsNotAnError) {
  fs::path dir = fs::temp_directory_path() / "moec-tokenizer-test-none";
  fs::create_directories(dir);
  auto table = checkpoint::readTokenizer(dir.string(), 100);
  ASSERT_TRUE(bool(table));
  EXPECT_EQ(table->get(), nullptr);
}

} // namespace
} // namespace moec
