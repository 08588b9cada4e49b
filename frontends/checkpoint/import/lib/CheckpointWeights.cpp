//===- CheckpointWeights.cpp - A checkpoint as the emitter's WeightSource -===//
#include "moec/checkpoint/CheckpointWeights.h"

#include <filesystem>

namespace moec::checkpoint {

namespace {
plan::DType planType(DType t) {
  switch (t) {
  case DType::BF16:
    return plan::DType::BF16;
  case DType::F16:
    return plan::DType::F16;
  case DType::F32:
    return plan::DType::F32;
  case DType::F8_E4M3:
    return plan::DType::F8E4M3;
  }
  return plan::DType::F32;
}
} // namespace

const SourceTensor *CheckpointWeights::lookup(llvm::StringRef name) const {
  auto found = resolved.find(name);
  if (found != resolved.end())
    return &found->second;
  const TensorInfo *t = ckpt.lookup(name);
  if (!t)
    return nullptr;
  SourceTensor s;
  s.dtype = planType(t->Type);
  s.shape.assign(t->Shape.begin(), t->Shape.end());
  s.data = t->Data;
  s.bytes = t->ByteSize;
  s.file = std::filesystem::absolute(std::filesystem::path(t->FilePath)).string();
  s.fileOffset = t->FileOffset;
  return &resolved.try_emplace(name, std::move(s)).first->second;
}

std::string CheckpointWeights::blame(llvm::StringRef) const {
  return ckpt.tensorSourcePath().str();
}

} // namespace moec::checkpoint
