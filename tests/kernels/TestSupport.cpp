//===- TestSupport.cpp - Random data, weights and SIMD levels -------------===//

#include "TestSupport.h"

#include <cmath>
#include <cstring>

namespace moec::cpu::test {

Weight TestWeight::view() const {
  Weight w;
  w.type = type;
  w.data = bytes.data();
  w.rows = rows;
  w.cols = cols;
  w.blockScale = scales.empty() ? nullptr : scales.data();
  return w;
}

TestWeight randomWeight(WeightType type, int64_t rows, int64_t cols, std::mt19937 &rng,
                        float amplitude) {
  TestWeight w;
  w.type = type;
  w.rows = rows;
  w.cols = cols;
  const int64_t n = rows * cols;
  std::uniform_real_distribution<float> value(-amplitude, amplitude);
  switch (type) {
  case WeightType::F32: {
    w.bytes.resize(static_cast<size_t>(n) * 4);
    for (int64_t i = 0; i < n; ++i) {
      const float v = value(rng);
      std::memcpy(w.bytes.data() + i * 4, &v, 4);
    }
    break;
  }
  case WeightType::F16:
  case WeightType::BF16: {
    w.bytes.resize(static_cast<size_t>(n) * 2);
    for (int64_t i = 0; i < n; ++i) {
      const float v = value(rng);
      const uint16_t h = type == WeightType::F16 ? floatToF16(v) : floatToBf16(v);
      std::memcpy(w.bytes.data() + i * 2, &h, 2);
    }
    break;
  }
  case WeightType::F8E4M3: {
    w.bytes.resize(static_cast<size_t>(n));
    std::uniform_int_distribution<int> byte(0, 255);
    for (int64_t i = 0; i < n; ++i) {
      int b;
      do
        b = byte(rng);
      while ((b & 0x7F) == 0x7F); // NaN is not a weight
      w.bytes[i] = static_cast<uint8_t>(b);
    }
    const int64_t br = (rows + kFp8BlockSize - 1) / kFp8BlockSize;
    const int64_t bc = (cols + kFp8BlockSize - 1) / kFp8BlockSize;
    std::uniform_real_distribution<float> scale(1e-3f, 4e-3f);
    w.scales.resize(static_cast<size_t>(br * bc));
    for (float &s : w.scales)
      s = scale(rng) * amplitude;
    break;
  }
  case WeightType::I8: {
    // Codes uniform in [-127, 127], block scales such that values reach about
    // +-amplitude.
    w.bytes.resize(static_cast<size_t>(n));
    std::uniform_int_distribution<int> code(-127, 127);
    for (int64_t i = 0; i < n; ++i)
      w.bytes[i] = static_cast<uint8_t>(static_cast<int8_t>(code(rng)));
    const int64_t br = (rows + kFp8BlockSize - 1) / kFp8BlockSize;
    const int64_t bc = (cols + kFp8BlockSize - 1) / kFp8BlockSize;
    std::uniform_real_distribution<float> scale(0.5f / 127, 1.f / 127);
    w.scales.resize(static_cast<size_t>(br * bc));
    for (float &s : w.scales)
      s = scale(rng) * amplitude;
    break;
  }
  }
  return w;
}

TestWeight f32Weight(int64_t rows, int64_t cols, const std::vector<float> &values) {
  TestWeight w;
  w.type = WeightType::F32;
  w.rows = rows;
  w.cols = cols;
  w.bytes.resize(values.size() * 4);
  std::memcpy(w.bytes.data(), values.data(), w.bytes.size());
  return w;
}

std::vector<float> randomVector(int64_t n, std::mt19937 &rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = d(rng);
  return v;
}

double tolerance(double magnitude) { return 1e-5 * magnitude + 1e-7; }

double bound(const ref::Result &r, size_t i) {
  return tolerance(r.magnitude[i]) + (r.slack.empty() ? 0.0 : r.slack[i]);
}

std::string levelName(SimdLevel level) {
  switch (level) {
  case SimdLevel::Scalar:
    return "Scalar";
  case SimdLevel::Avx2:
    return "Avx2";
  case SimdLevel::Avx512:
    return "Avx512";
  case SimdLevel::Avx512Vnni:
    return "Avx512Vnni";
  case SimdLevel::Avx2Vnni:
    return "Avx2Vnni";
  case SimdLevel::Avx512Amx:
    return "Avx512Amx";
  }
  return "Unknown";
}

void PerLevel::SetUp() {
  if (!setSimdLevelForTesting(GetParam()))
    GTEST_SKIP() << "this CPU lacks " << levelName(GetParam());
}

void PerLevel::TearDown() { setSimdLevelForTesting(detectedSimdLevel()); }

} // namespace moec::cpu::test
