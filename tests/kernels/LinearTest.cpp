//===- LinearTest.cpp - linear for every weight type, shape and level -----===//

#include "Reference.h"
#include "TestSupport.h"

#include <cmath>
#include <cstring>
#include <tuple>

namespace moec::cpu::test {
namespace {

class Linear : public PerLevel {};

/// Runs linear and compares every output with the double reference.
void checkLinear(WeightType type, int64_t T, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  const TestWeight w = randomWeight(type, rows, cols, rng);
  const std::vector<float> x = randomVector(T * cols, rng);
  std::vector<float> y(static_cast<size_t>(T * rows), NAN);
  linear(x.data(), T, w.view(), y.data());
  const ref::Result expected = ref::linear(x, T, w.view());
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], expected.value[i], tolerance(expected.magnitude[i]))
        << "type " << int(type) << " T " << T << " rows " << rows << " cols " << cols
        << " at " << i;
}

TEST_P(Linear, AllTypesOddShapes) {
  uint32_t seed = 1;
  for (WeightType type : {WeightType::F32, WeightType::F16, WeightType::BF16,
                          WeightType::F8E4M3, WeightType::I8})
    for (int64_t cols : {1, 3, 17, 130, 257})
      for (int64_t rows : {1, 3, 17, 130})
        for (int64_t T : {1, 2, 3, 5})
          checkLinear(type, T, rows, cols, seed++);
}

TEST_P(Linear, Fp8PartialEdgeBlocks) {
  // 200 x 300: the last row block has 72 rows, the last column block 44 columns.
  for (int64_t T : {1, 4, 7})
    checkLinear(WeightType::F8E4M3, T, 200, 300, 100 + static_cast<uint32_t>(T));
}

TEST_P(Linear, PrefillPanels) {
  // More tokens than a register tile: 64-row x 2048-column panels, with a partial
  // panel in each direction and K blocks accumulated into y (K 4500: two full
  // column panels and one of 404).
  for (WeightType type :
       {WeightType::F32, WeightType::BF16, WeightType::F8E4M3, WeightType::I8}) {
    checkLinear(type, 37, 150, 1100, 7 + static_cast<uint32_t>(type));
    checkLinear(type, 9, 70, 4500, 17 + static_cast<uint32_t>(type));
  }
}

/// A prefill decodes each FP8 panel once to bf16 and scales the activations once per
/// panel (isa/Linear.h); the products are the ones a decode's tiles make, summed in
/// the same order, so with K within one panel (<= 2048) every token's row is the
/// one-token call's bit for bit, at row counts that straddle 128-row scale blocks.
TEST_P(Linear, Fp8PanelsAreTheStreamingProductsBitForBit) {
  std::mt19937 rng(91);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{200, 300}, {150, 2048}, {70, 130}}) {
    const TestWeight w = randomWeight(WeightType::F8E4M3, rows, cols, rng);
    const int64_t T = 9;
    const std::vector<float> x = randomVector(T * cols, rng);
    std::vector<float> all(static_cast<size_t>(T * rows)), one(static_cast<size_t>(rows));
    linear(x.data(), T, w.view(), all.data());
    for (int64_t t = 0; t < T; ++t) {
      linear(x.data() + t * cols, 1, w.view(), one.data());
      ASSERT_EQ(0, std::memcmp(one.data(), all.data() + t * rows, one.size() * sizeof(float)))
          << rows << "x" << cols << " token " << t;
    }
  }
}

TEST_P(Linear, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(5);
  const TestWeight w = randomWeight(WeightType::BF16, 1000, 700, rng);
  const std::vector<float> x = randomVector(3 * 700, rng);
  std::vector<float> one(3 * 1000), many(3 * 1000);
  const int saved = numThreads();
  setNumThreads(1);
  linear(x.data(), 3, w.view(), one.data());
  setNumThreads(3);
  linear(x.data(), 3, w.view(), many.data());
  setNumThreads(saved);
  // Each output is computed by one thread in the same order: bit-identical.
  EXPECT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * sizeof(float)));
}

TEST_P(Linear, Fp8NaNBytesDecodeAsLargestPlusOneStep) {
  // The decode trick maps the e4m3 NaN bytes to +-480 (never produced by a
  // quantiser); every level does the same.
  const std::vector<uint8_t> bytes = {0x7F, 0xFF, 0x7E};
  TestWeight w;
  w.type = WeightType::F8E4M3;
  w.rows = 1;
  w.cols = 3;
  w.bytes = bytes;
  w.scales = {0.5f};
  const std::vector<float> x = {1.f, 10.f, 100.f};
  float y = 0;
  linear(x.data(), 1, w.view(), &y);
  EXPECT_FLOAT_EQ(y, (480.f - 4800.f + 44800.f) * 0.5f);
}

TEST_P(Linear, Int8PartialEdgeBlocksAndThreads) {
  // 200 x 300: partial row and column blocks; rows not a multiple of the tiles.
  for (int64_t T : {1, 2, 3, 4, 7, 40})
    checkLinear(WeightType::I8, T, 200, 300, 200 + static_cast<uint32_t>(T));
  for (int threads : {1, 2, 3}) {
    const ScopedNumThreads scoped(threads);
    checkLinear(WeightType::I8, 1, 1000, 2048, 300 + static_cast<uint32_t>(threads));
    checkLinear(WeightType::I8, 64, 300, 2048, 310 + static_cast<uint32_t>(threads));
    // The AMX level's tiles: 16 or 33 tokens (a padded token tile), rows over three
    // scale blocks split between threads anywhere, a partial last 64-column chunk.
    checkLinear(WeightType::I8, 16, 300, 2100, 320 + static_cast<uint32_t>(threads));
    checkLinear(WeightType::I8, 33, 300, 2100, 330 + static_cast<uint32_t>(threads));
  }
}

/// Extreme codes, where every product is an integer: weights of scale 1 holding
/// +-127 (whole rows of each sign, and mixed), activations of +-127 whose blocks'
/// scale is 1, so the codes are the values. Each block's sum and the row's total
/// (at most 1000 * 127^2 < 2^24) are exact in fp32, so y is the integer dot
/// product bit for bit: the VNNI level's bytes (q + 128) and the offsets it
/// starts from must cancel exactly, at the ends of rows and panels too.
TEST_P(Linear, Int8ExtremeCodesAreExact) {
  const int64_t T = 9, rows = 70, K = 1000; // T > every token tile: the panel path
  std::mt19937 rng(77);
  TestWeight w;
  w.type = WeightType::I8;
  w.rows = rows;
  w.cols = K;
  w.bytes.resize(static_cast<size_t>(rows * K));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < K; ++k) {
      const bool negative = r % 3 == 0 ? true : r % 3 == 1 ? false : (rng() & 1) != 0;
      w.bytes[r * K + k] = static_cast<uint8_t>(static_cast<int8_t>(negative ? -127 : 127));
    }
  w.scales.assign(static_cast<size_t>(((rows + 127) / 128) * ((K + 127) / 128)), 1.f);
  std::vector<float> x(static_cast<size_t>(T * K));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      const bool negative = t % 3 == 0 ? true : t % 3 == 1 ? false : (rng() & 1) != 0;
      x[t * K + k] = negative ? -127.f : 127.f;
    }
  std::vector<float> y(static_cast<size_t>(T * rows), NAN);
  linear(x.data(), T, w.view(), y.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      int64_t dot = 0;
      for (int64_t k = 0; k < K; ++k)
        dot += int64_t(static_cast<int8_t>(w.bytes[r * K + k])) * int64_t(x[t * K + k]);
      ASSERT_EQ(y[t * rows + r], static_cast<float>(dot)) << "token " << t << " row " << r;
    }
}

/// The activation quantization of W8A8, against its definition (codes and scales
/// bit for bit): random rows, a zero block, a tiny block, and exact ties.
TEST_P(Linear, Int8ActivationQuantization) {
  std::mt19937 rng(21);
  std::vector<std::vector<float>> rows;
  for (int64_t K : {1, 7, 128, 300, 2048})
    rows.push_back(randomVector(K, rng, -3.f, 3.f));
  std::vector<float> special(384, 0.f); // block 0 zero, block 1 tiny, block 2 ties
  for (int k = 128; k < 256; ++k)
    special[k] = (k % 2 ? 1e-32f : -3e-31f);
  // amax 127 makes the inverse 1: x * 1 lands on .5 exactly for these.
  const float ties[] = {127.f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, -0.5f, 126.5f, -127.f};
  for (int k = 0; k < 9; ++k)
    special[256 + k] = ties[k];
  rows.push_back(special);
  for (const std::vector<float> &x : rows) {
    const int64_t K = static_cast<int64_t>(x.size());
    std::vector<int16_t> q(static_cast<size_t>(K), 999);
    std::vector<float> s(static_cast<size_t>((K + 127) / 128), NAN);
    quantizeActivationsI8(x.data(), K, q.data(), s.data());
    std::vector<int> q0;
    std::vector<float> s0;
    ref::quantizeActs(x.data(), K, q0, s0);
    for (size_t b = 0; b < s.size(); ++b)
      ASSERT_EQ(s[b], s0[b]) << "K " << K << " block " << b;
    for (int64_t k = 0; k < K; ++k)
      ASSERT_EQ(q[k], q0[k]) << "K " << K << " at " << k << " x " << x[k];
  }
  const int16_t expectTies[] = {127, 2, 4, -2, -4, 0, 0, 126, -127};
  std::vector<int16_t> q(384);
  std::vector<float> s(3);
  quantizeActivationsI8(special.data(), 384, q.data(), s.data());
  EXPECT_EQ(s[0], 0.f);
  EXPECT_EQ(s[1], 0.f); // 3e-31 is below 2^-100
  EXPECT_EQ(s[2], 1.f);
  for (int k = 0; k < 9; ++k)
    EXPECT_EQ(q[256 + k], expectTies[k]) << ties[k];
}

/// x rounded to bf16 by floatToBf16 (to nearest even), as floats.
std::vector<float> roundedToBf16(const std::vector<float> &x) {
  std::vector<float> r(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    r[i] = bf16ToFloat(floatToBf16(x[i]));
  return r;
}

/// bf16 activations (Weight::bf16Activations): the product of x rounded to bf16.
/// Where the level multiplies the rounded x with its usual kernels that is the
/// plain product of the rounded x bit for bit; on the AMX tile unit (a bf16 or FP8
/// weight, more than 4 tokens) the sums run in another order, so it is checked against the
/// double reference of the rounded x. Shapes cover the tiles' edges: 16 and 33
/// tokens (a padded token tile), rows over two 16-row tiles split between threads
/// anywhere, K a partial 32-column chunk.
TEST_P(Linear, Bf16ActivationsMultiplyTheRoundedInputs) {
  const bool amx = GetParam() == SimdLevel::Avx512Amx;
  uint32_t seed = 900;
  for (int threads : {1, 2, 3}) {
    const ScopedNumThreads scoped(threads);
    for (WeightType type : {WeightType::F32, WeightType::BF16, WeightType::F8E4M3})
      for (auto [T, rows, cols] : {std::tuple<int64_t, int64_t, int64_t>{1, 130, 257},
                                   {3, 17, 33},
                                   {5, 70, 130},
                                   {16, 300, 2100},
                                   {33, 47, 1000},
                                   {40, 130, 4500}}) {
        std::mt19937 rng(seed++);
        const TestWeight w = randomWeight(type, rows, cols, rng);
        const std::vector<float> x = randomVector(T * cols, rng, -3.f, 3.f);
        const std::vector<float> xr = roundedToBf16(x);
        Weight flagged = w.view();
        flagged.bf16Activations = true;
        std::vector<float> y(size_t(T * rows), NAN), plain(size_t(T * rows), NAN);
        linear(x.data(), T, flagged, y.data());
        linear(xr.data(), T, w.view(), plain.data());
        const bool tiles = amx && type != WeightType::F32 && T > 4;
        const ref::Result expected = ref::linear(xr, T, w.view());
        for (size_t i = 0; i < y.size(); ++i) {
          if (!tiles) {
            ASSERT_EQ(y[i], plain[i]) << "type " << int(type) << " T " << T << " at " << i;
          }
          ASSERT_NEAR(y[i], expected.value[i], tolerance(expected.magnitude[i]))
              << "type " << int(type) << " T " << T << " rows " << rows << " at " << i;
        }
      }
  }
}

/// With an identity weight every output is one rounded input times 1, exact on
/// every path (the tiles included, so their packing is checked element by
/// element): ties to even, and values that round up into the next binade.
/// (Infinities and NaN would reach every output through inf * 0.)
TEST_P(Linear, Bf16ActivationRoundingIsToNearestEven) {
  const int64_t T = 33, K = 70;
  std::vector<float> x(size_t(T * K));
  std::mt19937 rng(5);
  for (float &v : x)
    v = std::ldexp(float(int(rng() % 65536) - 32768), -10);
  const float special[] = {1.f + 0x1p-8f, 1.f + 3 * 0x1p-8f, -(1.f + 0x1p-8f), 2.f - 0x1p-9f,
                           1.f + 0x1.8p-8f, 0x1.fdp127f};
  // The last: a tie near the top of the range, to the even 0x1.fcp127.
  const float want[] = {1.f, 1.f + 0x1p-6f, -1.f, 2.f, 1.f + 0x1p-7f, 0x1.fcp127f};
  for (int i = 0; i < 6; ++i)
    x[size_t(5 * K + 3 + i)] = special[i];
  for (WeightType type : {WeightType::F32, WeightType::BF16, WeightType::F8E4M3}) {
    std::vector<float> eye(size_t(K * K), 0.f);
    for (int64_t r = 0; r < K; ++r)
      eye[size_t(r * K + r)] = 1.f;
    TestWeight w = f32Weight(K, K, eye);
    if (type == WeightType::BF16) { // the same values as bf16 bits (1.0 = 0x3F80)
      std::vector<uint8_t> bytes(size_t(K * K) * 2, 0);
      for (int64_t r = 0; r < K; ++r) {
        bytes[size_t(r * K + r) * 2 + 1] = 0x3F;
        bytes[size_t(r * K + r) * 2] = 0x80;
      }
      w.type = WeightType::BF16;
      w.bytes = bytes;
    }
    if (type == WeightType::F8E4M3) { // 1.0 = e4m3 0x38, every block scale 1
      std::vector<uint8_t> bytes(size_t(K * K), 0);
      for (int64_t r = 0; r < K; ++r)
        bytes[size_t(r * K + r)] = 0x38;
      w.type = WeightType::F8E4M3;
      w.bytes = bytes;
      w.scales.assign(1, 1.f); // K = 70: one 128 x 128 block
    }
    // The FMA levels scale an FP8 product's inputs by 256 x the block scale first
    // (isa/Linear.h): near the top of the float range that overflows, so FP8 skips
    // the largest input.
    x[size_t(5 * K + 3 + 5)] = type == WeightType::F8E4M3 ? 1.f : special[5];
    Weight flagged = w.view();
    flagged.bf16Activations = true;
    std::vector<float> y(size_t(T * K), NAN);
    linear(x.data(), T, flagged, y.data());
    const std::vector<float> xr = roundedToBf16(x);
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_EQ(y[i], xr[i]) << "type " << int(type) << " at " << i << " x " << x[i];
    for (int i = 0; i < (type == WeightType::F8E4M3 ? 5 : 6); ++i)
      EXPECT_EQ(y[size_t(5 * K + 3 + i)], want[i]) << "type " << int(type) << " " << special[i];
  }
}

/// Every e4m3 byte through the bf16-activation product exactly: row r of a 256 x 256
/// FP8 weight holds byte r at column r (zeros elsewhere), every block scale is 1 and
/// every input 1, so y[t, r] is the byte's value (NaN bytes, which the kernels read
/// as +-480, left out). 5 tokens: the AMX level's tile path, which decodes its own
/// panels.
TEST_P(Linear, Bf16ActivationsDecodeEveryFp8Byte) {
  const int64_t T = 5, K = 256;
  TestWeight w;
  w.type = WeightType::F8E4M3;
  w.rows = K;
  w.cols = K;
  w.bytes.assign(size_t(K * K), 0);
  for (int64_t r = 0; r < K; ++r)
    w.bytes[size_t(r * K + r)] = (r & 0x7F) == 0x7F ? 0 : uint8_t(r);
  w.scales.assign(4, 1.f);
  Weight flagged = w.view();
  flagged.bf16Activations = true;
  const std::vector<float> x(size_t(T * K), 1.f);
  std::vector<float> y(size_t(T * K), NAN);
  linear(x.data(), T, flagged, y.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < K; ++r) {
      const float want = (r & 0x7F) == 0x7F ? 0.f : fp8e4m3ToFloat(uint8_t(r));
      ASSERT_EQ(y[size_t(t * K + r)], want) << "byte 0x" << std::hex << r;
    }
}

/// x quantized 1x128 by quantizeActivationsFp8, then dequantized: code * scale.
std::vector<float> fp8Quantized(const std::vector<float> &x, int64_t T, int64_t K) {
  std::vector<float> r(x.size());
  std::vector<uint8_t> codes(static_cast<size_t>(K));
  std::vector<float> scales(size_t((K + kFp8ActBlock - 1) / kFp8ActBlock));
  for (int64_t t = 0; t < T; ++t) {
    quantizeActivationsFp8(x.data() + t * K, K, codes.data(), scales.data());
    for (int64_t k = 0; k < K; ++k)
      r[size_t(t * K + k)] = fp8e4m3ToFloat(codes[size_t(k)]) * scales[size_t(k / kFp8ActBlock)];
  }
  return r;
}

/// DeepSeek's activation quantization (spec section 3) on known values: per 128
/// columns s = max(amax, 1e-4) / 448, codes e4m3(x / s) to nearest even.
TEST(Fp8Activations, QuantizeKnownValues) {
  std::vector<float> x(300, 0.f);
  x[0] = 896.f;     // amax of block 0: s = 2
  x[1] = 3.f;       // 1.5 = e4m3 0x3C
  x[2] = -1.0625f;  // -0.53125: between 0.5 and 0.5625, a tie to even 0.5 (0xB0)
  x[3] = 0x1p-9f;   // 2^-10 after the division: a tie between 0 and 2^-9 (0x01), to 0
  x[4] = 3.f / 1024; // 0.75 * 2^-9: nearer 0x01, the smallest subnormal
  x[5] = 3 * 0x1p-9f; // 1.5 * 2^-9: a tie between 0x01 and 0x02, to even 0x02
  x[130] = -0.5f;   // block 1: s = 0.5/448, the code -448 (0xFE)
  x[131] = 0.25f;   // 224 = 0x76
  // Block 2 (columns 256..299, partial) is zero: s = 1e-4 / 448, codes 0.
  std::vector<uint8_t> codes(300, 0xAA);
  std::vector<float> scales(3, NAN);
  quantizeActivationsFp8(x.data(), 300, codes.data(), scales.data());
  EXPECT_EQ(scales[0], 2.f);
  EXPECT_EQ(scales[1], 0.5f / 448.f);
  EXPECT_EQ(scales[2], 1e-4f / 448.f);
  EXPECT_EQ(codes[0], 0x7E); // 448
  EXPECT_EQ(codes[1], 0x3C);
  EXPECT_EQ(codes[2], 0xB0);
  EXPECT_EQ(codes[3], 0x00);
  EXPECT_EQ(codes[4], 0x01);
  EXPECT_EQ(codes[5], 0x02);
  EXPECT_EQ(codes[6], 0x00);
  EXPECT_EQ(codes[130], 0xFE);
  EXPECT_EQ(codes[131], 0x76);
  for (int k = 256; k < 300; ++k)
    EXPECT_EQ(codes[size_t(k)], 0) << k;
}

/// FP8 activations (Weight::fp8Activations): the product of x quantized 1x128 and
/// dequantized, bit for bit the plain product of fp8Quantized(x) (the kernels
/// quantize with their own inlined rounding: this also checks it against
/// floatToFp8e4m3 on inputs over 30 binades, subnormal codes included). Shapes: a
/// partial last block, the decode and prefill paths, rows split between threads.
TEST_P(Linear, Fp8ActivationsMultiplyTheQuantizedInputs) {
  uint32_t seed = 1900;
  for (int threads : {1, 2}) {
    const ScopedNumThreads scoped(threads);
    for (WeightType type : {WeightType::BF16, WeightType::F8E4M3})
      for (auto [T, rows, cols] : {std::tuple<int64_t, int64_t, int64_t>{1, 130, 257},
                                   {3, 17, 33},
                                   {16, 300, 2100},
                                   {40, 130, 1000}}) {
        std::mt19937 rng(seed++);
        const TestWeight w = randomWeight(type, rows, cols, rng);
        std::vector<float> x = randomVector(T * cols, rng, -3.f, 3.f);
        std::uniform_int_distribution<int> binade(-24, 6);
        for (float &v : x) // magnitudes from 2^-24 to 2^6 within each block
          v = std::ldexp(v, binade(rng));
        const std::vector<float> xq = fp8Quantized(x, T, cols);
        Weight flagged = w.view();
        flagged.fp8Activations = true;
        std::vector<float> y(size_t(T * rows), NAN), plain(size_t(T * rows), NAN);
        linear(x.data(), T, flagged, y.data());
        linear(xq.data(), T, w.view(), plain.data());
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_EQ(y[i], plain[i]) << "type " << int(type) << " T " << T << " at " << i;
      }
  }
}

/// With an identity weight every output is one quantized input: checks the kernels'
/// rounding element by element against quantizeActivationsFp8 and floatToFp8e4m3,
/// on every e4m3 magnitude and the midpoints between neighbours (ties to even).
TEST_P(Linear, Fp8ActivationRoundingIsToNearestEven) {
  const int64_t K = 128;
  std::vector<float> x;
  for (int code = 0; code < 0x7F; ++code) { // rows of 128: 448 first fixes s = 1
    std::vector<float> row(size_t(K), 0.f);
    row[0] = 448.f;
    row[1] = fp8e4m3ToFloat(uint8_t(code));
    row[2] = -fp8e4m3ToFloat(uint8_t(code));
    if (code < 0x7E) {
      const float mid = 0.5f * (fp8e4m3ToFloat(uint8_t(code)) + fp8e4m3ToFloat(uint8_t(code + 1)));
      row[3] = mid;
      row[4] = std::nextafter(mid, 0.f);
      row[5] = std::nextafter(mid, 1000.f);
    }
    x.insert(x.end(), row.begin(), row.end());
  }
  const int64_t T = int64_t(x.size()) / K;
  std::vector<float> eye(size_t(K * K), 0.f);
  for (int64_t r = 0; r < K; ++r)
    eye[size_t(r * K + r)] = 1.f;
  const TestWeight w = f32Weight(K, K, eye);
  Weight flagged = w.view();
  flagged.fp8Activations = true;
  std::vector<float> y(size_t(T * K), NAN);
  linear(x.data(), T, flagged, y.data());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < 6; ++k) {
      const float v = x[size_t(t * K + k)];
      ASSERT_EQ(y[size_t(t * K + k)], fp8e4m3ToFloat(floatToFp8e4m3(v))) << "row " << t << " " << v;
    }
}

MOEC_INSTANTIATE_PER_LEVEL(Linear);

} // namespace
} // namespace moec::cpu::test
