//===- FuzzMessage.h - The one-line error rule, checked by fuzz targets -*- C++ -*-===//
//
// Every loader error is one line that starts with the file's name and holds only
// printable ASCII (names from the file are escaped). A fuzz target aborts on a
// message that breaks the rule, so libFuzzer reports it like a crash.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TESTS_FUZZ_FUZZMESSAGE_H
#define MOEC_TESTS_FUZZ_FUZZMESSAGE_H

#include <cstdio>
#include <cstdlib>
#include <string>

namespace moec::fuzz {

/// Aborts unless `message` starts with `file` + ": " and is printable ASCII.
inline void checkOneLineMessage(const std::string &message, const std::string &file) {
  bool ok = message.rfind(file + ": ", 0) == 0 && message.size() > file.size() + 2;
  for (unsigned char c : message)
    ok = ok && c >= 0x20 && c < 0x7f;
  if (!ok) {
    std::fprintf(stderr, "bad error message (%zu bytes): ", message.size());
    for (unsigned char c : message)
      std::fprintf(stderr, c >= 0x20 && c < 0x7f ? "%c" : "\\x%02X", c);
    std::fprintf(stderr, "\n");
    std::abort();
  }
}

} // namespace moec::fuzz

#endif // MOEC_TESTS_FUZZ_FUZZMESSAGE_H
