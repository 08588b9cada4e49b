//===- Status.h - Error status with a formatted message ---------*- C++ -*-===//
//
// The runtime reports every failure as a Status carrying one line of text that names
// the file and the element at fault, e.g.
//   model.plan: steps[12]: operand 3 refers to buffer 99, plan has 40
// No exception crosses the runtime's API. Propagate with MOEC_RETURN_IF_ERROR.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_STATUS_H
#define MOEC_RUNTIME_STATUS_H

#include <string>
#include <utility>

namespace moec {

/// Success, or an error with a one-line human-readable message.
class [[nodiscard]] Status {
public:
  /// Success.
  Status() = default;

  /// An error with the message formatted printf-style.
  static Status error(const char *format, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 1, 2)))
#endif
      ;

  /// Returns an error whose message is `prefix + ": " + message()`; success stays
  /// success. Used to add the file name or element path as errors travel up.
  Status withPrefix(const std::string &prefix) const;

  /// True on success.
  bool ok() const { return !failed_; }
  /// The error message; empty on success.
  const std::string &message() const { return message_; }

private:
  bool failed_ = false; ///< true for an error
  std::string message_; ///< the error's one-line message
};

} // namespace moec

/// Evaluates `expr` (a Status) and returns it from the enclosing function if it failed.
#define MOEC_RETURN_IF_ERROR(expr)                                                 \
  do {                                                                             \
    ::moec::Status moecStatusTmp_ = (expr);                                        \
    if (!moecStatusTmp_.ok())                                                      \
      return moecStatusTmp_;                                                       \
  } while (false)

#endif // MOEC_RUNTIME_STATUS_H
