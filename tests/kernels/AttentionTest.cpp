//===- AttentionTest.cpp - MLA attention, naive and absorbed --------------===//

#include "Reference.h"
#include "TestSupport.h"

#include <algorithm>
#include <cmath>

namespace moec::cpu::test {
namespace {

/// One call's inputs and the caches it works on. Cache rows that no token ever
/// writes hold NaN, so reading past the causal limit poisons the result.
struct Case {
  MlaDims d;
  int64_t capacity = 0;
  TestWeight kvB;
  std::vector<std::vector<float>> latent, rope; // per sequence, capacity rows
  std::vector<LatentKv> caches;
  std::vector<float> q, cNew, pe;
  std::vector<int32_t> positions, seqIds;
  int64_t T = 0;
  /// Caches with the new rows written by the test itself, for the reference.
  std::vector<std::vector<float>> latentAfter, ropeAfter;
};

/// prefixes[s] rows of sequence s are already cached; the call then brings the
/// tokens (seqIds[t], positions[t]).
Case makeCase(const MlaDims &d, WeightType type, const std::vector<int64_t> &prefixes,
              const std::vector<int32_t> &seqIds, const std::vector<int32_t> &positions,
              uint32_t seed) {
  std::mt19937 rng(seed);
  Case c;
  c.d = d;
  c.T = static_cast<int64_t>(seqIds.size());
  c.seqIds = seqIds;
  c.positions = positions;
  c.capacity = 0;
  for (int64_t p : prefixes)
    c.capacity = std::max(c.capacity, p);
  for (int32_t p : positions)
    c.capacity = std::max<int64_t>(c.capacity, p + 1);
  c.capacity += 3;
  const int64_t C = d.kvLoraRank;
  c.kvB = randomWeight(type, d.heads * (d.nope + d.v), C, rng,
                       static_cast<float>(2.0 / std::sqrt(static_cast<double>(C))));
  for (size_t s = 0; s < prefixes.size(); ++s) {
    std::vector<float> lat(static_cast<size_t>(c.capacity * C), NAN);
    std::vector<float> ro(static_cast<size_t>(c.capacity * d.rope), NAN);
    const std::vector<float> known = randomVector(prefixes[s] * C, rng);
    const std::vector<float> knownPe = randomVector(prefixes[s] * d.rope, rng);
    std::copy(known.begin(), known.end(), lat.begin());
    std::copy(knownPe.begin(), knownPe.end(), ro.begin());
    c.latent.push_back(lat);
    c.rope.push_back(ro);
  }
  c.q = randomVector(c.T * d.heads * (d.nope + d.rope), rng);
  c.cNew = randomVector(c.T * C, rng);
  c.pe = randomVector(c.T * d.rope, rng);
  c.latentAfter = c.latent;
  c.ropeAfter = c.rope;
  for (int64_t t = 0; t < c.T; ++t) {
    std::copy_n(c.cNew.begin() + t * C, C, c.latentAfter[seqIds[t]].begin() + positions[t] * C);
    std::copy_n(c.pe.begin() + t * d.rope, d.rope,
                c.ropeAfter[seqIds[t]].begin() + positions[t] * d.rope);
  }
  return c;
}

/// Runs mlaAttention on fresh copies of the caches; returns the output.
std::vector<float> run(Case c, bool absorbed, std::vector<std::vector<float>> *latentOut = nullptr) {
  c.caches.clear();
  for (size_t s = 0; s < c.latent.size(); ++s)
    c.caches.push_back({c.latent[s].data(), c.rope[s].data(), c.capacity});
  std::vector<float> out(static_cast<size_t>(c.T * c.d.heads * c.d.v), NAN);
  mlaAttention(c.q.data(), c.cNew.data(), c.pe.data(), c.T, c.positions.data(),
               c.seqIds.data(), c.caches.data(), c.kvB.view(), c.d, absorbed, out.data());
  if (latentOut)
    *latentOut = c.latent;
  return out;
}

MlaDims dims(int64_t heads, int64_t nope, int64_t rope, int64_t v, int64_t C) {
  MlaDims d;
  d.heads = heads;
  d.nope = nope;
  d.rope = rope;
  d.v = v;
  d.kvLoraRank = C;
  d.softmaxScale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(nope + rope)));
  return d;
}

/// Both forms against the reference, and against each other.
void checkBothForms(const Case &c) {
  const ref::Result expected = ref::mla(c.q, c.T, c.positions, c.seqIds, c.latentAfter,
                                        c.ropeAfter, c.kvB.view(), c.d);
  std::vector<std::vector<float>> stored;
  const std::vector<float> naive = run(c, false, &stored);
  const std::vector<float> absorbed = run(c, true);
  for (size_t i = 0; i < naive.size(); ++i) {
    const double tol = tolerance(expected.magnitude[i]);
    ASSERT_NEAR(naive[i], expected.value[i], tol) << "naive at " << i;
    ASSERT_NEAR(absorbed[i], expected.value[i], tol) << "absorbed at " << i;
    ASSERT_NEAR(naive[i], absorbed[i], tol) << "naive vs absorbed at " << i;
  }
  // The new rows were written into the right sequence at the right position.
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t k = 0; k < c.d.kvLoraRank; ++k)
      ASSERT_EQ(stored[c.seqIds[t]][c.positions[t] * c.d.kvLoraRank + k],
                c.cNew[t * c.d.kvLoraRank + k]);
}

class Attention : public PerLevel {};

TEST_P(Attention, TwoSequencesInterleavedOddDims) {
  // Sequence 0 has 5 cached rows and brings positions 5, 6, 7; sequence 1 has 9
  // and brings 9, 10. The tokens of a sequence see each other's new rows.
  checkBothForms(makeCase(dims(3, 5, 4, 7, 19), WeightType::F32, {5, 9},
                          {0, 1, 0, 1, 0}, {5, 9, 6, 10, 7}, 31));
}

TEST_P(Attention, FirstTokenOfASequence) {
  checkBothForms(makeCase(dims(2, 3, 2, 3, 9), WeightType::F32, {0}, {0}, {0}, 32));
}

TEST_P(Attention, LongContextManyChunks) {
  // 150 cached rows: three 64-row chunks with a running-max rescale in between.
  checkBothForms(makeCase(dims(4, 16, 8, 16, 40), WeightType::BF16, {150, 3},
                          {0, 1, 0}, {150, 3, 151}, 33));
}

TEST_P(Attention, Fp8KvBWithPartialBlocks) {
  // kv_b_proj is 200 x 300: partial 128-blocks in both directions, and head 1's
  // rows start at 100 (inside a scale block).
  checkBothForms(makeCase(dims(2, 40, 6, 60, 300), WeightType::F8E4M3, {70}, {0, 0},
                          {70, 71}, 34));
}

TEST_P(Attention, DeepSeekDimsDecode) {
  checkBothForms(makeCase(dims(2, 128, 64, 128, 512), WeightType::BF16, {20}, {0}, {20}, 35));
}

TEST_P(Attention, PrefillMoreTokensThanOneQueryBlock) {
  // 20 tokens of one sequence from position 0: the naive form's queries come in
  // blocks of 16 with different causal lengths.
  std::vector<int32_t> seq(20, 0), pos(20);
  for (int32_t i = 0; i < 20; ++i)
    pos[i] = i;
  checkBothForms(makeCase(dims(3, 8, 4, 8, 24), WeightType::F16, {0}, seq, pos, 36));
}

TEST_P(Attention, ManyHeadsInGroups) {
  // 37 heads: groups of up to 16 heads, the last one partial.
  checkBothForms(makeCase(dims(37, 8, 4, 6, 33), WeightType::F32, {12}, {0}, {12}, 37));
}

MOEC_INSTANTIATE_PER_LEVEL(Attention);

} // namespace
} // namespace moec::cpu::test
