//===- Safetensors.h - Memory-mapped safetensors files ----------*- C++ -*-===//
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON (name -> {dtype, shape, data_offsets}, plus optional "__metadata__"),
// then the data section. Opening a file maps it read-only and checks every
// header entry against the file; tensor data is never copied.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CHECKPOINT_SAFETENSORS_H
#define MOEC_CHECKPOINT_SAFETENSORS_H

#include "moec/checkpoint/DType.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace moec::checkpoint {

/// One tensor of a mapped safetensors file. The data pointer stays valid while
/// the SafetensorsFile (or Checkpoint) that produced it is alive.
struct TensorInfo {
  /// Tensor name, e.g. "model.layers.3.mlp.gate.weight".
  std::string Name;
  /// Element type.
  DType Type = DType::F32;
  /// Dimensions, outermost first (weights are [out, in]).
  std::vector<int64_t> Shape;
  /// First byte of the little-endian element data inside the read-only
  /// mapping. Not necessarily aligned: read it with memcpy or decodeToFloat.
  const uint8_t *Data = nullptr;
  /// Size of the data in bytes (number of elements x element size).
  uint64_t ByteSize = 0;
  /// Path of the file holding the data, as given to SafetensorsFile::open.
  std::string FilePath;
  /// Byte offset of the data from the start of that file, so a plan can
  /// reference the weight externally by (file, offset, size).
  uint64_t FileOffset = 0;

  /// Returns the number of elements (product of Shape; 1 for a scalar).
  int64_t numElements() const;
  /// Returns the raw bytes.
  llvm::ArrayRef<uint8_t> bytes() const { return {Data, ByteSize}; }
};

/// A read-only, memory-mapped safetensors file.
class SafetensorsFile {
public:
  /// Maps \p Path and validates its header: the header length lies inside the
  /// file, the header is a JSON object, each entry has a supported dtype, a
  /// shape of non-negative integers and data_offsets inside the data section
  /// whose length equals elements x dtype size, and no two tensors overlap.
  /// Errors are one line starting with the path, e.g.
  /// "ckpt/model.safetensors: tensor 'x': unsupported dtype 'I64'".
  static llvm::Expected<std::unique_ptr<SafetensorsFile>>
  open(llvm::StringRef Path);

  /// Parses a safetensors image held in memory (for fuzzing and in-memory
  /// use), with the same checks as open(); errors name the buffer identifier.
  static llvm::Expected<std::unique_ptr<SafetensorsFile>>
  fromBuffer(std::unique_ptr<llvm::MemoryBuffer> Buffer);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile &) = delete;
  SafetensorsFile &operator=(const SafetensorsFile &) = delete;

  /// Returns the path the file was opened with (or the buffer identifier).
  llvm::StringRef path() const { return Path; }
  /// Returns the tensors in the order of their data offsets.
  llvm::ArrayRef<TensorInfo> tensors() const { return Tensors; }
  /// Returns the tensor named \p Name, or nullptr.
  const TensorInfo *lookup(llvm::StringRef Name) const;
  /// Returns the "__metadata__" string map of the header (may be empty).
  const std::map<std::string, std::string> &metadata() const {
    return Metadata;
  }
  /// Returns the file size in bytes.
  uint64_t fileSize() const { return FileSize; }
  /// Returns the offset of the data section (8 + header length).
  uint64_t dataOffset() const { return DataStart; }

private:
  SafetensorsFile() = default;
  /// Checks the header length and parses the header of the image at \p Bytes.
  llvm::Error init(llvm::StringRef FilePath, const uint8_t *Bytes,
                   uint64_t Size);
  /// Reads the JSON header and builds Tensors / Index / Metadata.
  llvm::Error parseHeader(llvm::StringRef Header);

  struct Mapping;
  std::string Path;
  std::unique_ptr<Mapping> Map;
  const uint8_t *Base = nullptr;
  uint64_t FileSize = 0;
  uint64_t DataStart = 0;
  std::vector<TensorInfo> Tensors;
  llvm::StringMap<size_t> Index;
  std::map<std::string, std::string> Metadata;
};

} // namespace moec::checkpoint

#endif // MOEC_CHECKPOINT_SAFETENSORS_H
