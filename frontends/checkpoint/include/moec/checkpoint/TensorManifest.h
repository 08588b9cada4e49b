//===- TensorManifest.h - The tensors a DeepSeek model needs ----*- C++ -*-===//
//
// Enumerates, from a ModelConfig alone, every tensor of spec section 2 with its
// shape, in a fixed order (embedding, layers in order, final norm, lm_head).
// Both the validator and the synthetic checkpoint writer are driven by it.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_TENSORMANIFEST_H
#define MOEC_CHECKPOINT_TENSORMANIFEST_H

#include "moec/checkpoint/ModelConfig.h"

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moec::checkpoint {

/// What a tensor is for; decides which dtypes it may have.
enum class TensorRole {
  Embedding,  ///< model.embed_tokens.weight [vocab, D].
  Norm,       ///< an RMSNorm weight [width].
  Linear,     ///< a projection [out, in]; may be FP8 with a block scale.
  RouterGate, ///< mlp.gate.weight [E, D]; never quantised.
  RouterBias, ///< mlp.gate.e_score_correction_bias [E] (kept in fp32).
  LmHead,     ///< lm_head.weight [vocab, D].
};

/// One tensor the model needs.
struct ExpectedTensor {
  /// Full checkpoint name, e.g. "model.layers.3.mlp.experts.7.up_proj.weight".
  std::string Name;
  /// Expected shape ([out, in] for weights).
  std::vector<int64_t> Shape;
  /// What the tensor is for.
  TensorRole Role = TensorRole::Linear;
  /// Decoder layer index, or -1 for embed_tokens, norm and lm_head.
  int64_t Layer = -1;

  /// Returns true for roles that may be stored as F8_E4M3 + weight_scale_inv.
  bool isQuantizable() const { return Role == TensorRole::Linear; }
};

/// Returns every tensor the model described by \p Config needs, in a fixed
/// order. MTP layers (index >= num_hidden_layers) are not included.
std::vector<ExpectedTensor> expectedTensors(const ModelConfig &Config);

/// Returns the name of the FP8 scale of weight \p WeightName
/// ("X.weight" -> "X.weight_scale_inv").
std::string scaleNameFor(llvm::StringRef WeightName);

/// Returns the shape of the block scale of an [Rows, Cols] weight quantised in
/// BlockRows x BlockCols blocks: [ceil(Rows/BlockRows), ceil(Cols/BlockCols)].
std::vector<int64_t> blockScaleShape(int64_t Rows, int64_t Cols,
                                     int64_t BlockRows = 128,
                                     int64_t BlockCols = 128);

/// Returns the decoder layer index of a "model.layers.N." tensor name, or
/// std::nullopt for other names.
std::optional<int64_t> layerIndexOf(llvm::StringRef TensorName);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_TENSORMANIFEST_H
