//===- AttentionTest.cpp - The MLA steps: cache_store, head_linear, cores -===//
//
// Each kernel against its reference loop, and the two MLA forms end to end: the
// naive chain (cacheStore -> expandedAttention) and the absorbed chain (cacheStore
// -> headLinear W_UK -> latentAttention -> headLinear W_UV) against plain
// multi-head attention and against each other.
//
//===----------------------------------------------------------------------===//

#include "Reference.h"
#include "TestSupport.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace moec::cpu::test {
namespace {

/// MLA dimensions of one test.
struct Dims {
  int64_t heads, nope, rope, v, C;
  ExpandedAttentionParams expanded() const {
    ExpandedAttentionParams p;
    p.heads = heads;
    p.nopeDim = nope;
    p.ropeDim = rope;
    p.vDim = v;
    p.latentDim = C;
    p.softmaxScale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(nope + rope)));
    return p;
  }
};

/// One state of every sequence in one block, with padded rows and sequences so
/// that strides are exercised. Rows nobody writes hold NaN, so reading past the
/// causal limit poisons the result. F32 states live in `memory`, BF16 ones in
/// `halves`, F8E4M3 ones in `bytes`.
struct TestState {
  int64_t width = 0;
  StateView view;
  std::vector<float> memory;
  std::vector<uint16_t> halves;
  std::vector<uint8_t> bytes;
  TestState(int64_t sequences, int64_t capacity, int64_t w,
            StateElement element = StateElement::F32)
      : width(w) {
    view.element = element;
    view.rowStride = w + 3;
    view.sequenceStride = capacity * view.rowStride + 5;
    view.capacity = capacity;
    if (element == StateElement::F32)
      memory.assign(static_cast<size_t>(sequences * view.sequenceStride), NAN);
    else if (element == StateElement::BF16)
      halves.assign(static_cast<size_t>(sequences * view.sequenceStride), 0x7FC0); // NaN
    else
      bytes.assign(static_cast<size_t>(sequences * view.sequenceStride), 0x7F); // NaN
    point();
  }
  TestState(const TestState &other)
      : width(other.width), view(other.view), memory(other.memory), halves(other.halves),
        bytes(other.bytes) {
    point();
  }
  TestState &operator=(const TestState &other) {
    width = other.width;
    view = other.view;
    memory = other.memory;
    halves = other.halves;
    bytes = other.bytes;
    point();
    return *this;
  }
  void point() {
    view.data = view.element == StateElement::F32    ? static_cast<void *>(memory.data())
                : view.element == StateElement::BF16 ? static_cast<void *>(halves.data())
                                                     : static_cast<void *>(bytes.data());
  }
  /// Row r of sequence s of an F32 state.
  float *row(int64_t s, int64_t r) const { return static_cast<float *>(view.row(s, r)); }
  /// Rows 0..rows-1 of sequence s, packed.
  std::vector<float> packed(int64_t s, int64_t rows) const {
    std::vector<float> out;
    for (int64_t r = 0; r < rows; ++r) {
      const float *row = memory.data() + s * view.sequenceStride + r * view.rowStride;
      out.insert(out.end(), row, row + width);
    }
    return out;
  }
};

/// One call's inputs: cached prefixes, then the tokens (seqIds[t], positions[t]).
struct Case {
  Dims d;
  int64_t T = 0, capacity = 0;
  TestWeight kvB;
  TestState latent, rope;
  std::vector<float> q, cNew, pe;
  std::vector<int32_t> positions, seqIds;
  std::vector<int64_t> prefixes; ///< rows cached per sequence before the call
  Case(const Dims &dims, int64_t sequences, int64_t cap)
      : d(dims), capacity(cap), latent(sequences, cap, dims.C), rope(sequences, cap, dims.rope) {}
  /// The caches once the new rows are stored (for the references).
  std::vector<ref::SequenceCache> cachesAfter() const {
    TestState lat = latent, ro = rope;
    cacheStore(cNew.data(), pe.data(), T, d.C, d.rope, positions.data(), seqIds.data(),
               lat.view, ro.view);
    std::vector<ref::SequenceCache> out;
    for (size_t s = 0; s < prefixes.size(); ++s) {
      int64_t rows = prefixes[s];
      for (int64_t t = 0; t < T; ++t)
        if (seqIds[t] == int32_t(s))
          rows = std::max<int64_t>(rows, positions[t] + 1);
      out.push_back({lat.packed(int64_t(s), rows), ro.packed(int64_t(s), rows)});
    }
    return out;
  }
};

/// prefixes[s] rows of sequence s are already cached.
Case makeCase(const Dims &d, WeightType type, const std::vector<int64_t> &prefixes,
              const std::vector<int32_t> &seqIds, const std::vector<int32_t> &positions,
              uint32_t seed) {
  std::mt19937 rng(seed);
  int64_t capacity = 0;
  for (int64_t p : prefixes)
    capacity = std::max(capacity, p);
  for (int32_t p : positions)
    capacity = std::max<int64_t>(capacity, p + 1);
  Case c(d, static_cast<int64_t>(prefixes.size()), capacity + 3);
  c.T = static_cast<int64_t>(seqIds.size());
  c.seqIds = seqIds;
  c.positions = positions;
  c.prefixes = prefixes;
  c.kvB = randomWeight(type, d.heads * (d.nope + d.v), d.C, rng,
                       static_cast<float>(2.0 / std::sqrt(static_cast<double>(d.C))));
  for (size_t s = 0; s < prefixes.size(); ++s)
    for (int64_t r = 0; r < prefixes[s]; ++r) {
      const std::vector<float> lat = randomVector(d.C, rng), pe = randomVector(d.rope, rng);
      std::copy(lat.begin(), lat.end(), c.latent.row(int64_t(s), r));
      std::copy(pe.begin(), pe.end(), c.rope.row(int64_t(s), r));
    }
  c.q = randomVector(c.T * d.heads * (d.nope + d.rope), rng);
  c.cNew = randomVector(c.T * d.C, rng);
  c.pe = randomVector(c.T * d.rope, rng);
  return c;
}

/// The naive chain on fresh copies of the states.
std::vector<float> runNaive(Case c) {
  cacheStore(c.cNew.data(), c.pe.data(), c.T, c.d.C, c.d.rope, c.positions.data(),
             c.seqIds.data(), c.latent.view, c.rope.view);
  std::vector<float> out(static_cast<size_t>(c.T * c.d.heads * c.d.v), NAN);
  expandedAttention(c.q.data(), c.T, c.positions.data(), c.seqIds.data(), c.latent.view,
                    c.rope.view, c.kvB.view(), c.d.expanded(), out.data());
  return out;
}

/// head_linear's view of W_UK (transposed) and W_UV of kv_b_proj.
HeadLinearParams ukParams(const Dims &d) {
  HeadLinearParams p;
  p.heads = d.heads;
  p.inStride = d.nope + d.rope;
  p.inOffset = 0;
  p.inWidth = d.nope;
  p.rowStride = d.nope + d.v;
  p.rowOffset = 0;
  p.rows = d.nope;
  p.transpose = true;
  return p;
}
HeadLinearParams uvParams(const Dims &d) {
  HeadLinearParams p;
  p.heads = d.heads;
  p.inStride = d.C;
  p.inOffset = 0;
  p.inWidth = d.C;
  p.rowStride = d.nope + d.v;
  p.rowOffset = d.nope;
  p.rows = d.v;
  p.transpose = false;
  return p;
}
LatentAttentionParams latentParams(const Dims &d) {
  LatentAttentionParams p;
  p.heads = d.heads;
  p.latentDim = d.C;
  p.ropeDim = d.rope;
  p.qStride = d.nope + d.rope;
  p.qRopeOffset = d.nope;
  p.softmaxScale = d.expanded().softmaxScale;
  return p;
}

/// The absorbed chain on fresh copies of the states; qLatOut gets the latent queries.
std::vector<float> runAbsorbed(Case c, std::vector<float> *qLatOut = nullptr) {
  const Dims &d = c.d;
  cacheStore(c.cNew.data(), c.pe.data(), c.T, d.C, d.rope, c.positions.data(),
             c.seqIds.data(), c.latent.view, c.rope.view);
  std::vector<float> qLat(static_cast<size_t>(c.T * d.heads * d.C), NAN), oLat(qLat.size(), NAN);
  std::vector<float> out(static_cast<size_t>(c.T * d.heads * d.v), NAN);
  headLinear(c.q.data(), c.T, d.heads * (d.nope + d.rope), c.kvB.view(), ukParams(d),
             qLat.data());
  latentAttention(qLat.data(), c.q.data(), d.heads * (d.nope + d.rope), c.T,
                  c.positions.data(), c.seqIds.data(), c.latent.view, c.rope.view,
                  latentParams(d), oLat.data());
  headLinear(oLat.data(), c.T, d.heads * d.C, c.kvB.view(), uvParams(d), out.data());
  if (qLatOut)
    *qLatOut = qLat;
  return out;
}

/// Both forms against the reference and against each other, and the latent core
/// alone against its own reference on the latent queries the chain computed.
void checkBothForms(const Case &c) {
  const std::vector<ref::SequenceCache> caches = c.cachesAfter();
  const ref::Result expected =
      ref::mla(c.q, c.T, c.positions, c.seqIds, caches, c.kvB.view(), c.d.expanded());
  const std::vector<float> naive = runNaive(c);
  std::vector<float> qLat;
  const std::vector<float> absorbed = runAbsorbed(c, &qLat);
  for (size_t i = 0; i < naive.size(); ++i) {
    const double tol = tolerance(expected.magnitude[i]);
    ASSERT_NEAR(naive[i], expected.value[i], tol) << "naive at " << i;
    ASSERT_NEAR(absorbed[i], expected.value[i], tol) << "absorbed at " << i;
    ASSERT_NEAR(naive[i], absorbed[i], tol) << "naive vs absorbed at " << i;
  }
  const int64_t ldq = c.d.heads * (c.d.nope + c.d.rope);
  const ref::Result latentExpected = ref::latentAttention(
      qLat, c.q, ldq, c.T, c.positions, c.seqIds, caches, latentParams(c.d));
  TestState lat = c.latent, ro = c.rope;
  cacheStore(c.cNew.data(), c.pe.data(), c.T, c.d.C, c.d.rope, c.positions.data(),
             c.seqIds.data(), lat.view, ro.view);
  std::vector<float> oLat(qLat.size(), NAN);
  latentAttention(qLat.data(), c.q.data(), ldq, c.T, c.positions.data(), c.seqIds.data(),
                  lat.view, ro.view, latentParams(c.d), oLat.data());
  for (size_t i = 0; i < oLat.size(); ++i)
    ASSERT_NEAR(oLat[i], latentExpected.value[i], tolerance(latentExpected.magnitude[i]))
        << "latent core at " << i;
}

class Attention : public PerLevel {};

TEST_P(Attention, TwoSequencesInterleavedOddDims) {
  // Sequence 0 has 5 cached rows and brings positions 5, 6, 7; sequence 1 has 9
  // and brings 9, 10. The tokens of a sequence see each other's new rows.
  checkBothForms(makeCase({3, 5, 4, 7, 19}, WeightType::F32, {5, 9}, {0, 1, 0, 1, 0},
                          {5, 9, 6, 10, 7}, 31));
}

TEST_P(Attention, FirstTokenOfASequence) {
  checkBothForms(makeCase({2, 3, 2, 3, 9}, WeightType::F32, {0}, {0}, {0}, 32));
}

TEST_P(Attention, LongContextManyChunks) {
  // 150 cached rows: three 64-row chunks with a running-max rescale in between.
  checkBothForms(makeCase({4, 16, 8, 16, 40}, WeightType::BF16, {150, 3}, {0, 1, 0},
                          {150, 3, 151}, 33));
}

TEST_P(Attention, Fp8KvBWithPartialBlocks) {
  // kv_b_proj is 200 x 300: partial scale blocks in both directions, and head 1's
  // rows start at 100 (inside a scale block).
  checkBothForms(makeCase({2, 40, 6, 60, 300}, WeightType::F8E4M3, {70}, {0, 0}, {70, 71}, 34));
}

TEST_P(Attention, DeepSeekDimsDecode) {
  checkBothForms(makeCase({2, 128, 64, 128, 512}, WeightType::BF16, {20}, {0}, {20}, 35));
}

TEST_P(Attention, PrefillMoreTokensThanOneQueryBlock) {
  // 20 tokens of one sequence from position 0: the naive form's queries come in
  // blocks of 16 with different causal lengths.
  std::vector<int32_t> seq(20, 0), pos(20);
  for (int32_t i = 0; i < 20; ++i)
    pos[i] = i;
  checkBothForms(makeCase({3, 8, 4, 8, 24}, WeightType::F16, {0}, seq, pos, 36));
}

TEST_P(Attention, ManyHeadsInGroups) {
  // 37 heads: groups of up to 16 heads, the last one partial.
  checkBothForms(makeCase({37, 8, 4, 6, 33}, WeightType::F32, {12}, {0}, {12}, 37));
}

TEST_P(Attention, BatchedDecodeOfThreeSequences) {
  // One token per sequence, sequence ids out of order, one thread and three.
  for (int threads : {1, 3}) {
    const ScopedNumThreads scoped(threads);
    checkBothForms(makeCase({5, 16, 8, 12, 64}, WeightType::BF16, {7, 0, 30}, {2, 0, 1},
                            {30, 7, 0}, 38));
  }
}

TEST_P(Attention, SharedPrefixReadsTheOtherSequencesRows) {
  // Sequences 1 and 2 continue sequence 0's first 70 rows (GRPO's group: one prompt,
  // several samples). With the rows copied into them, and with them shared (their own
  // first 70 rows NaN, read from sequence 0 instead, KvCache::share), both forms give
  // the same outputs. 70 rows: the shared part ends inside a 64-row chunk.
  const Dims d{3, 16, 8, 12, 40};
  for (int32_t shared : {70, 64, 5}) {
    Case copied = makeCase(d, WeightType::BF16, {shared + 10, shared + 2, shared + 4},
                           {1, 2, 1, 2, 0}, {shared + 2, shared + 4, shared + 3, shared + 5,
                                            shared + 10},
                           39);
    for (int64_t seq : {1, 2})
      for (int64_t r = 0; r < shared; ++r) {
        std::copy(copied.latent.row(0, r), copied.latent.row(0, r) + d.C,
                  copied.latent.row(seq, r));
        std::copy(copied.rope.row(0, r), copied.rope.row(0, r) + d.rope,
                  copied.rope.row(seq, r));
      }
    Case sharing = copied;
    std::vector<int32_t> source = {0, 0, 0};
    std::vector<int64_t> rows = {0, shared, shared};
    for (TestState *state : {&sharing.latent, &sharing.rope}) {
      for (int64_t seq : {1, 2})
        for (int64_t r = 0; r < shared; ++r)
          std::fill(state->row(seq, r), state->row(seq, r) + state->width, NAN);
      state->view.prefixSeq = source.data();
      state->view.prefixRows = rows.data();
    }
    const std::vector<float> naiveCopied = runNaive(copied), naiveShared = runNaive(sharing);
    const std::vector<float> absCopied = runAbsorbed(copied), absShared = runAbsorbed(sharing);
    for (size_t i = 0; i < naiveCopied.size(); ++i) {
      ASSERT_NEAR(naiveShared[i], naiveCopied[i], 1e-5 * (1 + std::fabs(naiveCopied[i])))
          << "naive, " << shared << " shared rows, at " << i;
      ASSERT_NEAR(absShared[i], absCopied[i], 1e-5 * (1 + std::fabs(absCopied[i])))
          << "absorbed, " << shared << " shared rows, at " << i;
    }
  }
}

TEST_P(Attention, CacheStoreWritesOnlyItsRows) {
  Case c = makeCase({1, 2, 3, 2, 5}, WeightType::F32, {2, 1}, {1, 0, 1}, {1, 2, 2}, 39);
  const std::vector<float> before = c.latent.memory, ropeBefore = c.rope.memory;
  cacheStore(c.cNew.data(), c.pe.data(), c.T, c.d.C, c.d.rope, c.positions.data(),
             c.seqIds.data(), c.latent.view, c.rope.view);
  std::vector<bool> written(before.size(), false), ropeWritten(ropeBefore.size(), false);
  for (int64_t t = 0; t < c.T; ++t) {
    const float *row = c.latent.row(c.seqIds[t], c.positions[t]);
    const float *ropeRow = c.rope.row(c.seqIds[t], c.positions[t]);
    for (int64_t i = 0; i < c.d.C; ++i) {
      EXPECT_EQ(row[i], c.cNew[t * c.d.C + i]);
      written[size_t(row + i - c.latent.memory.data())] = true;
    }
    for (int64_t i = 0; i < c.d.rope; ++i) {
      EXPECT_EQ(ropeRow[i], c.pe[t * c.d.rope + i]);
      ropeWritten[size_t(ropeRow + i - c.rope.memory.data())] = true;
    }
  }
  // Everything else is bit-identical (NaN included).
  for (size_t i = 0; i < before.size(); ++i) {
    if (!written[i]) {
      ASSERT_EQ(0, std::memcmp(&before[i], &c.latent.memory[i], sizeof(float))) << i;
    }
  }
  for (size_t i = 0; i < ropeBefore.size(); ++i) {
    if (!ropeWritten[i]) {
      ASSERT_EQ(0, std::memcmp(&ropeBefore[i], &c.rope.memory[i], sizeof(float))) << i;
    }
  }
}

/// A narrow KV cache (moec compile --kv-cache=bf16|fp8): `c` with its cached rows
/// stored as `element`, and the same case in f32 with every cached and new row
/// already rounded to it. The two must give the same bits: cache_store rounds to
/// nearest even, and attention widens exactly and otherwise computes as on f32 rows.
struct NarrowTwins {
  Case narrow, rounded;
  static float round(StateElement element, float v) {
    return element == StateElement::BF16 ? bf16ToFloat(floatToBf16(v))
                                         : fp8e4m3ToFloat(floatToFp8e4m3(v));
  }
  NarrowTwins(const Case &c, StateElement element) : narrow(c), rounded(c) {
    for (TestState *state : {&narrow.latent, &narrow.rope}) {
      TestState f32 = *state;
      *state = TestState(int64_t(f32.memory.size()) / f32.view.sequenceStride,
                         f32.view.capacity, f32.width, element);
      state->view.prefixSeq = f32.view.prefixSeq;
      state->view.prefixRows = f32.view.prefixRows;
      for (size_t i = 0; i < f32.memory.size(); ++i) {
        if (element == StateElement::BF16)
          state->halves[i] = floatToBf16(f32.memory[i]);
        else
          state->bytes[i] = floatToFp8e4m3(f32.memory[i]);
      }
    }
    for (TestState *state : {&rounded.latent, &rounded.rope})
      for (float &v : state->memory)
        v = round(element, v);
    for (std::vector<float> *rows : {&rounded.cNew, &rounded.pe})
      for (float &v : *rows)
        v = round(element, v);
  }
};

void expectSameBits(const std::vector<float> &a, const std::vector<float> &b,
                    const char *what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(0, std::memcmp(&a[i], &b[i], sizeof(float)))
        << what << " at " << i << ": " << a[i] << " vs " << b[i];
}

TEST_P(Attention, NarrowCacheIsTheF32CacheOfRoundedRows) {
  // Prefill and decode shapes, a long context over several chunks, odd widths
  // (partial vectors), and more tokens than one query block.
  std::vector<int32_t> seq(20, 0), pos(20);
  for (int32_t i = 0; i < 20; ++i)
    pos[i] = i;
  const Case cases[] = {
      makeCase({3, 5, 4, 7, 19}, WeightType::F32, {5, 9}, {0, 1, 0, 1, 0}, {5, 9, 6, 10, 7}, 41),
      makeCase({4, 16, 8, 16, 40}, WeightType::BF16, {150, 3}, {0, 1, 0}, {150, 3, 151}, 42),
      makeCase({2, 128, 64, 128, 512}, WeightType::BF16, {20}, {0}, {20}, 43),
      makeCase({3, 8, 4, 8, 24}, WeightType::F8E4M3, {0}, seq, pos, 44),
  };
  for (StateElement element : {StateElement::BF16, StateElement::F8E4M3})
    for (const Case &c : cases) {
      const NarrowTwins twins(c, element);
      expectSameBits(runNaive(twins.narrow), runNaive(twins.rounded), "naive");
      expectSameBits(runAbsorbed(twins.narrow), runAbsorbed(twins.rounded), "absorbed");
    }
}

TEST_P(Attention, NarrowCacheWithASharedPrefix) {
  // Sequence 1 reads sequence 0's first 70 rows (its own are NaN there).
  const Dims d{3, 16, 8, 12, 40};
  Case c = makeCase(d, WeightType::BF16, {80, 72}, {1, 0, 1}, {72, 80, 73}, 45);
  std::vector<int32_t> source = {0, 0};
  std::vector<int64_t> rows = {0, 70};
  for (TestState *state : {&c.latent, &c.rope}) {
    for (int64_t r = 0; r < 70; ++r)
      std::fill(state->row(1, r), state->row(1, r) + state->width, NAN);
    state->view.prefixSeq = source.data();
    state->view.prefixRows = rows.data();
  }
  for (int threads : {1, 2})
    for (StateElement element : {StateElement::BF16, StateElement::F8E4M3}) {
      const ScopedNumThreads scoped(threads);
      const NarrowTwins twins(c, element);
      expectSameBits(runNaive(twins.narrow), runNaive(twins.rounded), "naive");
      expectSameBits(runAbsorbed(twins.narrow), runAbsorbed(twins.rounded), "absorbed");
    }
}

TEST_P(Attention, CacheStoreRoundsBf16RowsToNearestEven) {
  Case c = makeCase({1, 2, 3, 2, 37}, WeightType::F32, {2, 1}, {1, 0, 1}, {1, 2, 2}, 46);
  // Values whose rounding is decided by the tie rule, and a NaN that must stay one.
  c.cNew[0] = bf16ToFloat(0x3F80) + std::ldexp(1.f, -8); // 1 + half an ulp: ties to 1
  c.cNew[1] = bf16ToFloat(0x3F81) + std::ldexp(1.f, -8); // ties up to 0x3F82
  c.cNew[2] = NAN;
  const NarrowTwins twins(c, StateElement::BF16);
  Case b = twins.narrow;
  cacheStore(b.cNew.data(), b.pe.data(), b.T, b.d.C, b.d.rope, b.positions.data(),
             b.seqIds.data(), b.latent.view, b.rope.view);
  for (int64_t t = 0; t < b.T; ++t) {
    const auto *row = static_cast<const uint16_t *>(b.latent.view.row(b.seqIds[t], b.positions[t]));
    const auto *ropeRow = static_cast<const uint16_t *>(b.rope.view.row(b.seqIds[t], b.positions[t]));
    for (int64_t i = 0; i < b.d.C; ++i)
      EXPECT_EQ(row[i], floatToBf16(b.cNew[t * b.d.C + i])) << t << ", " << i;
    for (int64_t i = 0; i < b.d.rope; ++i)
      EXPECT_EQ(ropeRow[i], floatToBf16(b.pe[t * b.d.rope + i])) << t << ", " << i;
  }
  const auto *first = static_cast<const uint16_t *>(b.latent.view.row(b.seqIds[0], b.positions[0]));
  EXPECT_EQ(first[0], 0x3F80);
  EXPECT_EQ(first[1], 0x3F82);
  EXPECT_TRUE(std::isnan(bf16ToFloat(first[2])));
}

TEST_P(Attention, CacheStoreRoundsE4m3RowsAndSaturates) {
  Case c = makeCase({1, 2, 3, 2, 37}, WeightType::F32, {2, 1}, {1, 0, 1}, {1, 2, 2}, 47);
  c.cNew[0] = 1000.f;   // beyond e4m3's range: saturates to 448 (0x7E)
  c.cNew[1] = -1.0625f; // halfway between 1 and 1.125: ties to even, -1 (0xB8)
  c.cNew[2] = 0.f;
  const NarrowTwins twins(c, StateElement::F8E4M3);
  Case b = twins.narrow;
  cacheStore(b.cNew.data(), b.pe.data(), b.T, b.d.C, b.d.rope, b.positions.data(),
             b.seqIds.data(), b.latent.view, b.rope.view);
  for (int64_t t = 0; t < b.T; ++t) {
    const auto *row = static_cast<const uint8_t *>(b.latent.view.row(b.seqIds[t], b.positions[t]));
    for (int64_t i = 0; i < b.d.C; ++i)
      EXPECT_EQ(row[i], floatToFp8e4m3(b.cNew[t * b.d.C + i])) << t << ", " << i;
  }
  const auto *first = static_cast<const uint8_t *>(b.latent.view.row(b.seqIds[0], b.positions[0]));
  EXPECT_EQ(first[0], 0x7E);
  EXPECT_EQ(first[1], 0xB8);
  EXPECT_EQ(first[2], 0x00);
}

MOEC_INSTANTIATE_PER_LEVEL(Attention);

class HeadLinear : public PerLevel {};

/// headLinear against its reference for one weight type and parameter set.
void checkHeadLinear(WeightType type, int64_t wRows, int64_t wCols, const HeadLinearParams &p,
                     int64_t T, int64_t ldx, uint32_t seed) {
  std::mt19937 rng(seed);
  const TestWeight w = randomWeight(type, wRows, wCols, rng);
  const std::vector<float> x = randomVector(T * ldx, rng);
  const ref::Result expected = ref::headLinear(x, T, ldx, w.view(), p);
  std::vector<float> y(expected.value.size(), NAN);
  headLinear(x.data(), T, ldx, w.view(), p, y.data());
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], expected.value[i], tolerance(expected.magnitude[i]))
        << "type " << int(type) << " T " << T << " transpose " << p.transpose << " at " << i;
}

TEST_P(HeadLinear, StridedViewsEveryTypeAndTokenCount) {
  // Three heads of 70 input columns at stride 90 from column 7; W rows per head 50
  // at stride 130 from row 20: rows and columns cross scale blocks, and the two
  // slices leave gaps in x and in W.
  for (WeightType type :
       {WeightType::F32, WeightType::F16, WeightType::BF16, WeightType::F8E4M3})
    for (int64_t T : {1, 2, 5, 40})
      for (int threads : {1, 3}) {
        const ScopedNumThreads scoped(threads);
        HeadLinearParams p;
        p.heads = 3;
        p.inStride = 90;
        p.inOffset = 7;
        p.inWidth = 70;
        p.rowStride = 130;
        p.rowOffset = 20;
        p.rows = 50;
        // x_h W_h^T: W has inWidth columns.
        p.transpose = false;
        checkHeadLinear(type, 3 * 130, 70, p, T, 300, 41);
        // x_h W_h: inWidth == rows, output W.cols wide.
        p.inWidth = 50;
        p.transpose = true;
        checkHeadLinear(type, 3 * 130, 150, p, T, 300, 42);
      }
}

MOEC_INSTANTIATE_PER_LEVEL(HeadLinear);

} // namespace
} // namespace moec::cpu::test
