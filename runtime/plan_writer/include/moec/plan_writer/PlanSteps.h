//===- PlanSteps.h - step recipes shared by every plan producer -*- C++ -*-===//
//
// How a model-level block becomes plan steps, written once: the compiler's
// plan emitter and the runtime tests' hand-built models both call these, so
// the two can never lower a block differently.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_PLAN_WRITER_PLANSTEPS_H
#define MOEC_PLAN_WRITER_PLANSTEPS_H

#include "moec/plan_writer/PlanWriter.h"

#include <cstdint>
#include <string>

namespace moec {

/// Plan weight indices of one MLA attention block.
struct MlaWeights {
  int32_t qA = -1;     ///< q_a_proj [q_lora_rank, D]; -1 without query LoRA
  int32_t qANorm = -1; ///< q_a_layernorm [q_lora_rank]; -1 without query LoRA
  int32_t qB = -1;     ///< q_b_proj [H*(nope+rope), q_lora_rank], or q_proj [.., D]
  int32_t kvA = -1;    ///< kv_a_proj_with_mqa [C + rope, D]
  int32_t kvANorm = -1; ///< kv_a_layernorm [C]
  int32_t kvB = -1;    ///< kv_b_proj [H*(nope+v), C]
  int32_t oProj = -1;  ///< o_proj [D, H*v]
};

/// Where one MLA block reads and writes, and how it runs.
struct MlaStepsConfig {
  int32_t input = -1;     ///< buffer: normalised hidden state [T, D]
  int32_t positions = -1; ///< buffer: i32 [T]
  int32_t seqIds = -1;    ///< buffer: i32 [T]
  int32_t output = -1;    ///< buffer: o_proj output [T, D]
  int32_t layer = 0;      ///< KV cache layer
  bool absorbed = true;   ///< MLA form of the attention step
  plan::RopeLayout ropeLayout = plan::RopeLayout::Interleaved; ///< pair order
  std::string prefix;     ///< names scratch buffers and steps, e.g. "model.layers.3.self_attn."
};

/// Appends the steps of one MLA block (spec section 4): the query
/// (q_a -> rms_norm -> q_b, or q_proj), kv_a, the latent c (slice + rms_norm)
/// and k_pe (slice), rope on q and k_pe, the latent attention step, and
/// o_proj. Dimensions and the norm epsilon come from the writer's model config.
void addMlaSteps(PlanWriter &writer, const MlaWeights &weights,
                 const MlaStepsConfig &config);

/// Attributes of an rms_norm step.
plan::StepAttrsUnion rmsNormAttrs(float eps);
/// Attributes of a rope step over `heads` heads of `headStride` columns,
/// rotating the rope dims at column `offset` of each head.
plan::StepAttrsUnion ropeAttrs(int64_t heads, int64_t headStride, int64_t offset,
                               plan::RopeLayout layout);
/// Attributes of a slice_columns step.
plan::StepAttrsUnion sliceAttrs(int64_t begin, int64_t width);

} // namespace moec

#endif // MOEC_PLAN_WRITER_PLANSTEPS_H
