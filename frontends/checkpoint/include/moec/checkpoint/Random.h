//===- Random.h - Portable deterministic random numbers ---------*- C++ -*-===//
//
// splitmix64 plus Box-Muller: the same seed gives the same numbers on every
// platform and standard library (std:: distributions are not specified
// bit-exactly, so they are not used).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_RANDOM_H
#define MOEC_CHECKPOINT_RANDOM_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>

namespace moec::checkpoint {

/// The splitmix64 generator (Steele, Lea, Flood 2014) with uniform and normal
/// draws on top.
class SplitMix64 {
public:
  /// Starts the stream at \p Seed.
  explicit SplitMix64(uint64_t Seed) : State(Seed) {}

  /// Returns the next 64 random bits.
  uint64_t next();
  /// Returns a uniform double in (0, 1] built from 53 random bits.
  double uniform();
  /// Returns a standard normal draw (Box-Muller; pairs are used in turn).
  double normal();

private:
  uint64_t State;
  double SpareNormal = 0.0;
  bool HasSpare = false;
};

/// Derives an independent stream seed for \p Name from \p Seed (FNV-1a of the
/// name, mixed with the seed through splitmix64), so each tensor's values do
/// not depend on which other tensors exist or the order they are generated in.
uint64_t deriveSeed(uint64_t Seed, llvm::StringRef Name);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_RANDOM_H
