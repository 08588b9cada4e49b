//===- SafetensorsWriter.h - Writing safetensors checkpoints ----*- C++ -*-===//
#ifndef MOEC_CHECKPOINT_SAFETENSORSWRITER_H
#define MOEC_CHECKPOINT_SAFETENSORSWRITER_H

#include "moec/checkpoint/DType.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace moec::checkpoint {

/// A tensor to write: its bytes, borrowed (they must outlive the write call),
/// or a producer the writer calls right before the tensor's data is written, so
/// a large checkpoint is written with one tensor in memory at a time.
struct TensorToWrite {
  /// Tensor name (not "__metadata__").
  std::string Name;
  /// Element type.
  DType Type = DType::F32;
  /// Dimensions, outermost first.
  std::vector<int64_t> Shape;
  /// Little-endian element data; size must be elements x dtype size.
  llvm::ArrayRef<uint8_t> Bytes;
  /// When set (Bytes empty): fills its argument with the tensor's ProducedSize
  /// bytes.
  std::function<void(std::vector<uint8_t> &)> Produce;
  uint64_t ProducedSize = 0;

  uint64_t size() const { return Produce ? ProducedSize : Bytes.size(); }
};

/// Writes one safetensors file at \p Path, atomically (a temporary file in the
/// same folder, renamed over \p Path once complete). Tensors are stored in the
/// given order without gaps; the JSON header is padded with spaces so the data
/// section starts at a multiple of 8. Errors name the path and the tensor.
llvm::Error
writeSafetensors(llvm::StringRef Path, llvm::ArrayRef<TensorToWrite> Tensors,
                 const std::map<std::string, std::string> &Metadata = {});

/// Returns the shard file name "model-0000I-of-0000N.safetensors" (1-based).
std::string shardFileName(unsigned Index, unsigned Count);

/// Writes the tensors of a checkpoint into the existing folder \p Dir, with the
/// metadata {"format": "pt"} that Hugging Face loaders require. NumShards == 1
/// writes model.safetensors; more writes that many shards (consecutive tensors,
/// balanced by bytes, none empty) and then model.safetensors.index.json with
/// "metadata.total_size" and "weight_map". A leftover file of the other
/// layout (model.safetensors or the index) is removed afterwards.
llvm::Error writeCheckpointTensors(llvm::StringRef Dir,
                                   llvm::ArrayRef<TensorToWrite> Tensors,
                                   unsigned NumShards = 1);

/// Writes \p Contents to \p Path atomically (moec::OutputFile: an unnamed file
/// renamed into place after every write is checked; special files in place).
llvm::Error writeFileAtomically(llvm::StringRef Path, llvm::StringRef Contents);

/// Writes what \p Write prints to \p Path through moec::OutputFile, checking every
/// write; "-" is standard output when \p AllowStdout. Errors name the path.
llvm::Error writeOutput(llvm::StringRef Path,
                        llvm::function_ref<void(llvm::raw_ostream &)> Write,
                        bool AllowStdout = false);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_SAFETENSORSWRITER_H
