//===- MappedFile.cpp - Read-only bytes of a file, mapped in place --------===//
#include "moec/runtime/MappedFile.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace moec {

MappedFile::MappedFile(MappedFile &&other) noexcept
    : data_(other.data_), size_(other.size_), mapped_(other.mapped_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.mapped_ = false;
}

MappedFile &MappedFile::operator=(MappedFile &&other) noexcept {
  if (this != &other) {
    reset();
    data_ = other.data_;
    size_ = other.size_;
    mapped_ = other.mapped_;
    other.data_ = nullptr;
    other.size_ = 0;
    other.mapped_ = false;
  }
  return *this;
}

MappedFile::~MappedFile() { reset(); }

void MappedFile::reset() {
  if (data_) {
    if (mapped_)
      ::munmap(const_cast<uint8_t *>(data_), size_);
    else
      std::free(const_cast<uint8_t *>(data_));
  }
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
}

Status MappedFile::open(const std::string &path, MappedFile *out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
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
    return Status::error("%s: not a regular file", path.c_str());
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
