//===- Avx512.cpp - The AVX-512 F/BW/VL kernel table ----------------------===//
//
// Compiled with -mavx512f -mavx512bw -mavx512vl (plus the AVX2 set); only called
// after the dispatcher saw those features. The primitives are in Avx512.h.
//
//===----------------------------------------------------------------------===//

#include "Avx512.h"

namespace moec::cpu::detail {

const KernelTable &avx512KernelTable() {
  static const KernelTable table = makeKernelTable<Avx512>("avx512");
  return table;
}

} // namespace moec::cpu::detail
