//===- WeightSource.h - Where the plan emitter reads weight bytes -*- C++ -*-===//
//
// The plan emitter resolves each `moe.weight` by name through this interface and
// reads nothing else from a frontend. The checkpoint frontend implements it over
// mmapped safetensors files (frontends/checkpoint/import, CheckpointWeights.h); an
// ONNX frontend will implement it over initializers.
//
// Ownership: a WeightSource owns (or borrows from something that outlives it) every
// SourceTensor it returns; the pointers and bytes stay valid as long as it lives.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_PLAN_WEIGHTSOURCE_H
#define MOEC_PLAN_WEIGHTSOURCE_H

#include "moec/runtime/PlanFormat.h"

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec {

/// One tensor of a source model.
struct SourceTensor {
  plan::DType dtype = plan::DType::F32; ///< stored element type (F32, F16, BF16, F8E4M3)
  std::vector<int64_t> shape;           ///< dimensions, outermost first
  /// The little-endian element bytes in memory (e.g. inside a mapping); not
  /// necessarily aligned.
  const uint8_t *data = nullptr;
  uint64_t bytes = 0;      ///< size of `data`
  /// Absolute path of a file holding the same bytes at `fileOffset`, so a plan can
  /// reference them in place; empty when the tensor exists only in memory.
  std::string file;
  uint64_t fileOffset = 0; ///< byte offset of the data in `file`
};

/// Named tensors of a source model.
class WeightSource {
public:
  virtual ~WeightSource() = default;
  /// The tensor called `name`, or nullptr.
  virtual const SourceTensor *lookup(llvm::StringRef name) const = 0;
  /// What to name in an error about tensor `name` (e.g. the safetensors file or
  /// shard index that should hold it).
  virtual std::string blame(llvm::StringRef name) const = 0;
};

} // namespace moec

#endif // MOEC_PLAN_WEIGHTSOURCE_H
