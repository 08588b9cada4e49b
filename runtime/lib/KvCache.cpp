//===- KvCache.cpp - The plan's persistent states (the KV cache) ----------===//
#include "moec/runtime/KvCache.h"

#include "moec/runtime/CheckedMath.h"
#include "moec/runtime/Plan.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>

namespace moec {

Status KvCache::create(const Plan &plan, Backend &backend, int32_t numSequences,
                       int64_t capacity, std::unique_ptr<KvCache> *out) {
  if (numSequences < 1)
    return Status::error("kv cache: %d sequences requested, need at least 1", numSequences);
  if (capacity < 1)
    return Status::error("kv cache: capacity of %" PRId64 " tokens requested, need at least 1",
                         capacity);
  std::unique_ptr<KvCache> cache(new KvCache());
  cache->backend_ = &backend;
  cache->numSequences_ = numSequences;
  cache->capacity_ = capacity;
  cache->lengths_.assign(size_t(numSequences), 0);
  cache->prefixRows_.assign(size_t(numSequences), 0);
  cache->shareIds_.assign(size_t(numSequences), 0);
  cache->prefixSeq_.resize(size_t(numSequences));
  for (int32_t s = 0; s < numSequences; ++s)
    cache->prefixSeq_[size_t(s)] = s;
  for (size_t i = 0; i < plan.numStates(); ++i) {
    const StateInfo &state = plan.state(i);
    uint64_t perSequence, bytes;
    if (!checkedAdd(cache->bytesPerToken_, state.rowBytes, &cache->bytesPerToken_) ||
        !checkedMul(state.rowBytes, uint64_t(capacity), &perSequence) ||
        !checkedMul(perSequence, uint64_t(numSequences), &bytes) ||
        !checkedAdd(cache->totalBytes_, bytes, &cache->totalBytes_))
      return Status::error("kv cache: %d sequences x %" PRId64 " tokens overflow 64 bits",
                           numSequences, capacity);
    DeviceBuffer memory;
    Status status = backend.allocate(bytes, &memory);
    if (!status.ok())
      return status.withPrefix("kv cache: " + state.name);
    cache->memory_.push_back(memory);
    StateBinding binding;
    binding.data = static_cast<uint8_t *>(memory.data);
    binding.sequenceStride = perSequence;
    binding.rowBytes = state.rowBytes;
    binding.capacity = capacity;
    binding.prefixSeq = cache->prefixSeq_.data();
    binding.prefixRows = cache->prefixRows_.data();
    binding.shareIds = cache->shareIds_.data();
    cache->bindings_.push_back(binding);
    cache->layout_.push_back({state.dtype, state.shape});
  }
  *out = std::move(cache);
  return Status();
}

KvCache::~KvCache() {
  if (backend_)
    for (DeviceBuffer &memory : memory_)
      backend_->release(memory);
}

bool KvCache::fits(const Plan &plan) const {
  if (plan.numStates() != layout_.size())
    return false;
  for (size_t i = 0; i < layout_.size(); ++i)
    if (plan.state(i).dtype != layout_[i].dtype || plan.state(i).shape != layout_[i].shape)
      return false;
  return true;
}

Status KvCache::checkBatch(const int32_t *positions, const int32_t *seqIds, int64_t count,
                           std::vector<int64_t> *newLengths) const {
  *newLengths = lengths_;
  for (int64_t t = 0; t < count; ++t) {
    int32_t seq = seqIds[t], position = positions[t];
    if (seq < 0 || seq >= numSequences_)
      return Status::error("token %" PRId64 " has sequence id %d, the KV cache has %d "
                           "sequences",
                           t, seq, numSequences_);
    if (position < 0)
      return Status::error("token %" PRId64 " has negative position %d", t, position);
    if (position >= capacity_)
      return Status::error("token %" PRId64 " of sequence %d at position %d exceeds the KV "
                           "cache capacity of %" PRId64 " tokens",
                           t, seq, position, capacity_);
    if (position < prefixRows_[size_t(seq)])
      return Status::error("token %" PRId64 " of sequence %d at position %d falls in the %" PRId64
                           " rows it shares with sequence %d",
                           t, seq, position, prefixRows_[size_t(seq)], prefixSeq_[size_t(seq)]);
    int64_t &length = (*newLengths)[size_t(seq)];
    length = std::max(length, int64_t(position) + 1);
  }
  // Every row between a sequence's old length and its new one must be written by
  // this batch; otherwise attention would read a row that holds no token.
  for (int32_t seq = 0; seq < numSequences_; ++seq) {
    int64_t from = lengths_[size_t(seq)], to = (*newLengths)[size_t(seq)];
    if (to == from)
      continue;
    std::vector<bool> written(size_t(to - from), false);
    for (int64_t t = 0; t < count; ++t)
      if (seqIds[t] == seq && positions[t] >= from)
        written[size_t(positions[t] - from)] = true;
    auto gap = std::find(written.begin(), written.end(), false);
    if (gap != written.end())
      return Status::error("sequence %d: position %" PRId64 " is missing; the cache holds %" PRId64
                           " tokens and the batch reaches position %" PRId64,
                           seq, from + int64_t(gap - written.begin()), from, to - 1);
  }
  return Status();
}

Status KvCache::share(int32_t seq, int32_t parent, int64_t rows) {
  if (seq < 0 || seq >= numSequences_ || parent < 0 || parent >= numSequences_)
    return Status::error("kv cache: share(%d, %d): no such sequence (the cache has %d)", seq,
                         parent, numSequences_);
  if (seq == parent)
    return Status::error("kv cache: sequence %d cannot share its own rows", seq);
  if (prefixRows_[size_t(parent)] > 0)
    return Status::error("kv cache: sequence %d shares rows itself; share from its source, "
                         "sequence %d",
                         parent, prefixSeq_[size_t(parent)]);
  if (rows < 1 || rows > lengths_[size_t(parent)])
    return Status::error("kv cache: sequence %d holds %" PRId64 " tokens, cannot share %" PRId64,
                         parent, lengths_[size_t(parent)], rows);
  lengths_[size_t(seq)] = rows;
  prefixSeq_[size_t(seq)] = parent;
  prefixRows_[size_t(seq)] = rows;
  // Unique across caches, so that a backend's record of a copy made for an earlier
  // share (maybe of a cache since freed at the same address) never matches this one.
  static std::atomic<uint64_t> lastShareId{0};
  shareIds_[size_t(seq)] = ++lastShareId;
  return Status();
}

} // namespace moec
