//===- Attention.cpp - MLA attention over the latent KV cache -------------===//
//
// Both forms of spec section 4 share one attention primitive (KernelTable::attend)
// and differ only in what they feed it:
// - naive: per (sequence, head), k_nope and v of every cached row are recomputed
//   from the latent c with that head's rows of kv_b_proj, and the sequence's
//   tokens are the queries;
// - absorbed: per (token, group of heads), q_nope is pulled through W_UK into the
//   latent space, the heads attend over the latent cache itself, and the latent
//   result is pushed through W_UV.
//
//===----------------------------------------------------------------------===//

#include "KernelTable.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace moec::cpu {
namespace {

using detail::AttendArgs;
using detail::kMaxAttendQueries;

void storeRows(const float *cNew, const float *pe, int64_t T, const int32_t *positions,
               const int32_t *seqIds, const LatentKv *caches, const MlaDims &d) {
  for (int64_t t = 0; t < T; ++t) {
    const LatentKv &cache = caches[seqIds[t]];
    std::memcpy(cache.latent + positions[t] * d.kvLoraRank, cNew + t * d.kvLoraRank,
                static_cast<size_t>(d.kvLoraRank) * sizeof(float));
    std::memcpy(cache.rope + positions[t] * d.rope, pe + t * d.rope,
                static_cast<size_t>(d.rope) * sizeof(float));
  }
}

void absorbedForm(const float *q, int64_t T, const int32_t *positions,
                  const int32_t *seqIds, const LatentKv *caches, const Weight &kvB,
                  const MlaDims &d, float *out) {
  const detail::KernelTable &k = detail::activeKernels();
  const int64_t H = d.heads, C = d.kvLoraRank, qkDim = d.nope + d.rope;
  const int64_t headRows = d.nope + d.v; // rows of kv_b_proj per head
  const int threads = numThreads();
  // Enough head groups to occupy every thread at decode; at most 16 heads share
  // one pass over the cache.
  const int64_t perGroup =
      std::clamp<int64_t>((H * T + threads - 1) / threads, 1, kMaxAttendQueries);
  const int64_t groups = (H + perGroup - 1) / perGroup;
#pragma omp parallel num_threads(std::min<int64_t>(threads, T * groups))
  {
    std::vector<float> qLat(static_cast<size_t>(perGroup * C));
    std::vector<float> oLat(static_cast<size_t>(perGroup * C));
    int64_t len[kMaxAttendQueries];
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < T * groups; ++item) {
      const int64_t t = item / groups;
      const int64_t h0 = (item % groups) * perGroup;
      const int64_t nh = std::min(perGroup, H - h0);
      const float *qt = q + t * H * qkDim;
      for (int64_t h = h0; h < h0 + nh; ++h)
        k.linearTransposed(qt + h * qkDim, 1, qkDim, kvB, h * headRows, d.nope,
                           qLat.data() + (h - h0) * C, C);
      const LatentKv &cache = caches[seqIds[t]];
      for (int64_t i = 0; i < nh; ++i)
        len[i] = positions[t] + 1;
      AttendArgs a;
      a.queries = nh;
      a.q = qLat.data();
      a.ldq = C;
      a.dk = C;
      a.qr = qt + h0 * qkDim + d.nope;
      a.ldqr = qkDim;
      a.dr = d.rope;
      a.k = cache.latent;
      a.ldk = C;
      a.kr = cache.rope;
      a.ldkr = d.rope;
      a.v = cache.latent;
      a.ldv = C;
      a.dv = C;
      a.len = len;
      a.scale = d.softmaxScale;
      a.out = oLat.data();
      a.ldo = C;
      k.attend(a);
      for (int64_t h = h0; h < h0 + nh; ++h)
        k.linearRows(oLat.data() + (h - h0) * C, 1, C, kvB, h * headRows + d.nope,
                     (h + 1) * headRows, out + t * H * d.v + h * d.v, d.v);
    }
  }
}

void naiveForm(const float *q, int64_t T, const int32_t *positions, const int32_t *seqIds,
               const LatentKv *caches, const Weight &kvB, const MlaDims &d, float *out) {
  const detail::KernelTable &k = detail::activeKernels();
  const int64_t H = d.heads, C = d.kvLoraRank, qkDim = d.nope + d.rope;
  const int64_t headRows = d.nope + d.v;
  // The tokens of each sequence, in call order, and the rows the sequence needs.
  std::vector<int32_t> seqs(seqIds, seqIds + T);
  std::sort(seqs.begin(), seqs.end());
  seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
  const int64_t S = static_cast<int64_t>(seqs.size());
  std::vector<std::vector<int64_t>> tokens(static_cast<size_t>(S));
  std::vector<int64_t> rows(static_cast<size_t>(S), 0);
  for (int64_t t = 0; t < T; ++t) {
    const size_t s = static_cast<size_t>(
        std::lower_bound(seqs.begin(), seqs.end(), seqIds[t]) - seqs.begin());
    tokens[s].push_back(t);
    rows[s] = std::max<int64_t>(rows[s], positions[t] + 1);
  }
#pragma omp parallel num_threads(std::min<int64_t>(numThreads(), S * H))
  {
    std::vector<float> keys, values;
    std::vector<float> qBlock(static_cast<size_t>(kMaxAttendQueries * qkDim));
    std::vector<float> oBlock(static_cast<size_t>(kMaxAttendQueries * d.v));
    int64_t len[kMaxAttendQueries];
#pragma omp for schedule(dynamic)
    for (int64_t item = 0; item < S * H; ++item) {
      const size_t s = static_cast<size_t>(item / H);
      const int64_t h = item % H;
      const LatentKv &cache = caches[seqs[s]];
      const int64_t L = rows[s];
      keys.resize(static_cast<size_t>(L * d.nope));
      values.resize(static_cast<size_t>(L * d.v));
      // k_nope = W_UK[h] c and v = W_UV[h] c for every visible cached row.
      k.linearRows(cache.latent, L, C, kvB, h * headRows, h * headRows + d.nope,
                   keys.data(), d.nope);
      k.linearRows(cache.latent, L, C, kvB, h * headRows + d.nope, (h + 1) * headRows,
                   values.data(), d.v);
      const std::vector<int64_t> &mine = tokens[s];
      for (size_t b0 = 0; b0 < mine.size(); b0 += kMaxAttendQueries) {
        const int64_t nb =
            std::min<int64_t>(kMaxAttendQueries, static_cast<int64_t>(mine.size() - b0));
        for (int64_t i = 0; i < nb; ++i) {
          const int64_t t = mine[b0 + i];
          std::memcpy(qBlock.data() + i * qkDim, q + t * H * qkDim + h * qkDim,
                      static_cast<size_t>(qkDim) * sizeof(float));
          len[i] = positions[t] + 1;
        }
        AttendArgs a;
        a.queries = nb;
        a.q = qBlock.data();
        a.ldq = qkDim;
        a.dk = d.nope;
        a.qr = qBlock.data() + d.nope;
        a.ldqr = qkDim;
        a.dr = d.rope;
        a.k = keys.data();
        a.ldk = d.nope;
        a.kr = cache.rope;
        a.ldkr = d.rope;
        a.v = values.data();
        a.ldv = d.v;
        a.dv = d.v;
        a.len = len;
        a.scale = d.softmaxScale;
        a.out = oBlock.data();
        a.ldo = d.v;
        k.attend(a);
        for (int64_t i = 0; i < nb; ++i) {
          const int64_t t = mine[b0 + i];
          std::memcpy(out + t * H * d.v + h * d.v, oBlock.data() + i * d.v,
                      static_cast<size_t>(d.v) * sizeof(float));
        }
      }
    }
  }
}

} // namespace

void mlaAttention(const float *q, const float *cNew, const float *pe, int64_t T,
                  const int32_t *positions, const int32_t *seqIds, const LatentKv *caches,
                  const Weight &kvB, const MlaDims &dims, bool absorbed, float *out) {
  if (T <= 0)
    return;
  storeRows(cNew, pe, T, positions, seqIds, caches, dims);
  if (absorbed)
    absorbedForm(q, T, positions, seqIds, caches, kvB, dims, out);
  else
    naiveForm(q, T, positions, seqIds, caches, kvB, dims, out);
}

} // namespace moec::cpu
