//===- Bandwidth.h - The machine's own DRAM read bandwidth ------*- C++ -*-===//
//
// What a weight-streaming kernel can approach: every thread sums its contiguous
// slice of a buffer larger than the caches with the widest loads the CPU has
// (four independent accumulators, software prefetch as linear uses it). The
// benchmarks (bench/BandwidthBench.cpp) and `moec bench` measure with it, so a
// kernel's bytes per second can be set against the same machine's, in the same run.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_BANDWIDTH_H
#define MOEC_CPU_BANDWIDTH_H

#include <cstdint>
#include <memory>

namespace moec::cpu {

class ReadBandwidthProbe {
public:
  /// Allocates `bytes` (rounded down to 256-byte units) and touches every page
  /// from the thread that will read it. threads <= 0: defaultNumThreads().
  explicit ReadBandwidthProbe(int threads, int64_t bytes = int64_t(1) << 30);
  ~ReadBandwidthProbe();
  ReadBandwidthProbe(const ReadBandwidthProbe &) = delete;
  ReadBandwidthProbe &operator=(const ReadBandwidthProbe &) = delete;

  /// Reads the whole buffer `passes` times; returns the fastest pass's bytes per
  /// second.
  double measure(int passes = 3);
  int64_t bytes() const { return bytes_; }
  int threads() const { return threads_; }
  /// "avx512" or "avx2": the loads used.
  const char *loads() const;

private:
  /// One read of the buffer by all threads; the sum keeps the loads alive.
  float readOnce() const;

  int threads_;
  int64_t bytes_;
  float *buffer_ = nullptr;
  bool wide_;
};

} // namespace moec::cpu

#endif // MOEC_CPU_BANDWIDTH_H
