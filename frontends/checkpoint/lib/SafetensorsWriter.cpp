//===- SafetensorsWriter.cpp - Writing safetensors checkpoints ------------===//
#include "moec/checkpoint/SafetensorsWriter.h"

#include "JsonFile.h"
#include "moec/checkpoint/Checkpoint.h"
#include "moec/runtime/AtomicFile.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <cassert>
#include <cstdio>

using namespace llvm;
using json = nlohmann::json;

namespace moec::checkpoint {

namespace {
/// A raw_ostream over a moec::OutputFile that keeps the first write error (a
/// raw_fd_ostream would report it only at destruction).
class OutputFileStream : public raw_ostream {
public:
  explicit OutputFileStream(moec::OutputFile &File) : File(File) { SetUnbuffered(); }
  ~OutputFileStream() override { flush(); }
  moec::Status status() const { return Result; }

private:
  void write_impl(const char *Ptr, size_t Size) override {
    if (Result.ok())
      Result = File.write(Ptr, Size);
  }
  uint64_t current_pos() const override { return File.position(); }

  moec::OutputFile &File;
  moec::Status Result;
};

/// Runs \p Write into \p Path atomically; errors are prefixed with the path.
Error writeAtomically(StringRef Path, function_ref<void(raw_ostream &)> Write,
                      bool AllowStdout = false) {
  moec::OutputOptions Options;
  Options.allowStdout = AllowStdout;
  std::unique_ptr<moec::OutputFile> File;
  moec::Status S = moec::OutputFile::open(Path.str(), &File, Options);
  if (S.ok()) {
    OutputFileStream OS(*File);
    Write(OS);
    OS.flush();
    S = OS.status();
  }
  if (S.ok())
    S = File->commit();
  if (!S.ok())
    return createStringError(inconvertibleErrorCode(), "cannot write: %s",
                             S.message().c_str());
  return Error::success();
}

/// Checks names and sizes before anything is written.
Error checkTensors(StringRef Path, ArrayRef<TensorToWrite> Tensors) {
  StringSet<> Seen;
  for (const TensorToWrite &Tensor : Tensors) {
    if (Tensor.Name.empty() || Tensor.Name == "__metadata__")
      return fileError(Path, "invalid tensor name '" +
                                 escapeForMessage(Tensor.Name) + "'");
    if (!Seen.insert(Tensor.Name).second)
      return fileError(Path, "tensor '" + escapeForMessage(Tensor.Name) +
                                 "' is given twice");
    std::optional<int64_t> Count = shapeNumElements(Tensor.Shape);
    if (!Count ||
        uint64_t(*Count) * dtypeSize(Tensor.Type) != Tensor.size())
      return fileError(
          Path, "tensor '" + escapeForMessage(Tensor.Name) +
                    "': " + Twine(Tensor.size()) +
                    " bytes do not match " + dtypeName(Tensor.Type) + " x " +
                    formatShape(Tensor.Shape));
  }
  return Error::success();
}
} // namespace

Error writeFileAtomically(StringRef Path, StringRef Contents) {
  return writeAtomically(Path, [&](raw_ostream &OS) { OS << Contents; });
}

Error writeOutput(StringRef Path, function_ref<void(raw_ostream &)> Write,
                  bool AllowStdout) {
  return writeAtomically(Path, Write, AllowStdout);
}

Error writeSafetensors(StringRef Path, ArrayRef<TensorToWrite> Tensors,
                       const std::map<std::string, std::string> &Metadata) {
  if (Error Err = checkTensors(Path, Tensors))
    return Err;
  json Header = json::object();
  if (!Metadata.empty())
    Header["__metadata__"] = Metadata;
  uint64_t Offset = 0;
  for (const TensorToWrite &Tensor : Tensors) {
    uint64_t End = Offset + Tensor.size();
    Header[Tensor.Name] = {{"dtype", dtypeName(Tensor.Type).str()},
                           {"shape", Tensor.Shape},
                           {"data_offsets", {Offset, End}}};
    Offset = End;
  }
  std::string Text = Header.dump();
  Text.append((8 - Text.size() % 8) % 8, ' ');
  return writeAtomically(Path, [&](raw_ostream &OS) {
    uint64_t Length = Text.size();
    for (int I = 0; I < 8; ++I)
      OS << static_cast<char>((Length >> (8 * I)) & 0xFF);
    OS << Text;
    std::vector<uint8_t> Produced;
    for (const TensorToWrite &Tensor : Tensors) {
      if (!Tensor.Produce) {
        OS.write(reinterpret_cast<const char *>(Tensor.Bytes.data()),
                 Tensor.Bytes.size());
        continue;
      }
      Produced.clear();
      Tensor.Produce(Produced);
      // A producer that gives the wrong size is a bug of its caller; the
      // header already promised ProducedSize bytes, so pad or cut to it.
      assert(Produced.size() == Tensor.ProducedSize && "producer size mismatch");
      Produced.resize(Tensor.ProducedSize);
      OS.write(reinterpret_cast<const char *>(Produced.data()), Produced.size());
      std::vector<uint8_t>().swap(Produced); // one tensor in memory at a time
    }
  });
}

std::string shardFileName(unsigned Index, unsigned Count) {
  char Buffer[64];
  std::snprintf(Buffer, sizeof(Buffer), "model-%05u-of-%05u.safetensors", Index,
                Count);
  return Buffer;
}

Error writeCheckpointTensors(StringRef Dir, ArrayRef<TensorToWrite> Tensors,
                             unsigned NumShards) {
  const std::map<std::string, std::string> Metadata = {{"format", "pt"}};
  // A stale file of the other layout would shadow or confuse the new one:
  // Checkpoint::open prefers the index when both exist.
  auto RemoveStale = [&](StringRef Name) -> Error {
    std::string Path = joinPath(Dir, Name);
    if (std::error_code EC = sys::fs::remove(Path))
      return fileError(Path, "cannot remove stale file: " + EC.message());
    return Error::success();
  };
  if (NumShards <= 1) {
    if (Error Err =
            writeSafetensors(joinPath(Dir, SingleFileName), Tensors, Metadata))
      return Err;
    return RemoveStale(IndexFileName);
  }
  if (NumShards > Tensors.size())
    return fileError(Dir, "cannot split " + Twine(Tensors.size()) +
                              " tensors into " + Twine(NumShards) + " shards");
  if (Error Err = checkTensors(Dir, Tensors))
    return Err;

  uint64_t Total = 0;
  for (const TensorToWrite &Tensor : Tensors)
    Total += Tensor.size();
  uint64_t Target = (Total + NumShards - 1) / NumShards;

  // Consecutive runs: close a shard once it reaches the target, or when every
  // remaining tensor is needed to keep the remaining shards non-empty.
  std::vector<std::vector<TensorToWrite>> Shards(1);
  uint64_t ShardBytes = 0;
  for (size_t I = 0; I < Tensors.size(); ++I) {
    size_t Remaining = Tensors.size() - I;
    size_t ShardsLeft = NumShards - Shards.size();
    if (!Shards.back().empty() && ShardsLeft > 0 &&
        (ShardBytes >= Target || Remaining == ShardsLeft)) {
      Shards.emplace_back();
      ShardBytes = 0;
    }
    Shards.back().push_back(Tensors[I]);
    ShardBytes += Tensors[I].size();
  }

  json WeightMap = json::object();
  for (unsigned S = 0; S < Shards.size(); ++S) {
    std::string Name = shardFileName(S + 1, Shards.size());
    if (Error Err = writeSafetensors(joinPath(Dir, Name), Shards[S], Metadata))
      return Err;
    for (const TensorToWrite &Tensor : Shards[S])
      WeightMap[Tensor.Name] = Name;
  }
  json Index = {{"metadata", {{"total_size", Total}}},
                {"weight_map", WeightMap}};
  if (Error Err = writeFileAtomically(joinPath(Dir, IndexFileName),
                                      Index.dump(2) + "\n"))
    return Err;
  return RemoveStale(SingleFileName);
}

} // namespace moec::checkpoint
