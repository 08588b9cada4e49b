//===- PlanFormat.h - Constants of the plan file format ---------*- C++ -*-===//
//
// The facts about a plan file that the writer and the loader must agree on beyond
// the schema itself (runtime/schema/plan.fbs): the version, the alignment rules and
// where the weight blob begins.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_PLANFORMAT_H
#define MOEC_RUNTIME_PLANFORMAT_H

#include "moec/runtime/CheckedMath.h"
#include "moec/schema/plan_generated.h"

#include <cstdint>

namespace moec {

/// The plan format version this runtime writes (defined in plan.fbs); it reads
/// versions kPlanFormatOldestReadable through kPlanFormatVersion.
inline constexpr uint32_t kPlanFormatVersion =
    static_cast<uint32_t>(plan::FormatVersion::Current);
inline constexpr uint32_t kPlanFormatOldestReadable =
    static_cast<uint32_t>(plan::FormatVersion::OldestReadable);

/// Embedded weights, the weight blob and arena buffers are aligned to this many bytes.
inline constexpr uint64_t kPlanAlignment = 64;

/// Largest value a plan may hold for a model dimension or for max_tokens; keeps
/// products of a few dimensions far from overflow. The compiler checks it too.
inline constexpr int64_t kMaxModelDim = int64_t(1) << 24;

/// Bytes of the size prefix in front of the flatbuffer.
inline constexpr uint64_t kPlanSizePrefixBytes = 4;

/// Offset of the weight blob in a plan file whose size prefix holds `flatbufferBytes`.
constexpr uint64_t weightBlobOffset(uint32_t flatbufferBytes) {
  return (kPlanSizePrefixBytes + flatbufferBytes + kPlanAlignment - 1) &
         ~(kPlanAlignment - 1);
}

/// Bytes of one element of `type`; 0 for a value outside the enum.
inline uint64_t dtypeSize(plan::DType type) {
  switch (type) {
  case plan::DType::F32:
  case plan::DType::I32:
    return 4;
  case plan::DType::F16:
  case plan::DType::BF16:
    return 2;
  case plan::DType::F8E4M3:
  case plan::DType::I8:
    return 1;
  }
  return 0;
}

/// Lower-case name of `type` ("f32", "bf16", ...), "dtype(N)" style for unknown values
/// is produced by the caller; this returns nullptr for them.
inline const char *dtypeName(plan::DType type) {
  switch (type) {
  case plan::DType::F32:
    return "f32";
  case plan::DType::F16:
    return "f16";
  case plan::DType::BF16:
    return "bf16";
  case plan::DType::F8E4M3:
    return "f8e4m3";
  case plan::DType::I32:
    return "i32";
  case plan::DType::I8:
    return "i8";
  }
  return nullptr;
}

/// Bytes of a tensor of `type` with `shape`, a dimension of -1 counting `tokens`;
/// false when the product overflows 64 bits.
template <typename Dims>
bool tensorBytes(const Dims &shape, plan::DType type, uint64_t tokens, uint64_t *bytes) {
  uint64_t total = dtypeSize(type);
  for (int64_t dim : shape) {
    uint64_t factor = dim == -1 ? tokens : static_cast<uint64_t>(dim);
    if (!checkedMul(total, factor, &total))
      return false;
  }
  *bytes = total;
  return true;
}

/// snake_case name of a step kind as written in the schema docs ("latent_attention");
/// "unknown" for a value outside the enum.
const char *stepKindName(plan::StepKind kind);

} // namespace moec

#endif // MOEC_RUNTIME_PLANFORMAT_H
