//===- Npy.h - Writes NumPy .npy files ---------------------------*- C++ -*-===//
#ifndef MOEC_RUNTIME_NPY_H
#define MOEC_RUNTIME_NPY_H

#include "moec/runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec {

/// Writes a little-endian float32 array of `shape` (C order) as .npy format 1.0,
/// atomically. `data` holds the product of `shape` values.
Status writeNpyF32(const std::string &path, const std::vector<int64_t> &shape,
                   const float *data);

} // namespace moec

#endif // MOEC_RUNTIME_NPY_H
