//===- Attention.cpp - The MLA steps over the latent KV cache -------------===//
//
// cache_store writes the new rows; the two attention cores of spec section 4 share
// one attention primitive (KernelTable::attend) and differ only in what they feed
// it:
// - latent_attention (absorbed form): per (token, group of heads), the heads'
//   latent queries (q_nope pulled through W_UK by a head_linear step) attend over
//   the latent cache itself, which serves as keys and values; a later head_linear
//   pushes the latent result through W_UV;
// - expanded_attention (naive form): per (sequence, head), k_nope and v of every
//   cached row are recomputed from the latent c with that head's rows of kv_b_proj,
//   and the sequence's tokens are the queries.
// Temporaries live in per-thread scratch (Scratch.h).
//
//===----------------------------------------------------------------------===//

#include "KernelTable.h"
#include "Scratch.h"

#include <algorithm>
#include <cstring>

namespace moec::cpu {
namespace {

using detail::AttendArgs;
using detail::kMaxAttendQueries;
using detail::Scratch;
using detail::ScratchLayout;
using detail::ScratchSlot;

} // namespace

namespace {

/// Row `row` of a state gets n values from x: copied, or rounded to bf16 or e4m3.
void storeRow(const StateView &state, int64_t seq, int64_t row, const float *x, int64_t n) {
  void *to = state.row(seq, row);
  if (state.element == StateElement::F32) {
    std::memcpy(to, x, static_cast<size_t>(n) * sizeof(float));
  } else if (state.element == StateElement::BF16) {
    uint16_t *out = static_cast<uint16_t *>(to);
    for (int64_t i = 0; i < n; ++i)
      out[i] = floatToBf16(x[i]);
  } else {
    uint8_t *out = static_cast<uint8_t *>(to);
    for (int64_t i = 0; i < n; ++i)
      out[i] = floatToFp8e4m3(x[i]);
  }
}

/// rows x n values of a bf16 or e4m3 state from row `row0` of `seq`, widened to
/// floats packed n apart.
void widenRows(const StateView &state, int64_t seq, int64_t row0, int64_t rows, int64_t n,
               float *out) {
  for (int64_t r = 0; r < rows; ++r) {
    const void *in = state.row(seq, row0 + r);
    if (state.element == StateElement::BF16)
      for (int64_t i = 0; i < n; ++i)
        out[r * n + i] = bf16ToFloat(static_cast<const uint16_t *>(in)[i]);
    else
      for (int64_t i = 0; i < n; ++i)
        out[r * n + i] = fp8e4m3ToFloat(static_cast<const uint8_t *>(in)[i]);
  }
}

} // namespace

void cacheStore(const float *c, const float *pe, int64_t T, int64_t C, int64_t R,
                const int32_t *positions, const int32_t *seqIds, const StateView &latent,
                const StateView &rope) {
  for (int64_t t = 0; t < T; ++t) {
    storeRow(latent, seqIds[t], positions[t], c + t * C, C);
    storeRow(rope, seqIds[t], positions[t], pe + t * R, R);
  }
}

void latentAttention(const float *qLat, const float *q, int64_t ldq, int64_t T,
                     const int32_t *positions, const int32_t *seqIds,
                     const StateView &latent, const StateView &rope,
                     const LatentAttentionParams &p, float *oLat) {
  if (T <= 0 || p.heads <= 0)
    return;
  const detail::KernelTable &k = detail::activeKernels();
  const int64_t H = p.heads, C = p.latentDim;
  const int threads = numThreads();
  // Enough head groups to occupy every thread at decode; at most 16 heads share
  // one pass over the cache.
  const int64_t perGroup =
      std::clamp<int64_t>((H * T + threads - 1) / threads, 1, kMaxAttendQueries);
  const int64_t groups = (H + perGroup - 1) / perGroup;
#pragma omp parallel for num_threads(std::min<int64_t>(threads, T * groups)) schedule(dynamic)
  for (int64_t item = 0; item < T * groups; ++item) {
    const int64_t t = item / groups;
    const int64_t h0 = (item % groups) * perGroup;
    const int64_t nh = std::min(perGroup, H - h0);
    int64_t len[kMaxAttendQueries];
    for (int64_t i = 0; i < nh; ++i)
      len[i] = positions[t] + 1;
    AttendArgs a;
    a.rows = latent.element;
    a.queries = nh;
    a.q = qLat + t * H * C + h0 * C;
    a.ldq = C;
    a.dk = C;
    a.qr = q + t * ldq + h0 * p.qStride + p.qRopeOffset;
    a.ldqr = p.qStride;
    a.dr = p.ropeDim;
    a.k = latent.row(seqIds[t], 0);
    a.ldk = latent.rowStride;
    a.kr = rope.row(seqIds[t], 0);
    a.ldkr = rope.rowStride;
    a.v = a.k;
    if (int64_t shared = latent.sharedRows(seqIds[t])) {
      a.prefixRows = shared;
      a.k0 = a.v0 = latent.row(latent.sharedWith(seqIds[t]), 0);
      a.kr0 = rope.row(rope.sharedWith(seqIds[t]), 0);
    }
    a.ldv = latent.rowStride;
    a.dv = C;
    a.len = len;
    a.scale = p.softmaxScale;
    a.out = oLat + t * H * C + h0 * C;
    a.ldo = C;
    k.attend(a);
  }
}

void expandedAttention(const float *q, int64_t T, const int32_t *positions,
                       const int32_t *seqIds, const StateView &latent,
                       const StateView &rope, const Weight &kvB,
                       const ExpandedAttentionParams &p, float *out) {
  if (T <= 0 || p.heads <= 0)
    return;
  const detail::KernelTable &k = detail::activeKernels();
  const int64_t H = p.heads, qkDim = p.nopeDim + p.ropeDim;
  const int64_t headRows = p.nopeDim + p.vDim; // rows of kv_b_proj per head
  // The tokens sorted by (sequence, call order), and per run of one sequence its
  // first token in that order and the rows it needs.
  ScratchLayout planLayout;
  planLayout.add<int64_t>(T).add<int64_t>(T + 1).add<int64_t>(T);
  const Scratch plan(ScratchSlot::AttentionPlan, planLayout.bytes());
  char *base = plan.as<char>();
  int64_t *order = ScratchLayout::take<int64_t>(base, T);
  int64_t *runStart = ScratchLayout::take<int64_t>(base, T + 1);
  int64_t *runRows = ScratchLayout::take<int64_t>(base, T);
  for (int64_t t = 0; t < T; ++t)
    order[t] = t;
  std::sort(order, order + T, [&](int64_t a, int64_t b) {
    return seqIds[a] != seqIds[b] ? seqIds[a] < seqIds[b] : a < b;
  });
  int64_t S = 0, maxRows = 0;
  for (int64_t i = 0; i < T; ++i) {
    const int64_t t = order[i];
    if (i == 0 || seqIds[t] != seqIds[order[i - 1]]) {
      runStart[S] = i;
      runRows[S++] = 0;
    }
    runRows[S - 1] = std::max<int64_t>(runRows[S - 1], positions[t] + 1);
    maxRows = std::max(maxRows, runRows[S - 1]);
  }
  runStart[S] = T;
  // A bf16 or e4m3 cache's rows are widened to floats, once per sequence and thread.
  const bool widens = latent.element != StateElement::F32;
  const int64_t C = p.latentDim, R = p.ropeDim;
  ScratchLayout work;
  work.add<float>(maxRows * p.nopeDim)
      .add<float>(maxRows * p.vDim)
      .add<float>(kMaxAttendQueries * qkDim)
      .add<float>(kMaxAttendQueries * p.vDim)
      .add<float>(widens ? maxRows * C : 0)
      .add<float>(widens ? maxRows * R : 0);
#pragma omp parallel num_threads(std::min<int64_t>(numThreads(), S * H))
  {
    // One request per thread and call, sized for the longest sequence.
    const Scratch scratch(ScratchSlot::AttentionWork, work.bytes());
    char *next = scratch.as<char>();
    float *keys = ScratchLayout::take<float>(next, maxRows * p.nopeDim);
    float *values = ScratchLayout::take<float>(next, maxRows * p.vDim);
    float *qBlock = ScratchLayout::take<float>(next, kMaxAttendQueries * qkDim);
    float *oBlock = ScratchLayout::take<float>(next, kMaxAttendQueries * p.vDim);
    float *latentRows = ScratchLayout::take<float>(next, widens ? maxRows * C : 0);
    float *ropeRows = ScratchLayout::take<float>(next, widens ? maxRows * R : 0);
    int64_t widened = -1; // the run whose rows latentRows and ropeRows hold
    int64_t len[kMaxAttendQueries];
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < S * H; ++item) {
      const int64_t s = item / H;
      const int64_t h = item % H;
      const int32_t seq = seqIds[order[runStart[s]]];
      const int64_t L = runRows[s];
      // k_nope = W_UK[h] c and v = W_UV[h] c for every visible cached row (a shared
      // prefix's rows from the sequence that holds them).
      const int64_t shared = std::min(latent.sharedRows(seq), L);
      const int64_t source = latent.sharedWith(seq);
      // The rows as floats: rows [0, shared) at latent0 / rope0, the sequence's own
      // rows from row `shared` of latent1 / rope1 (same row numbering).
      const float *latent0, *latent1, *rope0, *rope1;
      int64_t ldl, ldr;
      if (!widens) {
        latent0 = static_cast<const float *>(latent.row(source, 0));
        latent1 = static_cast<const float *>(latent.row(seq, 0));
        rope0 = static_cast<const float *>(rope.row(rope.sharedWith(seq), 0));
        rope1 = static_cast<const float *>(rope.row(seq, 0));
        ldl = latent.rowStride;
        ldr = rope.rowStride;
      } else {
        if (widened != s) {
          widenRows(latent, source, 0, shared, C, latentRows);
          widenRows(latent, seq, shared, L - shared, C, latentRows + shared * C);
          widenRows(rope, rope.sharedWith(seq), 0, shared, R, ropeRows);
          widenRows(rope, seq, shared, L - shared, R, ropeRows + shared * R);
          widened = s;
        }
        latent0 = latent1 = latentRows;
        rope0 = rope1 = ropeRows;
        ldl = C;
        ldr = R;
      }
      if (shared > 0) {
        k.linearRows(latent0, shared, ldl, kvB, h * headRows, h * headRows + p.nopeDim, keys,
                     p.nopeDim);
        k.linearRows(latent0, shared, ldl, kvB, h * headRows + p.nopeDim, (h + 1) * headRows,
                     values, p.vDim);
      }
      if (L > shared) {
        k.linearRows(latent1 + shared * ldl, L - shared, ldl, kvB, h * headRows,
                     h * headRows + p.nopeDim, keys + shared * p.nopeDim, p.nopeDim);
        k.linearRows(latent1 + shared * ldl, L - shared, ldl, kvB, h * headRows + p.nopeDim,
                     (h + 1) * headRows, values + shared * p.vDim, p.vDim);
      }
      for (int64_t b0 = runStart[s]; b0 < runStart[s + 1]; b0 += kMaxAttendQueries) {
        const int64_t nb = std::min<int64_t>(kMaxAttendQueries, runStart[s + 1] - b0);
        for (int64_t i = 0; i < nb; ++i) {
          const int64_t t = order[b0 + i];
          std::memcpy(qBlock + i * qkDim, q + t * H * qkDim + h * qkDim,
                      static_cast<size_t>(qkDim) * sizeof(float));
          len[i] = positions[t] + 1;
        }
        AttendArgs a;
        a.queries = nb;
        a.q = qBlock;
        a.ldq = qkDim;
        a.dk = p.nopeDim;
        a.qr = qBlock + p.nopeDim;
        a.ldqr = qkDim;
        a.dr = p.ropeDim;
        a.k = keys;
        a.ldk = p.nopeDim;
        a.kr = rope1;
        a.ldkr = ldr;
        a.v = values;
        if (shared > 0) { // keys and values are whole in scratch; rope rows are not
          a.prefixRows = shared;
          a.k0 = keys;
          a.v0 = values;
          a.kr0 = rope0;
        }
        a.ldv = p.vDim;
        a.dv = p.vDim;
        a.len = len;
        a.scale = p.softmaxScale;
        a.out = oBlock;
        a.ldo = p.vDim;
        k.attend(a);
        for (int64_t i = 0; i < nb; ++i) {
          const int64_t t = order[b0 + i];
          std::memcpy(out + t * H * p.vDim + h * p.vDim, oBlock + i * p.vDim,
                      static_cast<size_t>(p.vDim) * sizeof(float));
        }
      }
    }
  }
}

} // namespace moec::cpu
