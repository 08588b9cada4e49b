//===- BenchSupport.cpp - Weight and input generation for moec_bench ------===//

#include "BenchSupport.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace moec::bench {
namespace {

/// xorshift64*: fast enough to fill hundreds of MiB at setup.
struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1DULL;
  }
  float uniform() { return static_cast<float>(next() >> 40) * (2.f / 16777216.f) - 1.f; }
};

int64_t elementBytes(cpu::WeightType t) {
  return t == cpu::WeightType::F32 ? 4 : cpu::isBlockScaled(t) ? 1 : 2;
}

} // namespace

BenchWeight::BenchWeight(cpu::WeightType type, int64_t rows, int64_t cols, uint64_t seed)
    : type_(type), rows_(rows), cols_(cols), data_(nullptr, std::free) {
  const int64_t bytes = rows * cols * elementBytes(type);
  void *p = std::aligned_alloc(64, static_cast<size_t>((bytes + 63) / 64 * 64));
  if (!p)
    throw std::bad_alloc();
  data_.reset(static_cast<uint8_t *>(p));
  Rng rng{seed * 0x9E3779B97F4A7C15ULL + 1};
  const int64_t n = rows * cols;
  switch (type) {
  case cpu::WeightType::F32:
    for (int64_t i = 0; i < n; ++i) {
      const float v = rng.uniform();
      std::memcpy(data_.get() + 4 * i, &v, 4);
    }
    break;
  case cpu::WeightType::F16:
  case cpu::WeightType::BF16:
    for (int64_t i = 0; i < n; ++i) {
      const float v = rng.uniform();
      const uint16_t h = type == cpu::WeightType::F16 ? cpu::floatToF16(v) : cpu::floatToBf16(v);
      std::memcpy(data_.get() + 2 * i, &h, 2);
    }
    break;
  case cpu::WeightType::F8E4M3: {
    for (int64_t i = 0; i < n; ++i) {
      uint8_t b = static_cast<uint8_t>(rng.next() >> 56);
      if ((b & 0x7F) == 0x7F)
        b = 0x7E;
      data_[i] = b;
    }
    const int64_t B = cpu::kFp8BlockSize;
    scales_.resize(static_cast<size_t>(((rows + B - 1) / B) * ((cols + B - 1) / B)));
    for (float &s : scales_)
      s = 1e-3f * (1.5f + rng.uniform());
    break;
  }
  case cpu::WeightType::I8: {
    for (int64_t i = 0; i < n; ++i) {
      const int8_t c = static_cast<int8_t>(static_cast<int>(rng.next() >> 56) % 255 - 127);
      data_[i] = static_cast<uint8_t>(c);
    }
    const int64_t B = cpu::kFp8BlockSize;
    scales_.resize(static_cast<size_t>(((rows + B - 1) / B) * ((cols + B - 1) / B)));
    for (float &s : scales_)
      s = 1e-3f * (1.5f + rng.uniform());
    break;
  }
  }
}

cpu::Weight BenchWeight::view() const {
  cpu::Weight w;
  w.type = type_;
  w.data = data_.get();
  w.rows = rows_;
  w.cols = cols_;
  w.blockScale = scales_.empty() ? nullptr : scales_.data();
  return w;
}

int64_t BenchWeight::streamedBytes() const {
  return rows_ * cols_ * elementBytes(type_) +
         static_cast<int64_t>(scales_.size() * sizeof(float));
}

std::vector<float> randomFloats(int64_t n, uint64_t seed) {
  Rng rng{seed * 0x9E3779B97F4A7C15ULL + 7};
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = rng.uniform();
  return v;
}

} // namespace moec::bench
