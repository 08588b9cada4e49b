//===- AtomicFile.h - moec's one way of writing an output file --*- C++ -*-===//
//
// Every file moec writes (plans, external weight files, checkpoints, MLIR, PTX,
// .npy dumps) goes through OutputFile, so every writer has the same guarantees:
//
//  * A regular destination is replaced atomically: the bytes go to an unnamed file
//    in the destination's directory (O_TMPFILE), which is linked and renamed into
//    place only after every write, flush, fsync and close succeeded. A reader never
//    sees half a file, a failed write (a full disk) leaves the old file untouched,
//    and a killed process (even SIGKILL) leaves nothing behind. Where the
//    filesystem has no O_TMPFILE, a uniquely named temporary file is used instead;
//    it is removed on SIGINT, SIGTERM and SIGHUP, and stale ones of dead processes
//    are swept the next time the same destination is written.
//  * Concurrent writers of one destination never share a temporary name: each
//    rename puts that writer's own complete file in place.
//  * A destination that exists and is not a regular file (/dev/null, a FIFO, a
//    terminal) is written in place, never replaced; a symlink to a regular file
//    keeps being a symlink (its target is replaced). "-" is standard output where
//    the caller allows it.
//
// Errors read "PATH: what failed: reason".
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_ATOMICFILE_H
#define MOEC_RUNTIME_ATOMICFILE_H

#include "moec/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace moec {

/// Options of OutputFile::open.
struct OutputOptions {
  /// Accept "-" for standard output.
  bool allowStdout = false;
  /// Accept a destination that exists and is not a regular file (written in place).
  bool allowSpecial = true;
};

/// One output file being written. Destroying it before commit() discards the bytes
/// and leaves the destination untouched (except for in-place destinations, which
/// have been written to already).
class OutputFile {
public:
  /// How the destination is written.
  enum class Mode {
    Replace, ///< a temporary file renamed over a regular file (or a new one)
    InPlace, ///< an existing non-regular file (device, FIFO), written directly
    Stdout,  ///< "-"
  };

  /// Opens an output for `path`.
  static Status open(const std::string &path, std::unique_ptr<OutputFile> *out,
                     const OutputOptions &options = {});
  ~OutputFile();
  OutputFile(const OutputFile &) = delete;
  OutputFile &operator=(const OutputFile &) = delete;

  /// Appends `size` bytes (buffered; every write to the file is checked).
  Status write(const void *data, size_t size);
  /// Replaces `size` bytes already written at `offset` (offset + size <= position()).
  /// Only a Replace output can go back; the others answer with an error.
  Status overwrite(uint64_t offset, const void *data, size_t size);
  /// Whether overwrite() works (a Replace output: a regular file of our own).
  bool canOverwrite() const { return mode_ == Mode::Replace; }
  /// Appends zero bytes until position() is a multiple of `alignment`.
  Status padTo(uint64_t alignment);
  /// Bytes written so far.
  uint64_t position() const { return position_; }

  /// Writes out the buffer and syncs the file, so that readBackPath() shows every
  /// byte. Called by commit() when not called before.
  Status finish();
  /// After finish(): a path the finished bytes can be read through before they are
  /// committed (for a check of what was written). Empty for in-place and stdout
  /// outputs, which cannot be read back.
  std::string readBackPath() const;
  /// Puts the file in place: finish(), close, then (Replace) link and rename.
  Status commit();

  /// The destination as given.
  const std::string &path() const { return path_; }
  Mode mode() const { return mode_; }

private:
  OutputFile() = default;
  Status flushBuffer();
  void discard();

  std::string path_;        ///< the destination as given (for messages)
  std::string target_;      ///< the file that is replaced (symlinks resolved)
  std::string tempName_;    ///< named temporary file (fallback), or "" for O_TMPFILE
  Mode mode_ = Mode::Replace;
  int fd_ = -1;
  int slot_ = -1;           ///< cleanup slot of tempName_ (removed on signals)
  bool finished_ = false;
  bool committed_ = false;
  uint64_t position_ = 0;
  std::vector<uint8_t> buffer_;
};

/// Creates or replaces `path` with the bytes `contents` writes into the open file, then
/// commits it (see OutputFile). On any error the destination is left as it was.
Status writeFileAtomically(const std::string &path,
                           const std::function<Status(OutputFile &)> &contents,
                           const OutputOptions &options = {});

namespace detail {
/// Removes `dir`'s temporary files for destination `base` left by processes that
/// no longer run (this moec's names and those of earlier versions). Returns how
/// many were removed.
int sweepStaleTemporaries(const std::string &dir, const std::string &base);
/// For tests: forces the named-temporary fallback (as on a filesystem without
/// O_TMPFILE) when `on`.
void forceNamedTemporaries(bool on);
} // namespace detail

} // namespace moec

#endif // MOEC_RUNTIME_ATOMICFILE_H
