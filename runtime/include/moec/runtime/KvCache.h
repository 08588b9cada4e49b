//===- KvCache.h - The latent KV cache of MLA -------------------*- C++ -*-===//
//
// Per sequence and per layer, the cache holds only what MLA needs to attend to a
// past token: the normalised latent c (kv_lora_rank values) and the roped shared key
// k_pe (qk_rope_head_dim values), fp32. Row p of a sequence holds its token at
// position p. Capacity (rows per sequence) and the number of sequences are fixed at
// creation; a batch that would write past them is refused before any kernel runs.
//
// Ownership: a KvCache owns its device memory, which it got from the executor's
// backend; it must not outlive the Executor that created it.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_KVCACHE_H
#define MOEC_RUNTIME_KVCACHE_H

#include "moec/runtime/Backend.h"

#include <vector>

namespace moec {

/// The latent KV cache of every layer for a fixed set of sequences.
class KvCache {
public:
  /// Allocates a cache on `backend` for `numSequences` sequences of up to `capacity`
  /// tokens each.
  static Status create(const Plan &plan, Backend &backend, int32_t numSequences,
                       int64_t capacity, std::unique_ptr<KvCache> *out);
  ~KvCache();
  KvCache(const KvCache &) = delete;
  KvCache &operator=(const KvCache &) = delete;

  /// Sequences (valid sequence ids are 0..numSequences()-1).
  int32_t numSequences() const { return numSequences_; }
  /// Rows (tokens) per sequence.
  int64_t capacity() const { return capacity_; }
  /// Bytes one token occupies across all layers: layers * (C + rope) * 4.
  uint64_t bytesPerToken() const { return bytesPerToken_; }
  /// Bytes of the whole cache.
  uint64_t totalBytes() const { return memory_.bytes; }
  /// Tokens stored for `seq` (rows 0..length-1 are filled).
  int64_t length(int32_t seq) const { return lengths_[size_t(seq)]; }
  /// Forgets sequence `seq` (its rows are overwritten by the next tokens).
  void clear(int32_t seq) { lengths_[size_t(seq)] = 0; }
  /// Slots indexed [layer * numSequences() + seq].
  const std::vector<LatentKvSlot> &slots() const { return slots_; }

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

  Backend *backend_ = nullptr;     ///< where memory_ lives (borrowed)
  DeviceBuffer memory_;            ///< all layers and sequences
  int32_t numSequences_ = 0;       ///< sequences
  int64_t capacity_ = 0;           ///< rows per sequence
  uint64_t bytesPerToken_ = 0;     ///< layers * (C + rope) * 4
  std::vector<int64_t> lengths_;   ///< tokens stored per sequence
  std::vector<LatentKvSlot> slots_; ///< per layer and sequence
};

} // namespace moec

#endif // MOEC_RUNTIME_KVCACHE_H
