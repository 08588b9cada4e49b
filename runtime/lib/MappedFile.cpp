//===- MappedFile.cpp - Read-only bytes of a file, mapped in place --------===//
#include "moec/runtime/MappedFile.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moec {

namespace {

// Mapped ranges, for the SIGBUS handler: a mapped file that shrinks under the process
// (cp over a served plan) turns reads past its new end into SIGBUS.
struct MappedRange {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  char name[512];
};
constexpr int kRanges = 256;
MappedRange gRanges[kRanges];
std::atomic<bool> gRangeClaimed[kRanges];
struct sigaction gPreviousBus;

int registerRange(const void *data, size_t size, const std::string &path) {
  for (int i = 0; i < kRanges; ++i) {
    bool expected = false;
    if (!gRangeClaimed[i].compare_exchange_strong(expected, true))
      continue;
    size_t n = std::min(path.size(), sizeof(gRanges[i].name) - 1);
    std::memcpy(gRanges[i].name, path.data(), n);
    gRanges[i].name[n] = '\0';
    gRanges[i].end.store(uintptr_t(data) + size, std::memory_order_relaxed);
    gRanges[i].begin.store(uintptr_t(data), std::memory_order_release);
    return i;
  }
  return -1;
}

void unregisterRange(int slot) {
  if (slot < 0)
    return;
  gRanges[slot].begin.store(0, std::memory_order_release);
  gRanges[slot].end.store(0, std::memory_order_release);
  gRangeClaimed[slot].store(false, std::memory_order_release);
}

void writeAll(const char *text) {
  size_t n = std::strlen(text);
  while (n > 0) {
    ssize_t w = ::write(STDERR_FILENO, text, n);
    if (w <= 0)
      return;
    text += w;
    n -= size_t(w);
  }
}

void onBusError(int sig, siginfo_t *info, void *context) {
  uintptr_t address = uintptr_t(info->si_addr);
  for (MappedRange &range : gRanges) {
    uintptr_t begin = range.begin.load(std::memory_order_acquire);
    if (begin == 0 || address < begin || address >= range.end.load(std::memory_order_relaxed))
      continue;
    // Async-signal-safe: write and _exit only.
    writeAll("moec: ");
    writeAll(range.name);
    writeAll(": the file changed while in use (it was truncated or rewritten in place); "
             "replace a plan or weight file by writing a new file and renaming it over the "
             "old one, as moec's own writers do\n");
    ::_exit(kExitFileChanged);
  }
  // Not ours: the previous disposition decides.
  if (gPreviousBus.sa_flags & SA_SIGINFO) {
    if (gPreviousBus.sa_sigaction) {
      gPreviousBus.sa_sigaction(sig, info, context);
      return;
    }
  } else if (gPreviousBus.sa_handler != SIG_DFL && gPreviousBus.sa_handler != SIG_IGN) {
    gPreviousBus.sa_handler(sig);
    return;
  }
  ::signal(sig, SIG_DFL); // the faulting access repeats and terminates as before
}

} // namespace

void installMappedFileFaultHandler() {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true))
    return;
  struct sigaction action = {};
  action.sa_sigaction = onBusError;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, &gPreviousBus);
}

MappedFile::MappedFile(MappedFile &&other) noexcept
    : data_(other.data_), size_(other.size_), mapped_(other.mapped_), slot_(other.slot_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.mapped_ = false;
  other.slot_ = -1;
}

MappedFile &MappedFile::operator=(MappedFile &&other) noexcept {
  if (this != &other) {
    reset();
    data_ = other.data_;
    size_ = other.size_;
    mapped_ = other.mapped_;
    slot_ = other.slot_;
    other.data_ = nullptr;
    other.size_ = 0;
    other.mapped_ = false;
    other.slot_ = -1;
  }
  return *this;
}

MappedFile::~MappedFile() { reset(); }

void MappedFile::reset() {
  if (data_) {
    unregisterRange(slot_);
    if (mapped_)
      ::munmap(const_cast<uint8_t *>(data_), size_);
    else
      std::free(const_cast<uint8_t *>(data_));
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
  slot_ = -1;
}

Status MappedFile::open(const std::string &path, MappedFile *out) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return Status::error("%s: cannot open: %s", path.c_str(), std::strerror(errno));
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    int err = errno;
    ::close(fd);
    return Status::error("%s: cannot stat: %s", path.c_str(), std::strerror(err));
  }
  if (!S_ISREG(info.st_mode)) {
    ::close(fd);
    return Status::error("%s: not a regular file (%s)", path.c_str(),
                         S_ISFIFO(info.st_mode)  ? "a FIFO"
                         : S_ISDIR(info.st_mode) ? "a directory"
                         : S_ISCHR(info.st_mode) ? "a character device"
                         : S_ISSOCK(info.st_mode) ? "a socket"
                                                  : "a special file");
  }
  MappedFile result;
  if (info.st_size > 0) {
    void *map = ::mmap(nullptr, static_cast<size_t>(info.st_size), PROT_READ, MAP_PRIVATE,
                       fd, 0);
    if (map == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return Status::error("%s: cannot map: %s", path.c_str(), std::strerror(err));
    }
    result.data_ = static_cast<const uint8_t *>(map);
    result.size_ = static_cast<size_t>(info.st_size);
    result.mapped_ = true;
    result.slot_ = registerRange(map, result.size_, path);
  }
  ::close(fd);
  *out = std::move(result);
  return Status();
}

MappedFile MappedFile::copyOf(const void *data, size_t size) {
  MappedFile result;
  if (size == 0)
    return result;
  // aligned_alloc needs a size that is a multiple of the alignment.
  void *copy = std::aligned_alloc(64, (size + 63) & ~size_t(63));
  if (!copy)
    return result;
  std::memcpy(copy, data, size);
  result.data_ = static_cast<const uint8_t *>(copy);
  result.size_ = size;
  return result;
}

std::string directoryOf(const std::string &path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

} // namespace moec
