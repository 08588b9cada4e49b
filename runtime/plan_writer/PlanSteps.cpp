//===- PlanSteps.cpp - Attribute helpers for plan steps -------------------===//
#include "moec/plan_writer/PlanSteps.h"

#include <memory>

namespace moec {

plan::StepAttrsUnion rmsNormAttrs(float eps) {
  plan::RmsNormAttrsT norm;
  norm.eps = eps;
  return stepAttrs(std::move(norm));
}

plan::StepAttrsUnion sliceAttrs(int64_t begin, int64_t width) {
  plan::SliceAttrsT slice;
  slice.begin = begin;
  slice.width = width;
  return stepAttrs(std::move(slice));
}

plan::StepAttrsUnion ropeAttrs(int64_t heads, int64_t headStride, int64_t offset,
                               int64_t ropeDim, float theta, plan::RopeLayout layout,
                               const plan::YarnParamsT *yarn) {
  plan::RopeAttrsT rope;
  rope.heads = heads;
  rope.head_stride = headStride;
  rope.offset = offset;
  rope.rope_dim = ropeDim;
  rope.theta = theta;
  rope.layout = layout;
  if (yarn)
    rope.yarn = std::make_unique<plan::YarnParamsT>(*yarn);
  return stepAttrs(std::move(rope));
}

} // namespace moec
