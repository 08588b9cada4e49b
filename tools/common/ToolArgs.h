//===- ToolArgs.h - Number arguments of the runtime-only tools -*- C++ -*-===//
//
// moec-run, moec-serve and moec-rollout read numbers from their command lines the same
// way: plain decimal digits with an optional leading '-', no whitespace or '+', in a
// range; a float as strtof reads it, without leading whitespace.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TOOLS_COMMON_TOOLARGS_H
#define MOEC_TOOLS_COMMON_TOOLARGS_H

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace moec::tools {

/// True when `c` is an ASCII decimal digit (not locale-dependent, unlike isdigit).
inline bool isDigit(char c) { return c >= '0' && c <= '9'; }

/// A decimal integer in [lo, hi], written as digits with an optional leading '-':
/// strtoll's leading whitespace and '+' (" 3", "+5") are malformed here.
inline bool parseInt(const std::string &text, int64_t lo, int64_t hi, int64_t *out) {
  size_t first = !text.empty() && text[0] == '-' ? 1 : 0;
  if (first >= text.size() || !isDigit(text[first]))
    return false;
  errno = 0;
  char *end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || value < lo || value > hi)
    return false;
  *out = value;
  return true;
}

/// A number as strtof reads it, but without leading whitespace.
inline bool parseFloat(const std::string &text, float *out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0])))
    return false;
  errno = 0;
  char *end = nullptr;
  float value = std::strtof(text.c_str(), &end);
  if (errno != 0 || *end != '\0')
    return false;
  *out = value;
  return true;
}

} // namespace moec::tools

#endif // MOEC_TOOLS_COMMON_TOOLARGS_H
