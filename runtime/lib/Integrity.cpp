//===- Integrity.cpp - Checksums of plans and their weight files ----------===//
#include "moec/runtime/Integrity.h"

// xxHash from Debian (libxxhash-dev), compiled into this file.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>

namespace moec {

struct StreamDigest::State {
  XXH3_state_t full;
  XXH3_state_t head;
};

StreamDigest::StreamDigest() : state_(new State) {
  XXH3_64bits_reset(&state_->full);
  XXH3_64bits_reset(&state_->head);
}

StreamDigest::~StreamDigest() = default;

void StreamDigest::update(const void *data, size_t size) {
  if (size == 0)
    return;
  XXH3_64bits_update(&state_->full, data, size);
  if (size_ < kHeadDigestBytes)
    XXH3_64bits_update(&state_->head, data,
                       size_t(std::min<uint64_t>(size, kHeadDigestBytes - size_)));
  size_ += size;
}

uint64_t StreamDigest::head() const { return XXH3_64bits_digest(&state_->head); }
uint64_t StreamDigest::full() const { return XXH3_64bits_digest(&state_->full); }

void digestBytes(const void *data, size_t size, uint64_t *head, uint64_t *full) {
  *full = XXH3_64bits(data, size);
  *head = headDigest(data, size);
}

uint64_t headDigest(const void *data, size_t size) {
  return XXH3_64bits(data, size_t(std::min<uint64_t>(size, kHeadDigestBytes)));
}

uint64_t metadataDigest(const uint8_t *data, size_t size, size_t zeroAt) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  static const uint8_t zeros[8] = {};
  size_t before = std::min(zeroAt, size);
  XXH3_64bits_update(&state, data, before);
  if (zeroAt + 8 <= size) {
    XXH3_64bits_update(&state, zeros, 8);
    XXH3_64bits_update(&state, data + zeroAt + 8, size - zeroAt - 8);
  }
  return XXH3_64bits_digest(&state);
}

bool metadataDigestOffset(const plan::Plan &root, const uint8_t *fileStart, size_t *offset) {
  const plan::Integrity *integrity = root.integrity();
  if (!integrity)
    return false;
  // Generated tables inherit flatbuffers::Table privately; the pointer is the table.
  const auto *table = reinterpret_cast<const flatbuffers::Table *>(integrity);
  const uint8_t *field = table->GetAddressOf(plan::Integrity::VT_METADATA_XXH3);
  if (!field)
    return false;
  *offset = size_t(field - fileStart);
  return true;
}

} // namespace moec
