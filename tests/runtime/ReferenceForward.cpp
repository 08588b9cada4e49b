//===- ReferenceForward.cpp - Plain-loop DeepSeek forward pass ------------===//
#include "ReferenceForward.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace moec::test {

namespace {

using Matrix = std::vector<double>; // row-major [rows, cols]

Matrix linear(const Matrix &x, int64_t rows, const RefWeight &w) {
  int64_t out = w.shape[0], in = w.shape[1];
  Matrix y(size_t(rows * out), 0.0);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t n = 0; n < out; ++n) {
      double sum = 0;
      for (int64_t k = 0; k < in; ++k)
        sum += x[size_t(t * in + k)] * w.values[size_t(n * in + k)];
      y[size_t(t * out + n)] = sum;
    }
  return y;
}

Matrix rmsNorm(const Matrix &x, int64_t rows, const RefWeight &gamma, double eps) {
  int64_t cols = int64_t(gamma.values.size());
  Matrix y(x.size());
  for (int64_t t = 0; t < rows; ++t) {
    double squares = 0;
    for (int64_t i = 0; i < cols; ++i)
      squares += x[size_t(t * cols + i)] * x[size_t(t * cols + i)];
    double inv = 1.0 / std::sqrt(squares / double(cols) + eps);
    for (int64_t i = 0; i < cols; ++i)
      y[size_t(t * cols + i)] = x[size_t(t * cols + i)] * inv * gamma.values[size_t(i)];
  }
  return y;
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }

/// SwiGLU MLP on one row.
std::vector<double> mlp(const double *x, const RefWeight &gate, const RefWeight &up,
                        const RefWeight &down) {
  int64_t inner = gate.shape[0], hidden = gate.shape[1];
  std::vector<double> act(static_cast<size_t>(inner));
  for (int64_t i = 0; i < inner; ++i) {
    double g = 0, u = 0;
    for (int64_t k = 0; k < hidden; ++k) {
      g += x[k] * gate.values[size_t(i * hidden + k)];
      u += x[k] * up.values[size_t(i * hidden + k)];
    }
    act[size_t(i)] = silu(g) * u;
  }
  std::vector<double> out(size_t(hidden), 0.0);
  for (int64_t d = 0; d < hidden; ++d)
    for (int64_t i = 0; i < inner; ++i)
      out[size_t(d)] += act[size_t(i)] * down.values[size_t(d * inner + i)];
  return out;
}

/// Inverse frequencies with the optional YaRN correction (spec section 4).
std::vector<double> ropeFrequencies(const plan::ModelConfigT &c) {
  int64_t d = c.qk_rope_head_dim;
  double theta = c.rope_theta;
  std::vector<double> freqs(size_t(d / 2));
  for (int64_t j = 0; j < d / 2; ++j)
    freqs[size_t(j)] = std::pow(theta, -2.0 * double(j) / double(d));
  if (!c.rope_yarn)
    return freqs;
  const plan::YarnParamsT &y = *c.rope_yarn;
  auto correctionDim = [&](double r) {
    return double(d) * std::log(double(y.original_max_position_embeddings) / (2 * M_PI * r)) /
           (2 * std::log(theta));
  };
  double low = std::max(std::floor(correctionDim(y.beta_fast)), 0.0);
  double high = std::min(std::ceil(correctionDim(y.beta_slow)), double(d - 1));
  if (low == high)
    high += 0.001;
  for (int64_t j = 0; j < d / 2; ++j) {
    double ramp = std::clamp((double(j) - low) / (high - low), 0.0, 1.0);
    freqs[size_t(j)] = freqs[size_t(j)] * (1 - ramp) + freqs[size_t(j)] / y.factor * ramp;
  }
  return freqs;
}

/// Rotates interleaved pairs (x[2i], x[2i+1]) by pos * freqs[i].
void rope(double *x, const std::vector<double> &freqs, int64_t position) {
  for (size_t i = 0; i < freqs.size(); ++i) {
    double angle = double(position) * freqs[i];
    double a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = a * std::cos(angle) - b * std::sin(angle);
    x[2 * i + 1] = a * std::sin(angle) + b * std::cos(angle);
  }
}

/// Indices of the `count` largest values (ties toward the lower index) and the gap
/// between the last kept and the best dropped value.
std::vector<int64_t> topIndices(const std::vector<double> &values, int64_t count,
                                double *margin) {
  std::vector<int64_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return values[size_t(a)] > values[size_t(b)]; });
  if (size_t(count) < order.size() &&
      values[size_t(order[size_t(count)])] > -std::numeric_limits<double>::infinity())
    *margin = std::min(*margin, values[size_t(order[size_t(count - 1)])] -
                                    values[size_t(order[size_t(count)])]);
  order.resize(size_t(count));
  return order;
}

} // namespace

ReferenceResult referenceForward(const TinyModel &model, const std::vector<int32_t> &tokens) {
  const plan::ModelConfigT &c = model.config;
  ReferenceResult result;
  int64_t n = int64_t(tokens.size()), hidden = c.hidden_size;
  int64_t heads = c.num_attention_heads, nope = c.qk_nope_head_dim, rot = c.qk_rope_head_dim;
  int64_t vdim = c.v_head_dim, latent = c.kv_lora_rank, qk = nope + rot;
  double eps = c.rms_norm_eps;
  std::vector<double> freqs = ropeFrequencies(c);
  double scale = 1.0 / std::sqrt(double(qk));
  if (c.rope_yarn) {
    double m = 0.1 * c.rope_yarn->mscale_all_dim * std::log(double(c.rope_yarn->factor)) + 1;
    scale *= m * m;
  }

  const RefWeight &embed = model.weight("model.embed_tokens.weight");
  Matrix h(size_t(n * hidden));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < hidden; ++i)
      h[size_t(t * hidden + i)] = embed.values[size_t(tokens[size_t(t)] * hidden + i)];

  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    std::string a = p + "self_attn.";
    Matrix xn = rmsNorm(h, n, model.weight(p + "input_layernorm.weight"), eps);
    Matrix q;
    if (c.q_lora_rank > 0) {
      Matrix qa = linear(xn, n, model.weight(a + "q_a_proj.weight"));
      qa = rmsNorm(qa, n, model.weight(a + "q_a_layernorm.weight"), eps);
      q = linear(qa, n, model.weight(a + "q_b_proj.weight"));
    } else {
      q = linear(xn, n, model.weight(a + "q_proj.weight"));
    }
    Matrix kv = linear(xn, n, model.weight(a + "kv_a_proj_with_mqa.weight"));
    Matrix cLatent(size_t(n * latent)), kPe(size_t(n * rot));
    for (int64_t t = 0; t < n; ++t) {
      std::copy_n(&kv[size_t(t * (latent + rot))], latent, &cLatent[size_t(t * latent)]);
      std::copy_n(&kv[size_t(t * (latent + rot) + latent)], rot, &kPe[size_t(t * rot)]);
    }
    cLatent = rmsNorm(cLatent, n, model.weight(a + "kv_a_layernorm.weight"), eps);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t hd = 0; hd < heads; ++hd)
        rope(&q[size_t(t * heads * qk + hd * qk + nope)], freqs, t);
      rope(&kPe[size_t(t * rot)], freqs, t);
    }
    // Naive MLA: expand every position's latent into per-head keys and values.
    Matrix kvFull = linear(cLatent, n, model.weight(a + "kv_b_proj.weight"));
    int64_t kvCols = heads * (nope + vdim);
    Matrix o(size_t(n * heads * vdim), 0.0);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t hd = 0; hd < heads; ++hd) {
        const double *qh = &q[size_t(t * heads * qk + hd * qk)];
        std::vector<double> scores(size_t(t + 1));
        double best = -1e300;
        for (int64_t s = 0; s <= t; ++s) {
          const double *kn = &kvFull[size_t(s * kvCols + hd * (nope + vdim))];
          double dot = 0;
          for (int64_t i = 0; i < nope; ++i)
            dot += qh[i] * kn[i];
          for (int64_t i = 0; i < rot; ++i)
            dot += qh[nope + i] * kPe[size_t(s * rot + i)];
          scores[size_t(s)] = dot * scale;
          best = std::max(best, scores[size_t(s)]);
        }
        double total = 0;
        for (double &score : scores)
          total += (score = std::exp(score - best));
        for (int64_t s = 0; s <= t; ++s) {
          const double *v = &kvFull[size_t(s * kvCols + hd * (nope + vdim) + nope)];
          for (int64_t j = 0; j < vdim; ++j)
            o[size_t(t * heads * vdim + hd * vdim + j)] += scores[size_t(s)] / total * v[j];
        }
      }
    Matrix attn = linear(o, n, model.weight(a + "o_proj.weight"));
    for (size_t i = 0; i < h.size(); ++i)
      h[i] += attn[i];

    Matrix f = rmsNorm(h, n, model.weight(p + "post_attention_layernorm.weight"), eps);
    for (int64_t t = 0; t < n; ++t) {
      const double *x = &f[size_t(t * hidden)];
      std::vector<double> out(size_t(hidden), 0.0);
      if (l < c.first_k_dense_replace) {
        out = mlp(x, model.weight(p + "mlp.gate_proj.weight"), model.weight(p + "mlp.up_proj.weight"),
                  model.weight(p + "mlp.down_proj.weight"));
      } else {
        int64_t experts = c.n_routed_experts;
        const RefWeight &gate = model.weight(p + "mlp.gate.weight");
        std::vector<double> scores(static_cast<size_t>(experts), 0.0);
        for (int64_t e = 0; e < experts; ++e)
          for (int64_t k = 0; k < hidden; ++k)
            scores[size_t(e)] += x[k] * gate.values[size_t(e * hidden + k)];
        if (c.scoring_func == plan::ScoreFunc::Sigmoid) {
          for (double &s : scores)
            s = 1.0 / (1.0 + std::exp(-s));
        } else {
          double best = *std::max_element(scores.begin(), scores.end()), total = 0;
          for (double &s : scores)
            total += (s = std::exp(s - best));
          for (double &s : scores)
            s /= total;
        }
        std::vector<double> select = scores;
        if (c.scoring_func == plan::ScoreFunc::Sigmoid) {
          const RefWeight &bias = model.weight(p + "mlp.gate.e_score_correction_bias");
          for (int64_t e = 0; e < experts; ++e)
            select[size_t(e)] += bias.values[size_t(e)];
        }
        if (c.n_group > 1) {
          int64_t perGroup = experts / c.n_group;
          std::vector<double> groupScores(size_t(c.n_group));
          for (int64_t g = 0; g < c.n_group; ++g) {
            std::vector<double> members(select.begin() + g * perGroup,
                                        select.begin() + (g + 1) * perGroup);
            std::sort(members.rbegin(), members.rend());
            groupScores[size_t(g)] = c.group_score == plan::GroupScore::Top2Sum
                                         ? members[0] + members[1]
                                         : members[0];
          }
          std::vector<int64_t> kept =
              topIndices(groupScores, c.topk_group, &result.minRoutingMargin);
          for (int64_t g = 0; g < c.n_group; ++g)
            if (std::find(kept.begin(), kept.end(), g) == kept.end())
              for (int64_t e = g * perGroup; e < (g + 1) * perGroup; ++e)
                select[size_t(e)] = -std::numeric_limits<double>::infinity();
        }
        std::vector<int64_t> chosen =
            topIndices(select, c.num_experts_per_tok, &result.minRoutingMargin);
        std::vector<double> weights;
        double total = 0;
        for (int64_t e : chosen)
          total += scores[size_t(e)], weights.push_back(scores[size_t(e)]);
        for (double &w : weights) {
          if (c.norm_topk_prob)
            w /= total + 1e-20;
          w *= c.routed_scaling_factor;
        }
        for (size_t k = 0; k < chosen.size(); ++k) {
          std::string ep = p + "mlp.experts." + std::to_string(chosen[k]) + ".";
          std::vector<double> y = mlp(x, model.weight(ep + "gate_proj.weight"),
                                      model.weight(ep + "up_proj.weight"),
                                      model.weight(ep + "down_proj.weight"));
          for (int64_t d = 0; d < hidden; ++d)
            out[size_t(d)] += weights[k] * y[size_t(d)];
        }
        std::string sp = p + "mlp.shared_experts.";
        std::vector<double> shared =
            mlp(x, model.weight(sp + "gate_proj.weight"), model.weight(sp + "up_proj.weight"),
                model.weight(sp + "down_proj.weight"));
        for (int64_t d = 0; d < hidden; ++d)
          out[size_t(d)] += shared[size_t(d)];
      }
      for (int64_t d = 0; d < hidden; ++d)
        h[size_t(t * hidden + d)] += out[size_t(d)];
    }
  }
  Matrix normed = rmsNorm(h, n, model.weight("model.norm.weight"), eps);
  result.logits = linear(normed, n, model.weight("lm_head.weight"));
  return result;
}

} // namespace moec::test
