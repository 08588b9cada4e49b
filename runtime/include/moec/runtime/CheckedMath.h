//===- CheckedMath.h - Overflow-checked size arithmetic ---------*- C++ -*-===//
//
// Every size computed from file contents goes through these helpers, so a plan with
// absurd dimensions is rejected instead of wrapping around.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_CHECKEDMATH_H
#define MOEC_RUNTIME_CHECKEDMATH_H

#include <cstdint>

namespace moec {

/// *out = a * b; returns false (and leaves *out unspecified) on overflow.
inline bool checkedMul(uint64_t a, uint64_t b, uint64_t *out) {
  return !__builtin_mul_overflow(a, b, out);
}

/// *out = a + b; returns false on overflow.
inline bool checkedAdd(uint64_t a, uint64_t b, uint64_t *out) {
  return !__builtin_add_overflow(a, b, out);
}

/// *out = a rounded up to a multiple of `alignment` (a power of two); false on overflow.
inline bool checkedAlignUp(uint64_t a, uint64_t alignment, uint64_t *out) {
  uint64_t sum;
  if (!checkedAdd(a, alignment - 1, &sum))
    return false;
  *out = sum & ~(alignment - 1);
  return true;
}

/// Rounds up to a multiple of `alignment` (a power of two) for values known small.
constexpr uint64_t alignUp(uint64_t a, uint64_t alignment) {
  return (a + alignment - 1) & ~(alignment - 1);
}

/// Ceiling division of a non-negative value by a positive one; never overflows.
constexpr int64_t ceilDiv(int64_t a, int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

} // namespace moec

#endif // MOEC_RUNTIME_CHECKEDMATH_H
