//===- TestUtil.h - Temp folders and file helpers for checkpoint tests ----===//
#ifndef MOEC_TESTS_CHECKPOINT_TESTUTIL_H
#define MOEC_TESTS_CHECKPOINT_TESTUTIL_H

#include "moec/checkpoint/ModelConfig.h"
#include "moec/checkpoint/SafetensorsWriter.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moec::checkpoint::test {

/// A fresh directory under the system temp folder, removed with its contents
/// when the object goes away.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  /// Returns the directory path.
  const std::string &path() const { return Path; }
  /// Returns path()/Name.
  std::string file(llvm::StringRef Name) const;

private:
  std::string Path;
};

/// Writes \p Contents to \p Path (replacing it); fails the test on error.
void writeFile(llvm::StringRef Path, llvm::StringRef Contents);

/// Reads the whole file at \p Path as bytes.
std::string readFile(llvm::StringRef Path);

/// Returns the message of \p Err (the empty string for success) and consumes
/// it.
std::string errorText(llvm::Error Err);

/// Returns the message of a failed Expected, or "<success>" if it holds a
/// value.
template <typename T> std::string errorText(llvm::Expected<T> &Value) {
  if (Value)
    return "<success>";
  return errorText(Value.takeError());
}

/// Builds a raw safetensors file: 8-byte length, \p Header verbatim, \p Data.
std::string rawSafetensors(llvm::StringRef Header, llvm::StringRef Data);

/// Returns the config.json text of a small V3 model that tests edit.
std::string smallV3ConfigJson();

/// Tensors a test is about to write, zero-filled, editable by name.
class TensorSet {
public:
  /// Adds a zero-filled tensor.
  void add(const std::string &Name, DType Type, std::vector<int64_t> Shape);
  /// Replaces the dtype and shape of \p Name (data zero-filled again).
  void retype(const std::string &Name, DType Type, std::vector<int64_t> Shape);
  /// Removes \p Name.
  void remove(const std::string &Name);
  /// Returns the tensors for the writer.
  const std::vector<TensorToWrite> &tensors() const { return Tensors; }

private:
  std::vector<std::unique_ptr<std::vector<uint8_t>>> Storage;
  std::vector<TensorToWrite> Tensors;
};

/// Returns every tensor of expectedTensors(Config) in \p Type, zero-filled.
TensorSet manifestTensors(const ModelConfig &Config, DType Type = DType::BF16);

/// Writes config.json (\p ConfigJson verbatim) and \p Tensors into \p Dir.
void writeCheckpoint(const TempDir &Dir, llvm::StringRef ConfigJson,
                     const TensorSet &Tensors, unsigned NumShards = 1);

/// Parses smallV3ConfigJson() (fails the test if it does not parse).
ModelConfig smallV3Config();

} // namespace moec::checkpoint::test

#endif // MOEC_TESTS_CHECKPOINT_TESTUTIL_H
