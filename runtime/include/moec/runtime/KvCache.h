//===- KvCache.h - The plan's persistent states (the KV cache) --*- C++ -*-===//
//
// The KV cache is whatever the plan declares as persistent state (Plan.states): for
// MLA, per layer, the normalised latent c and the roped shared key k_pe of every
// past token. For each state the cache holds `capacity` rows per sequence for a fixed
// number of sequences, in one zeroed allocation on the backend; row p of a sequence
// belongs to its token at position p. A batch that would write past the capacity or
// leave a gap in a sequence is refused before any kernel runs.
//
// Ownership: a KvCache owns its device memory, which it got from the executor's
// backend; it must not outlive the Executor that created it. It borrows nothing from
// the Plan (it keeps its own copy of the state layout).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_KVCACHE_H
#define MOEC_RUNTIME_KVCACHE_H

#include "moec/runtime/Backend.h"

#include <vector>

namespace moec {

/// The persistent states of a plan for a fixed set of sequences.
class KvCache {
public:
  /// Allocates, on `backend`, every state of `plan` for `numSequences` sequences of up
  /// to `capacity` tokens each.
  static Status create(const Plan &plan, Backend &backend, int32_t numSequences,
                       int64_t capacity, std::unique_ptr<KvCache> *out);
  ~KvCache();
  KvCache(const KvCache &) = delete;
  KvCache &operator=(const KvCache &) = delete;

  /// Sequences (valid sequence ids are 0..numSequences()-1).
  int32_t numSequences() const { return numSequences_; }
  /// Rows (tokens) per sequence.
  int64_t capacity() const { return capacity_; }
  /// Bytes one token occupies across all states (the sum of their row bytes).
  uint64_t bytesPerToken() const { return bytesPerToken_; }
  /// Bytes of the whole cache: bytesPerToken() x capacity() x numSequences().
  uint64_t totalBytes() const { return totalBytes_; }
  /// Tokens stored for `seq` (rows 0..length-1 are filled).
  int64_t length(int32_t seq) const { return lengths_[size_t(seq)]; }
  /// Forgets sequence `seq` (its rows are overwritten by the next tokens).
  void clear(int32_t seq) {
    lengths_[size_t(seq)] = 0;
    prefixSeq_[size_t(seq)] = seq;
    prefixRows_[size_t(seq)] = 0;
    shareIds_[size_t(seq)] = 0;
  }
  /// Starts `seq` as a continuation of `parent`'s first `rows` tokens without copying
  /// them: attention over `seq` reads rows [0, rows) from `parent`, and `seq` holds
  /// its own tokens from position `rows` on. `parent` must hold at least `rows`
  /// tokens, share nothing itself, and keep those rows while `seq` uses them (it may
  /// not be cleared or cut back below `rows`; the caller's duty). Used for GRPO's
  /// groups: one prompt prefilled once, G samples decoding on top of it.
  Status share(int32_t seq, int32_t parent, int64_t rows);
  /// The sequence whose rows `seq` reads below sharedRows(seq) (itself when none).
  int32_t sharedWith(int32_t seq) const { return prefixSeq_[size_t(seq)]; }
  int64_t sharedRows(int32_t seq) const { return prefixRows_[size_t(seq)]; }
  /// Keeps only the first `length` tokens of `seq` (no effect when it holds fewer):
  /// the next tokens overwrite the rest, e.g. where a re-rendered conversation
  /// departs from what the cache holds.
  void truncate(int32_t seq, int64_t length) {
    if (length >= 0 && length < lengths_[size_t(seq)])
      lengths_[size_t(seq)] = length;
    if (length < prefixRows_[size_t(seq)]) // cut into the shared prefix: stop sharing
      clear(seq);
  }
  /// Where each state lives on the device, one per Plan.states entry.
  const std::vector<StateBinding> &bindings() const { return bindings_; }
  /// True when the cache was made for a plan with exactly `plan`'s states (same
  /// number, dtypes and row shapes).
  bool fits(const Plan &plan) const;

  /// Checks a batch before it runs: every sequence id exists, every position fits
  /// the capacity, and each sequence's rows stay contiguous from 0 (a position may
  /// rewrite a stored row or extend the sequence, never leave a gap). Fills the
  /// lengths the sequences will have after the batch.
  Status checkBatch(const int32_t *positions, const int32_t *seqIds, int64_t count,
                    std::vector<int64_t> *newLengths) const;
  /// Records the lengths computed by checkBatch once the batch has run.
  void commit(const std::vector<int64_t> &newLengths) { lengths_ = newLengths; }

private:
  KvCache() = default;

  /// What a state looks like, to recognise the plan a cache was made for.
  struct StateLayout {
    plan::DType dtype;          ///< element type
    std::vector<int64_t> shape; ///< row shape
  };

  Backend *backend_ = nullptr;            ///< where memory_ lives (borrowed)
  std::vector<DeviceBuffer> memory_;      ///< one allocation per state
  std::vector<StateBinding> bindings_;    ///< one per state
  std::vector<StateLayout> layout_;       ///< one per state
  int32_t numSequences_ = 0;              ///< sequences
  int64_t capacity_ = 0;                  ///< rows per sequence
  uint64_t bytesPerToken_ = 0;            ///< sum of the states' row bytes
  uint64_t totalBytes_ = 0;               ///< bytes of all states
  std::vector<int64_t> lengths_;          ///< tokens stored per sequence
  std::vector<int32_t> prefixSeq_;        ///< per sequence: whose rows it reads first
  std::vector<int64_t> prefixRows_;       ///< per sequence: how many of them (0: none)
  std::vector<uint64_t> shareIds_;        ///< per sequence: its share() call (0: none)
};

} // namespace moec

#endif // MOEC_RUNTIME_KVCACHE_H
