//===- Tokenizer.cpp - DeepSeek's byte-level BPE, as Hugging Face runs it -===//
#include "moec/runtime/Tokenizer.h"

#include "moec/schema/plan_generated.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace moec {

namespace {

/// Bytes in the UTF-8 sequence that begins with `lead` (1 for a stray byte).
inline size_t utf8Length(uint8_t lead) {
  return lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
}

/// Length of the valid UTF-8 character at text[i..n), or 0 when the bytes there are not
/// one. `*prefix` receives the length of the longest prefix that could still begin a
/// valid character (Unicode's "maximal subpart"), at least 1.
size_t validCharAt(const uint8_t *s, size_t n, size_t i, size_t *prefix) {
  uint8_t b = s[i];
  *prefix = 1;
  if (b < 0x80)
    return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0)
      lo = 0xA0;
    else if (b == 0xED)
      hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0)
      lo = 0x90;
    else if (b == 0xF4)
      hi = 0x8F;
  } else {
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= n)
      return 0;
    uint8_t c = s[i + k];
    uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h)
      return 0;
    *prefix = k + 1;
  }
  return need + 1;
}

/// Number of trailing bytes of s[0..n) that begin a valid character still missing
/// bytes (0 when the text ends on a character boundary or on invalid bytes).
size_t incompleteTail(const uint8_t *s, size_t n) {
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    size_t i = n - back;
    if ((s[i] & 0xC0) == 0x80)
      continue; // a continuation byte: look further back
    size_t prefix = 0;
    if (utf8Length(s[i]) > back && validCharAt(s, n, i, &prefix) == 0 && prefix == back)
      return back;
    return 0;
  }
  return 0;
}

/// A byte trie of added tokens for leftmost-longest matching.
class TokenTrie {
public:
  void add(std::string_view content, int32_t id) {
    uint32_t node = 0;
    for (unsigned char c : content) {
      uint64_t key = (uint64_t(node) << 8) | c;
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        it = edges_.emplace(key, uint32_t(terminal_.size())).first;
        terminal_.push_back(-1);
      }
      node = it->second;
    }
    terminal_[node] = id;
    first_[static_cast<unsigned char>(content[0])] = true;
  }
  bool empty() const { return terminal_.size() == 1; }
  /// The longest token starting at s[i]: its id and length, or -1.
  int32_t longestAt(const uint8_t *s, size_t n, size_t i, size_t *length) const {
    if (!first_[s[i]])
      return -1;
    uint32_t node = 0;
    int32_t best = -1;
    for (size_t k = i; k < n; ++k) {
      auto it = edges_.find((uint64_t(node) << 8) | s[k]);
      if (it == edges_.end())
        break;
      node = it->second;
      if (terminal_[node] >= 0) {
        best = terminal_[node];
        *length = k + 1 - i;
      }
    }
    return best;
  }

private:
  std::unordered_map<uint64_t, uint32_t> edges_;
  std::vector<int32_t> terminal_{-1};
  bool first_[256] = {};
};

/// (left, right) -> (rank, merged id), open addressing.
class MergeTable {
public:
  void reserve(size_t count) {
    size_t capacity = 16;
    while (capacity < count * 2)
      capacity *= 2;
    slots_.assign(capacity, Slot{~uint64_t(0), 0, 0});
    mask_ = capacity - 1;
  }
  /// False when the pair is already present (the first, lowest rank, is kept).
  bool insert(int32_t left, int32_t right, int32_t rank, int32_t merged) {
    uint64_t key = pairKey(left, right);
    for (size_t at = hash(key);; at = (at + 1) & mask_) {
      if (slots_[at].key == key)
        return false;
      if (slots_[at].key == ~uint64_t(0)) {
        slots_[at] = Slot{key, rank, merged};
        return true;
      }
    }
  }
  bool find(int32_t left, int32_t right, int32_t *rank, int32_t *merged) const {
    uint64_t key = pairKey(left, right);
    for (size_t at = hash(key);; at = (at + 1) & mask_) {
      if (slots_[at].key == key) {
        *rank = slots_[at].rank;
        *merged = slots_[at].merged;
        return true;
      }
      if (slots_[at].key == ~uint64_t(0))
        return false;
    }
  }

private:
  struct Slot {
    uint64_t key;
    int32_t rank, merged;
  };
  static uint64_t pairKey(int32_t a, int32_t b) {
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
  }
  size_t hash(uint64_t key) const {
    key ^= key >> 29;
    key *= 0xbf58476d1ce4e5b9ull;
    key ^= key >> 32;
    return size_t(key) & mask_;
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

constexpr size_t kCacheCapacity = 100000; ///< pieces remembered (Hugging Face: 10,000)
constexpr size_t kCacheMaxPiece = 256;    ///< longer pieces are not remembered

} // namespace

struct Tokenizer::Impl {
  std::vector<pcre2_code *> regexes;
  TokenTrie plainTokens;      ///< added tokens matched on the raw text
  TokenTrie normalizedTokens; ///< matched in what the first ones leave
  MergeTable merges;
  int32_t byteId[256];
  std::vector<uint8_t> special; ///< per id: 1 for a special added token
  std::unordered_map<std::string, int32_t> addedByContent;
  mutable std::mutex cacheMutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  ~Impl() {
    for (pcre2_code *code : regexes)
      pcre2_code_free(code);
  }

  struct Work {
    std::vector<pcre2_match_data *> matches;
    struct Symbol {
      int32_t id, prev, next;
      bool alive;
    };
    std::vector<Symbol> symbols;
    struct Merge {
      int32_t rank, pos, merged;
      bool operator<(const Merge &o) const { // for a max-heap: lowest rank, then pos, first
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::vector<Merge> heap;
    std::vector<int32_t> piece;
    ~Work() {
      for (pcre2_match_data *m : matches)
        pcre2_match_data_free(m);
    }
  };

  void bpe(const uint8_t *s, size_t n, Work &w, std::vector<int32_t> *ids) const;
  void cachedBpe(const uint8_t *s, size_t n, Work &w, std::vector<int32_t> *ids) const;
  void split(size_t level, const uint8_t *s, size_t n, Work &w, std::vector<int32_t> *ids) const;
  void encodeText(const uint8_t *s, size_t n, Work &w, std::vector<int32_t> *ids) const;
};

void Tokenizer::Impl::bpe(const uint8_t *s, size_t n, Work &w,
                          std::vector<int32_t> *ids) const {
  auto &symbols = w.symbols;
  symbols.clear();
  for (size_t i = 0; i < n; ++i) {
    int32_t id = byteId[s[i]];
    if (id < 0)
      continue; // no token for this byte (and no unk token): dropped, as HF does
    int32_t at = int32_t(symbols.size());
    symbols.push_back({id, at - 1, -1, true});
    if (at > 0)
      symbols[at - 1].next = at;
  }
  auto &heap = w.heap;
  heap.clear();
  int32_t rank, merged;
  for (size_t i = 0; i + 1 < symbols.size(); ++i)
    if (merges.find(symbols[i].id, symbols[i + 1].id, &rank, &merged))
      heap.push_back({rank, int32_t(i), merged});
  std::make_heap(heap.begin(), heap.end());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    Work::Merge top = heap.back();
    heap.pop_back();
    Work::Symbol &left = symbols[top.pos];
    if (!left.alive || left.next < 0)
      continue;
    Work::Symbol &right = symbols[left.next];
    // The pair at pos may have changed since this merge was queued.
    if (!merges.find(left.id, right.id, &rank, &merged) || merged != top.merged)
      continue;
    left.id = merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0)
      symbols[right.next].prev = top.pos;
    if (left.prev >= 0 && merges.find(symbols[left.prev].id, left.id, &rank, &merged)) {
      heap.push_back({rank, left.prev, merged});
      std::push_heap(heap.begin(), heap.end());
    }
    if (left.next >= 0 && merges.find(left.id, symbols[left.next].id, &rank, &merged)) {
      heap.push_back({rank, top.pos, merged});
      std::push_heap(heap.begin(), heap.end());
    }
  }
  for (const Work::Symbol &symbol : symbols)
    if (symbol.alive)
      ids->push_back(symbol.id);
}

void Tokenizer::Impl::cachedBpe(const uint8_t *s, size_t n, Work &w,
                                std::vector<int32_t> *ids) const {
  if (n == 1) {
    if (byteId[s[0]] >= 0)
      ids->push_back(byteId[s[0]]);
    return;
  }
  if (n > kCacheMaxPiece)
    return bpe(s, n, w, ids);
  std::string key(reinterpret_cast<const char *>(s), n);
  {
    std::lock_guard<std::mutex> lock(cacheMutex);
    auto it = cache.find(key);
    if (it != cache.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  w.piece.clear();
  bpe(s, n, w, &w.piece);
  ids->insert(ids->end(), w.piece.begin(), w.piece.end());
  std::lock_guard<std::mutex> lock(cacheMutex);
  if (cache.size() < kCacheCapacity)
    cache.emplace(std::move(key), w.piece);
}

void Tokenizer::Impl::split(size_t level, const uint8_t *s, size_t n, Work &w,
                            std::vector<int32_t> *ids) const {
  if (n == 0)
    return;
  if (level == regexes.size())
    return cachedBpe(s, n, w, ids);
  pcre2_match_data *match = w.matches[level];
  size_t start = 0, pos = 0;
  while (pos < n) {
    int rc = pcre2_match(regexes[level], s, n, pos, PCRE2_NO_UTF_CHECK, match, nullptr);
    if (rc < 0)
      break;
    const PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(match);
    size_t begin = ovector[0], end = ovector[1];
    if (end == begin) { // an empty match isolates nothing; step over one character
      pos = begin + utf8Length(s[begin]);
      continue;
    }
    split(level + 1, s + start, begin - start, w, ids);
    split(level + 1, s + begin, end - begin, w, ids);
    start = pos = end;
  }
  split(level + 1, s + start, n - start, w, ids);
}

void Tokenizer::Impl::encodeText(const uint8_t *s, size_t n, Work &w,
                                 std::vector<int32_t> *ids) const {
  // Pass 1: non-normalized added tokens; pass 2, in the gaps: normalized ones.
  auto gaps = [&](const TokenTrie &trie, const uint8_t *text, size_t size, auto &&onGap) {
    size_t start = 0, length = 0;
    for (size_t i = 0; i < size;) {
      int32_t id = trie.empty() ? -1 : trie.longestAt(text, size, i, &length);
      if (id < 0) {
        ++i;
        continue;
      }
      onGap(text + start, i - start);
      ids->push_back(id);
      i += length;
      start = i;
    }
    onGap(text + start, size - start);
  };
  gaps(plainTokens, s, n, [&](const uint8_t *gap, size_t gapSize) {
    gaps(normalizedTokens, gap, gapSize, [&](const uint8_t *piece, size_t pieceSize) {
      split(0, piece, pieceSize, w, ids);
    });
  });
}

Tokenizer::Tokenizer() : impl_(new Impl) {}
Tokenizer::~Tokenizer() = default;

Status Tokenizer::create(const plan::Tokenizer &table, int64_t vocabSize,
                         std::unique_ptr<Tokenizer> *out) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  Impl &impl = *t->impl_;
  if (!table.kind() || table.kind()->str() != "byte_level_bpe")
    return Status::error("tokenizer: unsupported kind \"%s\" (this runtime reads "
                         "\"byte_level_bpe\")",
                         table.kind() ? table.kind()->c_str() : "");
  const auto *offsets = table.token_offsets();
  const auto *bytes = table.token_bytes();
  if (!offsets || offsets->size() < 2 || !bytes)
    return Status::error("tokenizer: no vocabulary");
  int64_t size = int64_t(offsets->size()) - 1;
  if (size > vocabSize)
    return Status::error("tokenizer: %" PRId64 " token ids, but the model's vocabulary has %" PRId64,
                         size, vocabSize);
  t->offsets_.assign(offsets->begin(), offsets->end());
  t->modelVocab_ = vocabSize;
  if (t->offsets_[0] != 0 || t->offsets_.back() != bytes->size())
    return Status::error("tokenizer: token offsets do not span the token bytes");
  for (size_t i = 1; i < t->offsets_.size(); ++i)
    if (t->offsets_[i] < t->offsets_[i - 1])
      return Status::error("tokenizer: token offsets decrease at id %zu", i - 1);
  t->bytes_ = bytes->data();

  impl.special.assign(size_t(size), 0);
  if (const auto *added = table.added_tokens())
    for (flatbuffers::uoffset_t i = 0; i < added->size(); ++i) {
      const plan::TokenizerAddedToken *token = added->Get(i);
      if (token->id() < 0 || token->id() >= size || !token->content() ||
          token->content()->size() == 0)
        return Status::error("tokenizer: added token %u: id %d outside the vocabulary or no "
                             "content",
                             i, token->id());
      std::string_view content(token->content()->c_str(), token->content()->size());
      (token->normalized() ? impl.normalizedTokens : impl.plainTokens).add(content, token->id());
      impl.special[size_t(token->id())] = token->special();
      impl.addedByContent.emplace(std::string(content), token->id());
    }

  const auto *byteIds = table.byte_ids();
  if (!byteIds || byteIds->size() != 256)
    return Status::error("tokenizer: byte_ids must hold 256 entries");
  for (size_t b = 0; b < 256; ++b) {
    int32_t id = byteIds->Get(flatbuffers::uoffset_t(b));
    if (id < -1 || id >= size)
      return Status::error("tokenizer: byte_ids[%zu] = %d is outside the vocabulary", b, id);
    impl.byteId[b] = id;
  }

  const auto *merges = table.merges();
  size_t mergeCount = merges ? merges->size() / 3 : 0;
  if (merges && merges->size() % 3)
    return Status::error("tokenizer: merges hold %u values, not triples", merges->size());
  impl.merges.reserve(mergeCount);
  for (size_t r = 0; r < mergeCount; ++r) {
    int32_t left = merges->Get(3 * r), right = merges->Get(3 * r + 1),
            merged = merges->Get(3 * r + 2);
    if (left < 0 || left >= size || right < 0 || right >= size || merged < 0 || merged >= size)
      return Status::error("tokenizer: merge %zu refers to an id outside the vocabulary", r);
    impl.merges.insert(left, right, int32_t(r), merged);
  }

  if (const auto *regexes = table.split_regexes())
    for (flatbuffers::uoffset_t i = 0; i < regexes->size(); ++i) {
      // Hugging Face's patterns are Oniguruma's; DeepSeek's mean the same in PCRE2 with
      // UTF and UCP (\s included: PCRE2's \v covers U+0085, as Oniguruma's \s
      // does), which the fixtures' whitespace cases check.
      std::string pattern = regexes->Get(i)->str();
      int error = 0;
      PCRE2_SIZE at = 0;
      pcre2_code *code =
          pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                        PCRE2_UTF | PCRE2_UCP, &error, &at, nullptr);
      if (!code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(error, message, sizeof(message));
        return Status::error("tokenizer: split regex %u: %s at offset %zu", i,
                             reinterpret_cast<const char *>(message), size_t(at));
      }
      // Without JIT support (some platforms) PCRE2's interpreter runs instead.
      (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
      impl.regexes.push_back(code);
    }

  auto checkId = [&](int32_t id, const char *what) {
    return id >= -1 && id < size
               ? Status()
               : Status::error("tokenizer: %s id %d is outside the vocabulary", what, id);
  };
  MOEC_RETURN_IF_ERROR(checkId(table.bos_id(), "bos"));
  MOEC_RETURN_IF_ERROR(checkId(table.eos_id(), "eos"));
  t->bos_ = table.bos_id();
  t->eos_ = table.eos_id();
  t->addBos_ = table.add_bos() && t->bos_ >= 0;
  if (table.chat_template())
    t->chatTemplate_ = table.chat_template()->str();
  *out = std::move(t);
  return Status();
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t> *ids) const {
  std::string clean = sanitizeUtf8(text);
  Impl::Work work;
  for (pcre2_code *code : impl_->regexes)
    work.matches.push_back(pcre2_match_data_create_from_pattern(code, nullptr));
  impl_->encodeText(reinterpret_cast<const uint8_t *>(clean.data()), clean.size(), work, ids);
}

std::vector<int32_t> Tokenizer::encodePrompt(std::string_view text, bool bos) const {
  std::vector<int32_t> ids;
  if (bos && bos_ >= 0)
    ids.push_back(bos_);
  encode(text, &ids);
  if (ids.size() > 1 && ids[0] == bos_ && ids[1] == bos_)
    ids.erase(ids.begin()); // the text began with BOS
  return ids;
}

std::string_view Tokenizer::tokenBytes(int32_t id) const {
  if (id < 0 || id >= size())
    return {};
  return std::string_view(reinterpret_cast<const char *>(bytes_) + offsets_[id],
                          offsets_[id + 1] - offsets_[id]);
}

bool Tokenizer::isSpecial(int32_t id) const {
  return id >= 0 && id < size() && impl_->special[size_t(id)];
}

int32_t Tokenizer::addedTokenId(std::string_view content) const {
  auto it = impl_->addedByContent.find(std::string(content));
  return it == impl_->addedByContent.end() ? -1 : it->second;
}

Status Tokenizer::decode(const std::vector<int32_t> &ids, bool skipSpecial,
                         std::string *text) const {
  std::string raw;
  for (int32_t id : ids) {
    if (id < 0 || id >= std::max(size(), modelVocab_))
      return Status::error("token id %d is outside the vocabulary of %" PRId64 " tokens", id,
                           std::max(size(), modelVocab_));
    if (skipSpecial && isSpecial(id))
      continue;
    raw += tokenBytes(id);
  }
  *text = sanitizeUtf8(raw);
  return Status();
}

std::string sanitizeUtf8(std::string_view bytes) {
  const auto *s = reinterpret_cast<const uint8_t *>(bytes.data());
  size_t n = bytes.size();
  std::string out;
  out.reserve(n);
  size_t clean = 0; // start of the valid run not yet copied
  for (size_t i = 0; i < n;) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    size_t prefix = 0;
    size_t length = validCharAt(s, n, i, &prefix);
    if (length) {
      i += length;
      continue;
    }
    out.append(bytes.data() + clean, i - clean);
    out += "\xEF\xBF\xBD";
    i += prefix;
    clean = i;
  }
  out.append(bytes.data() + clean, n - clean);
  return out;
}

std::string TextStream::push(int32_t id) {
  pending_ += tokenizer_.tokenBytes(id);
  size_t hold = incompleteTail(reinterpret_cast<const uint8_t *>(pending_.data()),
                               pending_.size());
  std::string ready = sanitizeUtf8(std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string TextStream::finish() {
  std::string rest = sanitizeUtf8(pending_);
  pending_.clear();
  return rest;
}

} // namespace moec
