//===- Tokenizer.cpp - tokenizer.json -> the plan's tokenizer table -------===//
#include "moec/checkpoint/Tokenizer.h"

#include "JsonFile.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include <array>
#include <map>

namespace moec::checkpoint {

using llvm::Error;
using llvm::Expected;
using nlohmann::json;

namespace {

/// GPT-2's byte-level alphabet: the character each byte is written as in the
/// vocabulary (printable Latin-1 bytes as themselves, the rest from U+0100 on).
std::array<uint32_t, 256> byteLevelChars() {
  std::array<uint32_t, 256> chars{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    chars[b] = printable ? b : next++;
  }
  return chars;
}

/// Decodes one UTF-8 character of `s` at `*i` (the text comes from a parsed JSON
/// string, so it is valid UTF-8).
uint32_t nextCodePoint(const std::string &s, size_t *i) {
  auto byte = [&](size_t k) { return uint32_t(uint8_t(s[k])); };
  uint32_t c = byte(*i);
  size_t length = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  uint32_t cp = length == 1 ? c : length == 2 ? c & 0x1F : length == 3 ? c & 0x0F : c & 0x07;
  for (size_t k = 1; k < length && *i + k < s.size(); ++k)
    cp = (cp << 6) | (byte(*i + k) & 0x3F);
  *i += length;
  return cp;
}

/// The raw bytes a vocabulary entry stands for. An entry with a character outside the
/// byte-level alphabet is its own UTF-8 text, as Hugging Face's ByteLevel decoder
/// treats it.
std::string tokenToBytes(const std::string &token, const std::map<uint32_t, uint8_t> &inverse) {
  std::string bytes;
  for (size_t i = 0; i < token.size();) {
    auto it = inverse.find(nextCodePoint(token, &i));
    if (it == inverse.end())
      return token;
    bytes += char(it->second);
  }
  return bytes;
}

/// A JSON value that must be absent, null, false or an empty string.
bool unset(const json &object, const char *key) {
  if (!object.contains(key))
    return true;
  const json &v = object[key];
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) ||
         (v.is_string() && v.get<std::string>().empty());
}

/// The content of tokenizer_config.json's bos_token / eos_token (a string or an
/// AddedToken object), or "".
std::string specialContent(const json &config, const char *key) {
  if (!config.contains(key))
    return "";
  const json &v = config[key];
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return "";
}

class Reader {
public:
  Reader(std::string file) : file_(std::move(file)) {}

  Error fail(const llvm::Twine &message) const { return fileError(file_, message); }

  Error checkModel(const json &model) const {
    if (!model.is_object() || model.value("type", "") != "BPE")
      return fail("model.type is not \"BPE\": only byte-level BPE tokenizers (DeepSeek's) "
                  "are supported");
    for (const char *key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix",
                            "byte_fallback", "ignore_merges", "unk_token"})
      if (!unset(model, key))
        return fail(llvm::formatv("model.{0} is set: DeepSeek's BPE leaves it unset, and "
                                  "moec supports only that",
                                  key));
    if (!model.contains("vocab") || !model["vocab"].is_object())
      return fail("model.vocab is missing or not an object");
    if (!model.contains("merges") || !model["merges"].is_array())
      return fail("model.merges is missing or not an array");
    return Error::success();
  }

  Error readPreTokenizer(const json &pre, plan::TokenizerT *out) const {
    auto unsupported = [&](const llvm::Twine &what) {
      return fail("pre_tokenizer: " + what +
                  ": moec supports DeepSeek's form, a Sequence of Split (Isolated, not "
                  "inverted, Regex pattern) ending in ByteLevel without its regex");
    };
    if (!pre.is_object() || pre.value("type", "") != "Sequence" ||
        !pre.contains("pretokenizers") || !pre["pretokenizers"].is_array())
      return unsupported("not a Sequence");
    const json &list = pre["pretokenizers"];
    for (size_t i = 0; i < list.size(); ++i) {
      const json &p = list[i];
      std::string type = p.is_object() ? p.value("type", "") : "";
      bool last = i + 1 == list.size();
      if (type == "ByteLevel" && last) {
        if (p.value("use_regex", true) || p.value("add_prefix_space", false))
          return unsupported("ByteLevel with use_regex or add_prefix_space");
        continue;
      }
      if (type != "Split")
        return unsupported(llvm::formatv("pretokenizers[{0}] is \"{1}\"", i,
                                         escapeForMessage(type)));
      if (p.value("behavior", "") != "Isolated" || p.value("invert", false) ||
          !p.contains("pattern") || !p["pattern"].is_object() ||
          !p["pattern"].contains("Regex") || !p["pattern"]["Regex"].is_string())
        return unsupported(llvm::formatv("pretokenizers[{0}]", i));
      out->split_regexes.push_back(p["pattern"]["Regex"].get<std::string>());
    }
    if (list.empty() || list.back().value("type", "") != "ByteLevel")
      return unsupported("the last pre-tokenizer is not ByteLevel");
    return Error::success();
  }

private:
  std::string file_;
};

} // namespace

Expected<std::unique_ptr<plan::TokenizerT>> readTokenizer(llvm::StringRef dir,
                                                          int64_t vocabSize) {
  std::string path = joinPath(dir, "tokenizer.json");
  if (!llvm::sys::fs::exists(path))
    return nullptr;
  auto text = readTextFile(path);
  if (!text)
    return text.takeError();
  auto parsed = parseJson(*text, path);
  if (!parsed)
    return parsed.takeError();
  const json &root = *parsed;
  Reader reader(path);
  auto result = std::make_unique<plan::TokenizerT>();
  plan::TokenizerT &t = *result;
  t.kind = "byte_level_bpe";
  try {
    if (!root.is_object() || !root.contains("model"))
      return reader.fail("no \"model\" object");
    const json &model = root["model"];
    if (Error err = reader.checkModel(model))
      return std::move(err);
    if (root.contains("normalizer") && !root["normalizer"].is_null()) {
      const json &n = root["normalizer"];
      bool identity = n.is_object() && n.value("type", "") == "Sequence" &&
                      n.contains("normalizers") && n["normalizers"].is_array() &&
                      n["normalizers"].empty();
      if (!identity)
        return reader.fail("normalizer: only none (DeepSeek's empty Sequence) is supported");
    }
    if (!root.contains("pre_tokenizer"))
      return reader.fail("no pre_tokenizer");
    if (Error err = reader.readPreTokenizer(root["pre_tokenizer"], &t))
      return std::move(err);
    if (!root.contains("decoder") || !root["decoder"].is_object() ||
        root["decoder"].value("type", "") != "ByteLevel")
      return reader.fail("decoder: only ByteLevel is supported");
    if (root.contains("post_processor") && !root["post_processor"].is_null() &&
        root["post_processor"].value("type", "") != "ByteLevel")
      return reader.fail("post_processor: only ByteLevel (adds nothing) or none is "
                         "supported; tokenizer_config.json's add_bos_token adds BOS");

    // The vocabulary, then the added tokens, as raw bytes per id.
    std::array<uint32_t, 256> chars = byteLevelChars();
    std::map<uint32_t, uint8_t> inverse;
    for (uint32_t b = 0; b < 256; ++b)
      inverse[chars[b]] = uint8_t(b);
    std::map<int64_t, std::string> byId;
    std::map<std::string, int32_t> idOfToken; // vocabulary entries as written
    for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
          it.value().get<int64_t>() >= (int64_t(1) << 30))
        return reader.fail(llvm::formatv("model.vocab[\"{0}\"] is not a token id",
                                         escapeForMessage(it.key())));
      int64_t id = it.value().get<int64_t>();
      if (byId.count(id))
        return reader.fail(llvm::formatv("model.vocab: id {0} appears twice", id));
      byId[id] = tokenToBytes(it.key(), inverse);
      idOfToken[it.key()] = int32_t(id);
    }
    std::map<std::string, int32_t> addedIds;
    if (root.contains("added_tokens") && root["added_tokens"].is_array())
      for (size_t i = 0; i < root["added_tokens"].size(); ++i) {
        const json &a = root["added_tokens"][i];
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
            !a.contains("content") || !a["content"].is_string() ||
            a["content"].get<std::string>().empty() || a["id"].get<int64_t>() < 0 ||
            a["id"].get<int64_t>() >= (int64_t(1) << 30))
          return reader.fail(llvm::formatv("added_tokens[{0}] lacks an id or content", i));
        for (const char *key : {"lstrip", "rstrip", "single_word"})
          if (a.value(key, false))
            return reader.fail(llvm::formatv("added_tokens[{0}].{1} is true: not supported "
                                             "(DeepSeek's added tokens leave it false)",
                                             i, key));
        auto token = std::make_unique<plan::TokenizerAddedTokenT>();
        token->id = int32_t(a["id"].get<int64_t>());
        token->content = a["content"].get<std::string>();
        token->special = a.value("special", false);
        token->normalized = a.value("normalized", true);
        byId[token->id] = token->content;
        addedIds[token->content] = token->id;
        t.added_tokens.push_back(std::move(token));
      }
    if (byId.empty())
      return reader.fail("the vocabulary is empty");
    int64_t size = byId.rbegin()->first + 1;
    if (vocabSize > 0 && size > vocabSize)
      return reader.fail(llvm::formatv(
          "token id {0} is outside the model's vocabulary of {1} tokens (config.json "
          "vocab_size): this tokenizer does not fit the model",
          size - 1, vocabSize));
    t.byte_ids.assign(256, -1);
    for (uint32_t b = 0; b < 256; ++b) {
      std::string ch;
      uint32_t c = chars[b];
      if (c < 0x80) {
        ch += char(c);
      } else {
        ch += char(0xC0 | (c >> 6));
        ch += char(0x80 | (c & 0x3F));
      }
      auto it = idOfToken.find(ch);
      if (it != idOfToken.end())
        t.byte_ids[b] = it->second;
    }
    t.token_offsets.reserve(size_t(size) + 1);
    t.token_offsets.push_back(0);
    for (int64_t id = 0; id < size; ++id) {
      auto it = byId.find(id);
      if (it != byId.end())
        t.token_bytes.insert(t.token_bytes.end(), it->second.begin(), it->second.end());
      t.token_offsets.push_back(uint32_t(t.token_bytes.size()));
    }

    // Merges "left right" (or ["left", "right"]) in rank order, as id triples.
    const json &merges = model["merges"];
    t.merges.reserve(merges.size() * 3);
    for (size_t r = 0; r < merges.size(); ++r) {
      const json &m = merges[r];
      std::string left, right;
      if (m.is_string()) {
        std::string s = m.get<std::string>();
        size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          return reader.fail(llvm::formatv("model.merges[{0}] \"{1}\" is not two tokens "
                                           "separated by one space",
                                           r, escapeForMessage(s)));
        left = s.substr(0, space);
        right = s.substr(space + 1);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        left = m[0].get<std::string>();
        right = m[1].get<std::string>();
      } else {
        return reader.fail(llvm::formatv("model.merges[{0}] is not a pair of tokens", r));
      }
      auto l = idOfToken.find(left), rt = idOfToken.find(right),
           merged = idOfToken.find(left + right);
      if (l == idOfToken.end() || rt == idOfToken.end() || merged == idOfToken.end())
        return reader.fail(llvm::formatv("model.merges[{0}] (\"{1}\" + \"{2}\"): a part or "
                                         "the merged token is not in model.vocab",
                                         r, escapeForMessage(left), escapeForMessage(right)));
      t.merges.insert(t.merges.end(), {l->second, rt->second, merged->second});
    }

    // tokenizer_config.json: BOS/EOS, whether BOS is added, the chat template.
    std::string configPath = joinPath(dir, "tokenizer_config.json");
    t.source = "tokenizer.json";
    if (llvm::sys::fs::exists(configPath)) {
      auto configText = readTextFile(configPath);
      if (!configText)
        return configText.takeError();
      auto config = parseJson(*configText, configPath);
      if (!config)
        return config.takeError();
      if (!config->is_object())
        return fileError(configPath, "not a JSON object");
      t.source += ", tokenizer_config.json";
      auto idOf = [&](const std::string &content) -> int32_t {
        auto a = addedIds.find(content);
        if (a != addedIds.end())
          return a->second;
        auto v = idOfToken.find(content);
        return v == idOfToken.end() ? -1 : v->second;
      };
      for (auto [key, field] : {std::pair<const char *, int32_t *>{"bos_token", &t.bos_id},
                                {"eos_token", &t.eos_id}}) {
        std::string content = specialContent(*config, key);
        if (content.empty())
          continue;
        *field = idOf(content);
        if (*field < 0)
          return fileError(configPath, llvm::formatv("{0} \"{1}\" is not a token of "
                                                     "tokenizer.json",
                                                     key, escapeForMessage(content)));
      }
      t.add_bos = config->value("add_bos_token", false) == true;
      t.add_eos = config->value("add_eos_token", false) == true;
      if (config->contains("chat_template")) {
        const json &tmpl = (*config)["chat_template"];
        if (tmpl.is_string()) {
          t.chat_template = tmpl.get<std::string>();
        } else if (tmpl.is_array()) { // [{"name": ..., "template": ...}]: the default one
          for (const json &entry : tmpl)
            if (entry.is_object() && entry.value("name", "") == "default" &&
                entry.contains("template") && entry["template"].is_string())
              t.chat_template = entry["template"].get<std::string>();
        }
      }
    }
  } catch (const json::exception &e) {
    return reader.fail(llvm::formatv("unexpected JSON: {0}", e.what()));
  }
  return std::move(result);
}

} // namespace moec::checkpoint
