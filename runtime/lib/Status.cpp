//===- Status.cpp - Error status with a formatted message -----------------===//
#include "moec/runtime/Status.h"

#include <cstdarg>
#include <cstdio>
#include <vector>

namespace moec {

Status Status::error(const char *format, ...) {
  Status status;
  status.failed_ = true;
  va_list args;
  va_start(args, format);
  va_list copy;
  va_copy(copy, args);
  int length = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (length > 0) {
    std::vector<char> text(static_cast<size_t>(length) + 1);
    std::vsnprintf(text.data(), text.size(), format, args);
    status.message_.assign(text.data(), static_cast<size_t>(length));
  } else {
    status.message_ = "unknown error";
  }
  va_end(args);
  return status;
}

Status Status::withPrefix(const std::string &prefix) const {
  if (ok())
    return *this;
  Status status = *this;
  status.message_ = prefix + ": " + message_;
  return status;
}

} // namespace moec
