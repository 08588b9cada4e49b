//===- Checkpoint.cpp - A Hugging Face checkpoint directory ---------------===//
#include "moec/checkpoint/Checkpoint.h"

#include "JsonFile.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <map>

using namespace llvm;
using json = nlohmann::json;

namespace moec::checkpoint {

Expected<std::unique_ptr<Checkpoint>> Checkpoint::open(StringRef Dir) {
  if (!sys::fs::is_directory(Dir))
    return fileError(
        Dir, "not a checkpoint directory (does not exist or is a file)");
  std::unique_ptr<Checkpoint> Result(new Checkpoint());
  Result->Dir = Dir.str();
  Expected<ModelConfig> Config = loadModelConfig(joinPath(Dir, ConfigFileName));
  if (!Config)
    return Config.takeError();
  Result->Config = std::move(*Config);

  std::string IndexPath = joinPath(Dir, IndexFileName);
  Error Err = sys::fs::exists(IndexPath) ? Result->openSharded(IndexPath)
                                         : Result->openSingle();
  if (Err)
    return std::move(Err);
  return std::move(Result);
}

const TensorInfo *Checkpoint::lookup(StringRef Name) const {
  auto It = ByName.find(Name);
  return It == ByName.end() ? nullptr : It->second;
}

std::vector<const TensorInfo *> Checkpoint::tensors() const {
  std::vector<const TensorInfo *> All;
  All.reserve(ByName.size());
  for (const auto &Entry : ByName)
    All.push_back(Entry.second);
  std::sort(All.begin(), All.end(),
            [](const TensorInfo *A, const TensorInfo *B) {
              return A->Name < B->Name;
            });
  return All;
}

Error Checkpoint::openSingle() {
  SourcePath = joinPath(Dir, SingleFileName);
  if (!sys::fs::exists(SourcePath))
    return fileError(Dir,
                     Twine("no ") + SingleFileName + " or " + IndexFileName);
  Expected<std::unique_ptr<SafetensorsFile>> File =
      SafetensorsFile::open(SourcePath);
  if (!File)
    return File.takeError();
  for (const TensorInfo &Tensor : (*File)->tensors())
    ByName[Tensor.Name] = &Tensor;
  Files.push_back(std::move(*File));
  return Error::success();
}

Error Checkpoint::openSharded(StringRef IndexPath) {
  Sharded = true;
  SourcePath = IndexPath.str();
  Expected<std::string> Text = readTextFile(IndexPath);
  if (!Text)
    return Text.takeError();
  Expected<json> Index = parseJson(*Text, IndexPath);
  if (!Index)
    return Index.takeError();
  if (!Index->is_object())
    return fileError(IndexPath,
                     "expected a JSON object, got " + jsonTypeName(*Index));
  auto MapIt = Index->find("weight_map");
  if (MapIt == Index->end())
    return fileError(IndexPath, "missing required key 'weight_map'");
  if (!MapIt->is_object())
    return fileError(IndexPath, "'weight_map' must be an object, got " +
                                    jsonTypeName(*MapIt));

  // Shard file name -> the tensors the index places in it.
  std::map<std::string, std::vector<std::string>> Shards;
  for (const auto &[Name, Shard] : MapIt->items()) {
    if (!Shard.is_string())
      return fileError(IndexPath, "'weight_map' entry '" +
                                      escapeForMessage(Name) +
                                      "' must be a file name string, got " +
                                      jsonTypeName(Shard));
    std::string ShardName = Shard.get<std::string>();
    // Shards live beside the index: no directories, no way out of the folder,
    // and no control bytes (the shard's path starts every message about it).
    bool HasControl = llvm::any_of(ShardName, [](unsigned char C) {
      return C < 0x20 || C == 0x7f;
    });
    if (ShardName.empty() || ShardName == "." || ShardName == ".." ||
        ShardName.find_first_of("/\\") != std::string::npos || HasControl)
      return fileError(IndexPath, "'weight_map' entry '" +
                                      escapeForMessage(Name) + "' names '" +
                                      escapeForMessage(ShardName) +
                                      "', which is not a plain file name");
    Shards[ShardName].push_back(Name);
  }
  if (Shards.empty())
    return fileError(IndexPath, "'weight_map' is empty");

  for (const auto &[ShardName, Names] : Shards) {
    std::string ShardPath = joinPath(Dir, ShardName);
    if (!sys::fs::exists(ShardPath))
      return fileError(IndexPath, "shard '" + escapeForMessage(ShardName) +
                                      "' (for tensor '" +
                                      escapeForMessage(Names.front()) +
                                      "') does not exist");
    Expected<std::unique_ptr<SafetensorsFile>> File =
        SafetensorsFile::open(ShardPath);
    if (!File)
      return File.takeError();
    for (const std::string &Name : Names) {
      const TensorInfo *Tensor = (*File)->lookup(Name);
      if (!Tensor)
        return fileError(ShardPath, "tensor '" + escapeForMessage(Name) +
                                        "', placed in this shard by " +
                                        IndexFileName + ", is not in the file");
      ByName[Name] = Tensor;
    }
    Files.push_back(std::move(*File));
  }
  return Error::success();
}

} // namespace moec::checkpoint
