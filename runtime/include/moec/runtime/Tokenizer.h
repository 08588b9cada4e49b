//===- Tokenizer.h - Text to token ids and back, from the plan -----*- C++ -*-===//
//
// The tokenizer a plan carries (plan.fbs `Tokenizer`, compiled by `moec compile` from
// the checkpoint's tokenizer.json): DeepSeek's byte-level BPE, encoding exactly as
// Hugging Face `tokenizers` does.
//
//   text (bytes; invalid UTF-8 becomes U+FFFD, as Python's decode(errors="replace"))
//     -> added tokens split out, leftmost-longest (non-normalized ones first)
//     -> each remaining piece split by the Split regexes in order (PCRE2, UTF + UCP,
//        JIT-compiled), every regex isolating its matches
//     -> each piece's bytes as BPE symbols, merged lowest rank first (leftmost on ties)
//
// Decoding concatenates the tokens' bytes and replaces invalid UTF-8 with U+FFFD;
// TextStream does that incrementally, holding back an incomplete character until
// the token that completes it arrives.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_TOKENIZER_H
#define MOEC_RUNTIME_TOKENIZER_H

#include "moec/runtime/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace moec {
namespace plan {
struct Tokenizer;
} // namespace plan

class Tokenizer {
public:
  ~Tokenizer();
  Tokenizer(const Tokenizer &) = delete;
  Tokenizer &operator=(const Tokenizer &) = delete;

  /// Builds the tokenizer of a plan's table; checks every id against `vocabSize`
  /// (the model's vocabulary), the offsets, the merges and the regexes. The table's
  /// memory must outlive the tokenizer.
  static Status create(const plan::Tokenizer &table, int64_t vocabSize,
                       std::unique_ptr<Tokenizer> *out);

  /// Appends the ids of `text` to `ids`. Added tokens in the text are recognised
  /// (as Hugging Face does with its default split_special_tokens=false).
  void encode(std::string_view text, std::vector<int32_t> *ids) const;
  std::vector<int32_t> encode(std::string_view text) const {
    std::vector<int32_t> ids;
    encode(text, &ids);
    return ids;
  }

  /// The ids of a prompt: BOS first when `bos` and the tokenizer has one (DeepSeek
  /// models are trained with it), unless the text already begins with BOS.
  std::vector<int32_t> encodePrompt(std::string_view text, bool bos) const;

  /// The text of `ids`, invalid UTF-8 replaced by U+FFFD; special added tokens are
  /// left out when `skipSpecial`. Ids of the model's vocabulary that the tokenizer has
  /// no token for decode to nothing (as Hugging Face's decode skips them); an id
  /// outside the model's vocabulary is an error.
  Status decode(const std::vector<int32_t> &ids, bool skipSpecial, std::string *text) const;

  /// The raw bytes of token `id` (empty when the id has no token).
  std::string_view tokenBytes(int32_t id) const;
  /// True when `id` is a special added token.
  bool isSpecial(int32_t id) const;
  /// The id of the added token whose content is `content`, or -1.
  int32_t addedTokenId(std::string_view content) const;

  int32_t bosId() const { return bos_; } ///< -1 when there is none
  int32_t eosId() const { return eos_; } ///< -1 when there is none
  bool addBos() const { return addBos_; } ///< tokenizer_config.json add_bos_token
  const std::string &chatTemplate() const { return chatTemplate_; }
  /// Ids the vocabulary spans (the largest token id + 1).
  int64_t size() const { return int64_t(offsets_.size()) - 1; }

private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<uint32_t> offsets_;
  const uint8_t *bytes_ = nullptr;
  int64_t modelVocab_ = 0; ///< ids below it are valid token ids of the model
  int32_t bos_ = -1, eos_ = -1;
  bool addBos_ = false;
  std::string chatTemplate_;
};

/// `bytes` with every invalid UTF-8 sequence replaced by U+FFFD, each maximal
/// invalid subpart once (Unicode's recommended practice; Python's and Rust's lossy
/// decoding).
std::string sanitizeUtf8(std::string_view bytes);

/// Incremental decoding for streamed output: push() returns the text that is
/// complete so far, holding back the bytes of a character that a later token may
/// complete; finish() returns what is left (an incomplete tail as U+FFFD).
class TextStream {
public:
  explicit TextStream(const Tokenizer &tokenizer) : tokenizer_(tokenizer) {}
  std::string push(int32_t id);
  std::string finish();

private:
  const Tokenizer &tokenizer_;
  std::string pending_;
};

} // namespace moec

#endif // MOEC_RUNTIME_TOKENIZER_H
