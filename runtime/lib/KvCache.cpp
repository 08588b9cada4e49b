//===- KvCache.cpp - The latent KV cache of MLA ---------------------------===//
#include "moec/runtime/KvCache.h"

#include "moec/runtime/CheckedMath.h"
#include "moec/runtime/Plan.h"

#include <algorithm>
#include <cinttypes>

namespace moec {

Status KvCache::create(const Plan &plan, Backend &backend, int32_t numSequences,
                       int64_t capacity, std::unique_ptr<KvCache> *out) {
  if (numSequences < 1)
    return Status::error("kv cache: %d sequences requested, need at least 1", numSequences);
  if (capacity < 1)
    return Status::error("kv cache: capacity of %" PRId64 " tokens requested, need at least 1",
                         capacity);
  const plan::ModelConfig &config = plan.config();
  uint64_t layers = uint64_t(config.num_hidden_layers());
  uint64_t latent = uint64_t(config.kv_lora_rank()), rope = uint64_t(config.qk_rope_head_dim());
  uint64_t rowFloats = latent + rope;
  uint64_t perToken, total;
  if (!checkedMul(layers * rowFloats, sizeof(float), &perToken) ||
      !checkedMul(perToken, uint64_t(capacity), &total) ||
      !checkedMul(total, uint64_t(numSequences), &total))
    return Status::error("kv cache: %d sequences x %" PRId64 " tokens overflow 64 bits",
                         numSequences, capacity);
  std::unique_ptr<KvCache> cache(new KvCache());
  cache->backend_ = &backend;
  cache->numSequences_ = numSequences;
  cache->capacity_ = capacity;
  cache->bytesPerToken_ = perToken;
  cache->lengths_.assign(size_t(numSequences), 0);
  Status status = backend.allocate(total, &cache->memory_);
  if (!status.ok())
    return status.withPrefix("kv cache");
  // Layout: [layer][sequence] blocks of `capacity` latent rows then `capacity` rope rows.
  float *base = static_cast<float *>(cache->memory_.data);
  uint64_t block = uint64_t(capacity) * rowFloats;
  for (uint64_t l = 0; l < layers; ++l)
    for (uint64_t s = 0; s < uint64_t(numSequences); ++s) {
      float *start = base + (l * uint64_t(numSequences) + s) * block;
      cache->slots_.push_back({start, start + uint64_t(capacity) * latent, capacity});
    }
  *out = std::move(cache);
  return Status();
}

KvCache::~KvCache() {
  if (backend_)
    backend_->release(memory_);
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

} // namespace moec
