//===- TensorValues.h - Reading checkpoint tensors as floats ----*- C++ -*-===//
#ifndef MOEC_CHECKPOINT_TENSORVALUES_H
#define MOEC_CHECKPOINT_TENSORVALUES_H

#include "moec/checkpoint/Checkpoint.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <vector>

namespace moec::checkpoint {

/// Returns the values of tensor \p Name as fp32, row-major. BF16/F16/F32 are
/// widened exactly; an F8_E4M3 weight is dequantised with its
/// "<name>_scale_inv" block scale (spec section 3). This copies the tensor:
/// meant for tests, small tensors and constant folding, not for bulk weights.
llvm::Expected<std::vector<float>> readTensorAsFloat(const Checkpoint &Ckpt,
                                                     llvm::StringRef Name);

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_TENSORVALUES_H
