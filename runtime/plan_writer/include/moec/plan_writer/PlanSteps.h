//===- PlanSteps.h - Attribute helpers for plan steps -----------*- C++ -*-===//
//
// Small builders for the typed attributes of plan steps (runtime/schema/plan.fbs),
// shared by every plan producer (the compiler's plan emitter, the runtime tests'
// hand-built models). Lowering model-level blocks into steps is the compiler's job
// (its passes); nothing here knows a model.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_PLAN_WRITER_PLANSTEPS_H
#define MOEC_PLAN_WRITER_PLANSTEPS_H

#include "moec/plan_writer/PlanWriter.h"

#include <cstdint>
#include <utility>

namespace moec {

/// Wraps any attribute table (plan::HeadLinearAttrsT, plan::RouterAttrsT, ...) into
/// the step's attribute union.
template <typename Attrs> plan::StepAttrsUnion stepAttrs(Attrs attrs) {
  plan::StepAttrsUnion u;
  u.Set(std::move(attrs));
  return u;
}

/// Attributes of an rms_norm step.
plan::StepAttrsUnion rmsNormAttrs(float eps);
/// Attributes of a slice_columns step.
plan::StepAttrsUnion sliceAttrs(int64_t begin, int64_t width);
/// Attributes of a rope step over `heads` heads of `headStride` columns, rotating
/// `ropeDim` values at column `offset` of each head with base `theta`, YaRN-corrected
/// when `yarn` is set (copied).
plan::StepAttrsUnion ropeAttrs(int64_t heads, int64_t headStride, int64_t offset,
                               int64_t ropeDim, float theta, plan::RopeLayout layout,
                               const plan::YarnParamsT *yarn = nullptr);

} // namespace moec

#endif // MOEC_PLAN_WRITER_PLANSTEPS_H
