//===- Integrity.h - Checksums of plans and their weight files --*- C++ -*-===//
//
// A plan (format 3) records XXH3-64 digests of its metadata and of every file that
// holds its weights (plan.fbs, table Integrity). The writer computes them, the
// loader checks the cheap ones on every load and the full ones on request.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_INTEGRITY_H
#define MOEC_RUNTIME_INTEGRITY_H

#include "moec/schema/plan_generated.h"

#include <cstddef>
#include <cstdint>
#include <memory>

namespace moec {

/// The head hash covers this many leading bytes of a weight file.
inline constexpr uint64_t kHeadDigestBytes = 65536;

/// XXH3-64 of a byte stream fed in pieces, and of its first kHeadDigestBytes.
class StreamDigest {
public:
  StreamDigest();
  ~StreamDigest();
  StreamDigest(const StreamDigest &) = delete;
  StreamDigest &operator=(const StreamDigest &) = delete;

  void update(const void *data, size_t size);
  /// Bytes fed so far.
  uint64_t size() const { return size_; }
  /// Digest of the first min(size(), kHeadDigestBytes) bytes.
  uint64_t head() const;
  /// Digest of everything fed.
  uint64_t full() const;

private:
  struct State;
  std::unique_ptr<State> state_;
  uint64_t size_ = 0;
};

/// Digests of `size` bytes at `data` (head and full, as StreamDigest).
void digestBytes(const void *data, size_t size, uint64_t *head, uint64_t *full);
/// Head digest only (reads at most kHeadDigestBytes).
uint64_t headDigest(const void *data, size_t size);

/// XXH3-64 of `size` bytes at `data` with the 8 bytes at `zeroAt` read as zero.
uint64_t metadataDigest(const uint8_t *data, size_t size, size_t zeroAt);

/// The offset, from `fileStart`, of the 8 bytes of Integrity.metadata_xxh3 in the
/// plan whose verified root is `root`; false when the plan stores no such field.
bool metadataDigestOffset(const plan::Plan &root, const uint8_t *fileStart, size_t *offset);

} // namespace moec

#endif // MOEC_RUNTIME_INTEGRITY_H
