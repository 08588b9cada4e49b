//===- Avx512Vnni.cpp - The AVX-512 kernel table with VNNI int8 products ---===//
//
// Compiled with -mavx512vnni beside the AVX-512 F/BW/VL set; only called after
// the dispatcher saw AVX512_VNNI. The traits are in Avx512Vnni.h.
//
//===----------------------------------------------------------------------===//

#include "Avx512Vnni.h"

namespace moec::cpu::detail {

const KernelTable &avx512VnniKernelTable() {
  static const KernelTable table = makeKernelTable<Avx512Vnni>("avx512-vnni");
  return table;
}

} // namespace moec::cpu::detail
