//===- TestSupport.h - Random data, weights and SIMD levels for kernel tests -===//
//
// Shared helpers of the kernel tests: owned test weights in every stored type,
// random inputs, the tolerance rule, and a fixture that runs a test once per
// SIMD level (skipped where the CPU lacks the level).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TESTS_KERNELS_TESTSUPPORT_H
#define MOEC_TESTS_KERNELS_TESTSUPPORT_H

#include "Reference.h"
#include "moec/cpu/kernels.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace moec::cpu::test {

/// A weight that owns its bytes (and FP8 block scales); view() borrows them.
struct TestWeight {
  WeightType type = WeightType::F32;    ///< stored element type
  int64_t rows = 0;                      ///< first dimension
  int64_t cols = 0;                      ///< second dimension
  std::vector<uint8_t> bytes;            ///< rows * cols stored elements
  std::vector<float> scales;             ///< FP8 only: one per kFp8BlockSize^2 block
  /// The kernel-facing view.
  Weight view() const;
};

/// A random weight: F32/F16/BF16 hold values uniform in [-amplitude, amplitude],
/// rounded to the type; F8E4M3 holds uniformly random non-NaN bytes (every
/// exponent, subnormals included) with block scales uniform in [1e-3, 4e-3]; I8
/// holds codes uniform in [-127, 127] with block scales in [0.5, 1] * amplitude / 127.
TestWeight randomWeight(WeightType type, int64_t rows, int64_t cols, std::mt19937 &rng,
                        float amplitude = 1.f);
/// An F32 weight holding `values` (row-major).
TestWeight f32Weight(int64_t rows, int64_t cols, const std::vector<float> &values);

/// n values uniform in [lo, hi].
std::vector<float> randomVector(int64_t n, std::mt19937 &rng, float lo = -1.f, float hi = 1.f);

/// Tolerance for a float result against a double reference of a sum whose terms
/// have absolute values summing to `magnitude`: relative 1e-5 of it, plus a floor.
double tolerance(double magnitude);

/// tolerance(r.magnitude[i]) plus r.slack[i] (if any): the bound for element i of a
/// reference result.
double bound(const ref::Result &r, size_t i);

/// Name of a level for test names ("Scalar", "Avx2", "Avx2Vnni", "Avx512", "Avx512Vnni",
/// "Avx512Amx").
std::string levelName(SimdLevel level);

/// A fixture parameterised by SIMD level: forces the level in SetUp (skipping the
/// test when the CPU lacks it) and restores the detected one in TearDown.
class PerLevel : public ::testing::TestWithParam<SimdLevel> {
protected:
  void SetUp() override;
  void TearDown() override;
};

/// Instantiates a PerLevel-derived suite for every level.
#define MOEC_INSTANTIATE_PER_LEVEL(Suite)                                              \
  INSTANTIATE_TEST_SUITE_P(                                                            \
      Levels, Suite,                                                                   \
      ::testing::Values(::moec::cpu::SimdLevel::Scalar, ::moec::cpu::SimdLevel::Avx2,  \
                        ::moec::cpu::SimdLevel::Avx2Vnni,                              \
                        ::moec::cpu::SimdLevel::Avx512,                                \
                        ::moec::cpu::SimdLevel::Avx512Vnni,                            \
                        ::moec::cpu::SimdLevel::Avx512Amx),                            \
      [](const ::testing::TestParamInfo<::moec::cpu::SimdLevel> &info) {               \
        return ::moec::cpu::test::levelName(info.param);                               \
      })

} // namespace moec::cpu::test

#endif // MOEC_TESTS_KERNELS_TESTSUPPORT_H
