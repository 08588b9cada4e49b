//===- Reference.cpp - Plain reference loops for the kernel tests ---------===//

#include "Reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

namespace moec::cpu::ref {

double fp8(uint8_t b) {
  const int sign = b >> 7, e = (b >> 3) & 15, m = b & 7;
  if (e == 15 && m == 7)
    return std::numeric_limits<double>::quiet_NaN();
  const double mag = e == 0 ? std::pow(2.0, -6) * (m / 8.0)
                            : std::pow(2.0, e - 7) * (1.0 + m / 8.0);
  return sign ? -mag : mag;
}

double bf16(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double f16(uint16_t h) {
  const int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double mag;
  if (e == 31)
    mag = m ? std::numeric_limits<double>::quiet_NaN()
            : std::numeric_limits<double>::infinity();
  else if (e == 0)
    mag = std::pow(2.0, -14) * (m / 1024.0);
  else
    mag = std::pow(2.0, e - 15) * (1.0 + m / 1024.0);
  return sign ? -mag : mag;
}

double weightAt(const Weight &W, int64_t r, int64_t c) {
  const int64_t i = r * W.cols + c;
  const auto *bytes = static_cast<const uint8_t *>(W.data);
  switch (W.type) {
  case WeightType::F32: {
    float f;
    std::memcpy(&f, bytes + i * 4, 4);
    return f;
  }
  case WeightType::F16:
  case WeightType::BF16: {
    uint16_t h;
    std::memcpy(&h, bytes + i * 2, 2);
    return W.type == WeightType::F16 ? f16(h) : bf16(h);
  }
  case WeightType::F8E4M3: {
    const int64_t B = kFp8BlockSize;
    const int64_t blocksPerRow = (W.cols + B - 1) / B;
    return fp8(bytes[i]) * W.blockScale[(r / B) * blocksPerRow + c / B];
  }
  case WeightType::I8: {
    const int64_t B = kFp8BlockSize;
    const int64_t blocksPerRow = (W.cols + B - 1) / B;
    return static_cast<int8_t>(bytes[i]) * double(W.blockScale[(r / B) * blocksPerRow + c / B]);
  }
  }
  return 0;
}

void quantizeActs(const float *x, int64_t K, std::vector<int> &q, std::vector<float> &scales) {
  const int64_t B = 128;
  q.assign(static_cast<size_t>(K), 0);
  scales.assign(static_cast<size_t>((K + B - 1) / B), 0.f);
  for (int64_t b0 = 0; b0 < K; b0 += B) {
    const int64_t b1 = std::min(K, b0 + B);
    float amax = 0.f;
    for (int64_t k = b0; k < b1; ++k)
      amax = std::max(amax, std::fabs(x[k]));
    if (!(amax >= 0x1p-100f))
      continue;
    scales[b0 / B] = amax / 127.f;
    const float inverse = 127.f / amax;
    for (int64_t k = b0; k < b1; ++k) {
      const float v = x[k] * inverse; // one float32 product, then half-even rounding
      double r = std::floor(double(v));
      const double frac = double(v) - r;
      if (frac > 0.5 || (frac == 0.5 && std::fmod(r, 2.0) != 0.0))
        r += 1.0;
      q[k] = static_cast<int>(r);
    }
  }
}

namespace {

/// One token row times int8 weight rows, W8A8 (kernels.h): exact integer block
/// dot products, each times the block's two scales, summed in double.
void linearRowI8(const float *x, const Weight &W, double *value, double *magnitude) {
  const int64_t B = kFp8BlockSize, K = W.cols;
  const int64_t blocksPerRow = (K + B - 1) / B;
  std::vector<int> q;
  std::vector<float> xs;
  quantizeActs(x, K, q, xs);
  const auto *codes = static_cast<const int8_t *>(W.data);
  for (int64_t r = 0; r < W.rows; ++r) {
    double s = 0, m = 0;
    for (int64_t b = 0; b < blocksPerRow; ++b) {
      int64_t dot = 0, abs = 0;
      for (int64_t k = b * B; k < std::min(K, (b + 1) * B); ++k) {
        dot += int64_t(codes[r * K + k]) * q[k];
        abs += std::llabs(int64_t(codes[r * K + k]) * q[k]);
      }
      const double scale = double(xs[b]) * double(W.blockScale[(r / B) * blocksPerRow + b]);
      s += scale * double(dot);
      m += scale * double(abs);
    }
    value[r] = s;
    magnitude[r] = m;
  }
}

} // namespace

Result linear(const std::vector<float> &x, int64_t T, const Weight &W) {
  Result out;
  out.value.assign(static_cast<size_t>(T * W.rows), 0.0);
  out.magnitude.assign(out.value.size(), 0.0);
  if (W.type == WeightType::I8) {
    for (int64_t t = 0; t < T; ++t)
      linearRowI8(x.data() + t * W.cols, W, out.value.data() + t * W.rows,
                  out.magnitude.data() + t * W.rows);
    return out;
  }
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < W.rows; ++r) {
      double s = 0, m = 0;
      for (int64_t c = 0; c < W.cols; ++c) {
        const double term = x[t * W.cols + c] * weightAt(W, r, c);
        s += term;
        m += std::fabs(term);
      }
      out.value[t * W.rows + r] = s;
      out.magnitude[t * W.rows + r] = m;
    }
  return out;
}

std::vector<double> rmsNorm(const std::vector<float> &x, int64_t T, int64_t D,
                            const Weight &gamma, double eps) {
  std::vector<double> out(static_cast<size_t>(T * D));
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t c = 0; c < D; ++c)
      ss += static_cast<double>(x[t * D + c]) * x[t * D + c];
    const double r = 1.0 / std::sqrt(ss / D + eps);
    for (int64_t c = 0; c < D; ++c)
      out[t * D + c] = x[t * D + c] * r * weightAt(gamma, 0, c);
  }
  return out;
}

std::vector<double> ropeFrequencies(const RopeParams &p) {
  const int64_t half = p.dim / 2;
  std::vector<double> f(static_cast<size_t>(half));
  double low = 0, high = 0;
  if (p.yarn) {
    auto cd = [&](double r) {
      return p.dim * std::log(p.originalMaxPositions / (2 * M_PI * r)) /
             (2 * std::log(static_cast<double>(p.theta)));
    };
    low = std::max(std::floor(cd(p.betaFast)), 0.0);
    high = std::min(std::ceil(cd(p.betaSlow)), static_cast<double>(p.dim - 1));
    if (low == high)
      high += 0.001;
  }
  for (int64_t j = 0; j < half; ++j) {
    const double base = std::pow(static_cast<double>(p.theta), -2.0 * j / p.dim);
    if (!p.yarn) {
      f[j] = base;
      continue;
    }
    const double ramp = std::clamp((j - low) / (high - low), 0.0, 1.0);
    f[j] = base * (1 - ramp) + base / p.factor * ramp;
  }
  return f;
}

std::vector<double> rope(const std::vector<float> &x, int64_t T, int64_t heads,
                         int64_t headDim, int64_t offset, const RopeParams &p,
                         const std::vector<double> &freqs, const std::vector<int32_t> &pos,
                         RopeLayout layout) {
  std::vector<double> out(x.begin(), x.end());
  const int64_t half = p.dim / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < half; ++j) {
        const int64_t base = t * heads * headDim + h * headDim + offset;
        const int64_t ia = layout == RopeLayout::Interleaved ? base + 2 * j : base + j;
        const int64_t ib = layout == RopeLayout::Interleaved ? base + 2 * j + 1 : base + j + half;
        // The spec fixes the angle as an fp32 product (as HF and DeepSeek compute
        // it); at large positions its rounding moves cos/sin by ~1e-4, so it is part
        // of the function, not an implementation detail.
        const double angle = static_cast<float>(pos[t]) * static_cast<float>(freqs[j]);
        const double c = std::cos(angle) * p.attentionFactor;
        const double s = std::sin(angle) * p.attentionFactor;
        out[ia] = x[ia] * c - x[ib] * s;
        out[ib] = x[ia] * s + x[ib] * c;
      }
  return out;
}

Result headLinear(const std::vector<float> &x, int64_t T, int64_t ldx, const Weight &W,
                  const HeadLinearParams &p) {
  const int64_t H = p.heads, N = p.transpose ? W.cols : p.rows;
  Result out;
  out.value.assign(static_cast<size_t>(T * H * N), 0.0);
  out.magnitude.assign(out.value.size(), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      const float *xh = x.data() + t * ldx + h * p.inStride + p.inOffset;
      const int64_t row0 = h * p.rowStride + p.rowOffset;
      for (int64_t n = 0; n < N; ++n) {
        double s = 0, m = 0;
        for (int64_t i = 0; i < p.inWidth; ++i) {
          const double w = p.transpose ? weightAt(W, row0 + i, n) : weightAt(W, row0 + n, i);
          s += xh[i] * w;
          m += std::fabs(xh[i] * w);
        }
        out.value[t * H * N + h * N + n] = s;
        out.magnitude[t * H * N + h * N + n] = m;
      }
    }
  return out;
}

namespace {

/// Softmax of scores in place (max-subtracted, in double).
void softmax(std::vector<double> &score) {
  const double m = *std::max_element(score.begin(), score.end());
  double sum = 0;
  for (double &s : score)
    sum += (s = std::exp(s - m));
  for (double &s : score)
    s /= sum;
}

} // namespace

Result latentAttention(const std::vector<float> &qLat, const std::vector<float> &q,
                       int64_t ldq, int64_t T, const std::vector<int32_t> &pos,
                       const std::vector<int32_t> &seq,
                       const std::vector<SequenceCache> &caches,
                       const LatentAttentionParams &p) {
  const int64_t H = p.heads, C = p.latentDim, R = p.ropeDim;
  Result out;
  out.value.assign(static_cast<size_t>(T * H * C), 0.0);
  out.magnitude.assign(out.value.size(), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    const SequenceCache &cache = caches[seq[t]];
    const int64_t L = pos[t] + 1;
    for (int64_t h = 0; h < H; ++h) {
      const float *ql = qLat.data() + t * H * C + h * C;
      const float *qr = q.data() + t * ldq + h * p.qStride + p.qRopeOffset;
      std::vector<double> prob(static_cast<size_t>(L));
      for (int64_t j = 0; j < L; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < C; ++c)
          dot += static_cast<double>(ql[c]) * cache.latent[j * C + c];
        for (int64_t r = 0; r < R; ++r)
          dot += static_cast<double>(qr[r]) * cache.rope[j * R + r];
        prob[j] = dot * p.softmaxScale;
      }
      softmax(prob);
      for (int64_t c = 0; c < C; ++c) {
        double o = 0, mag = 0;
        for (int64_t j = 0; j < L; ++j) {
          o += prob[j] * cache.latent[j * C + c];
          mag += prob[j] * std::fabs(cache.latent[j * C + c]);
        }
        out.value[t * H * C + h * C + c] = o;
        out.magnitude[t * H * C + h * C + c] = mag;
      }
    }
  }
  return out;
}

Result mla(const std::vector<float> &q, int64_t T, const std::vector<int32_t> &pos,
           const std::vector<int32_t> &seq, const std::vector<SequenceCache> &caches,
           const Weight &kvB, const ExpandedAttentionParams &d) {
  const int64_t H = d.heads, C = d.latentDim, qk = d.nopeDim + d.ropeDim;
  const int64_t headRows = d.nopeDim + d.vDim;
  Result out;
  out.value.assign(static_cast<size_t>(T * H * d.vDim), 0.0);
  out.magnitude.assign(out.value.size(), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<float> &c = caches[seq[t]].latent;
    const std::vector<float> &pe = caches[seq[t]].rope;
    const int64_t L = pos[t] + 1;
    for (int64_t h = 0; h < H; ++h) {
      const float *qh = q.data() + t * H * qk + h * qk;
      std::vector<double> score(static_cast<size_t>(L));
      // v of each row, and the sum of its absolute terms (v is itself a product).
      std::vector<std::vector<double>> value(static_cast<size_t>(L)), valueMag(value.size());
      for (int64_t j = 0; j < L; ++j) {
        // k_nope and v of row j from kv_b_proj(c_j), head h.
        double dot = 0;
        for (int64_t i = 0; i < d.nopeDim; ++i) {
          double k = 0;
          for (int64_t cc = 0; cc < C; ++cc)
            k += weightAt(kvB, h * headRows + i, cc) * c[j * C + cc];
          dot += qh[i] * k;
        }
        for (int64_t i = 0; i < d.ropeDim; ++i)
          dot += qh[d.nopeDim + i] * static_cast<double>(pe[j * d.ropeDim + i]);
        score[j] = dot * d.softmaxScale;
        value[j].assign(static_cast<size_t>(d.vDim), 0.0);
        valueMag[j].assign(static_cast<size_t>(d.vDim), 0.0);
        for (int64_t i = 0; i < d.vDim; ++i)
          for (int64_t cc = 0; cc < C; ++cc) {
            const double term = weightAt(kvB, h * headRows + d.nopeDim + i, cc) * c[j * C + cc];
            value[j][i] += term;
            valueMag[j][i] += std::fabs(term);
          }
      }
      softmax(score);
      for (int64_t i = 0; i < d.vDim; ++i) {
        double o = 0, mag = 0;
        for (int64_t j = 0; j < L; ++j) {
          o += score[j] * value[j][i];
          mag += score[j] * valueMag[j][i];
        }
        out.value[t * H * d.vDim + h * d.vDim + i] = o;
        out.magnitude[t * H * d.vDim + h * d.vDim + i] = mag;
      }
    }
  }
  return out;
}

void route(const std::vector<double> &logits, const float *bias, const RouterParams &p,
           std::vector<int32_t> &idx, std::vector<double> &weights) {
  const int64_t E = p.experts;
  std::vector<double> s(static_cast<size_t>(E)), sel(static_cast<size_t>(E));
  if (p.score == ScoreFunc::Softmax) {
    double sum = 0;
    for (int64_t e = 0; e < E; ++e)
      sum += std::exp(logits[e]);
    for (int64_t e = 0; e < E; ++e)
      s[e] = std::exp(logits[e]) / sum;
  } else {
    for (int64_t e = 0; e < E; ++e)
      s[e] = 1 / (1 + std::exp(-logits[e]));
  }
  for (int64_t e = 0; e < E; ++e)
    sel[e] = s[e] + (bias ? bias[e] : 0.0);
  if (p.groups > 1) {
    const int64_t g = p.experts / p.groups;
    std::vector<std::pair<double, int64_t>> groupScores;
    for (int64_t gi = 0; gi < p.groups; ++gi) {
      std::vector<double> members(sel.begin() + gi * g, sel.begin() + (gi + 1) * g);
      std::sort(members.rbegin(), members.rend());
      const double score = p.groupScore == GroupScore::Max ? members[0] : members[0] + members[1];
      groupScores.push_back({score, gi});
    }
    // Descending score, lower index first on ties.
    std::stable_sort(groupScores.begin(), groupScores.end(),
                     [](auto &a, auto &b) { return a.first > b.first; });
    std::vector<bool> keep(static_cast<size_t>(p.groups), false);
    for (int64_t i = 0; i < p.topkGroups; ++i)
      keep[groupScores[i].second] = true;
    for (int64_t e = 0; e < E; ++e)
      if (!keep[e / g])
        sel[e] = -std::numeric_limits<double>::infinity();
  }
  std::vector<int64_t> order(static_cast<size_t>(E));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return sel[a] > sel[b]; });
  idx.assign(order.begin(), order.begin() + p.topK);
  weights.clear();
  double sum = 0;
  for (int32_t e : idx)
    sum += s[e];
  for (int32_t e : idx)
    weights.push_back((p.normTopkProb ? s[e] / (sum + 1e-20) : s[e]) * p.routedScalingFactor);
}

Result swiglu(const std::vector<float> &x, int64_t T, const SwigluWeights &m) {
  const int64_t I = m.gate.rows, D = m.gate.cols;
  Result out;
  out.value.assign(static_cast<size_t>(T * D), 0.0);
  out.magnitude.assign(out.value.size(), 0.0);
  std::vector<double> h(static_cast<size_t>(I));
  if (m.gate.type == WeightType::I8) { // W8A8 (both products; the hidden row as floats)
    std::vector<double> g(static_cast<size_t>(I)), u(g.size()), mag(g.size());
    std::vector<double> y(static_cast<size_t>(D)), ymag(y.size());
    std::vector<float> hf(static_cast<size_t>(I));
    for (int64_t t = 0; t < T; ++t) {
      linearRowI8(x.data() + t * D, m.gate, g.data(), mag.data());
      linearRowI8(x.data() + t * D, m.up, u.data(), mag.data());
      for (int64_t i = 0; i < I; ++i)
        hf[i] = static_cast<float>(g[i] / (1 + std::exp(-g[i])) * u[i]);
      linearRowI8(hf.data(), m.down, y.data(), ymag.data());
      // A hidden value within 1e-3 of a code's rounding boundary may take the other
      // code in the kernels (its float32 value differs from this one in the last
      // bits): one code step, times its column of the down weight.
      std::vector<int> q;
      std::vector<float> hs;
      quantizeActs(hf.data(), I, q, hs);
      out.slack.resize(out.value.size(), 0.0);
      for (int64_t i = 0; i < I; ++i) {
        const float scale = hs[size_t(i / 128)];
        if (scale == 0.f)
          continue;
        const double v = double(hf[i]) / double(scale);
        if (std::fabs(std::fabs(v - std::floor(v)) - 0.5) > 1e-3)
          continue;
        for (int64_t r = 0; r < D; ++r)
          out.slack[size_t(t * D + r)] += double(scale) * std::fabs(weightAt(m.down, r, i));
      }
      for (int64_t r = 0; r < D; ++r) {
        out.value[t * D + r] = y[r];
        out.magnitude[t * D + r] = ymag[r];
      }
    }
    return out;
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < I; ++i) {
      double g = 0, u = 0;
      for (int64_t c = 0; c < D; ++c) {
        g += x[t * D + c] * weightAt(m.gate, i, c);
        u += x[t * D + c] * weightAt(m.up, i, c);
      }
      h[i] = g / (1 + std::exp(-g)) * u;
    }
    for (int64_t r = 0; r < m.down.rows; ++r)
      for (int64_t i = 0; i < I; ++i) {
        const double term = h[i] * weightAt(m.down, r, i);
        out.value[t * D + r] += term;
        out.magnitude[t * D + r] += std::fabs(term);
      }
  }
  return out;
}

} // namespace moec::cpu::ref
