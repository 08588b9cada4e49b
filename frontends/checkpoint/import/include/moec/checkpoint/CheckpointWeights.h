//===- CheckpointWeights.h - A checkpoint as the emitter's WeightSource -*- C++ -*-===//
//
// Serves the tensors of an opened Hugging Face checkpoint to the plan emitter by
// name: dtype, shape, the mmapped bytes, and the safetensors file + offset that
// holds them (for plans that reference weights externally).
//
// Ownership: borrows the Checkpoint, which must outlive it.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_CHECKPOINTWEIGHTS_H
#define MOEC_CHECKPOINT_CHECKPOINTWEIGHTS_H

#include "moec/Plan/WeightSource.h"
#include "moec/checkpoint/Checkpoint.h"

#include "llvm/ADT/StringMap.h"

namespace moec::checkpoint {

/// The tensors of `ckpt` as a WeightSource.
class CheckpointWeights final : public WeightSource {
public:
  explicit CheckpointWeights(const Checkpoint &ckpt) : ckpt(ckpt) {}
  const SourceTensor *lookup(llvm::StringRef name) const override;
  std::string blame(llvm::StringRef name) const override;

private:
  const Checkpoint &ckpt;                         ///< borrowed
  mutable llvm::StringMap<SourceTensor> resolved; ///< tensors looked up so far
};

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_CHECKPOINTWEIGHTS_H
