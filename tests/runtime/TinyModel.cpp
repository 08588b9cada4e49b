//===- TinyModel.cpp - A tiny random DeepSeek model as a plan -------------===//
#include "TinyModel.h"

#include "moec/plan_writer/PlanSteps.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ftw.h>
#include <unistd.h>

namespace moec::test {

double decodeBf16(uint16_t bits) {
  uint32_t word = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof(value));
  return value;
}

double decodeF16(uint16_t bits) {
  int sign = bits >> 15, exponent = (bits >> 10) & 31, mantissa = bits & 1023;
  double magnitude = exponent == 0 ? std::ldexp(mantissa, -24)
                                   : std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
  return sign ? -magnitude : magnitude;
}

double decodeFp8(uint8_t bits) {
  int sign = bits >> 7, exponent = (bits >> 3) & 15, mantissa = bits & 7;
  double magnitude = exponent == 0 ? std::ldexp(mantissa / 8.0, -6)
                                   : std::ldexp(1.0 + mantissa / 8.0, exponent - 7);
  return sign ? -magnitude : magnitude;
}

const RefWeight &TinyModel::weight(const std::string &name) const {
  auto found = weights.find(name);
  if (found == weights.end()) {
    std::fprintf(stderr, "TinyModel: no weight %s\n", name.c_str());
    std::abort();
  }
  return found->second;
}

namespace {

/// splitmix64: small, portable, and the same on every platform.
class Rng {
public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n).
  uint32_t below(uint32_t n) { return uint32_t(next() % n); }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) {
    return lo + (hi - lo) * double(next() >> 11) * 0x1.0p-53;
  }

private:
  uint64_t state_;
};

/// How a weight is stored.
enum class Storage { F32, BF16, F16, FP8 };

/// Plan indices of one layer's weights and KV-cache states.
struct LayerWeights {
  int32_t inputNorm = -1, postNorm = -1;
  int32_t qA = -1, qANorm = -1, qB = -1; ///< qB is q_proj without query LoRA
  int32_t kvA = -1, kvANorm = -1, kvB = -1, oProj = -1;
  int32_t gate = -1, up = -1, down = -1;            ///< dense MLP
  std::vector<int32_t> router;                      ///< gate weight (+ bias)
  std::vector<int32_t> experts;                     ///< gate, up, down per expert
  int32_t sharedGate = -1, sharedUp = -1, sharedDown = -1;
  int32_t latentState = -1, ropeState = -1;         ///< the layer's KV cache
};

class Builder {
public:
  Builder(const TinyModelOptions &options, PlanWriter &writer, TinyModel &model)
      : options_(options), writer_(writer), model_(model), rng_(options.seed) {}

  void build();

private:
  /// Adds a weight of random values with magnitudes about 2^[lo, hi).
  /// Stored row r holds the values of row rowOrder[r] when rowOrder is not empty.
  int32_t weight(const std::string &name, std::vector<int64_t> shape, Storage storage,
                 int lo, int hi, const std::vector<int64_t> &rowOrder = {});
  /// Row order that stores `heads` blocks of `stride` rows with their rope rows
  /// (at `offset`) de-interleaved: half[i] = x[2i], half[i + d/2] = x[2i + 1].
  std::vector<int64_t> halfRopeRows(int64_t rows, int64_t heads, int64_t stride,
                                    int64_t offset) const;
  int32_t store(const std::string &name, plan::DType dtype, std::vector<int64_t> shape,
                const void *data, size_t bytes);
  Storage projection() const { return options_.fp8 ? Storage::FP8 : Storage::BF16; }
  int32_t buffer(const std::string &name, plan::DType dtype, std::vector<int64_t> shape) {
    return writer_.addBuffer(name, dtype, std::move(shape));
  }
  int32_t matrix(const std::string &name, int64_t cols) {
    return buffer(name, plan::DType::F32, {-1, cols});
  }
  int32_t rmsNorm(int32_t x, int32_t gamma, int32_t out, const std::string &name) {
    writer_.addStep(plan::StepKind::RmsNorm, {x}, {out}, {gamma},
                    rmsNormAttrs(writer_.model().rms_norm_eps), name);
    return out;
  }
  int32_t linear(int32_t x, int32_t w, int32_t out, const std::string &name) {
    writer_.addStep(plan::StepKind::Linear, {x}, {out}, {w}, {}, name);
    return out;
  }
  int32_t swiglu(int32_t x, int32_t gate, int32_t up, int32_t down, const std::string &name);
  /// The weights and states of layer `index`, in the order their values are drawn.
  LayerWeights layerWeights(int64_t index);
  /// Appends the MLA steps of layer `index` on `xn`; returns o_proj's output.
  int32_t attention(int64_t index, int32_t xn, bool absorbed);
  /// Appends the steps of one whole forward pass; returns the logits buffer.
  int32_t forward(bool absorbed);

  const TinyModelOptions &options_;
  PlanWriter &writer_;
  TinyModel &model_;
  Rng rng_;
  int32_t tokens_ = -1, positions_ = -1, seqIds_ = -1;
  int32_t embed_ = -1, finalNorm_ = -1, lmHead_ = -1;
  std::vector<LayerWeights> layers_;
  float softmaxScale_ = 0;
};

int32_t Builder::store(const std::string &name, plan::DType dtype, std::vector<int64_t> shape,
                       const void *data, size_t bytes) {
  if (options_.external)
    return writer_.addWeightInFile(name, dtype, std::move(shape), options_.externalFile, data,
                                   bytes);
  return writer_.addWeight(name, dtype, std::move(shape), data, bytes);
}

std::vector<int64_t> Builder::halfRopeRows(int64_t rows, int64_t heads, int64_t stride,
                                          int64_t offset) const {
  std::vector<int64_t> order(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    order[size_t(r)] = r;
  if (!options_.halfRope)
    return {};
  int64_t d = writer_.model().qk_rope_head_dim;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < d / 2; ++i) {
      order[size_t(h * stride + offset + i)] = h * stride + offset + 2 * i;
      order[size_t(h * stride + offset + d / 2 + i)] = h * stride + offset + 2 * i + 1;
    }
  return order;
}

int32_t Builder::weight(const std::string &name, std::vector<int64_t> shape, Storage storage,
                        int lo, int hi, const std::vector<int64_t> &rowOrder) {
  RefWeight &ref = model_.weights[name];
  ref.shape = shape;
  int64_t rows = shape.size() == 2 ? shape[0] : 1, cols = shape.back();
  size_t count = size_t(rows * cols);
  ref.values.resize(count);
  auto sign = [&]() { return rng_.below(2); };
  // Reorders stored rows (the reference keeps the checkpoint's order).
  auto permuted = [&](const auto &stored) {
    if (rowOrder.empty())
      return stored;
    auto out = stored;
    for (int64_t r = 0; r < rows; ++r)
      std::copy_n(stored.begin() + rowOrder[size_t(r)] * cols, cols, out.begin() + r * cols);
    return out;
  };
  auto exponent = [&]() { return lo + int(rng_.below(uint32_t(hi - lo))); };
  switch (storage) {
  case Storage::F32: {
    std::vector<float> values(count);
    for (size_t i = 0; i < count; ++i) {
      values[i] = float(std::ldexp(rng_.uniform(1.0, 2.0), exponent()) * (sign() ? -1 : 1));
      ref.values[i] = values[i];
    }
    return store(name, plan::DType::F32, shape, permuted(values).data(), count * 4);
  }
  case Storage::BF16: {
    std::vector<uint16_t> bits(count);
    for (size_t i = 0; i < count; ++i) {
      bits[i] = uint16_t(sign() << 15 | (exponent() + 127) << 7 | rng_.below(128));
      ref.values[i] = decodeBf16(bits[i]);
    }
    return store(name, plan::DType::BF16, shape, permuted(bits).data(), count * 2);
  }
  case Storage::F16: {
    std::vector<uint16_t> bits(count);
    for (size_t i = 0; i < count; ++i) {
      bits[i] = uint16_t(sign() << 15 | (exponent() + 15) << 10 | rng_.below(1024));
      ref.values[i] = decodeF16(bits[i]);
    }
    return store(name, plan::DType::F16, shape, permuted(bits).data(), count * 2);
  }
  case Storage::FP8: {
    // Codes with exponent field 4..10 (|code| in [1/8, 16)) times a per-block scale
    // about 2^lo / 8, so values span roughly 2^[lo-6, lo+1).
    int64_t br = options_.fp8Block[0], bc = options_.fp8Block[1];
    int64_t blockRows = (rows + br - 1) / br, blockCols = (cols + bc - 1) / bc;
    std::vector<float> scales(size_t(blockRows * blockCols));
    for (float &scale : scales)
      scale = float(std::ldexp(rng_.uniform(1.0, 2.0), lo - 3));
    std::vector<uint8_t> codes(count);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        size_t i = size_t(r * cols + c);
        codes[i] = uint8_t(sign() << 7 | (4 + rng_.below(7)) << 3 | rng_.below(8));
        ref.values[i] = decodeFp8(codes[i]) * double(scales[size_t((r / br) * blockCols + c / bc)]);
      }
    // A permutation must keep every row inside its scale block.
    for (size_t r = 0; r < rowOrder.size(); ++r)
      if (rowOrder[r] / br != int64_t(r) / br)
        std::abort();
    int32_t index = store(name, plan::DType::F8E4M3, shape, permuted(codes).data(), count);
    std::string scaleName = name.substr(0, name.size() - std::strlen(".weight")) +
                            ".weight_scale_inv";
    int32_t scale = store(scaleName, plan::DType::F32, {blockRows, blockCols}, scales.data(),
                          scales.size() * 4);
    writer_.setBlockScale(index, scale, {br, bc});
    return index;
  }
  }
  return -1;
}

int32_t Builder::swiglu(int32_t x, int32_t gate, int32_t up, int32_t down,
                        const std::string &name) {
  int32_t out = matrix(name, writer_.model().hidden_size);
  writer_.addStep(plan::StepKind::SwigluMlp, {x}, {out}, {gate, up, down}, {}, name);
  return out;
}

LayerWeights Builder::layerWeights(int64_t index) {
  const plan::ModelConfigT &c = writer_.model();
  std::string p = "model.layers." + std::to_string(index) + ".";
  std::string a = p + "self_attn.";
  int64_t heads = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  int64_t qkHead = nope + rope, latent = c.kv_lora_rank, hidden = c.hidden_size;
  Storage normStorage = options_.fp8 ? Storage::F32 : Storage::BF16;
  LayerWeights w;
  w.inputNorm = weight(p + "input_layernorm.weight", {hidden}, normStorage, -1, 1);
  if (c.q_lora_rank > 0) {
    w.qA = weight(a + "q_a_proj.weight", {c.q_lora_rank, hidden}, projection(), -6, -3);
    w.qANorm = weight(a + "q_a_layernorm.weight", {c.q_lora_rank}, normStorage, -1, 1);
    w.qB = weight(a + "q_b_proj.weight", {heads * qkHead, c.q_lora_rank}, projection(), -5, -2,
                  halfRopeRows(heads * qkHead, heads, qkHead, nope));
  } else {
    w.qB = weight(a + "q_proj.weight", {heads * qkHead, hidden}, projection(), -6, -3,
                  halfRopeRows(heads * qkHead, heads, qkHead, nope));
  }
  w.kvA = weight(a + "kv_a_proj_with_mqa.weight", {latent + rope, hidden}, projection(), -6, -3,
                 halfRopeRows(latent + rope, 1, latent + rope, latent));
  w.kvANorm = weight(a + "kv_a_layernorm.weight", {latent}, normStorage, -1, 1);
  w.kvB = weight(a + "kv_b_proj.weight", {heads * (nope + c.v_head_dim), latent}, projection(),
                 -5, -2);
  w.oProj = weight(a + "o_proj.weight", {hidden, heads * c.v_head_dim}, projection(), -6, -3);
  w.postNorm = weight(p + "post_attention_layernorm.weight", {hidden}, normStorage, -1, 1);
  if (index < c.first_k_dense_replace) {
    int64_t inner = c.intermediate_size;
    w.gate = weight(p + "mlp.gate_proj.weight", {inner, hidden}, projection(), -6, -3);
    w.up = weight(p + "mlp.up_proj.weight", {inner, hidden}, projection(), -6, -3);
    w.down = weight(p + "mlp.down_proj.weight", {hidden, inner}, projection(), -6, -3);
  } else {
    int64_t experts = c.n_routed_experts, inner = c.moe_intermediate_size;
    Storage gateStorage = options_.v3Router ? Storage::F32 : Storage::BF16;
    w.router.push_back(weight(p + "mlp.gate.weight", {experts, hidden}, gateStorage, -5, -2));
    if (options_.v3Router)
      w.router.push_back(
          weight(p + "mlp.gate.e_score_correction_bias", {experts}, Storage::F32, -6, -3));
    for (int64_t e = 0; e < experts; ++e) {
      std::string ep = p + "mlp.experts." + std::to_string(e) + ".";
      w.experts.push_back(weight(ep + "gate_proj.weight", {inner, hidden}, projection(), -6, -3));
      w.experts.push_back(weight(ep + "up_proj.weight", {inner, hidden}, projection(), -6, -3));
      w.experts.push_back(weight(ep + "down_proj.weight", {hidden, inner}, projection(), -6, -3));
    }
    std::string sp = p + "mlp.shared_experts.";
    int64_t shared = c.n_shared_experts * inner;
    w.sharedGate = weight(sp + "gate_proj.weight", {shared, hidden}, projection(), -6, -3);
    w.sharedUp = weight(sp + "up_proj.weight", {shared, hidden}, projection(), -6, -3);
    w.sharedDown = weight(sp + "down_proj.weight", {hidden, shared}, projection(), -6, -3);
  }
  w.latentState = writer_.addState(a + "latent_cache", plan::DType::F32, {latent});
  w.ropeState = writer_.addState(a + "rope_cache", plan::DType::F32, {rope});
  return w;
}

int32_t Builder::attention(int64_t index, int32_t xn, bool absorbed) {
  const plan::ModelConfigT &c = writer_.model();
  const LayerWeights &w = layers_[size_t(index)];
  std::string a = "model.layers." + std::to_string(index) + ".self_attn.";
  int64_t heads = c.num_attention_heads, nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim;
  int64_t v = c.v_head_dim, latent = c.kv_lora_rank, qk = nope + rope;
  plan::RopeLayout layout =
      options_.halfRope ? plan::RopeLayout::Half : plan::RopeLayout::Interleaved;

  // Query, latent c and shared rope key k_pe.
  int32_t q = matrix(a + "q", heads * qk);
  if (c.q_lora_rank > 0) {
    int32_t qa = matrix(a + "q_a", c.q_lora_rank);
    linear(xn, w.qA, qa, a + "q_a_proj");
    rmsNorm(qa, w.qANorm, qa, a + "q_a_layernorm");
    linear(qa, w.qB, q, a + "q_b_proj");
  } else {
    linear(xn, w.qB, q, a + "q_proj");
  }
  int32_t kv = linear(xn, w.kvA, matrix(a + "kv", latent + rope), a + "kv_a_proj_with_mqa");
  int32_t cLatent = matrix(a + "c", latent);
  writer_.addStep(plan::StepKind::SliceColumns, {kv}, {cLatent}, {}, sliceAttrs(0, latent),
                  a + "c");
  rmsNorm(cLatent, w.kvANorm, cLatent, a + "kv_a_layernorm");
  int32_t pe = matrix(a + "k_pe", rope);
  writer_.addStep(plan::StepKind::SliceColumns, {kv}, {pe}, {}, sliceAttrs(latent, rope),
                  a + "k_pe");
  const plan::YarnParamsT *yarn = c.rope_yarn.get();
  writer_.addStep(plan::StepKind::Rope, {q, positions_}, {q}, {},
                  ropeAttrs(heads, qk, nope, rope, c.rope_theta, layout, yarn), a + "rope_q");
  writer_.addStep(plan::StepKind::Rope, {pe, positions_}, {pe}, {},
                  ropeAttrs(1, rope, 0, rope, c.rope_theta, layout, yarn), a + "rope_k");
  std::vector<int32_t> states = {w.latentState, w.ropeState};
  writer_.addStep(plan::StepKind::CacheStore, {cLatent, pe, positions_, seqIds_}, {}, {}, {},
                  a + "cache_store", states);

  int32_t o = matrix(a + "o", heads * v);
  if (absorbed) {
    // q_lat[h] = q_nope[h] W_UK[h], W_UK[h] = kv_b rows [h*(nope+v), +nope).
    plan::HeadLinearAttrsT uk;
    uk.heads = heads;
    uk.in_stride = qk;
    uk.in_offset = 0;
    uk.in_width = nope;
    uk.row_stride = nope + v;
    uk.row_offset = 0;
    uk.rows = nope;
    uk.transpose = true;
    int32_t qLatent = matrix(a + "q_lat", heads * latent);
    writer_.addStep(plan::StepKind::HeadLinear, {q}, {qLatent}, {w.kvB}, stepAttrs(std::move(uk)),
                    a + "w_uk");
    plan::LatentAttentionAttrsT core;
    core.heads = heads;
    core.latent_dim = latent;
    core.rope_dim = rope;
    core.q_stride = qk;
    core.q_rope_offset = nope;
    core.softmax_scale = softmaxScale_;
    int32_t oLatent = matrix(a + "o_lat", heads * latent);
    writer_.addStep(plan::StepKind::LatentAttention, {qLatent, q, positions_, seqIds_},
                    {oLatent}, {}, stepAttrs(std::move(core)), a + "attention", states);
    // o[h] = o_lat[h] W_UV[h]^T, W_UV[h] = kv_b rows [h*(nope+v) + nope, +v).
    plan::HeadLinearAttrsT uv;
    uv.heads = heads;
    uv.in_stride = latent;
    uv.in_offset = 0;
    uv.in_width = latent;
    uv.row_stride = nope + v;
    uv.row_offset = nope;
    uv.rows = v;
    uv.transpose = false;
    writer_.addStep(plan::StepKind::HeadLinear, {oLatent}, {o}, {w.kvB}, stepAttrs(std::move(uv)),
                    a + "w_uv");
  } else {
    plan::ExpandedAttentionAttrsT core;
    core.heads = heads;
    core.nope_dim = nope;
    core.rope_dim = rope;
    core.v_dim = v;
    core.latent_dim = latent;
    core.softmax_scale = softmaxScale_;
    writer_.addStep(plan::StepKind::ExpandedAttention, {q, positions_, seqIds_}, {o}, {w.kvB},
                    stepAttrs(std::move(core)), a + "attention", states);
  }
  return linear(o, w.oProj, matrix(a + "out", c.hidden_size), a + "o_proj");
}

int32_t Builder::forward(bool absorbed) {
  const plan::ModelConfigT &c = writer_.model();
  int64_t hidden = c.hidden_size;
  int32_t h = matrix("hidden", hidden);
  writer_.addStep(plan::StepKind::Embedding, {tokens_}, {h}, {embed_}, {}, "embed_tokens");
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights &w = layers_[size_t(l)];
    std::string p = "model.layers." + std::to_string(l) + ".";
    int32_t xn = rmsNorm(h, w.inputNorm, matrix(p + "xn", hidden), p + "input_layernorm");
    int32_t attn = attention(l, xn, absorbed);
    writer_.addStep(plan::StepKind::Add, {h, attn}, {h}, {}, {}, p + "residual_attn");
    int32_t f = rmsNorm(h, w.postNorm, matrix(p + "f", hidden), p + "post_attention_layernorm");
    int32_t mlpOut;
    if (w.experts.empty()) {
      mlpOut = swiglu(f, w.gate, w.up, w.down, p + "mlp");
    } else {
      int64_t topK = c.num_experts_per_tok;
      int32_t idx = buffer(p + "mlp.topk_idx", plan::DType::I32, {-1, topK});
      int32_t topkWeights = buffer(p + "mlp.topk_weight", plan::DType::F32, {-1, topK});
      plan::RouterAttrsT router;
      router.experts = c.n_routed_experts;
      router.top_k = topK;
      router.groups = c.n_group;
      router.topk_groups = c.topk_group;
      router.score_func = c.scoring_func;
      router.group_score = c.group_score;
      router.norm_topk_prob = c.norm_topk_prob;
      router.routed_scaling_factor = c.routed_scaling_factor;
      writer_.addStep(plan::StepKind::Router, {f}, {idx, topkWeights}, w.router,
                      stepAttrs(std::move(router)), p + "mlp.gate");
      plan::MoeAttrsT moe;
      moe.experts = c.n_routed_experts;
      moe.top_k = topK;
      int32_t routed = matrix(p + "mlp.routed", hidden);
      writer_.addStep(plan::StepKind::MoeExperts, {f, idx, topkWeights}, {routed}, w.experts,
                      stepAttrs(std::move(moe)), p + "mlp.experts");
      int32_t shared = swiglu(f, w.sharedGate, w.sharedUp, w.sharedDown, p + "mlp.shared_experts");
      writer_.addStep(plan::StepKind::Add, {routed, shared}, {routed}, {}, {}, p + "mlp.sum");
      mlpOut = routed;
    }
    writer_.addStep(plan::StepKind::Add, {h, mlpOut}, {h}, {}, {}, p + "residual_mlp");
  }
  int32_t normed = rmsNorm(h, finalNorm_, matrix("final_norm", hidden), "norm");
  return linear(normed, lmHead_, matrix("logits", c.vocab_size), "lm_head");
}

void Builder::build() {
  // The config is metadata for people; the steps below carry every constant.
  plan::ModelConfigT &c = writer_.model();
  c.architecture = options_.v3Router ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM";
  c.vocab_size = 160;
  c.hidden_size = 136; // > 128 and not a multiple: FP8 partial blocks along K
  c.intermediate_size = 200;
  c.moe_intermediate_size = 40;
  c.num_hidden_layers = options_.layers;
  c.first_k_dense_replace = 1;
  c.num_attention_heads = 4;
  c.qk_nope_head_dim = 16;
  c.qk_rope_head_dim = 8;
  c.v_head_dim = 12;
  c.kv_lora_rank = 32;
  c.q_lora_rank = options_.qLora ? 48 : 0;
  c.n_routed_experts = 8;
  c.n_shared_experts = 2;
  c.num_experts_per_tok = 3;
  c.n_group = 4;
  c.topk_group = 2;
  c.scoring_func = options_.v3Router ? plan::ScoreFunc::Sigmoid : plan::ScoreFunc::Softmax;
  c.group_score = options_.v3Router ? plan::GroupScore::Top2Sum : plan::GroupScore::Max;
  c.norm_topk_prob = options_.v3Router;
  c.routed_scaling_factor = options_.v3Router ? 2.5f : 1.5f;
  c.rms_norm_eps = 1e-6f;
  c.rope_theta = 10000.f;
  double scale = 1.0 / std::sqrt(double(c.qk_nope_head_dim + c.qk_rope_head_dim));
  if (options_.yarn) {
    c.rope_yarn = std::make_unique<plan::YarnParamsT>();
    c.rope_yarn->factor = 4.f;
    c.rope_yarn->original_max_position_embeddings = 16;
    c.rope_yarn->beta_fast = 32.f;
    c.rope_yarn->beta_slow = 1.f;
    c.rope_yarn->mscale = 1.f;
    c.rope_yarn->mscale_all_dim = 1.f;
    c.rope_yarn->attention_factor = 1.f;
    double m = 0.1 * c.rope_yarn->mscale_all_dim * std::log(double(c.rope_yarn->factor)) + 1.0;
    scale *= m * m;
  }
  c.softmax_scale = float(scale);
  softmaxScale_ = float(scale);

  writer_.plan().max_tokens = options_.maxTokens;
  writer_.plan().provenance->compiler_version = "tiny-model-builder";
  writer_.plan().provenance->pipeline = "handwritten";
  writer_.plan().provenance->source_checkpoint = "random seed " + std::to_string(options_.seed);

  // Weights (and each layer's KV-cache states), in the order their values are drawn.
  Storage embedStorage = options_.fp8 ? Storage::F32 : Storage::BF16;
  embed_ = weight("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, embedStorage, -3,
                  0);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    layers_.push_back(layerWeights(l));
  finalNorm_ = weight("model.norm.weight", {c.hidden_size},
                      options_.fp8 ? Storage::F32 : Storage::BF16, -1, 1);
  lmHead_ = weight("lm_head.weight", {c.vocab_size, c.hidden_size},
                   options_.fp8 ? Storage::BF16 : Storage::F16, -5, -2);

  // The entry points share their inputs; equal MLA forms share their steps.
  tokens_ = buffer("tokens", plan::DType::I32, {-1});
  positions_ = buffer("positions", plan::DType::I32, {-1});
  seqIds_ = buffer("seq_ids", plan::DType::I32, {-1});
  std::vector<int32_t> inputs = {tokens_, positions_, seqIds_};
  uint32_t first = writer_.numSteps();
  int32_t logits = forward(options_.prefillAbsorbed);
  uint32_t count = writer_.numSteps() - first;
  writer_.addEntryPoint("prefill", inputs, {logits}, first, count, c.vocab_size,
                        options_.prefillMinTokens);
  if (options_.decodeAbsorbed != options_.prefillAbsorbed) {
    first = writer_.numSteps();
    logits = forward(options_.decodeAbsorbed);
    count = writer_.numSteps() - first;
  }
  writer_.addEntryPoint("decode", inputs, {logits}, first, count, c.vocab_size);

  // The test's copy of the config (the object API's tables own their children, so
  // copy through a serialised round trip).
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(plan::ModelConfig::Pack(fbb, &c));
  flatbuffers::GetRoot<plan::ModelConfig>(fbb.GetBufferPointer())->UnPackTo(&model_.config);
}

} // namespace

void buildTinyModel(const TinyModelOptions &options, PlanWriter &writer, TinyModel *model) {
  Builder(options, writer, *model).build();
  Status status = writer.planArena();
  if (!status.ok()) {
    std::fprintf(stderr, "TinyModel: %s\n", status.message().c_str());
    std::abort();
  }
}

bool writeTinyModel(const TinyModelOptions &options, const std::string &path,
                    TinyModel *model) {
  TinyModel local;
  PlanWriter writer;
  buildTinyModel(options, writer, model ? model : &local);
  Status status = writer.write(path);
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n", status.message().c_str());
    return false;
  }
  return true;
}

TempDir::TempDir() {
  const char *base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/moec-test-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!::mkdtemp(buffer.data())) {
    std::perror("mkdtemp");
    std::abort();
  }
  path_ = buffer.data();
}

TempDir::~TempDir() {
  ::nftw(
      path_.c_str(),
      [](const char *path, const struct stat *, int, struct FTW *) { return ::remove(path); },
      16, FTW_DEPTH | FTW_PHYS);
}

} // namespace moec::test
