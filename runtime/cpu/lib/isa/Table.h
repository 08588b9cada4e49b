//===- Table.h - Builds one SIMD level's KernelTable ------------*- C++ -*-===//
//
// Included only by the per-level translation units. Each defines an `Isa` traits
// struct and calls makeKernelTable<Isa>(name). The traits provide:
//
//   kWidth                 floats per vector V
//   kRowBlock, kTokenBlock linear's register tile: weight rows x tokens
//   kStreamRowBlock, kStreamTokens  the tile for T <= kStreamTokens (decode)
//   zero, set1, load, loadPartial(p, n), store, storePartial(p, v, n)   (n < kWidth;
//                          partial loads zero the lanes past n and never read them)
//   add, sub, mul, div, fma(a, b, c) = a*b + c, max, reduceAdd, reduceMax
//   swapPairs(V)           (kWidth > 1 only) exchanges lanes 2i and 2i + 1
//   exp(V)                 exp with exp(-inf) = 0, relative error ~1e-7
//   expScalar, sqrtScalar  scalar helpers compiled for the level
//   loadWeight<Wt>(rowPtr, k), loadWeightPartial<Wt>(rowPtr, k, n): kWidth stored
//                          weights from element k of a row, as floats. FP8 returns
//                          value / 256 (the f16 reinterpretation trick); callers
//                          multiply by 256 * the block scale.
//   loadWeightPair<Wt>(rowPtr, k, lo, hi): 2 * kWidth weights, as two vectors.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_ISA_TABLE_H
#define MOEC_CPU_LIB_ISA_TABLE_H

#include "Attention.h"
#include "Linear.h"
#include "Quantize.h"
#include "Vector.h"

namespace moec::cpu::detail {
namespace {

template <class Isa> KernelTable makeKernelTable(const char *name) {
  KernelTable table;
  table.name = name;
  table.int8ByteCodes = Isa::kByteDot;
  table.amxBf16 = Isa::kAmx;
  table.linearRows = &linearRowsImpl<Isa>;
  table.linearRowsI8 = &Int8Kernel<Isa>::rows;
  table.quantizeActsI8 = &Int8Kernel<Isa>::quantize;
  table.linearTransposed = &linearTransposedImpl<Isa>;
  table.decodeRow = &decodeRowImpl<Isa>;
  table.attend = &AttentionKernel<Isa>::attend;
  table.rmsNormRow = &VectorKernel<Isa>::rmsNormRow;
  table.ropeRow = &VectorKernel<Isa>::ropeRow;
  table.add = &VectorKernel<Isa>::add;
  table.siluMul = &VectorKernel<Isa>::siluMul;
  table.axpy = &VectorKernel<Isa>::axpy;
  table.quantizeFp8Block = &QuantizeKernel<Isa>::block;
  table.quantizeInt8Block = &QuantizeKernel<Isa>::blockInt8;
  return table;
}

} // namespace
} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_ISA_TABLE_H
