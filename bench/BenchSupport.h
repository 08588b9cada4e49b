//===- BenchSupport.h - Weight and input generation for moec_bench -*- C++ -*-===//
#ifndef MOEC_BENCH_BENCHSUPPORT_H
#define MOEC_BENCH_BENCHSUPPORT_H

#include "moec/cpu/kernels.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace moec::bench {

/// Memory that the weights of one benchmark span at least: 8x this machine's
/// 32 MiB L3, so every pass streams from DRAM, not from cache.
inline constexpr int64_t kMinFootprintBytes = int64_t(256) << 20;

/// A weight of realistic content (bf16 values in [-1, 1]; FP8 non-NaN bytes with
/// scales near 1e-3), 64-byte aligned like a mapped plan.
class BenchWeight {
public:
  BenchWeight(cpu::WeightType type, int64_t rows, int64_t cols, uint64_t seed);
  /// The kernel-facing view.
  cpu::Weight view() const;
  /// Bytes a linear over this weight reads from it (elements + block scales).
  int64_t streamedBytes() const;

private:
  cpu::WeightType type_;
  int64_t rows_, cols_;
  std::unique_ptr<uint8_t[], void (*)(void *)> data_;
  std::vector<float> scales_;
};

/// n floats uniform in [-1, 1].
std::vector<float> randomFloats(int64_t n, uint64_t seed);

} // namespace moec::bench

#endif // MOEC_BENCH_BENCHSUPPORT_H
