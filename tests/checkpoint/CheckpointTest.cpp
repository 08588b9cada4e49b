//===- CheckpointTest.cpp - Opening single-file and sharded checkpoints ---===//
#include "moec/checkpoint/Checkpoint.h"
#include "TestUtil.h"
#include "moec/checkpoint/TensorManifest.h"

#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace moec::checkpoint;
using namespace moec::checkpoint::test;
using json = nlohmann::json;

namespace {

TEST(CheckpointTest, OpensSingleFile) {
  TempDir Dir;
  ModelConfig Config = smallV3Config();
  writeCheckpoint(Dir, smallV3ConfigJson(), manifestTensors(Config));
  auto Ckpt = Checkpoint::open(Dir.path());
  ASSERT_TRUE(bool(Ckpt)) << errorText(Ckpt);
  EXPECT_FALSE((*Ckpt)->isSharded());
  EXPECT_EQ((*Ckpt)->tensorSourcePath(), Dir.file("model.safetensors"));
  EXPECT_EQ((*Ckpt)->config().HiddenSize, 32);
  EXPECT_EQ((*Ckpt)->size(), expectedTensors(Config).size());
  const TensorInfo *Gate = (*Ckpt)->lookup("model.layers.1.mlp.gate.weight");
  ASSERT_NE(Gate, nullptr);
  EXPECT_EQ(Gate->Shape, (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(Gate->Type, DType::BF16);
  EXPECT_EQ(Gate->ByteSize, 4u * 32 * 2);
  EXPECT_EQ((*Ckpt)->lookup("model.layers.0.mlp.gate.weight"), nullptr);
  std::vector<const TensorInfo *> All = (*Ckpt)->tensors();
  EXPECT_EQ(All.front()->Name, "lm_head.weight");
  EXPECT_TRUE(std::is_sorted(All.begin(), All.end(),
                             [](const TensorInfo *A, const TensorInfo *B) {
                               return A->Name < B->Name;
                             }));
}

TEST(CheckpointTest, OpensShardedCheckpoint) {
  TempDir Dir;
  ModelConfig Config = smallV3Config();
  writeCheckpoint(Dir, smallV3ConfigJson(), manifestTensors(Config),
                  /*NumShards=*/3);
  EXPECT_FALSE(llvm::sys::fs::exists(Dir.file("model.safetensors")));
  EXPECT_TRUE(
      llvm::sys::fs::exists(Dir.file("model-00003-of-00003.safetensors")));
  auto Ckpt = Checkpoint::open(Dir.path());
  ASSERT_TRUE(bool(Ckpt)) << errorText(Ckpt);
  EXPECT_TRUE((*Ckpt)->isSharded());
  EXPECT_EQ((*Ckpt)->files().size(), 3u);
  EXPECT_EQ((*Ckpt)->size(), expectedTensors(Config).size());
  EXPECT_EQ((*Ckpt)->lookup("model.embed_tokens.weight")->FilePath,
            Dir.file("model-00001-of-00003.safetensors"));
  EXPECT_EQ((*Ckpt)->lookup("lm_head.weight")->FilePath,
            Dir.file("model-00003-of-00003.safetensors"));

  json Index = json::parse(readFile(Dir.file("model.safetensors.index.json")));
  uint64_t Total = 0;
  for (const TensorInfo *Tensor : (*Ckpt)->tensors()) {
    Total += Tensor->ByteSize;
    EXPECT_EQ(Dir.file(Index["weight_map"][Tensor->Name].get<std::string>()),
              Tensor->FilePath);
  }
  EXPECT_EQ(Index["metadata"]["total_size"].get<uint64_t>(), Total);
}

TEST(CheckpointTest, RewritingAsSingleFileRemovesStaleIndex) {
  TempDir Dir;
  ModelConfig Config = smallV3Config();
  writeCheckpoint(Dir, smallV3ConfigJson(), manifestTensors(Config), 2);
  writeCheckpoint(Dir, smallV3ConfigJson(), manifestTensors(Config), 1);
  EXPECT_FALSE(llvm::sys::fs::exists(Dir.file("model.safetensors.index.json")));
  auto Ckpt = Checkpoint::open(Dir.path());
  ASSERT_TRUE(bool(Ckpt)) << errorText(Ckpt);
  EXPECT_FALSE((*Ckpt)->isSharded());
}

/// Writes a two-shard checkpoint, applies \p Edit to its index and returns
/// the error of opening it.
std::string editedIndexError(const TempDir &Dir, const std::string &IndexText) {
  writeCheckpoint(Dir, smallV3ConfigJson(), manifestTensors(smallV3Config()),
                  2);
  writeFile(Dir.file("model.safetensors.index.json"), IndexText);
  auto Ckpt = Checkpoint::open(Dir.path());
  return errorText(Ckpt);
}

TEST(CheckpointErrorTest, MalformedIndexJson) {
  TempDir Dir;
  std::string Error = editedIndexError(Dir, "{\"weight_map\": {");
  EXPECT_TRUE(llvm::StringRef(Error).starts_with(
      Dir.file("model.safetensors.index.json") + ": malformed JSON: "))
      << Error;
  EXPECT_EQ(editedIndexError(Dir, "{\"metadata\": {}}"),
            Dir.file("model.safetensors.index.json") +
                ": missing required key 'weight_map'");
  EXPECT_EQ(
      editedIndexError(Dir, R"({"weight_map": {"lm_head.weight": 3}})"),
      Dir.file("model.safetensors.index.json") +
          ": 'weight_map' entry 'lm_head.weight' must be a file name string, "
          "got integer");
  EXPECT_EQ(
      editedIndexError(Dir, R"({"weight_map": {"lm_head.weight": "../x"}})"),
      Dir.file("model.safetensors.index.json") +
          ": 'weight_map' entry 'lm_head.weight' names '../x', which is not a "
          "plain file name");
}

TEST(CheckpointErrorTest, IndexNamesAreEscapedInMessages) {
  TempDir Dir;
  std::string IndexPath = Dir.file("model.safetensors.index.json");
  // A shard name with a control byte is no plain file name.
  EXPECT_EQ(editedIndexError(
                Dir, R"({"weight_map": {"w\n": "model-00001-of-00002.safe\ntensors"}})"),
            IndexPath + ": 'weight_map' entry 'w\\x0A' names "
                        "'model-00001-of-00002.safe\\x0Atensors', which is not a "
                        "plain file name");
  EXPECT_EQ(editedIndexError(Dir, R"({"weight_map": {"lm_head\nweight": 3}})"),
            IndexPath + ": 'weight_map' entry 'lm_head\\x0Aweight' must be a file "
                        "name string, got integer");
  EXPECT_EQ(editedIndexError(
                Dir, R"({"weight_map": {"lm_head\nweight": "model-00001-of-00002.safetensors"}})"),
            Dir.file("model-00001-of-00002.safetensors") +
                ": tensor 'lm_head\\x0Aweight', placed in this shard by "
                "model.safetensors.index.json, is not in the file");
}

TEST(CheckpointErrorTest, ShardNamedInIndexIsMissing) {
  TempDir Dir;
  writeCheckpoint(Dir, smallV3ConfigJson(), manifestTensors(smallV3Config()),
                  2);
  ASSERT_FALSE(
      llvm::sys::fs::remove(Dir.file("model-00002-of-00002.safetensors")));
  auto Ckpt = Checkpoint::open(Dir.path());
  EXPECT_EQ(errorText(Ckpt),
            Dir.file("model.safetensors.index.json") +
                ": shard 'model-00002-of-00002.safetensors' (for tensor "
                "'lm_head.weight') does not exist");
}

TEST(CheckpointErrorTest, TensorListedInIndexIsNotInShard) {
  TempDir Dir;
  json Index = {
      {"weight_map", {{"lm_head.weight", "model-00001-of-00002.safetensors"}}}};
  EXPECT_EQ(editedIndexError(Dir, Index.dump()),
            Dir.file("model-00001-of-00002.safetensors") +
                ": tensor 'lm_head.weight', placed in this shard by "
                "model.safetensors.index.json, is not in the file");
}

TEST(CheckpointErrorTest, BadShardHeaderNamesTheShard) {
  TempDir Dir;
  writeCheckpoint(Dir, smallV3ConfigJson(), manifestTensors(smallV3Config()),
                  2);
  writeFile(Dir.file("model-00002-of-00002.safetensors"),
            rawSafetensors("{", ""));
  auto Ckpt = Checkpoint::open(Dir.path());
  EXPECT_TRUE(llvm::StringRef(errorText(Ckpt))
                  .starts_with(Dir.file("model-00002-of-00002.safetensors") +
                               ": malformed JSON in the safetensors header: "));
}

TEST(CheckpointErrorTest, MissingFiles) {
  TempDir Dir;
  auto NotADir = Checkpoint::open(Dir.file("nope"));
  EXPECT_EQ(errorText(NotADir),
            Dir.file("nope") +
                ": not a checkpoint directory (does not exist or is a "
                "file)");
  auto NoConfig = Checkpoint::open(Dir.path());
  EXPECT_TRUE(
      llvm::StringRef(errorText(NoConfig))
          .starts_with(Dir.file("config.json") + ": cannot read file: "));
  writeFile(Dir.file("config.json"), smallV3ConfigJson());
  auto NoTensors = Checkpoint::open(Dir.path());
  EXPECT_EQ(errorText(NoTensors),
            Dir.path() +
                ": no model.safetensors or model.safetensors.index.json");
}

TEST(CheckpointErrorTest, MalformedConfigJson) {
  TempDir Dir;
  writeCheckpoint(Dir, "{\"architectures\": [\"DeepseekV3ForCausalLM\"]",
                  manifestTensors(smallV3Config()));
  auto Ckpt = Checkpoint::open(Dir.path());
  EXPECT_TRUE(llvm::StringRef(errorText(Ckpt))
                  .starts_with(Dir.file("config.json") + ": malformed JSON: "));
}

} // namespace
