//===- Random.cpp - Portable deterministic random numbers -----------------===//
#include "moec/checkpoint/Random.h"

#include <cmath>

namespace moec::checkpoint {

uint64_t SplitMix64::next() {
  uint64_t Z = (State += 0x9E3779B97F4A7C15ULL);
  Z = (Z ^ (Z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  Z = (Z ^ (Z >> 27)) * 0x94D049BB133111EBULL;
  return Z ^ (Z >> 31);
}

double SplitMix64::uniform() {
  // (k + 1) / 2^53 for k in [0, 2^53): never 0, so log() below is finite.
  return static_cast<double>((next() >> 11) + 1) * 0x1.0p-53;
}

double SplitMix64::normal() {
  if (HasSpare) {
    HasSpare = false;
    return SpareNormal;
  }
  double Radius = std::sqrt(-2.0 * std::log(uniform()));
  double Angle = 2.0 * M_PI * uniform();
  SpareNormal = Radius * std::sin(Angle);
  HasSpare = true;
  return Radius * std::cos(Angle);
}

uint64_t deriveSeed(uint64_t Seed, llvm::StringRef Name) {
  uint64_t Hash = 0xCBF29CE484222325ULL; // FNV-1a 64-bit offset basis.
  for (unsigned char C : Name) {
    Hash ^= C;
    Hash *= 0x100000001B3ULL;
  }
  SplitMix64 Mixer(Seed ^ Hash);
  return Mixer.next();
}

} // namespace moec::checkpoint
