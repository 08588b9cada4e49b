//===- KernelSetTable.cpp - The KernelSet of the build it is compiled into -===//
//
// Compiled into moec_bench (the linked-in kernels) and, with MOEC_BENCH_BASELINE,
// into the baseline shared library against the baseline's own kernels.h. A
// baseline from before the MLA split (no MOEC_CPU_STEP_KERNELS) runs MLA through
// its single mlaAttention kernel, so the split kernels can be timed against it.
//
//===----------------------------------------------------------------------===//

#include "KernelSet.h"

namespace {

using namespace moec;

#ifdef MOEC_CPU_STEP_KERNELS
/// The plan's steps of one MLA core: cache_store, then head_linear (W_UK) ->
/// latent_attention -> head_linear (W_UV), or expanded_attention.
void mlaDecode(const bench::MlaDecodeCall &c, bool absorbed) {
  cpu::StateView latent, rope;
  latent.data = c.latent;
  latent.rowStride = c.latentDim;
  latent.sequenceStride = c.capacity * c.latentDim;
  latent.capacity = c.capacity;
  rope.data = c.ropeCache;
  rope.rowStride = c.rope;
  rope.sequenceStride = c.capacity * c.rope;
  rope.capacity = c.capacity;
  cpu::cacheStore(c.cNew, c.pe, c.T, c.latentDim, c.rope, c.positions, c.seqIds, latent, rope);
  const int64_t qk = c.nope + c.rope, headRows = c.nope + c.v;
  if (!absorbed) {
    cpu::ExpandedAttentionParams p;
    p.heads = c.heads;
    p.nopeDim = c.nope;
    p.ropeDim = c.rope;
    p.vDim = c.v;
    p.latentDim = c.latentDim;
    p.softmaxScale = c.softmaxScale;
    cpu::expandedAttention(c.q, c.T, c.positions, c.seqIds, latent, rope, *c.kvB, p, c.out);
    return;
  }
  cpu::HeadLinearParams uk;
  uk.heads = c.heads;
  uk.inStride = qk;
  uk.inWidth = c.nope;
  uk.rowStride = headRows;
  uk.rows = c.nope;
  uk.transpose = true;
  cpu::headLinear(c.q, c.T, c.heads * qk, *c.kvB, uk, c.qLat);
  cpu::LatentAttentionParams la;
  la.heads = c.heads;
  la.latentDim = c.latentDim;
  la.ropeDim = c.rope;
  la.qStride = qk;
  la.qRopeOffset = c.nope;
  la.softmaxScale = c.softmaxScale;
  cpu::latentAttention(c.qLat, c.q, c.heads * qk, c.T, c.positions, c.seqIds, latent, rope,
                       la, c.oLat);
  cpu::HeadLinearParams uv;
  uv.heads = c.heads;
  uv.inStride = c.latentDim;
  uv.inWidth = c.latentDim;
  uv.rowStride = headRows;
  uv.rowOffset = c.nope;
  uv.rows = c.v;
  cpu::headLinear(c.oLat, c.T, c.heads * c.latentDim, *c.kvB, uv, c.out);
}
#else
/// A build before the split: one kernel stores the rows and runs either form.
void mlaDecode(const bench::MlaDecodeCall &c, bool absorbed) {
  cpu::MlaDims d;
  d.heads = c.heads;
  d.nope = c.nope;
  d.rope = c.rope;
  d.v = c.v;
  d.kvLoraRank = c.latentDim;
  d.softmaxScale = c.softmaxScale;
  const cpu::LatentKv cache{c.latent, c.ropeCache, c.capacity};
  cpu::mlaAttention(c.q, c.cNew, c.pe, c.T, c.positions, c.seqIds, &cache, *c.kvB, d, absorbed,
                    c.out);
}
#endif

} // namespace

extern "C" const moec::bench::KernelSet *moecBenchKernelSet() {
  using namespace moec::cpu;
  static const moec::bench::KernelSet set = {
      &setNumThreads, &numThreads, &setSimdLevelForTesting, &simdLevel, &rmsNorm,
      &linear,        &add,        &rope,                   &router,    &swigluMlp,
      &moeExperts,    &mlaDecode};
  return &set;
}
