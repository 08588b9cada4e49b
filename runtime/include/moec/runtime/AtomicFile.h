//===- AtomicFile.h - Write a file through a temp file and rename -*- C++ -*-===//
//
// Every output file (plans, external weight files, .npy dumps) is written to a
// temporary file beside its destination and renamed into place only once complete,
// so a reader never sees a half-written file and a failed write leaves no debris.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_ATOMICFILE_H
#define MOEC_RUNTIME_ATOMICFILE_H

#include "moec/runtime/Status.h"

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace moec {

/// The sink handed to the callback of writeFileAtomically.
class AtomicWriter {
public:
  /// Appends `size` bytes.
  Status write(const void *data, size_t size);
  /// Appends zero bytes until position() is a multiple of `alignment`.
  Status padTo(uint64_t alignment);
  /// Bytes written so far.
  uint64_t position() const { return position_; }

private:
  friend Status writeFileAtomically(const std::string &,
                                    const std::function<Status(AtomicWriter &)> &);
  AtomicWriter(std::FILE *file, std::string path) : file_(file), path_(std::move(path)) {}

  std::FILE *file_;      ///< the temporary file, borrowed
  std::string path_;     ///< the destination, for messages
  uint64_t position_ = 0; ///< bytes written
};

/// Creates `path` with the bytes `contents` writes: writes PATH.tmp-PID, then renames
/// it over `path`. On any error the temporary file is removed and `path` untouched.
Status writeFileAtomically(const std::string &path,
                           const std::function<Status(AtomicWriter &)> &contents);

} // namespace moec

#endif // MOEC_RUNTIME_ATOMICFILE_H
