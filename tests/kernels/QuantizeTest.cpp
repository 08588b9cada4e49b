//===- QuantizeTest.cpp - Block-FP8 weight quantization (spec section 3) ---===//
//
// The quantizer of every SIMD level against the recipe written the plain way: a
// search of the 127 finite e4m3 magnitudes for the nearest to the double
// quotient, ties to the even code (the same search the Python fixture scripts
// use), so the vector bit tricks are checked by something that shares none of them.
//
//===----------------------------------------------------------------------===//

#include "Reference.h"
#include "TestSupport.h"

#include "moec/cpu/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace moec::cpu::test {
namespace {

/// e4m3fn code of q: nearest finite magnitude (|q| saturated at 448), ties to the
/// even code, sign kept.
uint8_t referenceCode(double q) {
  static const std::vector<double> magnitudes = [] {
    std::vector<double> m;
    for (int c = 0; c < 0x7F; ++c)
      m.push_back(ref::fp8(static_cast<uint8_t>(c)));
    return m;
  }();
  const double a = std::min(std::fabs(q), 448.0);
  auto hi = std::lower_bound(magnitudes.begin(), magnitudes.end(), a);
  int code;
  if (hi == magnitudes.begin() || *hi == a) {
    code = int(hi - magnitudes.begin());
  } else {
    int h = int(hi - magnitudes.begin()), l = h - 1;
    double dl = a - magnitudes[l], dh = magnitudes[h] - a;
    code = dh < dl ? h : dl < dh ? l : (h % 2 == 0 ? h : l);
  }
  return static_cast<uint8_t>(code | (std::signbit(q) ? 0x80 : 0));
}

struct Quantized {
  std::vector<uint8_t> codes;
  std::vector<float> scales;
};

/// A block recipe over a float [rows, cols] weight, one B x B block at a time: each
/// block's scale from its amax (scaleOf), each code from its value and the scale.
template <class ScaleFn, class CodeFn>
Quantized referenceBlocks(const std::vector<float> &w, int64_t rows, int64_t cols, int64_t B,
                          ScaleFn scaleOf, CodeFn codeOf) {
  const int64_t gr = (rows + B - 1) / B, gc = (cols + B - 1) / B;
  Quantized q;
  q.codes.resize(size_t(rows * cols));
  q.scales.resize(size_t(gr * gc));
  for (int64_t br = 0; br < gr; ++br)
    for (int64_t bc = 0; bc < gc; ++bc) {
      float amax = 0.f;
      for (int64_t i = br * B; i < std::min(rows, (br + 1) * B); ++i)
        for (int64_t j = bc * B; j < std::min(cols, (bc + 1) * B); ++j)
          amax = std::max(amax, std::fabs(w[size_t(i * cols + j)]));
      const float s = scaleOf(amax);
      q.scales[size_t(br * gc + bc)] = s;
      for (int64_t i = br * B; i < std::min(rows, (br + 1) * B); ++i)
        for (int64_t j = bc * B; j < std::min(cols, (bc + 1) * B); ++j)
          q.codes[size_t(i * cols + j)] = codeOf(w[size_t(i * cols + j)], s);
    }
  return q;
}

/// The FP8 recipe over a float [rows, cols] weight.
Quantized referenceQuantize(const std::vector<float> &w, int64_t rows, int64_t cols,
                            Fp8ScaleFormat format, int64_t B = 128) {
  return referenceBlocks(
      w, rows, cols, B,
      [&](float amax) {
        double s = float(double(std::max(amax, 1e-12f)) / 448.0);
        if (format == Fp8ScaleFormat::Ue8m0)
          s = std::exp2(std::ceil(std::log2(s)));
        return float(s);
      },
      [](float v, float s) { return referenceCode(double(v) / double(s)); });
}

/// The stored values of a test weight as floats.
std::vector<float> valuesOf(const TestWeight &w) {
  std::vector<float> v(size_t(w.rows * w.cols));
  decodeToFloat(w.type, w.bytes.data(), w.rows * w.cols, v.data());
  return v;
}

Quantized quantizeAll(const TestWeight &w, Fp8ScaleFormat format, bool *ok = nullptr) {
  Fp8QuantizeBand band;
  band.type = w.type;
  band.data = w.bytes.data();
  band.rows = w.rows;
  band.cols = w.cols;
  band.format = format;
  band.rowEnd = w.rows;
  Quantized q;
  q.codes.resize(size_t(w.rows * w.cols));
  q.scales.resize(size_t(((w.rows + 127) / 128) * ((w.cols + 127) / 128)));
  bool done = quantizeFp8Band(band, q.codes.data(), q.scales.data());
  if (ok)
    *ok = done;
  return q;
}

class Quantize : public PerLevel {};

TEST_P(Quantize, MatchesTheRecipeForEveryInputType) {
  std::mt19937 rng(7);
  for (WeightType type : {WeightType::BF16, WeightType::F16, WeightType::F32})
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{130, 200}, {1, 5}, {257, 129},
                              {128, 128}, {3, 300}})
      for (float amplitude : {1.f, 3e-3f, 200.f}) {
        if (type == WeightType::F16 && amplitude > 100.f)
          continue;
        TestWeight w = randomWeight(type, rows, cols, rng, amplitude);
        for (Fp8ScaleFormat format : {Fp8ScaleFormat::Float, Fp8ScaleFormat::Ue8m0}) {
          Quantized want = referenceQuantize(valuesOf(w), rows, cols, format);
          bool ok = false;
          Quantized got = quantizeAll(w, format, &ok);
          EXPECT_TRUE(ok);
          ASSERT_EQ(got.scales, want.scales) << rows << "x" << cols << " " << amplitude;
          for (size_t i = 0; i < want.codes.size(); ++i)
            ASSERT_EQ(int(got.codes[i]), int(want.codes[i]))
                << "element " << i << " of " << rows << "x" << cols << " type "
                << int(type) << " amplitude " << amplitude;
        }
      }
}

TEST_P(Quantize, RoundsTiesToEvenAndKeepsTheSign) {
  // Every block starts with 448, so every scale is exactly 1 and the weights are
  // the quotients: every finite e4m3 value, every midpoint between neighbours (the
  // ties), values a hair off each midpoint, both signs, and -0.
  std::vector<float> candidates;
  for (int c = 0; c < 0x7E; ++c) {
    float lo = fp8e4m3ToFloat(uint8_t(c)), hi = fp8e4m3ToFloat(uint8_t(c + 1));
    float mid = (lo + hi) / 2;
    for (float x : {lo, mid, std::nextafter(mid, 0.f), std::nextafter(mid, 1000.f)}) {
      candidates.push_back(x);
      candidates.push_back(-x);
    }
  }
  candidates.push_back(-0.f);
  std::vector<float> v;
  for (float x : candidates) {
    if (v.size() % 128 == 0)
      v.push_back(448.f);
    v.push_back(x);
  }
  const int64_t cols = int64_t(v.size());
  TestWeight w = f32Weight(1, cols, v);
  Quantized got = quantizeAll(w, Fp8ScaleFormat::Float);
  for (float s : got.scales)
    ASSERT_EQ(s, 1.f);
  for (size_t i = 0; i < v.size(); ++i)
    EXPECT_EQ(int(got.codes[i]), int(referenceCode(double(v[i])))) << v[i];
  EXPECT_EQ(got.codes[0], 0x7E);                // 448: the largest finite code
  EXPECT_EQ(got.codes[size_t(cols - 1)], 0x80); // -0 keeps its sign
  // Spelled out: 1.0625 lies halfway between 1.0 (0x38) and 1.125 (0x39), 1.1875
  // halfway between 0x39 and 1.25 (0x3A); each goes to the even code. 2^-6 * 7.5/8
  // lies between the subnormal 0x07 and the first normal 0x08.
  TestWeight tie = f32Weight(1, 4, {448.f, 1.0625f, 1.1875f, std::ldexp(7.5f, -9)});
  Quantized t = quantizeAll(tie, Fp8ScaleFormat::Float);
  EXPECT_EQ(t.scales[0], 1.f);
  EXPECT_EQ(t.codes[1], 0x38);
  EXPECT_EQ(t.codes[2], 0x3A);
  EXPECT_EQ(t.codes[3], 0x08);
}

TEST_P(Quantize, TiesAtAScaleWithoutAnExactInverse) {
  // Scale 3 (amax 1344): w = 3 * m for every midpoint m is exactly a tie, but
  // w * (1/3) is not; and w a float ulp off each is not a tie.
  std::vector<float> v{1344.f};
  for (int c = 0; c < 0x7E; ++c) {
    float m = (fp8e4m3ToFloat(uint8_t(c)) + fp8e4m3ToFloat(uint8_t(c + 1))) / 2;
    for (float x : {3 * m, std::nextafter(3 * m, 0.f), std::nextafter(3 * m, 2000.f)})
      v.push_back(-x);
  }
  const int64_t cols = int64_t(v.size());
  Quantized got = quantizeAll(f32Weight(1, cols, v), Fp8ScaleFormat::Float);
  Quantized want = referenceQuantize(v, 1, cols, Fp8ScaleFormat::Float);
  EXPECT_EQ(want.scales, got.scales);
  for (size_t i = 0; i < v.size(); ++i) {
    if (i % 128 == 0 && i > 0)
      continue; // later blocks have other scales; still compared below
    EXPECT_EQ(int(got.codes[i]), int(want.codes[i])) << v[i];
  }
  EXPECT_EQ(got.codes, want.codes);
}

TEST_P(Quantize, TheLargestMagnitudeMapsTo448) {
  // s = float(amax / 448) may round below the exact quotient, so amax / s may
  // exceed 448 by a rounding; it saturates to the largest finite code.
  for (float amax : {1000.f, 0.1f, 3.3333333f, 1e-11f}) {
    TestWeight w = f32Weight(1, 2, {amax, -amax});
    Quantized q = quantizeAll(w, Fp8ScaleFormat::Float);
    EXPECT_EQ(q.codes[0], 0x7E) << amax;
    EXPECT_EQ(q.codes[1], 0xFE) << amax;
  }
}

TEST_P(Quantize, ZeroBlockGetsTheFloorScale) {
  TestWeight w = f32Weight(2, 3, {0.f, -0.f, 0.f, 0.f, 0.f, 0.f});
  Quantized q = quantizeAll(w, Fp8ScaleFormat::Float);
  EXPECT_EQ(q.scales[0], float(double(1e-12f) / 448.0));
  EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 0x80, 0, 0, 0, 0}));
}

TEST(QuantizeScale, Ue8m0RoundsUpToAPowerOfTwo) {
  EXPECT_EQ(fp8BlockScale(448.f * 3, Fp8ScaleFormat::Float), 3.f);
  EXPECT_EQ(fp8BlockScale(448.f * 3, Fp8ScaleFormat::Ue8m0), 4.f);
  EXPECT_EQ(fp8BlockScale(448.f * 4, Fp8ScaleFormat::Ue8m0), 4.f);
  EXPECT_EQ(fp8BlockScale(448.f * 0.3f, Fp8ScaleFormat::Ue8m0), 0.5f);
  EXPECT_EQ(fp8BlockScale(0.f, Fp8ScaleFormat::Ue8m0), std::exp2(std::ceil(std::log2(
                                                            double(1e-12f) / 448.0))));
}

TEST_P(Quantize, NamesTheFirstBlockWithANonFiniteValue) {
  std::mt19937 rng(3);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    -std::numeric_limits<float>::infinity()}) {
    TestWeight w = randomWeight(WeightType::F32, 300, 300, rng);
    std::vector<float> v = valuesOf(w);
    v[size_t(260 * 300 + 140)] = bad; // block (2, 1)
    v[size_t(270 * 300 + 299)] = bad; // block (2, 2), later
    TestWeight broken = f32Weight(300, 300, v);
    Fp8QuantizeBand band;
    band.type = WeightType::F32;
    band.data = broken.bytes.data();
    band.rows = band.cols = 300;
    band.rowEnd = 300;
    std::vector<float> scales(9);
    int64_t row = -1, col = -1;
    EXPECT_FALSE(quantizeFp8Band(band, nullptr, scales.data(), &row, &col));
    EXPECT_EQ(row, 256);
    EXPECT_EQ(col, 128);
  }
}

TEST_P(Quantize, BandsAndThreadCountsAgreeWithTheWhole) {
  std::mt19937 rng(11);
  TestWeight w = randomWeight(WeightType::BF16, 300, 260, rng);
  Quantized whole = quantizeAll(w, Fp8ScaleFormat::Float);
  Fp8QuantizeBand band;
  band.type = w.type;
  band.data = w.bytes.data();
  band.rows = 300;
  band.cols = 260;
  band.rowBegin = 128;
  band.rowEnd = 300; // the partial last block row
  for (int threads : {1, 2, 3}) {
    ScopedNumThreads scoped(threads);
    std::vector<uint8_t> codes(size_t(172 * 260));
    std::vector<float> scales(2 * 3), onlyScales(2 * 3);
    ASSERT_TRUE(quantizeFp8Band(band, codes.data(), scales.data()));
    ASSERT_TRUE(quantizeFp8Band(band, nullptr, onlyScales.data()));
    EXPECT_TRUE(std::equal(codes.begin(), codes.end(), whole.codes.begin() + 128 * 260));
    EXPECT_TRUE(std::equal(scales.begin(), scales.end(), whole.scales.begin() + 3));
    EXPECT_EQ(onlyScales, scales);
  }
}

/// The int8 recipe over float values, one 128 x 128 block at a time.
Quantized referenceQuantizeInt8(const std::vector<float> &w, int64_t rows, int64_t cols) {
  return referenceBlocks(
      w, rows, cols, 128,
      [](float amax) { return float(double(std::max(amax, 1e-12f)) / 127.0); },
      [](float v, float s) {
        const double c = std::nearbyint(double(v) / double(s));
        return static_cast<uint8_t>(static_cast<int8_t>(std::clamp(c, -127.0, 127.0)));
      });
}

/// The int8 recipe from bf16 values, and from an FP8 weight (a requantization: each
/// value dequantized with its own block's scale first, float32(e4m3 * scale), here
/// with 64 x 96 source blocks, so the two grids do not line up), in bands of rows.
TEST_P(Quantize, Int8FromFloatAndFromFp8MatchesTheRecipe) {
  std::mt19937 rng(13);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{300, 260}, {1, 5}, {128, 128}}) {
    const TestWeight bf = randomWeight(WeightType::BF16, rows, cols, rng, 0.7f);
    const TestWeight fp8 = randomWeight(WeightType::F8E4M3, rows, cols, rng);
    const int64_t sbr = 64, sbc = 96, sgc = (cols + sbc - 1) / sbc;
    std::vector<float> sourceScales(size_t(((rows + sbr - 1) / sbr) * sgc));
    for (float &v : sourceScales)
      v = std::uniform_real_distribution<float>(1e-3f, 4e-3f)(rng);
    std::vector<float> dequantized(size_t(rows * cols));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        dequantized[size_t(i * cols + j)] =
            fp8e4m3ToFloat(fp8.bytes[size_t(i * cols + j)]) *
            sourceScales[size_t((i / sbr) * sgc + j / sbc)];
    for (bool fromFp8 : {false, true}) {
      const Quantized want = referenceQuantizeInt8(fromFp8 ? dequantized : valuesOf(bf), rows, cols);
      Fp8QuantizeBand band;
      band.type = fromFp8 ? WeightType::F8E4M3 : WeightType::BF16;
      band.data = fromFp8 ? fp8.bytes.data() : bf.bytes.data();
      band.rows = rows;
      band.cols = cols;
      band.code = WeightType::I8;
      band.sourceScales = fromFp8 ? sourceScales.data() : nullptr;
      band.sourceBlockRows = sbr;
      band.sourceBlockCols = sbc;
      const int64_t gc = (cols + 127) / 128;
      for (int64_t r0 = 0; r0 < rows; r0 += 128) { // one block row per band
        band.rowBegin = r0;
        band.rowEnd = std::min(rows, r0 + 128);
        std::vector<uint8_t> codes(size_t((band.rowEnd - r0) * cols));
        std::vector<float> scales(static_cast<size_t>(gc));
        ASSERT_TRUE(quantizeFp8Band(band, codes.data(), scales.data()));
        for (int64_t b = 0; b < gc; ++b)
          ASSERT_EQ(scales[size_t(b)], want.scales[size_t((r0 / 128) * gc + b)])
              << rows << "x" << cols << (fromFp8 ? " from FP8" : " from bf16");
        for (size_t i = 0; i < codes.size(); ++i)
          ASSERT_EQ(int(int8_t(codes[i])), int(int8_t(want.codes[size_t(r0 * cols) + i])))
              << "element " << i << " of band " << r0 << (fromFp8 ? " from FP8" : " from bf16");
      }
    }
  }
  // An FP8 source needs its scales, and only int8 codes can be made from it.
  const TestWeight fp8 = randomWeight(WeightType::F8E4M3, 4, 4, rng);
  Fp8QuantizeBand band;
  band.type = WeightType::F8E4M3;
  band.data = fp8.bytes.data();
  band.rows = band.cols = band.rowEnd = 4;
  band.code = WeightType::I8;
  float scale = 0;
  int64_t row = 0, col = 0;
  EXPECT_FALSE(quantizeFp8Band(band, nullptr, &scale, &row, &col));
  EXPECT_EQ(row, -1);
  const float one = 1.f;
  band.sourceScales = &one;
  band.code = WeightType::F8E4M3;
  EXPECT_FALSE(quantizeFp8Band(band, nullptr, &scale, &row, &col));
  band.code = WeightType::I8;
  EXPECT_TRUE(quantizeFp8Band(band, nullptr, &scale, &row, &col));
}

MOEC_INSTANTIATE_PER_LEVEL(Quantize);

} // namespace
} // namespace moec::cpu::test
