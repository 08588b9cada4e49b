//===- MappedFile.h - Read-only bytes of a file, mapped in place -*- C++ -*-===//
//
// Plans and external weight files are memory-mapped read-only so weights are used in
// place, never copied. A MappedFile can also own an aligned copy of bytes already in
// memory (plans loaded from a buffer, e.g. by the fuzzer).
//
// Ownership: a MappedFile owns its mapping or copy; pointers from data() stay valid
// until it is destroyed or moved from.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_MAPPEDFILE_H
#define MOEC_RUNTIME_MAPPEDFILE_H

#include "moec/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace moec {

/// Read-only bytes of one file (mmap) or of an owned 64-byte-aligned copy.
class MappedFile {
public:
  MappedFile() = default;
  MappedFile(MappedFile &&other) noexcept;
  MappedFile &operator=(MappedFile &&other) noexcept;
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;
  ~MappedFile();

  /// Maps `path` read-only. An empty file gives size() == 0 and data() == nullptr.
  /// Errors read "PATH: cannot open: REASON".
  static Status open(const std::string &path, MappedFile *out);
  /// Copies `size` bytes into a 64-byte-aligned buffer owned by the result.
  static MappedFile copyOf(const void *data, size_t size);

  /// The first byte; nullptr when empty.
  const uint8_t *data() const { return data_; }
  /// Number of bytes.
  size_t size() const { return size_; }

private:
  void reset();

  const uint8_t *data_ = nullptr; ///< start of the bytes
  size_t size_ = 0;               ///< number of bytes
  bool mapped_ = false;           ///< true: munmap on destruction; false: free()
  int slot_ = -1;                 ///< entry in the SIGBUS handler's table of ranges
};

/// Exit status after a mapped file shrank under the process (see below).
inline constexpr int kExitFileChanged = 74;

/// Installs a SIGBUS handler: an access to a mapped plan or weight file whose file
/// was truncated meanwhile prints "moec: PATH: the file changed while in use ..." and
/// exits with kExitFileChanged, instead of a bare bus error. Other SIGBUS go to the
/// previous disposition. Programs call it once (moec-run and moec-serve do).
void installMappedFileFaultHandler();

/// Returns the directory part of `path` ("." when it has none).
std::string directoryOf(const std::string &path);

} // namespace moec

#endif // MOEC_RUNTIME_MAPPEDFILE_H
