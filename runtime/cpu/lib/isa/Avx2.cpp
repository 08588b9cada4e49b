//===- Avx2.cpp - The AVX2 + FMA + F16C kernel table ----------------------===//
//
// Compiled with -mavx2 -mfma -mf16c; only called after the dispatcher saw those
// features. The primitives are in Avx2.h.
//
//===----------------------------------------------------------------------===//

#include "Avx2.h"

namespace moec::cpu::detail {

const KernelTable &avx2KernelTable() {
  static const KernelTable table = makeKernelTable<Avx2>("avx2");
  return table;
}

} // namespace moec::cpu::detail
