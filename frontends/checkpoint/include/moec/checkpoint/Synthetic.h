//===- Synthetic.h - Small deterministic random checkpoints -----*- C++ -*-===//
//
// Writes DeepSeek-shaped checkpoints with random weights for tests and demos
// (`moec synth --preset tiny-v3 -o DIR`). The same preset, options and seed
// give byte-identical files on every platform.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_SYNTHETIC_H
#define MOEC_CHECKPOINT_SYNTHETIC_H

#include "moec/checkpoint/DType.h"
#include "moec/checkpoint/ModelConfig.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>

namespace moec::checkpoint {

/// Options of the synthetic checkpoint writer.
struct SynthOptions {
  /// Seed of every random stream; each tensor draws from its own stream
  /// derived from this seed and its name.
  uint64_t Seed = 0;
  /// Store every projection as F8_E4M3 + an F32 weight_scale_inv (128x128
  /// blocks, scale = amax / 448) and add a quantization_config to config.json.
  bool Fp8 = false;
  /// Element type of the tensors that are not FP8 (BF16, F16 or F32). The
  /// router correction bias is always F32.
  DType WeightType = DType::BF16;
  /// 1 writes model.safetensors; more writes that many shards and an index.
  unsigned NumShards = 1;
  /// Also write tokenizer.json and tokenizer_config.json: a byte-level BPE in
  /// DeepSeek-V3's format of 652 tokens (frontends/checkpoint/data, made by
  /// make_synth_tokenizer.py), which fits every preset's vocabulary.
  bool Tokenizer = true;
};

/// A named synthetic configuration.
struct SynthPreset {
  /// Name given to --preset, e.g. "tiny-v3".
  llvm::StringRef Name;
  /// One-line description for --help / listing.
  llvm::StringRef Description;
};

/// Returns every preset, in a fixed order.
llvm::ArrayRef<SynthPreset> syntheticPresets();

/// Returns the configuration of preset \p Name; an error lists the valid names.
llvm::Expected<ModelConfig> syntheticPresetConfig(llvm::StringRef Name);

/// Writes a checkpoint for \p Config into \p Dir (created if needed):
/// the tensor file(s) first, config.json last, each file atomically; a stale
/// model.safetensors or index of the other layout is removed.
/// Weights are normal with std 1/sqrt(fan_in) for projections, the router gate
/// and lm_head; std 1 for the embedding; norms are 1 + 0.1 N(0,1); the
/// correction bias is 0.1 N(0,1). The written config.json carries a
/// quantization_config exactly when \p Options.Fp8 is set. All tensors are
/// generated in memory: meant for small models.
llvm::Error writeSyntheticCheckpoint(const ModelConfig &Config,
                                     llvm::StringRef Dir,
                                     const SynthOptions &Options);

/// Writes the checkpoint of preset \p Preset into \p Dir (see above).
llvm::Error writeSyntheticCheckpoint(llvm::StringRef Preset,
                                     llvm::StringRef Dir,
                                     const SynthOptions &Options);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_SYNTHETIC_H
