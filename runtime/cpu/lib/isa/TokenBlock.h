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

/// Calls fn(std::integral_constant<int, tb>()) for tb in From..MaxTB.
template <int From, int MaxTB, class Fn> inline void withTokenBlockFrom(int tb, Fn &&fn) {
  if (tb == From)
    return fn(std::integral_constant<int, From>());
  if constexpr (From < MaxTB)
    withTokenBlockFrom<From + 1, MaxTB>(tb, fn);
}

/// Calls fn(std::integral_constant<int, tb>()) for tb in 1..MaxTB (nothing for
/// another value): the register tiles are sized by the token count.
template <int MaxTB, class Fn> inline void withTokenBlock(int tb, Fn &&fn) {
  static_assert(MaxTB >= 1 && MaxTB <= 8, "token block");
  if (tb == 1)
    return fn(std::integral_constant<int, 1>());
  if constexpr (MaxTB > 1)
    withTokenBlockFrom<2, MaxTB>(tb, fn);
}

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_TOKENBLOCK_H
