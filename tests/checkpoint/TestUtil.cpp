//===- TestUtil.cpp - Temp folders and file helpers for checkpoint tests --===//
#include "TestUtil.h"

#include "moec/checkpoint/TensorManifest.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace llvm;

namespace moec::checkpoint::test {

TempDir::TempDir() {
  SmallString<128> Created;
  std::error_code EC =
      sys::fs::createUniqueDirectory("moec-ckpt-test", Created);
  EXPECT_FALSE(EC) << EC.message();
  Path = std::string(Created);
}

TempDir::~TempDir() { sys::fs::remove_directories(Path); }

std::string TempDir::file(StringRef Name) const {
  SmallString<256> Result(Path);
  sys::path::append(Result, Name);
  return std::string(Result);
}

void writeFile(StringRef Path, StringRef Contents) {
  std::error_code EC;
  raw_fd_ostream OS(Path, EC);
  ASSERT_FALSE(EC) << Path.str() << ": " << EC.message();
  OS << Contents;
}

std::string readFile(StringRef Path) {
  ErrorOr<std::unique_ptr<MemoryBuffer>> Buffer = MemoryBuffer::getFile(
      Path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  EXPECT_TRUE(bool(Buffer)) << Path.str();
  return Buffer ? (*Buffer)->getBuffer().str() : std::string();
}

std::string errorText(Error Err) {
  if (!Err)
    return "";
  return toString(std::move(Err));
}

std::string rawSafetensors(StringRef Header, StringRef Data) {
  std::string Bytes;
  uint64_t Length = Header.size();
  for (int I = 0; I < 8; ++I)
    Bytes.push_back(static_cast<char>((Length >> (8 * I)) & 0xFF));
  Bytes += Header.str();
  Bytes += Data.str();
  return Bytes;
}

std::string smallV3ConfigJson() {
  return R"({
  "architectures": ["DeepseekV3ForCausalLM"],
  "model_type": "deepseek_v3",
  "vocab_size": 64,
  "hidden_size": 32,
  "intermediate_size": 48,
  "moe_intermediate_size": 16,
  "num_hidden_layers": 2,
  "first_k_dense_replace": 1,
  "num_attention_heads": 2,
  "num_key_value_heads": 2,
  "n_routed_experts": 4,
  "n_shared_experts": 1,
  "num_experts_per_tok": 2,
  "n_group": 2,
  "topk_group": 1,
  "scoring_func": "sigmoid",
  "topk_method": "noaux_tc",
  "routed_scaling_factor": 2.5,
  "norm_topk_prob": true,
  "q_lora_rank": 24,
  "kv_lora_rank": 16,
  "qk_nope_head_dim": 8,
  "qk_rope_head_dim": 4,
  "v_head_dim": 8,
  "rope_theta": 10000,
  "rope_scaling": null,
  "rms_norm_eps": 1e-6,
  "max_position_embeddings": 256,
  "tie_word_embeddings": false
}
)";
}

void TensorSet::add(const std::string &Name, DType Type,
                    std::vector<int64_t> Shape) {
  size_t Bytes = *shapeNumElements(Shape) * dtypeSize(Type);
  Storage.push_back(std::make_unique<std::vector<uint8_t>>(Bytes, 0));
  Tensors.push_back({Name, Type, std::move(Shape), *Storage.back()});
}

void TensorSet::retype(const std::string &Name, DType Type,
                       std::vector<int64_t> Shape) {
  for (size_t I = 0; I < Tensors.size(); ++I) {
    if (Tensors[I].Name != Name)
      continue;
    size_t Bytes = *shapeNumElements(Shape) * dtypeSize(Type);
    Storage[I] = std::make_unique<std::vector<uint8_t>>(Bytes, 0);
    Tensors[I] = {Name, Type, std::move(Shape), *Storage[I]};
    return;
  }
  ADD_FAILURE() << "no tensor " << Name;
}

void TensorSet::remove(const std::string &Name) {
  for (size_t I = 0; I < Tensors.size(); ++I) {
    if (Tensors[I].Name != Name)
      continue;
    Tensors.erase(Tensors.begin() + I);
    Storage.erase(Storage.begin() + I);
    return;
  }
  ADD_FAILURE() << "no tensor " << Name;
}

TensorSet manifestTensors(const ModelConfig &Config, DType Type) {
  TensorSet Set;
  for (const ExpectedTensor &Tensor : expectedTensors(Config))
    Set.add(Tensor.Name, Type, Tensor.Shape);
  return Set;
}

void writeCheckpoint(const TempDir &Dir, StringRef ConfigJson,
                     const TensorSet &Tensors, unsigned NumShards) {
  writeFile(Dir.file("config.json"), ConfigJson);
  ASSERT_EQ(errorText(writeCheckpointTensors(Dir.path(), Tensors.tensors(),
                                             NumShards)),
            "");
}

ModelConfig smallV3Config() {
  Expected<ModelConfig> Config =
      parseModelConfig(smallV3ConfigJson(), "config.json");
  EXPECT_TRUE(bool(Config)) << errorText(Config);
  return Config ? *Config : ModelConfig();
}

} // namespace moec::checkpoint::test
