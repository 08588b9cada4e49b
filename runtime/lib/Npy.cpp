//===- Npy.cpp - Writes NumPy .npy files ----------------------------------===//
#include "moec/runtime/Npy.h"

#include "moec/runtime/AtomicFile.h"

namespace moec {

Status writeNpyF32(const std::string &path, const std::vector<int64_t> &shape,
                   const float *data) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  uint64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    if (i + 1 < shape.size())
      dict += " ";
    count *= uint64_t(shape[i]);
  }
  dict += "), }";
  // Magic (6) + version (2) + header length (2) + dict, padded with spaces and a
  // final newline to a multiple of 64 bytes.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::string header = "\x93NUMPY";
  header += char(1);
  header += char(0);
  header += char(dict.size() & 0xff);
  header += char(dict.size() >> 8);
  header += dict;
  return writeFileAtomically(path, [&](OutputFile &out) -> Status {
    MOEC_RETURN_IF_ERROR(out.write(header.data(), header.size()));
    return out.write(data, count * sizeof(float));
  });
}

} // namespace moec
