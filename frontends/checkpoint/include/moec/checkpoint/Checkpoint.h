//===- Checkpoint.h - A Hugging Face checkpoint directory -------*- C++ -*-===//
//
// A directory with config.json and either model.safetensors or shards listed in
// model.safetensors.index.json ("weight_map": tensor name -> shard file).
// Opening parses the config and maps every shard; tensors are looked up by
// name.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_CHECKPOINT_H
#define MOEC_CHECKPOINT_CHECKPOINT_H

#include "moec/checkpoint/ModelConfig.h"
#include "moec/checkpoint/Safetensors.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>
#include <vector>

namespace moec::checkpoint {

/// File name of the configuration inside a checkpoint directory.
inline constexpr const char *ConfigFileName = "config.json";
/// File name of a single-file checkpoint's tensors.
inline constexpr const char *SingleFileName = "model.safetensors";
/// File name of the shard index of a sharded checkpoint.
inline constexpr const char *IndexFileName = "model.safetensors.index.json";

/// An opened checkpoint: its config and all its tensors, memory-mapped. The
/// TensorInfo pointers and data stay valid for the Checkpoint's lifetime.
class Checkpoint {
public:
  /// Opens the checkpoint in \p Dir: parses config.json, then reads the index
  /// (if model.safetensors.index.json exists) or model.safetensors. Every shard
  /// named in the index must exist and hold the tensors the index assigns it.
  /// Errors are one line naming the file, e.g.
  /// "ckpt/model.safetensors.index.json: shard
  /// 'model-00002-of-00002.safetensors' (for tensor 'lm_head.weight') does not
  /// exist".
  static llvm::Expected<std::unique_ptr<Checkpoint>> open(llvm::StringRef Dir);

  /// Returns the directory the checkpoint was opened from.
  llvm::StringRef directory() const { return Dir; }
  /// Returns the parsed configuration.
  const ModelConfig &config() const { return Config; }
  /// Returns true if the tensors come from an index and several shards.
  bool isSharded() const { return Sharded; }
  /// Returns the file to blame for a tensor that is absent: the index file of a
  /// sharded checkpoint, or model.safetensors.
  llvm::StringRef tensorSourcePath() const { return SourcePath; }
  /// Returns the tensor named \p Name, or nullptr.
  const TensorInfo *lookup(llvm::StringRef Name) const;
  /// Returns every tensor, sorted by name.
  std::vector<const TensorInfo *> tensors() const;
  /// Returns the number of tensors.
  size_t size() const { return ByName.size(); }
  /// Returns the opened safetensors files (one, or one per shard).
  const std::vector<std::unique_ptr<SafetensorsFile>> &files() const {
    return Files;
  }

private:
  Checkpoint() = default;
  llvm::Error openSingle();
  llvm::Error openSharded(llvm::StringRef IndexPath);

  std::string Dir;
  ModelConfig Config;
  bool Sharded = false;
  std::string SourcePath;
  std::vector<std::unique_ptr<SafetensorsFile>> Files;
  llvm::StringMap<const TensorInfo *> ByName;
};

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_CHECKPOINT_H
