//===- PlanSteps.cpp - step recipes shared by every plan producer ---------===//
#include "moec/plan_writer/PlanSteps.h"

namespace moec {

plan::StepAttrsUnion rmsNormAttrs(float eps) {
  plan::RmsNormAttrsT norm;
  norm.eps = eps;
  plan::StepAttrsUnion attrs;
  attrs.Set(std::move(norm));
  return attrs;
}

plan::StepAttrsUnion ropeAttrs(int64_t heads, int64_t headStride, int64_t offset,
                               plan::RopeLayout layout) {
  plan::RopeAttrsT rope;
  rope.heads = heads;
  rope.head_stride = headStride;
  rope.offset = offset;
  rope.layout = layout;
  plan::StepAttrsUnion attrs;
  attrs.Set(std::move(rope));
  return attrs;
}

plan::StepAttrsUnion sliceAttrs(int64_t begin, int64_t width) {
  plan::SliceAttrsT slice;
  slice.begin = begin;
  slice.width = width;
  plan::StepAttrsUnion attrs;
  attrs.Set(std::move(slice));
  return attrs;
}

void addMlaSteps(PlanWriter &w, const MlaWeights &weights, const MlaStepsConfig &config) {
  const plan::ModelConfigT &m = w.model();
  int64_t heads = m.num_attention_heads, nope = m.qk_nope_head_dim;
  int64_t rope = m.qk_rope_head_dim, v = m.v_head_dim, latent = m.kv_lora_rank;
  const std::string &p = config.prefix;
  auto scratch = [&](const std::string &name, int64_t cols) {
    return w.addBuffer(p + name, plan::DType::F32, {-1, cols});
  };

  int32_t q = scratch("q", heads * (nope + rope));
  if (m.q_lora_rank > 0) {
    int32_t qLatent = scratch("q_a", m.q_lora_rank);
    w.addStep(plan::StepKind::Linear, {config.input}, {qLatent}, {weights.qA}, {},
              p + "q_a_proj");
    w.addStep(plan::StepKind::RmsNorm, {qLatent}, {qLatent}, {weights.qANorm},
              rmsNormAttrs(m.rms_norm_eps), p + "q_a_layernorm");
    w.addStep(plan::StepKind::Linear, {qLatent}, {q}, {weights.qB}, {}, p + "q_b_proj");
  } else {
    w.addStep(plan::StepKind::Linear, {config.input}, {q}, {weights.qB}, {}, p + "q_proj");
  }
  int32_t kv = scratch("kv", latent + rope);
  w.addStep(plan::StepKind::Linear, {config.input}, {kv}, {weights.kvA}, {},
            p + "kv_a_proj_with_mqa");
  int32_t c = scratch("c", latent);
  w.addStep(plan::StepKind::SliceColumns, {kv}, {c}, {}, sliceAttrs(0, latent), p + "c");
  w.addStep(plan::StepKind::RmsNorm, {c}, {c}, {weights.kvANorm}, rmsNormAttrs(m.rms_norm_eps),
            p + "kv_a_layernorm");
  int32_t pe = scratch("k_pe", rope);
  w.addStep(plan::StepKind::SliceColumns, {kv}, {pe}, {}, sliceAttrs(latent, rope), p + "k_pe");
  w.addStep(plan::StepKind::Rope, {q, config.positions}, {q}, {},
            ropeAttrs(heads, nope + rope, nope, config.ropeLayout), p + "rope_q");
  w.addStep(plan::StepKind::Rope, {pe, config.positions}, {pe}, {},
            ropeAttrs(1, rope, 0, config.ropeLayout), p + "rope_k");
  int32_t o = scratch("o", heads * v);
  plan::MlaAttrsT mla;
  mla.layer = config.layer;
  mla.absorbed = config.absorbed;
  plan::StepAttrsUnion attrs;
  attrs.Set(std::move(mla));
  w.addStep(plan::StepKind::MlaAttention, {q, c, pe, config.positions, config.seqIds}, {o},
            {weights.kvB}, std::move(attrs), p + "attention");
  w.addStep(plan::StepKind::Linear, {o}, {config.output}, {weights.oProj}, {}, p + "o_proj");
}

} // namespace moec
