//===- Validate.h - Checking a checkpoint against its config ----*- C++ -*-===//
#ifndef MOEC_CHECKPOINT_VALIDATE_H
#define MOEC_CHECKPOINT_VALIDATE_H

#include "moec/checkpoint/Checkpoint.h"

#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace moec::checkpoint {

/// Checks that \p Ckpt holds every tensor of expectedTensors(config) with the
/// expected shape and an allowed dtype:
///  - projections: BF16, F16, F32, or F8_E4M3 (only with a quantization_config)
///    together with an F32 "<name>_scale_inv" of shape [ceil(out/128),
///    ceil(in/128)];
///  - embeddings, norms, lm_head, the router gate and its correction bias:
///    BF16, F16 or F32.
/// The first problem is returned as one line naming the file and the tensor,
/// e.g. "ckpt/model-00002-of-00003.safetensors: tensor
/// 'model.layers.3.mlp.gate.weight': expected shape [64, 2048], got [64,
/// 1024]"; a missing tensor names the index (or model.safetensors). On success
/// returns notes for the driver to print: skipped MTP layers (index >=
/// num_hidden_layers) and tensors the model does not use.
llvm::Expected<std::vector<std::string>>
validateCheckpoint(const Checkpoint &Ckpt);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_VALIDATE_H
