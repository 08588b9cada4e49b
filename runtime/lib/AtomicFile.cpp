//===- AtomicFile.cpp - Write a file through a temp file and rename -------===//
#include "moec/runtime/AtomicFile.h"

#include <cerrno>
#include <cstring>
#include <unistd.h>
#include <vector>

namespace moec {

Status AtomicWriter::write(const void *data, size_t size) {
  if (size == 0)
    return Status();
  if (std::fwrite(data, 1, size, file_) != size)
    return Status::error("%s: write failed: %s", path_.c_str(), std::strerror(errno));
  position_ += size;
  return Status();
}

Status AtomicWriter::padTo(uint64_t alignment) {
  static const uint8_t zeros[64] = {};
  while (position_ % alignment != 0) {
    uint64_t gap = alignment - position_ % alignment;
    MOEC_RETURN_IF_ERROR(write(zeros, gap < sizeof(zeros) ? gap : sizeof(zeros)));
  }
  return Status();
}

Status writeFileAtomically(const std::string &path,
                           const std::function<Status(AtomicWriter &)> &contents) {
  std::string temp = path + ".tmp-" + std::to_string(::getpid());
  std::FILE *file = std::fopen(temp.c_str(), "wb");
  if (!file)
    return Status::error("%s: cannot create (temporary %s): %s", path.c_str(), temp.c_str(),
                         std::strerror(errno));
  AtomicWriter writer(file, path);
  Status status = contents(writer);
  if (std::fflush(file) != 0 && status.ok())
    status = Status::error("%s: write failed: %s", path.c_str(), std::strerror(errno));
  if (status.ok() && ::fsync(::fileno(file)) != 0)
    status = Status::error("%s: fsync failed: %s", path.c_str(), std::strerror(errno));
  if (std::fclose(file) != 0 && status.ok())
    status = Status::error("%s: close failed: %s", path.c_str(), std::strerror(errno));
  if (status.ok() && std::rename(temp.c_str(), path.c_str()) != 0)
    status = Status::error("%s: cannot rename %s into place: %s", path.c_str(),
                           temp.c_str(), std::strerror(errno));
  if (!status.ok())
    std::remove(temp.c_str());
  return status;
}

} // namespace moec
