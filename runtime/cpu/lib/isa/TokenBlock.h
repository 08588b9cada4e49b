//===- TokenBlock.h - A token count made a compile-time constant -*- C++ -*-===//
//
// Included only by the per-level headers (Linear.h, LinearI8.h); internal
// linkage like them.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_TOKENBLOCK_H
#define MOEC_CPU_LIB_ISA_TOKENBLOCK_H

#include <type_traits>

namespace moec::cpu::detail {
namespace {

/// Calls fn(std::integral_constant<int, tb>()) for tb in 1..MaxTB (nothing for
/// another value): the register tiles are sized by the token count.
template <int MaxTB, class Fn> inline void withTokenBlock(int tb, Fn &&fn) {
  static_assert(MaxTB >= 1 && MaxTB <= 4, "token block");
  switch (tb) {
  case 1:
    return fn(std::integral_constant<int, 1>());
  case 2:
    if constexpr (MaxTB >= 2)
      return fn(std::integral_constant<int, 2>());
    break;
  case 3:
    if constexpr (MaxTB >= 3)
      return fn(std::integral_constant<int, 3>());
    break;
  case 4:
    if constexpr (MaxTB >= 4)
      return fn(std::integral_constant<int, 4>());
    break;
  default:
    break;
  }
}

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_TOKENBLOCK_H
