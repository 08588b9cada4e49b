//===- AtomicFile.cpp - moec's one way of writing an output file ----------===//
#include "moec/runtime/AtomicFile.h"
#include "moec/runtime/MappedFile.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

namespace moec {

namespace {

constexpr size_t kBufferBytes = size_t(1) << 20;
std::atomic<bool> gForceNamed{false};
std::atomic<uint64_t> gCounter{0};

//===----------------------------------------------------------------------===//
// Temporary names that exist on disk, removed when the process is interrupted.
//===----------------------------------------------------------------------===//

struct CleanupSlot {
  std::atomic<bool> used{false};
  char path[PATH_MAX];
};
constexpr int kSlots = 64;
CleanupSlot gSlots[kSlots];
std::atomic<bool> gClaimed[kSlots];
struct sigaction gPrevious[3];
constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

void onSignal(int sig) {
  // Async-signal-safe: only unlink, sigaction and raise.
  for (CleanupSlot &slot : gSlots)
    if (slot.used.load(std::memory_order_acquire))
      ::unlink(slot.path);
  for (int i = 0; i < 3; ++i)
    if (kSignals[i] == sig)
      ::sigaction(sig, &gPrevious[i], nullptr);
  ::raise(sig);
}

void installHandlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int i = 0; i < 3; ++i) {
      struct sigaction current;
      if (::sigaction(kSignals[i], nullptr, &current) != 0)
        continue;
      gPrevious[i] = current;
      // Leave a program's own handler (or an ignored signal) alone.
      if (current.sa_handler != SIG_DFL || (current.sa_flags & SA_SIGINFO))
        continue;
      struct sigaction action = {};
      action.sa_handler = onSignal;
      sigemptyset(&action.sa_mask);
      ::sigaction(kSignals[i], &action, nullptr);
    }
  });
}

/// Registers `path` for removal on a signal; returns the slot or -1 when full.
int registerTemporary(const std::string &path) {
  if (path.size() >= PATH_MAX)
    return -1;
  installHandlers();
  for (int i = 0; i < kSlots; ++i) {
    bool expected = false;
    // Claim the slot with a CAS on a second flag: `used` is set only once the path
    // is complete, so the handler never reads half a name.
    if (gClaimed[i].compare_exchange_strong(expected, true)) {
      std::memcpy(gSlots[i].path, path.c_str(), path.size() + 1);
      gSlots[i].used.store(true, std::memory_order_release);
      return i;
    }
  }
  return -1;
}

void unregisterTemporary(int slot) {
  if (slot < 0)
    return;
  gSlots[slot].used.store(false, std::memory_order_release);
  gClaimed[slot].store(false, std::memory_order_release);
}

std::string errnoText(int err) { return std::strerror(err); }

std::string baseName(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool processGone(long pid) {
  if (pid <= 0 || pid > INT_MAX)
    return false;
  return ::kill(pid_t(pid), 0) != 0 && errno == ESRCH;
}

/// Parses the decimal number at the start of `text` up to the end or a '-';
/// returns -1 when there is none.
long leadingPid(const char *text) {
  if (*text < '0' || *text > '9')
    return -1;
  char *end;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' && *end != '-')
    return -1;
  return value;
}

bool procFdAvailable() {
  static const bool available = ::access("/proc/self/fd", X_OK) == 0;
  return available;
}

} // namespace

namespace detail {

int sweepStaleTemporaries(const std::string &dir, const std::string &base) {
  DIR *d = ::opendir(dir.c_str());
  if (!d)
    return 0;
  // Names used by moec for destination `base`: base.moec-tmp-PID-N (this version),
  // base.moec-staged.tmp-PID and base.tmp-PID (earlier versions).
  const std::string prefixes[] = {base + ".moec-tmp-", base + ".moec-staged.tmp-",
                                  base + ".tmp-"};
  int removed = 0;
  while (struct dirent *entry = ::readdir(d)) {
    const char *name = entry->d_name;
    for (const std::string &prefix : prefixes) {
      if (std::strncmp(name, prefix.c_str(), prefix.size()) != 0)
        continue;
      long pid = leadingPid(name + prefix.size());
      if (processGone(pid) && ::unlinkat(::dirfd(d), name, 0) == 0)
        ++removed;
      break;
    }
  }
  ::closedir(d);
  return removed;
}

void forceNamedTemporaries(bool on) { gForceNamed = on; }

} // namespace detail

Status OutputFile::open(const std::string &path, std::unique_ptr<OutputFile> *out,
                        const OutputOptions &options) {
  std::unique_ptr<OutputFile> file(new OutputFile());
  file->path_ = path;
  if (path.empty())
    return Status::error("output path is empty");
  if (path == "-") {
    if (!options.allowStdout)
      return Status::error("-: standard output is not a possible destination here; give a "
                           "file name");
    std::fflush(stdout); // keep the order of anything printed before
    file->mode_ = Mode::Stdout;
    file->fd_ = STDOUT_FILENO;
    *out = std::move(file);
    return Status();
  }

  // The process's own streams by name: write to the descriptor itself, so that a
  // redirection (`> out`, `>> log`) keeps its file and offset.
  if (path == "/dev/stdout" || path == "/dev/stderr") {
    std::fflush(path == "/dev/stdout" ? stdout : stderr);
    file->mode_ = Mode::Stdout;
    file->fd_ = path == "/dev/stdout" ? STDOUT_FILENO : STDERR_FILENO;
    *out = std::move(file);
    return Status();
  }
  // Anything else under /dev or /proc is a device or a kernel file: never replaced.
  bool kernelPath = path.rfind("/dev/", 0) == 0 || path.rfind("/proc/", 0) == 0;

  std::string target = path;
  struct stat info;
  int keepMode = -1; // an existing file's permissions stay as they were
  if (::stat(path.c_str(), &info) == 0) {
    if (S_ISDIR(info.st_mode))
      return Status::error("%s: is a directory", path.c_str());
    if (!S_ISREG(info.st_mode) || kernelPath) {
      if (!options.allowSpecial)
        return Status::error("%s: not a regular file", path.c_str());
      int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
      if (fd < 0)
        return Status::error("%s: cannot open for writing: %s", path.c_str(),
                             errnoText(errno).c_str());
      file->mode_ = Mode::InPlace;
      file->fd_ = fd;
      *out = std::move(file);
      return Status();
    }
    keepMode = int(info.st_mode & 07777);
    struct stat link;
    if (::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
      // Replace what the symlink points to, keep the symlink.
      char resolved[PATH_MAX];
      if (::realpath(path.c_str(), resolved))
        target = resolved;
    }
  }
  file->target_ = target;
  std::string dir = directoryOf(target);
  std::string base = baseName(target);
  detail::sweepStaleTemporaries(dir, base);

  int fd = -1;
  if (!gForceNamed && procFdAvailable()) {
    fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
      return Status::error("%s: cannot create: %s", path.c_str(), errnoText(errno).c_str());
  }
  if (fd < 0) {
    // No O_TMPFILE here: a unique name, removed on signals, swept if we are killed.
    for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
      file->tempName_ = target + ".moec-tmp-" + std::to_string(::getpid()) + "-" +
                        std::to_string(gCounter.fetch_add(1));
      fd = ::open(file->tempName_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd < 0 && errno != EEXIST)
        return Status::error("%s: cannot create (temporary %s): %s", path.c_str(),
                             file->tempName_.c_str(), errnoText(errno).c_str());
    }
    if (fd < 0)
      return Status::error("%s: cannot create a temporary file", path.c_str());
  }
  if (keepMode >= 0)
    (void)::fchmod(fd, mode_t(keepMode));
  file->fd_ = fd;
  file->mode_ = Mode::Replace;
  *out = std::move(file);
  if (!(*out)->tempName_.empty())
    (*out)->slot_ = registerTemporary((*out)->tempName_);
  return Status();
}

OutputFile::~OutputFile() {
  if (!committed_)
    discard();
}

void OutputFile::discard() {
  if (fd_ >= 0 && mode_ != Mode::Stdout)
    ::close(fd_);
  fd_ = -1;
  if (!tempName_.empty()) {
    ::unlink(tempName_.c_str());
    unregisterTemporary(slot_);
    slot_ = -1;
    tempName_.clear();
  }
}

Status OutputFile::flushBuffer() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      buffer_.clear();
      return Status::error("%s: write failed: %s", path_.c_str(), errnoText(err).c_str());
    }
    done += size_t(n);
  }
  buffer_.clear();
  return Status();
}

Status OutputFile::write(const void *data, size_t size) {
  if (fd_ < 0 || finished_)
    return Status::error("%s: internal error: write after the file was finished",
                         path_.c_str());
  const uint8_t *bytes = static_cast<const uint8_t *>(data);
  if (size >= kBufferBytes) {
    // Large pieces (weights) go to the file directly: one copy fewer.
    MOEC_RETURN_IF_ERROR(flushBuffer());
    while (size > 0) {
      ssize_t n = ::write(fd_, bytes, size);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return Status::error("%s: write failed: %s", path_.c_str(), errnoText(errno).c_str());
      }
      bytes += n;
      size -= size_t(n);
      position_ += uint64_t(n);
    }
    return Status();
  }
  while (size > 0) {
    if (buffer_.capacity() < kBufferBytes)
      buffer_.reserve(kBufferBytes);
    size_t n = std::min(size, kBufferBytes - buffer_.size());
    buffer_.insert(buffer_.end(), bytes, bytes + n);
    bytes += n;
    size -= n;
    position_ += n;
    if (buffer_.size() == kBufferBytes)
      MOEC_RETURN_IF_ERROR(flushBuffer());
  }
  return Status();
}

Status OutputFile::overwrite(uint64_t offset, const void *data, size_t size) {
  if (fd_ < 0 || finished_ || mode_ != Mode::Replace || offset + size > position_)
    return Status::error("%s: internal error: cannot rewrite bytes %llu..%llu",
                         path_.c_str(), static_cast<unsigned long long>(offset),
                         static_cast<unsigned long long>(offset + size));
  MOEC_RETURN_IF_ERROR(flushBuffer());
  const uint8_t *bytes = static_cast<const uint8_t *>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd_, bytes, size, off_t(offset));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return Status::error("%s: write failed: %s", path_.c_str(), errnoText(errno).c_str());
    }
    bytes += n;
    offset += uint64_t(n);
    size -= size_t(n);
  }
  return Status();
}

Status OutputFile::padTo(uint64_t alignment) {
  static const uint8_t zeros[64] = {};
  while (position_ % alignment != 0) {
    uint64_t gap = alignment - position_ % alignment;
    MOEC_RETURN_IF_ERROR(write(zeros, gap < sizeof(zeros) ? gap : sizeof(zeros)));
  }
  return Status();
}

Status OutputFile::finish() {
  if (finished_)
    return Status();
  if (fd_ < 0)
    return Status::error("%s: internal error: the file is closed", path_.c_str());
  MOEC_RETURN_IF_ERROR(flushBuffer());
  if (mode_ == Mode::Replace && ::fsync(fd_) != 0)
    return Status::error("%s: fsync failed: %s", path_.c_str(), errnoText(errno).c_str());
  finished_ = true;
  return Status();
}

std::string OutputFile::readBackPath() const {
  if (mode_ != Mode::Replace || !finished_)
    return std::string();
  if (!tempName_.empty())
    return tempName_;
  return "/proc/self/fd/" + std::to_string(fd_);
}

Status OutputFile::commit() {
  if (committed_)
    return Status();
  Status status = finish();
  if (!status.ok()) {
    discard();
    return status;
  }
  if (mode_ == Mode::Stdout) {
    committed_ = true;
    return Status();
  }
  if (mode_ == Mode::InPlace) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0)
      return Status::error("%s: close failed: %s", path_.c_str(), errnoText(errno).c_str());
    committed_ = true;
    return Status();
  }
  if (tempName_.empty()) {
    // Give the unnamed file a unique name, then rename it over the destination. Only
    // between these two calls does a name exist; a signal there removes it.
    tempName_ = target_ + ".moec-tmp-" + std::to_string(::getpid()) + "-" +
                std::to_string(gCounter.fetch_add(1));
    slot_ = registerTemporary(tempName_);
    std::string self = "/proc/self/fd/" + std::to_string(fd_);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tempName_.c_str(), AT_SYMLINK_FOLLOW) !=
        0) {
      int err = errno;
      unregisterTemporary(slot_);
      slot_ = -1;
      tempName_.clear();
      discard();
      return Status::error("%s: cannot link the finished file: %s", path_.c_str(),
                           errnoText(err).c_str());
    }
  }
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    int err = errno;
    discard();
    return Status::error("%s: close failed: %s", path_.c_str(), errnoText(err).c_str());
  }
  if (std::rename(tempName_.c_str(), target_.c_str()) != 0) {
    int err = errno;
    std::string temp = tempName_;
    discard();
    return Status::error("%s: cannot rename %s into place: %s", path_.c_str(), temp.c_str(),
                         errnoText(err).c_str());
  }
  unregisterTemporary(slot_);
  slot_ = -1;
  tempName_.clear();
  committed_ = true;
  return Status();
}

Status writeFileAtomically(const std::string &path,
                           const std::function<Status(OutputFile &)> &contents,
                           const OutputOptions &options) {
  std::unique_ptr<OutputFile> file;
  MOEC_RETURN_IF_ERROR(OutputFile::open(path, &file, options));
  MOEC_RETURN_IF_ERROR(contents(*file));
  return file->commit();
}

} // namespace moec
