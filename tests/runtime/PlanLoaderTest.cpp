//===- PlanLoaderTest.cpp - The plan loader accepts good plans, names bad ones -===//
//
// Every rejection is checked against its exact one-line message: the file, the
// element, and the problem.
//
//===----------------------------------------------------------------------===//
#include "TinyModel.h"

#include "moec/plan_writer/PlanWriter.h"
#include "moec/runtime/Integrity.h"
#include "moec/runtime/Plan.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <unistd.h>

namespace moec::test {
namespace {

constexpr int64_t kVocab = 160, kHidden = 136;

/// The smallest valid plan: embedding -> rms_norm -> linear (logits), the steps of
/// both entry points (0 prefill, 1 decode).
/// Buffers: 0 tokens, 1 positions, 2 seq_ids, 3 h, 4 n, 5 logits.
/// Weights: 0 embed (f32), 1 norm (f32), 2 lm_head (bf16). Steps 0, 1, 2.
/// An f8e4m3 lm_head: its block shape and the shape of its scale weight (weight 3).
struct Fp8Head {
  std::vector<int64_t> block;      ///< Weight.block_shape
  std::vector<int64_t> scaleShape; ///< shape of the scale weight
};

class MiniPlan {
public:
  explicit MiniPlan(const Fp8Head *fp8 = nullptr) {
    writer.model().architecture = "DeepseekV3ForCausalLM"; // metadata only
    writer.plan().max_tokens = 4;
    int32_t tokens = writer.addBuffer("tokens", plan::DType::I32, {-1});
    int32_t positions = writer.addBuffer("positions", plan::DType::I32, {-1});
    int32_t seqIds = writer.addBuffer("seq_ids", plan::DType::I32, {-1});
    int32_t h = writer.addBuffer("h", plan::DType::F32, {-1, kHidden});
    int32_t n = writer.addBuffer("n", plan::DType::F32, {-1, kHidden});
    int32_t logits = writer.addBuffer("logits", plan::DType::F32, {-1, kVocab});
    std::vector<float> embed(size_t(kVocab * kHidden), 0.5f), norm(size_t(kHidden), 1.f);
    std::vector<uint16_t> head(size_t(kVocab * kHidden), 0x3f80);
    int32_t e = writer.addWeight("embed", plan::DType::F32, {kVocab, kHidden}, embed.data(),
                                 embed.size() * 4);
    int32_t g = writer.addWeight("norm", plan::DType::F32, {kHidden}, norm.data(),
                                 norm.size() * 4);
    int32_t w;
    if (!fp8) {
      w = writer.addWeight("lm_head", plan::DType::BF16, {kVocab, kHidden}, head.data(),
                           head.size() * 2);
    } else {
      std::vector<uint8_t> codes(size_t(kVocab * kHidden), 0x38); // 1.0
      int64_t scales = 1;
      for (int64_t dim : fp8->scaleShape)
        scales *= dim;
      std::vector<float> scale(size_t(scales), 0.5f);
      w = writer.addWeight("lm_head", plan::DType::F8E4M3, {kVocab, kHidden}, codes.data(),
                           codes.size());
      int32_t s = writer.addWeight("lm_head.scale", plan::DType::F32, fp8->scaleShape,
                                   scale.data(), scale.size() * 4);
      writer.setBlockScale(w, s, fp8->block);
    }
    writer.addStep(plan::StepKind::Embedding, {tokens}, {h}, {e}, {}, "embed");
    plan::StepAttrsUnion attrs;
    plan::RmsNormAttrsT rms;
    attrs.Set(rms);
    writer.addStep(plan::StepKind::RmsNorm, {h}, {n}, {g}, attrs, "norm");
    writer.addStep(plan::StepKind::Linear, {n}, {logits}, {w}, {}, "lm_head");
    writer.addEntryPoint("prefill", {tokens, positions, seqIds}, {logits}, 0, 3, kVocab);
    writer.addEntryPoint("decode", {tokens, positions, seqIds}, {logits}, 0, 3, kVocab);
    EXPECT_TRUE(writer.planArena().ok());
  }

  /// Writes the plan and returns the loader's message ("" when it loads).
  std::string load() {
    Status written = writer.write(path);
    EXPECT_TRUE(written.ok()) << written.message();
    std::unique_ptr<Plan> plan;
    Status status = Plan::load(path, &plan);
    return status.ok() ? std::string() : status.message();
  }
  plan::StepT &step(size_t i) { return *writer.plan().steps[i]; }
  plan::BufferT &buffer(size_t i) { return *writer.plan().buffers[i]; }
  plan::WeightT &weight(size_t i) { return *writer.plan().weights[i]; }
  TempDir dir;
  std::string path = dir.file("mini.plan");
  PlanWriter writer;
};

std::string loadMessage(const std::string &path) {
  std::unique_ptr<Plan> plan;
  Status status = Plan::load(path, &plan);
  return status.ok() ? std::string() : status.message();
}

std::vector<char> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

void writeBytes(const std::string &path, const std::vector<char> &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

TEST(PlanLoader, MiniPlanLoadsAndWeightsAreAlignedInPlace) {
  MiniPlan mini;
  ASSERT_EQ(mini.load(), "");
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(mini.path, &plan).ok());
  EXPECT_EQ(plan->numWeights(), 3u);
  ASSERT_EQ(plan->numEntryPoints(), 2u);
  EXPECT_EQ(plan->prefill().name, "prefill");
  EXPECT_EQ(plan->prefill().index, 0u);
  EXPECT_EQ(plan->decode().name, "decode");
  EXPECT_EQ(plan->decode().index, 1u);
  EXPECT_EQ(plan->findEntryPoint("decode"), &plan->decode());
  EXPECT_EQ(plan->findEntryPoint("forward"), nullptr);
  EXPECT_EQ(plan->prefill().tokens, 0);
  EXPECT_EQ(plan->prefill().positions, 1);
  EXPECT_EQ(plan->prefill().seqIds, 2);
  EXPECT_EQ(plan->prefill().logits, 5);
  EXPECT_EQ(plan->prefill().numSteps, 3u);
  EXPECT_EQ(plan->tokenBound(), kVocab);
  EXPECT_EQ(plan->numStates(), 0u);
  EXPECT_EQ(plan->stepLabel(2), "steps[2] (lm_head)");
  EXPECT_EQ(plan->weight(2).blockScale, nullptr);
  EXPECT_EQ(plan->weight(2).blockRows, 0);
  for (size_t i = 0; i < plan->numWeights(); ++i)
    EXPECT_EQ(reinterpret_cast<uintptr_t>(plan->weight(i).data) % 64, 0u) << i;
  EXPECT_EQ(plan->weight(2).rows, kVocab);
  EXPECT_EQ(plan->weight(2).cols, kHidden);
  EXPECT_EQ(static_cast<const float *>(plan->weight(1).data)[kHidden - 1], 1.f);
  EXPECT_EQ(static_cast<const uint16_t *>(plan->weight(2).data)[5], 0x3f80);
  EXPECT_EQ(plan->weightBytes(), uint64_t(kVocab * kHidden * 4 + kHidden * 4 + kVocab * kHidden * 2));
}

TEST(PlanLoader, TinyModelsLoad) {
  TempDir dir;
  for (bool fp8 : {true, false})
    for (bool external : {false, true}) {
      TinyModelOptions options;
      options.fp8 = fp8;
      options.qLora = fp8;
      options.external = external;
      options.prefillAbsorbed = !external; // shared naive, or split forms
      std::string path = dir.file(std::string("tiny") + (fp8 ? "8" : "b") + (external ? "x" : "") + ".plan");
      ASSERT_TRUE(writeTinyModel(options, path));
      EXPECT_EQ(loadMessage(path), "") << path;
    }
}

TEST(PlanLoader, TinyModelDescribesItself) {
  TempDir dir;
  TinyModelOptions options;
  options.layers = 2;
  options.prefillAbsorbed = false; // naive prefill, absorbed decode: separate steps
  std::string path = dir.file("tiny.plan");
  ASSERT_TRUE(writeTinyModel(options, path));
  std::unique_ptr<Plan> plan;
  Status status = Plan::load(path, &plan);
  ASSERT_TRUE(status.ok()) << status.message();
  // Two states per layer: the latent c rows [32] and the roped k_pe rows [8], f32.
  ASSERT_EQ(plan->numStates(), 4u);
  EXPECT_EQ(plan->state(0).name, "model.layers.0.self_attn.latent_cache");
  EXPECT_EQ(plan->state(0).shape, std::vector<int64_t>{32});
  EXPECT_EQ(plan->state(0).rowElements, 32);
  EXPECT_EQ(plan->state(0).rowBytes, 128u);
  EXPECT_EQ(plan->state(3).name, "model.layers.1.self_attn.rope_cache");
  EXPECT_EQ(plan->state(3).rowBytes, 32u);
  EXPECT_EQ(plan->state(3).dtype, plan::DType::F32);
  const EntryPointInfo &prefill = plan->prefill(), &decode = plan->decode();
  EXPECT_EQ(prefill.firstStep, 0u);
  EXPECT_EQ(decode.firstStep, prefill.numSteps);
  EXPECT_EQ(decode.numSteps, prefill.numSteps + 4); // two head_linear steps per layer
  EXPECT_EQ(prefill.tokenBound, 160);
  auto countKind = [&](const EntryPointInfo &entry, plan::StepKind kind) {
    int count = 0;
    for (uint32_t s = entry.firstStep; s < entry.firstStep + entry.numSteps; ++s)
      count += plan->root().steps()->Get(s)->kind() == kind;
    return count;
  };
  EXPECT_EQ(countKind(prefill, plan::StepKind::ExpandedAttention), 2);
  EXPECT_EQ(countKind(prefill, plan::StepKind::LatentAttention), 0);
  EXPECT_EQ(countKind(decode, plan::StepKind::LatentAttention), 2);
  EXPECT_EQ(countKind(decode, plan::StepKind::HeadLinear), 4);
  EXPECT_EQ(countKind(decode, plan::StepKind::CacheStore), 2);
  // The f8e4m3 projections carry their block shape.
  for (size_t i = 0; i < plan->numWeights(); ++i) {
    const WeightView &w = plan->weight(i);
    bool fp8 = w.dtype == plan::DType::F8E4M3;
    EXPECT_EQ(w.blockRows, fp8 ? 128 : 0) << i;
    EXPECT_EQ(w.blockCols, fp8 ? 128 : 0) << i;
    EXPECT_EQ(w.blockScale != nullptr, fp8) << i;
  }
}

TEST(PlanLoader, MissingFile) {
  TempDir dir;
  std::string path = dir.file("absent.plan");
  EXPECT_EQ(loadMessage(path), path + ": cannot open: No such file or directory");
}

TEST(PlanLoader, EmptyFile) {
  TempDir dir;
  std::string path = dir.file("empty.plan");
  writeBytes(path, {});
  EXPECT_EQ(loadMessage(path), path + ": empty file");
}

TEST(PlanLoader, WrongIdentifier) {
  MiniPlan mini;
  ASSERT_EQ(mini.load(), "");
  std::vector<char> bytes = readFile(mini.path);
  bytes[8] = 'G', bytes[9] = 'G', bytes[10] = 'U', bytes[11] = 'F';
  writeBytes(mini.path, bytes);
  EXPECT_EQ(loadMessage(mini.path),
            mini.path + ": not a moec plan: file identifier is \"GGUF\", expected \"MOEP\"");
  bytes[8] = '\x01';
  writeBytes(mini.path, bytes);
  EXPECT_EQ(loadMessage(mini.path),
            mini.path + ": not a moec plan: file identifier is \"\\x01GUF\", expected \"MOEP\"");
}

TEST(PlanLoader, NewerFormatVersion) {
  MiniPlan mini;
  mini.writer.plan().version = kPlanFormatVersion + 1;
  EXPECT_EQ(mini.load(), mini.path + ": plan format version 9 was written by a newer moec (this "
                                     "runtime reads versions 4 to 8); update the runtime or "
                                     "recompile the checkpoint");
}

// Version 5 added only the optional tokenizer table, version 6 the I8 weight
// dtype, version 7 BF16 states and version 8 Step.activations: version-4 to -7
// plans still load.
TEST(PlanLoader, Version4To7PlansStillLoad) {
  for (uint32_t version : {4u, 5u, 6u, 7u}) {
    MiniPlan mini;
    mini.writer.plan().version = version;
    EXPECT_EQ(mini.load(), "") << version;
  }
}

TEST(PlanLoader, OlderFormatVersionsAreRefused) {
  for (uint32_t version : {1u, 2u, 3u}) {
    MiniPlan mini;
    mini.writer.plan().version = version;
    EXPECT_EQ(mini.load(), mini.path + ": plan format version " + std::to_string(version) +
                               " is no longer supported (this runtime reads versions 4 to "
                               "8); recompile the checkpoint with moec compile");
  }
}

TEST(PlanLoader, MissingFormatVersion) {
  MiniPlan mini;
  mini.writer.plan().version = 0;
  EXPECT_EQ(mini.load(), mini.path + ": malformed plan: format version is missing");
}

TEST(PlanLoader, TruncatedAtSeveralPoints) {
  MiniPlan mini;
  ASSERT_EQ(mini.load(), "");
  std::vector<char> full = readFile(mini.path);
  uint32_t prefix;
  std::memcpy(&prefix, full.data(), 4);
  uint64_t blob = weightBlobOffset(prefix);
  ASSERT_EQ(blob % 64, 0u);

  auto truncated = [&](size_t size) {
    writeBytes(mini.path, std::vector<char>(full.begin(), full.begin() + ptrdiff_t(size)));
    return loadMessage(mini.path);
  };
  EXPECT_EQ(truncated(3), mini.path + ": file of 3 bytes is too small to be a plan");
  EXPECT_EQ(truncated(11), mini.path + ": file of 11 bytes is too small to be a plan");
  std::string needs = ": truncated: the plan table needs " + std::to_string(prefix + 4) +
                      " bytes, the file has ";
  EXPECT_EQ(truncated(12), mini.path + needs + "12");
  EXPECT_EQ(truncated(prefix / 2), mini.path + needs + std::to_string(prefix / 2));
  EXPECT_EQ(truncated(prefix + 3), mini.path + needs + std::to_string(prefix + 3));
  // Inside the weight blob: the first weight that no longer fits is named.
  uint64_t embedBytes = uint64_t(kVocab * kHidden * 4);
  EXPECT_EQ(truncated(size_t(blob + 100)),
            mini.path + ": weights[0] (embed): " + std::to_string(embedBytes) +
                " bytes at offset 0 run past the end of the weight blob (100 bytes)");
  uint64_t headOffset = mini.weight(2).offset;
  EXPECT_EQ(truncated(size_t(blob + headOffset + 1)),
            mini.path + ": weights[2] (lm_head): " + std::to_string(kVocab * kHidden * 2) +
                " bytes at offset " + std::to_string(headOffset) +
                " run past the end of the weight blob (" + std::to_string(headOffset + 1) +
                " bytes)");
  EXPECT_EQ(truncated(full.size() - 1),
            mini.path + ": weights[2] (lm_head): " + std::to_string(kVocab * kHidden * 2) +
                " bytes at offset " + std::to_string(headOffset) +
                " run past the end of the weight blob (" +
                std::to_string(full.size() - 1 - blob) + " bytes)");
  EXPECT_EQ(truncated(full.size()), "");
}

TEST(PlanLoader, CorruptTableIsMalformed) {
  MiniPlan mini;
  ASSERT_EQ(mini.load(), "");
  std::vector<char> bytes = readFile(mini.path);
  // Point the root table offset far outside the flatbuffer.
  bytes[4] = '\xff', bytes[5] = '\xff', bytes[6] = '\xff', bytes[7] = '\x7f';
  writeBytes(mini.path, bytes);
  EXPECT_EQ(loadMessage(mini.path), mini.path + ": malformed plan: bad root table offset");
}

TEST(PlanLoader, OperandOutOfRange) {
  MiniPlan mini;
  mini.step(2).operands[0] = 99;
  EXPECT_EQ(mini.load(), mini.path + ": steps[2] (lm_head): operand 0 refers to buffer 99, plan has 6");
}

TEST(PlanLoader, ResultOutOfRange) {
  MiniPlan mini;
  mini.step(1).results[0] = -3;
  EXPECT_EQ(mini.load(), mini.path + ": steps[1] (norm): result 0 refers to buffer -3, plan has 6");
}

TEST(PlanLoader, WeightOutOfRange) {
  MiniPlan mini;
  mini.step(0).weights[0] = 7000;
  EXPECT_EQ(mini.load(),
            mini.path + ": steps[0] (embed): weight 0 refers to weight 7000, plan has 3");
}

TEST(PlanLoader, EntryInputOutOfRange) {
  MiniPlan mini;
  mini.writer.plan().entry_points[0]->inputs[2] = 6;
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (prefill): input 2 refers to buffer 6, "
                                     "plan has 6");
}

TEST(PlanLoader, EntryStepsOutOfRange) {
  MiniPlan mini;
  mini.writer.plan().entry_points[0]->num_steps = 0xffffffffu;
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (prefill): steps [0, +4294967295) run "
                                     "past the plan's 3 steps");
}

TEST(PlanLoader, BlockScaleOnlyForFp8Weights) {
  MiniPlan mini;
  mini.weight(2).block_scale = 12;
  EXPECT_EQ(mini.load(), mini.path + ": weights[2] (lm_head): only f8e4m3 and i8 weights have a "
                                     "block_scale and block_shape, this one is bf16");
  MiniPlan shape;
  shape.weight(2).block_shape = {128, 128};
  EXPECT_EQ(shape.load(), shape.path + ": weights[2] (lm_head): only f8e4m3 and i8 weights have a "
                                       "block_scale and block_shape, this one is bf16");
}

TEST(PlanLoader, Int8WithoutBlockScale) {
  MiniPlan mini;
  mini.weight(2).dtype = plan::DType::I8;
  mini.weight(2).size = uint64_t(kVocab * kHidden);
  EXPECT_EQ(mini.load(), mini.path + ": weights[2] (lm_head): i8 weight has no block_scale");
}

TEST(PlanLoader, Fp8WithoutBlockScale) {
  MiniPlan mini;
  mini.weight(2).dtype = plan::DType::F8E4M3;
  mini.weight(2).size = uint64_t(kVocab * kHidden);
  EXPECT_EQ(mini.load(), mini.path + ": weights[2] (lm_head): f8e4m3 weight has no block_scale");
}

TEST(PlanLoader, Fp8WeightWithItsBlockShapeLoads) {
  Fp8Head fp8{{128, 64}, {2, 3}};
  MiniPlan mini(&fp8);
  ASSERT_EQ(mini.load(), "");
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(mini.path, &plan).ok());
  const WeightView &head = plan->weight(2);
  EXPECT_EQ(head.dtype, plan::DType::F8E4M3);
  EXPECT_EQ(head.blockRows, 128);
  EXPECT_EQ(head.blockCols, 64);
  ASSERT_EQ(static_cast<const void *>(head.blockScale), plan->weight(3).data);
  EXPECT_EQ(head.blockScale[5], 0.5f);
}

TEST(PlanLoader, BadBlockShapes) {
  {
    Fp8Head fp8{{}, {2, 2}};
    MiniPlan mini(&fp8);
    EXPECT_EQ(mini.load(), mini.path + ": weights[2] (lm_head): f8e4m3 weight has no block_shape");
  }
  {
    Fp8Head fp8{{128}, {2, 2}};
    MiniPlan mini(&fp8);
    EXPECT_EQ(mini.load(), mini.path + ": weights[2] (lm_head): block_shape [128] must be [rows, "
                                       "cols] with values in 1..16777216");
  }
  {
    Fp8Head fp8{{0, 128}, {2, 2}};
    MiniPlan mini(&fp8);
    EXPECT_EQ(mini.load(), mini.path + ": weights[2] (lm_head): block_shape [0, 128] must be "
                                       "[rows, cols] with values in 1..16777216");
  }
  {
    Fp8Head fp8{{128, 128}, {2, 2}};
    MiniPlan mini(&fp8);
    mini.weight(2).block_scale = 9;
    EXPECT_EQ(mini.load(),
              mini.path + ": weights[2] (lm_head): block_scale refers to weight 9, plan has 4");
  }
}

TEST(PlanLoader, BlockScaleShapeMustMatchTheBlockShape) {
  Fp8Head fp8{{64, 64}, {2, 2}};
  MiniPlan mini(&fp8);
  EXPECT_EQ(mini.load(), mini.path + ": weights[2] (lm_head): block_scale weights[3] "
                                     "(lm_head.scale) is f32 [2, 2], expected f32 [3, 3] for "
                                     "block shape [64, 64]");
}

TEST(PlanLoader, ActivationBufferTypes) {
  {
    MiniPlan mini;
    mini.buffer(3).dtype = plan::DType::F16;
    ASSERT_TRUE(mini.writer.planArena().ok());
    EXPECT_EQ(mini.load(), mini.path + ": buffers[3] (h): dtype f16 is not an activation type "
                                       "(f32, i32, bf16 or f8e4m3)");
  }
  {
    MiniPlan mini;
    mini.buffer(3).dtype = plan::DType::BF16;
    ASSERT_TRUE(mini.writer.planArena().ok());
    EXPECT_EQ(mini.load(), ""); // a reduced-precision activation: the backend decides
    mini.buffer(3).scale = 4;
    EXPECT_EQ(mini.load(), mini.path + ": buffers[3] (h): only f8e4m3 buffers have a "
                                       "block_shape and scale, this one is bf16");
  }
}

TEST(PlanLoader, QuantizedActivationBuffers) {
  auto quantized = [](MiniPlan &mini, std::vector<int64_t> block, std::vector<int64_t> scale) {
    mini.buffer(3).dtype = plan::DType::F8E4M3;
    int32_t scales = mini.writer.addBuffer("h.scale", plan::DType::F32, std::move(scale));
    mini.writer.setBufferScale(3, scales, std::move(block));
    EXPECT_TRUE(mini.writer.planArena().ok());
  };
  {
    MiniPlan mini;
    quantized(mini, {1, 128}, {-1, 2});
    EXPECT_EQ(mini.load(), "");
    // The scales are live with h: the writer did not place them over h or n.
    const plan::BufferT &scale = mini.buffer(6), &n = mini.buffer(4);
    EXPECT_TRUE(scale.offset >= n.offset + n.size || n.offset >= scale.offset + scale.size);
  }
  {
    MiniPlan mini;
    quantized(mini, {1, 128}, {-1, 1});
    EXPECT_EQ(mini.load(), mini.path + ": buffers[3] (h): scale buffers[6] (h.scale) is f32 "
                                       "[-1, 1], expected f32 [-1, 2] for block shape [1, 128]");
  }
  {
    MiniPlan mini;
    quantized(mini, {2, 128}, {-1, 2});
    EXPECT_EQ(mini.load(), mini.path + ": buffers[3] (h): block_shape [2, 128] of a token-major "
                                       "buffer must cover one row");
  }
  {
    MiniPlan mini;
    quantized(mini, {}, {-1, 2});
    EXPECT_EQ(mini.load(), mini.path + ": buffers[3] (h): f8e4m3 buffer has no block_shape");
  }
  {
    MiniPlan mini;
    quantized(mini, {1, 128}, {-1, 2});
    mini.buffer(3).scale = -1;
    EXPECT_EQ(mini.load(), mini.path + ": buffers[3] (h): f8e4m3 buffer has no scale");
    mini.buffer(3).scale = 3;
    EXPECT_EQ(mini.load(), mini.path + ": buffers[3] (h): scale refers to buffer 3, plan has 7");
  }
}

TEST(PlanLoader, States) {
  {
    MiniPlan mini;
    mini.writer.addState("cache", plan::DType::F32, {8});
    EXPECT_EQ(mini.load(), "");
  }
  {
    MiniPlan mini;
    mini.writer.addState("cache", plan::DType::BF16, {8});
    EXPECT_EQ(mini.load(), ""); // a bf16 KV cache (version 7)
  }
  {
    MiniPlan mini;
    mini.writer.addState("cache", plan::DType::F8E4M3, {8});
    EXPECT_EQ(mini.load(), ""); // --kv-cache=fp8
  }
  {
    MiniPlan mini;
    mini.writer.addState("cache", plan::DType::I8, {8});
    EXPECT_EQ(mini.load(), mini.path + ": states[0] (cache): dtype i8 is not supported "
                                       "for states (f32, bf16 or f8e4m3)");
  }
  {
    MiniPlan mini;
    mini.writer.addState("cache", plan::DType::F32, {});
    EXPECT_EQ(mini.load(), mini.path + ": states[0] (cache): has no shape");
  }
  {
    MiniPlan mini;
    mini.writer.addState("cache", plan::DType::F32, {0});
    EXPECT_EQ(mini.load(), mini.path + ": states[0] (cache): row shape [0] needs dimensions in "
                                       "1..16777216");
  }
  {
    MiniPlan mini;
    mini.writer.addState("cache", plan::DType::F32, {8});
    mini.step(2).states = {0};
    EXPECT_EQ(mini.load(), mini.path + ": steps[2] (lm_head): linear takes 0 states, has 1");
  }
}

TEST(PlanLoader, StepCountsAndKinds) {
  {
    MiniPlan mini;
    mini.step(2).operands.push_back(3);
    EXPECT_EQ(mini.load(), mini.path + ": steps[2] (lm_head): linear takes 1 operands, has 2");
  }
  {
    MiniPlan mini;
    mini.step(1).attrs.Reset();
    EXPECT_EQ(mini.load(),
              mini.path + ": steps[1] (norm): rms_norm needs RmsNormAttrs attributes, has NONE");
  }
  {
    MiniPlan mini;
    mini.step(1).kind = plan::StepKind(42);
    EXPECT_EQ(mini.load(), mini.path + ": steps[1] (norm): kind 42 is not a step kind");
  }
  {
    MiniPlan mini;
    mini.step(2).results[0] = 4; // linear in place on its operand
    EXPECT_EQ(mini.load(), mini.path + ": steps[2] (lm_head): result 0 (buffers[4] (n)) is f32 "
                                       "[-1, 136], linear expects float [-1, 160]");
  }
}

/// The mini plan's norm step made a fused SwiGLU MLP over a gate_up weight of
/// `gateUpRows` rows (bf16, or f8e4m3 with 128x128 blocks) and a down weight
/// [kHidden, gateUpRows / 2], interleaved by `unit` rows.
void makeFusedSwiglu(MiniPlan &mini, int64_t gateUpRows, int64_t unit, bool fp8) {
  const int64_t inner = gateUpRows / 2;
  std::vector<uint16_t> bf16(size_t(std::max(gateUpRows, kHidden) * kHidden), 0x3f80);
  std::vector<uint8_t> codes(bf16.size(), 0x38);
  std::vector<float> scales(64, 1.f);
  auto add = [&](const std::string &name, int64_t rows, int64_t cols) {
    if (!fp8)
      return mini.writer.addWeight(name, plan::DType::BF16, {rows, cols}, bf16.data(),
                                   size_t(rows * cols) * 2);
    int32_t w = mini.writer.addWeight(name, plan::DType::F8E4M3, {rows, cols}, codes.data(),
                                      size_t(rows * cols));
    const int64_t gr = (rows + 127) / 128, gc = (cols + 127) / 128;
    int32_t s = mini.writer.addWeight(name + ".scale", plan::DType::F32, {gr, gc},
                                      scales.data(), size_t(gr * gc) * 4);
    mini.writer.setBlockScale(w, s, {128, 128});
    return w;
  };
  const int32_t gateUp = add("gate_up", gateUpRows, kHidden);
  const int32_t down = add("down", kHidden, inner);
  plan::StepT &step = mini.step(1);
  step.kind = plan::StepKind::FusedSwigluMlp;
  step.weights = {gateUp, down};
  plan::GateUpAttrsT attrs;
  attrs.rows = unit;
  step.attrs.Set(attrs);
}

TEST(PlanLoader, FusedSwigluMlp) {
  {
    MiniPlan mini;
    makeFusedSwiglu(mini, 80, 16, false);
    EXPECT_EQ(mini.load(), "");
  }
  {
    MiniPlan mini;
    makeFusedSwiglu(mini, 512, 128, true);
    EXPECT_EQ(mini.load(), "");
  }
  {
    MiniPlan mini;
    makeFusedSwiglu(mini, 80, 0, false);
    EXPECT_EQ(mini.load(), mini.path + ": steps[1] (norm): rows is 0, expected 1..16777216");
  }
  {
    MiniPlan mini;
    makeFusedSwiglu(mini, 81, 16, false);
    EXPECT_EQ(mini.load(), mini.path + ": steps[1] (norm): weight 0 (weights[3] (gate_up)) has 81 "
                           "rows, fused_swiglu_mlp expects an even number (gate and up rows)");
  }
  {
    MiniPlan mini; // FP8 units of 64 rows would split a 128-row scale block
    makeFusedSwiglu(mini, 512, 64, true);
    EXPECT_EQ(mini.load(), mini.path + ": steps[1] (norm): weight 0 (weights[3] (gate_up)): the "
                           "gate_up unit 64 and the 256 inner rows must be whole 128-row "
                           "scale blocks");
  }
  {
    MiniPlan mini; // gate_up_rows lives in GateUpAttrs
    makeFusedSwiglu(mini, 80, 16, false);
    mini.step(1).attrs.Set(plan::RmsNormAttrsT());
    EXPECT_EQ(mini.load(), mini.path + ": steps[1] (norm): fused_swiglu_mlp needs GateUpAttrs "
                           "attributes, has RmsNormAttrs");
  }
}

TEST(PlanLoader, ShapeDisagreesWithStepKind) {
  MiniPlan mini;
  mini.weight(2).shape = {kVocab, kHidden / 2};
  mini.weight(2).size = uint64_t(kVocab * kHidden / 2 * 2);
  EXPECT_EQ(mini.load(), mini.path + ": steps[2] (lm_head): weight 0 (weights[2] (lm_head)) has "
                                     "shape [160, 68], linear expects [*, 136]");
}

TEST(PlanLoader, SizeDisagreesWithDtypeAndShape) {
  MiniPlan mini;
  mini.weight(1).size = 4;
  EXPECT_EQ(mini.load(),
            mini.path + ": weights[1] (norm): size is 4 bytes, shape [136] x f32 needs 544");
  MiniPlan other;
  other.buffer(3).size += 64;
  EXPECT_EQ(other.load(), other.path + ": buffers[3] (h): size is " +
                              std::to_string(4 * kHidden * 4 + 64) +
                              " bytes, shape [-1, 136] x f32 for max_tokens 4 needs " +
                              std::to_string(4 * kHidden * 4));
}

TEST(PlanLoader, AbsurdSizes) {
  const int64_t huge = int64_t(1) << 62;
  {
    MiniPlan mini;
    mini.buffer(3).shape = {-1, huge};
    EXPECT_EQ(mini.load(), mini.path + ": buffers[3] (h): size of shape [-1, 4611686018427387904] "
                                       "x f32 for max_tokens 4 overflows 64 bits");
  }
  {
    MiniPlan mini;
    mini.weight(0).shape = {huge, huge};
    EXPECT_EQ(mini.load(), mini.path + ": weights[0] (embed): size of shape "
                                       "[4611686018427387904, 4611686018427387904] x f32 "
                                       "overflows 64 bits");
  }
  {
    // 2^62 bytes that do not overflow, in an unused weight: past the end of the blob.
    MiniPlan mini;
    mini.writer.addWeightReference("huge", plan::DType::F32, {huge / 4}, "", 0);
    ASSERT_EQ(mini.writer.write(mini.path).ok(), true);
    std::string message = loadMessage(mini.path);
    EXPECT_NE(message.find(": weights[3] (huge): 4611686018427387904 bytes at offset 0 run past "
                           "the end of the weight blob ("),
              std::string::npos)
        << message;
  }
  {
    MiniPlan mini;
    mini.buffer(3).offset = uint64_t(-64);
    EXPECT_EQ(mini.load(), mini.path + ": buffers[3] (h): bytes [18446744073709551552, +2176) "
                                       "lie outside the arena of " +
                               std::to_string(mini.writer.plan().arena_size) + " bytes");
  }
  {
    MiniPlan mini;
    mini.writer.plan().max_tokens = huge;
    EXPECT_EQ(mini.load(), mini.path + ": max_tokens is 4611686018427387904, expected 1..16777216");
  }
}

TEST(PlanLoader, ModelConfigIsMetadata) {
  // The runtime never reads the config: absurd or absent values do not matter.
  MiniPlan mini;
  mini.writer.model().hidden_size = int64_t(1) << 62;
  mini.writer.model().vocab_size = -3;
  EXPECT_EQ(mini.load(), "");
  mini.writer.plan().model.reset();
  EXPECT_EQ(mini.load(), "");
}

/// Places the mini plan's buffers by hand: positions 0, seq_ids 64, tokens 128,
/// h 256, n 4096, logits 8192; arena 16384.
void placeByHand(MiniPlan &mini) {
  const uint64_t offsets[] = {128, 0, 64, 256, 4096, 8192};
  for (size_t i = 0; i < 6; ++i)
    mini.buffer(i).offset = offsets[i];
  mini.writer.plan().arena_size = 16384;
}

TEST(PlanLoader, LiveBuffersOverlapping) {
  MiniPlan mini;
  placeByHand(mini);
  ASSERT_EQ(mini.load(), "");
  // h is live in steps 0..1 and n in 1..2: they may not share bytes.
  mini.buffer(4).offset = 256 + 2048;
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (prefill): buffers[3] (h) and buffers[4] "
                                     "(n) overlap in the arena ([256, 2432) and [2304, 4480)) "
                                     "while both are live (steps 0..1 and 1..2)");
  // An input is live from the entry: tokens (entry..0) and h (0..1) meet at step 0.
  placeByHand(mini);
  mini.buffer(3).offset = 128;
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (prefill): buffers[0] (tokens) and "
                                     "buffers[3] (h) overlap in the arena ([128, 144) and [128, "
                                     "2304)) while both are live (steps entry..0 and 0..1)");
}

TEST(PlanLoader, BuffersMayShareBytesWhenNotLiveTogether) {
  MiniPlan mini;
  placeByHand(mini);
  // logits (live 2..exit) over the inputs (entry..0) and h (0..1).
  mini.buffer(5).offset = 0;
  EXPECT_EQ(mini.load(), "");
  // The writer's own packing reuses memory the same way.
  MiniPlan packed;
  EXPECT_EQ(packed.buffer(5).offset, packed.buffer(3).offset);
  EXPECT_EQ(packed.load(), "");
}

TEST(PlanLoader, ReadBeforeWrite) {
  MiniPlan mini;
  int32_t unused = mini.writer.addBuffer("unused", plan::DType::F32, {-1, kHidden});
  ASSERT_TRUE(mini.writer.planArena().ok());
  mini.step(2).operands[0] = unused;
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (prefill): steps[2] (lm_head): operand 0 "
                                     "(buffers[6] (unused)) is read before any step writes it");
}

TEST(PlanLoader, EmbeddingMustReadTheTokensInput) {
  MiniPlan mini;
  mini.step(0).operands[0] = 1;
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (prefill): steps[0] (embed): operand 0 "
                                     "must be the entry's tokens input (buffer 0), is buffer 1");
}

TEST(PlanLoader, KernelModulesRoundTripAndAreChecked) {
  MiniPlan mini;
  auto module = std::make_unique<plan::KernelModuleT>();
  module->target_arch = "sm_90a";
  module->ptx = ".version 8.4\n.target sm_90a\n";
  auto kernel = std::make_unique<plan::KernelEntryT>();
  kernel->name = "lm_head_gemm";
  kernel->step = 2;
  kernel->grid = {5, 1, 1};
  kernel->block = {128, 1, 1};
  kernel->shared_mem_bytes = 49152;
  module->kernels.push_back(std::move(kernel));
  mini.writer.plan().kernel_modules.push_back(std::move(module));
  ASSERT_EQ(mini.load(), "");
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(mini.path, &plan).ok());
  const plan::KernelModule *loaded = plan->root().kernel_modules()->Get(0);
  EXPECT_EQ(loaded->target_arch()->str(), "sm_90a");
  EXPECT_EQ(loaded->kernels()->Get(0)->shared_mem_bytes(), 49152u);
  mini.writer.plan().kernel_modules[0]->kernels[0]->step = 3;
  EXPECT_EQ(mini.load(), mini.path + ": kernel_modules[0] (sm_90a): kernels[0]: step 3 is out of "
                                     "range, plan has 3 steps");
  mini.writer.plan().kernel_modules[0]->kernels[0]->step = 2;
  mini.writer.plan().kernel_modules[0]->kernels[0]->tokens_per_block = 4;
  EXPECT_EQ(mini.load(), mini.path + ": kernel_modules[0] (sm_90a): kernels[0]: tokens_per_block "
                                     "is 4, so grid x comes from the token count and must be "
                                     "stored as 1");
  mini.writer.plan().kernel_modules[0]->kernels[0]->grid[0] = 1;
  mini.writer.plan().kernel_modules[0]->kernels[0]->block = {64, 32, 1};
  EXPECT_EQ(mini.load(), mini.path + ": kernel_modules[0] (sm_90a): kernels[0]: a block of 2048 "
                                     "threads (CUDA allows 1..1024)");
  mini.writer.plan().kernel_modules[0]->kernels[0]->block = {256, 1, 1};
  mini.writer.plan().kernel_modules[0]->kernels[0]->min_tokens = 16;
  mini.writer.plan().kernel_modules[0]->kernels[0]->max_tokens = 15;
  EXPECT_EQ(mini.load(), mini.path + ": kernel_modules[0] (sm_90a): kernels[0]: runs for no "
                                     "token count (min_tokens 16, max_tokens 15)");
  mini.writer.plan().kernel_modules[0]->kernels[0]->max_tokens = 0;
  mini.writer.plan().kernel_modules[0]->kernels[0]->tma_box = {16, 64, 1};
  EXPECT_EQ(mini.load(), mini.path + ": kernel_modules[0] (sm_90a): kernels[0]: tma_box has 3 "
                                     "dims, the runtime makes 2-D tensor maps");
  mini.writer.plan().kernel_modules[0]->kernels[0]->tma_box = {16, 512};
  EXPECT_EQ(mini.load(), mini.path + ": kernel_modules[0] (sm_90a): kernels[0]: a tma_box side "
                                     "of 512 (TMA allows 1..256)");
  mini.writer.plan().kernel_modules[0]->kernels[0]->tma_box = {16, 64};
  mini.writer.plan().kernel_modules[0]->cubin = {0x7f, 'E', 'L', 'F'};
  mini.writer.plan().kernel_modules[0]->ptxas_version = "13.0.88";
  ASSERT_EQ(mini.load(), "");
  ASSERT_TRUE(Plan::load(mini.path, &plan).ok());
  loaded = plan->root().kernel_modules()->Get(0);
  EXPECT_EQ(loaded->kernels()->Get(0)->tokens_per_block(), 4u);
  EXPECT_EQ(loaded->kernels()->Get(0)->min_tokens(), 16u);
  ASSERT_NE(loaded->kernels()->Get(0)->tma_box(), nullptr);
  EXPECT_EQ(loaded->kernels()->Get(0)->tma_box()->Get(1), 64u);
  ASSERT_NE(loaded->cubin(), nullptr);
  EXPECT_EQ(loaded->cubin()->size(), 4u);
  EXPECT_EQ(loaded->ptxas_version()->str(), "13.0.88");
  // The greedy-decoding kernels (KernelModule.argmax) get the same checks and belong
  // to no step.
  auto argmax = std::make_unique<plan::KernelEntryT>();
  argmax->name = "moec_argmax_split_v16";
  argmax->step = 0;
  argmax->grid = {1, 1, 32};
  argmax->block = {32, 1, 1};
  argmax->tokens_per_block = 1;
  mini.writer.plan().kernel_modules[0]->argmax.push_back(std::move(argmax));
  EXPECT_EQ(mini.load(), mini.path + ": kernel_modules[0] (sm_90a): argmax[0]: step is 0, an "
                                     "argmax kernel belongs to no step (-1)");
  mini.writer.plan().kernel_modules[0]->argmax[0]->step = -1;
  mini.writer.plan().kernel_modules[0]->argmax[0]->block = {32, 1};
  EXPECT_EQ(mini.load(), mini.path + ": kernel_modules[0] (sm_90a): argmax[0]: grid and block "
                                     "need 3 values each");
  mini.writer.plan().kernel_modules[0]->argmax[0]->block = {32, 1, 1};
  ASSERT_EQ(mini.load(), "");
  ASSERT_TRUE(Plan::load(mini.path, &plan).ok());
  loaded = plan->root().kernel_modules()->Get(0);
  ASSERT_NE(loaded->argmax(), nullptr);
  EXPECT_EQ(loaded->argmax()->Get(0)->grid()->Get(2), 32u);
}

TEST(PlanLoader, PrefillAndDecodeAreRequired) {
  MiniPlan mini;
  mini.writer.plan().entry_points[1]->name = "verify";
  EXPECT_EQ(mini.load(), mini.path + ": entry_points: the plan has no \"decode\" entry point");
  MiniPlan other;
  other.writer.plan().entry_points.erase(other.writer.plan().entry_points.begin());
  EXPECT_EQ(other.load(), other.path + ": entry_points: the plan has no \"prefill\" entry point");
  MiniPlan twice;
  twice.writer.plan().entry_points[1]->name = "prefill";
  EXPECT_EQ(twice.load(), twice.path + ": entry_points[1] (prefill): a previous entry point has "
                                       "the same name");
}

TEST(PlanLoader, EntrySignature) {
  MiniPlan mini;
  mini.writer.plan().entry_points[1]->inputs.pop_back();
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[1] (decode): an entry point takes 3 inputs "
                                     "(tokens, positions, seq_ids) and 1 output (logits), has 2 "
                                     "and 1");
  MiniPlan same;
  same.writer.plan().entry_points[0]->inputs[2] = 1;
  EXPECT_EQ(same.load(), same.path + ": entry_points[0] (prefill): inputs 1 and 2 are the same "
                                     "buffer 1");
}

TEST(PlanLoader, TokenBound) {
  {
    MiniPlan mini;
    mini.writer.plan().entry_points[0]->token_bound = 100;
    EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (prefill): output 0 (logits, "
                                       "buffers[5] (logits)) is f32 [-1, 160], expected f32 "
                                       "[-1, 100]");
  }
  {
    MiniPlan mini;
    mini.writer.plan().entry_points[1]->token_bound = 0;
    EXPECT_EQ(mini.load(), mini.path + ": entry_points[1] (decode): token_bound is 0, expected "
                                       "1..16777216");
  }
  {
    // The table the tokens index must have exactly token_bound rows.
    MiniPlan mini;
    mini.weight(0).shape = {kVocab - 10, kHidden};
    mini.weight(0).size = uint64_t((kVocab - 10) * kHidden * 4);
    EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (prefill): steps[0] (embed): the table "
                                       "weights[0] (embed) has 150 rows, token_bound is 160");
  }
  {
    // Entry points agree on the vocabulary.
    MiniPlan mini;
    int32_t narrow = mini.writer.addBuffer("narrow", plan::DType::F32, {-1, kVocab / 2});
    std::vector<uint16_t> head(size_t(kVocab / 2 * kHidden), 0x3f80);
    std::vector<float> embed(size_t(kVocab / 2 * kHidden), 0.5f);
    int32_t e = mini.writer.addWeight("embed2", plan::DType::F32, {kVocab / 2, kHidden},
                                      embed.data(), embed.size() * 4);
    int32_t w = mini.writer.addWeight("head2", plan::DType::BF16, {kVocab / 2, kHidden},
                                      head.data(), head.size() * 2);
    mini.writer.addStep(plan::StepKind::Embedding, {0}, {3}, {e}, {}, "embed2");
    mini.writer.addStep(plan::StepKind::Linear, {3}, {narrow}, {w}, {}, "head2");
    mini.writer.plan().entry_points[1]->first_step = 3;
    mini.writer.plan().entry_points[1]->num_steps = 2;
    mini.writer.plan().entry_points[1]->outputs = {narrow};
    mini.writer.plan().entry_points[1]->token_bound = kVocab / 2;
    ASSERT_TRUE(mini.writer.planArena().ok());
    EXPECT_EQ(mini.load(), mini.path + ": entry_points[1] (decode): token_bound is 80, "
                                       "entry_points[0] (prefill) has 160");
  }
}

/// Writes a TinyModel plan of `layers` layers with its weights in "tiny.weights"
/// beside it; returns the plan's path.
std::string writeExternalTinyPlan(const TempDir &dir, int layers, PlanWriter &writer) {
  TinyModelOptions options;
  options.external = true;
  options.layers = layers;
  TinyModel model;
  buildTinyModel(options, writer, &model);
  std::string path = dir.file("ext.plan");
  Status written = writer.write(path);
  EXPECT_TRUE(written.ok()) << written.message();
  return path;
}

TEST(PlanLoader, ExternalWeightPastEndOfItsFile) {
  TempDir dir;
  PlanWriter writer;
  std::string path = writeExternalTinyPlan(dir, 2, writer);
  ASSERT_EQ(loadMessage(path), "");
  // Cut the external file in the middle of the last weight.
  const plan::WeightT &last = *writer.plan().weights.back();
  uint64_t cut = last.offset + last.size / 2;
  std::vector<char> bytes = readFile(dir.file("tiny.weights"));
  bytes.resize(size_t(cut));
  writeBytes(dir.file("tiny.weights"), bytes);
  size_t index = writer.plan().weights.size() - 1;
  EXPECT_EQ(loadMessage(path), path + ": weights[" + std::to_string(index) + "] (" + last.name +
                                   "): " + std::to_string(last.size) + " bytes at offset " +
                                   std::to_string(last.offset) +
                                   " run past the end of tiny.weights (" + std::to_string(cut) +
                                   " bytes)");
}

TEST(PlanLoader, ExternalFileMissingOrAbsolute) {
  MiniPlan mini;
  mini.writer.addWeightReference("outside", plan::DType::F32, {4}, "missing.bin", 0);
  EXPECT_EQ(mini.load(), mini.path + ": weights[3] (outside): external file: " + mini.dir.path() +
                             "/missing.bin: cannot open: No such file or directory");
  MiniPlan other;
  other.writer.addWeightReference("outside", plan::DType::F32, {4}, "/etc/hostname", 0);
  EXPECT_EQ(other.load(), other.path + ": weights[3] (outside): external file \"/etc/hostname\" "
                                       "must be a path relative to the plan's directory");
}

/// A one-layer TinyModel plan whose MLA steps the tests below break one at a time.
class TinyPlan {
public:
  explicit TinyPlan(bool absorbed = true) {
    TinyModelOptions options;
    options.layers = 1;
    options.prefillAbsorbed = options.decodeAbsorbed = absorbed;
    buildTinyModel(options, writer, &model);
  }
  std::string load() {
    Status written = writer.write(path);
    EXPECT_TRUE(written.ok()) << written.message();
    return loadMessage(path);
  }
  /// The attention step called "model.layers.0.self_attn." + `name`.
  plan::StepT &step(const std::string &name) { return *writer.plan().steps[stepIndex(name)]; }
  size_t stepIndex(const std::string &name) const {
    const auto &steps = writer.plan().steps;
    for (size_t i = 0; i < steps.size(); ++i)
      if (steps[i]->name == kPrefix + name)
        return i;
    ADD_FAILURE() << "no step " << name;
    return 0;
  }
  /// "steps[i] (model.layers.0.self_attn.NAME)".
  std::string stepLabel(const std::string &name) const {
    return "steps[" + std::to_string(stepIndex(name)) + "] (" + kPrefix + name + ")";
  }
  /// "buffers[i] (model.layers.0.self_attn.NAME)".
  std::string bufferLabel(const std::string &name) const {
    const auto &buffers = writer.plan().buffers;
    for (size_t i = 0; i < buffers.size(); ++i)
      if (buffers[i]->name == kPrefix + name)
        return "buffers[" + std::to_string(i) + "] (" + kPrefix + name + ")";
    ADD_FAILURE() << "no buffer " << name;
    return "";
  }
  /// "weights[i] (model.layers.0.self_attn.NAME)".
  std::string weightLabel(const std::string &name) const {
    const auto &weights = writer.plan().weights;
    for (size_t i = 0; i < weights.size(); ++i)
      if (weights[i]->name == kPrefix + name)
        return "weights[" + std::to_string(i) + "] (" + kPrefix + name + ")";
    ADD_FAILURE() << "no weight " << name;
    return "";
  }

  static constexpr const char *kPrefix = "model.layers.0.self_attn.";
  TempDir dir;
  std::string path = dir.file("tiny.plan");
  PlanWriter writer;
  TinyModel model;
};

TEST(PlanLoader, RopeAttributes) {
  {
    TinyPlan tiny;
    tiny.step("rope_q").attrs.AsRopeAttrs()->rope_dim = 7;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("rope_q") +
                               ": rope_dim is 7, expected an even number in 2..16777216");
  }
  {
    TinyPlan tiny;
    tiny.step("rope_q").attrs.AsRopeAttrs()->offset = 17; // 17 + 8 > 24
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("rope_q") +
                               ": 4 heads of stride 24 rotating 8 dims at offset 17 do not fit "
                               "in 96 columns");
  }
  {
    TinyPlan tiny;
    tiny.step("rope_k").attrs.AsRopeAttrs()->heads = 2; // 2 x 8 > 8 columns
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("rope_k") +
                               ": 2 heads of stride 8 rotating 8 dims at offset 0 do not fit in "
                               "8 columns");
  }
  {
    TinyPlan tiny;
    tiny.step("rope_k").attrs.AsRopeAttrs()->yarn->factor = -1.f;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("rope_k") +
                               ": yarn.factor is -1, expected a positive finite number");
  }
  {
    TinyPlan tiny;
    tiny.step("rope_k").attrs.AsRopeAttrs()->theta = 0.f;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("rope_k") +
                               ": theta is 0, expected a positive finite number");
  }
}

TEST(PlanLoader, HeadLinearSlicesStayInBounds) {
  std::string kvB = TinyPlan().weightLabel("kv_b_proj.weight");
  {
    // W_UV rows of head 3: 17 + 3 * 28 + 12 = 113 > 112 rows of kv_b_proj.
    TinyPlan tiny;
    tiny.step("w_uv").attrs.AsHeadLinearAttrs()->row_offset = 17;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("w_uv") +
                               ": 4 heads reading rows [17 + h * 28, +12) of W reach row 113, "
                               "weight 0 (" + kvB + ") has 112");
  }
  {
    // q_nope of head 3: 9 + 3 * 24 + 16 = 97 > 96 columns of q.
    TinyPlan tiny;
    tiny.step("w_uk").attrs.AsHeadLinearAttrs()->in_offset = 9;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("w_uk") +
                               ": 4 heads reading columns [9 + h * 24, +16) of x reach column 97, "
                               "operand 0 (" + tiny.bufferLabel("q") + ") has 96");
  }
  {
    TinyPlan tiny;
    tiny.step("w_uk").attrs.AsHeadLinearAttrs()->rows = 12;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("w_uk") +
                               ": transposed: in_width 16 must equal rows 12");
  }
  {
    TinyPlan tiny;
    tiny.step("w_uv").attrs.AsHeadLinearAttrs()->in_width = 16;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("w_uv") +
                               ": in_width 16 must equal the 32 columns of weight 0 (" + kvB + ")");
  }
  {
    // y has heads * rows columns.
    TinyPlan tiny;
    tiny.step("w_uv").attrs.AsHeadLinearAttrs()->rows = 10;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("w_uv") + ": result 0 (" +
                               tiny.bufferLabel("o") +
                               ") is f32 [-1, 48], head_linear expects float [-1, 40]");
  }
  {
    TinyPlan tiny;
    tiny.step("w_uk").attrs.AsHeadLinearAttrs()->heads = 0;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("w_uk") +
                               ": heads is 0, expected 1..16777216");
  }
}

TEST(PlanLoader, LatentAttentionShapes) {
  {
    TinyPlan tiny;
    tiny.step("attention").attrs.AsLatentAttentionAttrs()->latent_dim = 30;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("attention") + ": operand 0 (" +
                               tiny.bufferLabel("q_lat") +
                               ") is f32 [-1, 128], latent_attention expects float [-1, 120]");
  }
  {
    // The rope columns of head 3 (20 + 3 * 24 + 8 = 100) run past q's 96.
    TinyPlan tiny;
    tiny.step("attention").attrs.AsLatentAttentionAttrs()->q_rope_offset = 20;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("attention") +
                               ": 4 heads reading 8 rope columns at 20 + h * 24 reach column 100, "
                               "operand 1 (" + tiny.bufferLabel("q") + ") has 96");
  }
  {
    TinyPlan tiny;
    std::swap(tiny.step("attention").states[0], tiny.step("attention").states[1]);
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("attention") +
                               ": state 0 (states[1] (model.layers.0.self_attn.rope_cache)) has "
                               "rows of shape [8], latent_attention expects [32]");
  }
  {
    TinyPlan tiny;
    tiny.step("attention").attrs.AsLatentAttentionAttrs()->softmax_scale = -0.5f;
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("attention") +
                               ": softmax_scale is -0.5, expected a positive finite number");
  }
}

TEST(PlanLoader, CacheStoreMatchesItsStates) {
  {
    TinyPlan tiny;
    tiny.writer.plan().states[0]->shape = {40};
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("cache_store") +
                               ": state 0 (states[0] (model.layers.0.self_attn.latent_cache)) has "
                               "rows of shape [40], cache_store expects [32]");
  }
  {
    TinyPlan tiny;
    tiny.step("cache_store").states = {0, 0};
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("cache_store") +
                               ": states 0 and 1 are the same state 0");
  }
  {
    TinyPlan tiny;
    tiny.step("cache_store").states = {0, 7};
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("cache_store") +
                               ": state 1 refers to state 7, plan has 2");
  }
  {
    TinyPlan tiny;
    tiny.step("cache_store").states = {0};
    EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("cache_store") +
                               ": cache_store takes 2 states, has 1");
  }
}

TEST(PlanLoader, ExpandedAttentionShapes) {
  TinyPlan tiny(/*absorbed=*/false);
  ASSERT_EQ(tiny.load(), "");
  tiny.step("attention").attrs.AsExpandedAttentionAttrs()->v_dim = 10;
  EXPECT_EQ(tiny.load(), tiny.path + ": " + tiny.stepLabel("attention") + ": weight 0 (" +
                             tiny.weightLabel("kv_b_proj.weight") +
                             ") has shape [112, 32], expanded_attention expects [104, 32]");
}

TEST(PlanLoader, AttentionReadsOnlyStatesStoredBeforeIt) {
  TinyPlan tiny;
  // A second pair of states that no cache_store writes.
  int32_t latent = tiny.writer.addState("unstored_latent", plan::DType::F32, {32});
  int32_t rope = tiny.writer.addState("unstored_rope", plan::DType::F32, {8});
  tiny.step("attention").states = {latent, rope};
  EXPECT_EQ(tiny.load(), tiny.path + ": entry_points[0] (prefill): " +
                             tiny.stepLabel("attention") +
                             ": state 0 (states[2] (unstored_latent)) is read before any step of "
                             "the entry stores into it");
}

TEST(PlanLoader, CacheRowsAreAddressedByTheEntryInputs) {
  TinyPlan tiny;
  std::swap(tiny.step("cache_store").operands[2], tiny.step("cache_store").operands[3]);
  EXPECT_EQ(tiny.load(), tiny.path + ": entry_points[0] (prefill): " +
                             tiny.stepLabel("cache_store") +
                             ": operand 2 must be the entry's positions input (buffer 1), is "
                             "buffer 2");
}

/// Inputs the fuzzer once crashed on: each must now be refused with its message.
TEST(PlanLoader, FuzzRegressions) {
  const std::string dir = MOEC_FUZZ_REGRESSIONS_DIR;
  const std::pair<const char *, const char *> cases[] = {
      {"union-type-without-table.plan",
       "steps[6] (model.layers.0.self_attn.c): slice_columns needs SliceAttrs attributes, has "
       "an empty SliceAttrs"},
      {"newline-in-name.plan",
       "steps[9] (model.layers.0.self_attn.rope\\x0aq): 1 heads of stride 0 rotating 8 dims at "
       "offset 16 do not fit in 96 columns"},
  };
  for (const auto &[file, message] : cases) {
    std::string path = dir + "/" + file;
    EXPECT_EQ(loadMessage(path), path + ": " + message);
  }
}

TEST(PlanLoader, LoadFromBytesMatchesLoad) {
  MiniPlan mini;
  ASSERT_EQ(mini.load(), "");
  std::vector<char> bytes = readFile(mini.path);
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::loadFromBytes(bytes.data(), bytes.size(), "memory", ".", &plan).ok());
  EXPECT_EQ(plan->numWeights(), 3u);
  uint32_t prefix;
  std::memcpy(&prefix, bytes.data(), 4);
  bytes.resize(40);
  Status status = Plan::loadFromBytes(bytes.data(), bytes.size(), "memory", ".", &plan);
  EXPECT_EQ(status.message(), "memory: truncated: the plan table needs " +
                                  std::to_string(prefix + 4) + " bytes, the file has 40");
}

// Issue 13, item 7: the integrity record. A flipped byte in the metadata, a blob
// that changed size or whose first bytes changed, and an external file swapped for
// another are refused on load; a change deeper in the weights is found by
// verifyChecksums (moec-run --verify).
uint64_t blobStart(const std::vector<char> &bytes) {
  uint32_t prefix;
  std::memcpy(&prefix, bytes.data(), 4);
  return weightBlobOffset(prefix);
}

TEST(PlanIntegrity, AFlippedMetadataByteIsRefused) {
  MiniPlan mini;
  ASSERT_EQ(mini.load(), "");
  std::vector<char> bytes = readFile(mini.path);
  std::string text(bytes.begin(), bytes.end());
  size_t at = text.find("DeepseekV3ForCausalLM"); // metadata only: still a valid plan
  ASSERT_NE(at, std::string::npos);
  bytes[at] = 'd';
  writeBytes(mini.path, bytes);
  EXPECT_EQ(loadMessage(mini.path), mini.path + ": metadata checksum mismatch: the file was "
                                                "modified or corrupted after moec wrote it");
}

TEST(PlanIntegrity, ABlobOfAnotherSizeIsRefused) {
  MiniPlan mini;
  ASSERT_EQ(mini.load(), "");
  std::vector<char> bytes = readFile(mini.path);
  uint64_t blob = bytes.size() - blobStart(bytes);
  bytes.push_back(0);
  writeBytes(mini.path, bytes);
  EXPECT_EQ(loadMessage(mini.path),
            mini.path + ": the weight blob is " + std::to_string(blob + 1) +
                " bytes, the plan recorded " + std::to_string(blob) +
                ": it was truncated, extended or replaced after the plan was compiled");
}

TEST(PlanIntegrity, ChangedWeightsAreFoundOnLoadOrByVerify) {
  MiniPlan mini;
  ASSERT_EQ(mini.load(), "");
  std::vector<char> original = readFile(mini.path);
  uint64_t blob = blobStart(original);
  ASSERT_GT(original.size() - blob, kHeadDigestBytes + 1000);
  {
    std::vector<char> bytes = original;
    bytes[blob + 100] ^= 1; // inside the first 64 KiB: every load sees it
    writeBytes(mini.path, bytes);
    EXPECT_EQ(loadMessage(mini.path),
              mini.path + ": the weight blob: its first bytes differ from what the plan "
                          "recorded: it was modified or replaced after the plan was compiled");
  }
  {
    std::vector<char> bytes = original;
    bytes[blob + kHeadDigestBytes + 500] ^= 1; // past the head: only --verify reads it
    writeBytes(mini.path, bytes);
    std::unique_ptr<Plan> plan;
    ASSERT_TRUE(Plan::load(mini.path, &plan).ok());
    EXPECT_EQ(plan->verifyChecksums().message(),
              mini.path + ": the weight blob: checksum mismatch: the weights changed after "
                          "the plan was compiled");
  }
  writeBytes(mini.path, original);
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(mini.path, &plan).ok());
  uint64_t done = 0, total = 0;
  EXPECT_TRUE(plan->verifyChecksums([&](uint64_t d, uint64_t t) { done = d, total = t; }).ok());
  EXPECT_EQ(done, total);
  EXPECT_EQ(total, original.size() - blob);
}

TEST(PlanIntegrity, ASwappedExternalFileIsRefused) {
  TempDir dir;
  PlanWriter writer;
  std::string path = writeExternalTinyPlan(dir, 2, writer);
  ASSERT_EQ(loadMessage(path), "");
  std::vector<char> weights = readFile(dir.file("tiny.weights"));
  // Zeros of the same size.
  writeBytes(dir.file("tiny.weights"), std::vector<char>(weights.size(), 0));
  EXPECT_EQ(loadMessage(path), path + ": external file \"tiny.weights\": its first bytes "
                                      "differ from what the plan recorded: it was modified or "
                                      "replaced after the plan was compiled");
  // Another model's weights (a different seed), a different size.
  TempDir other;
  PlanWriter otherWriter;
  writeExternalTinyPlan(other, 1, otherWriter);
  std::vector<char> otherWeights = readFile(other.file("tiny.weights"));
  writeBytes(dir.file("tiny.weights"), otherWeights);
  std::string message = loadMessage(path);
  EXPECT_NE(message.find("tiny.weights"), std::string::npos) << message;
  EXPECT_NE(message, "");
  writeBytes(dir.file("tiny.weights"), weights);
  EXPECT_EQ(loadMessage(path), "");
}

TEST(PlanIntegrity, APlanWithoutTheRecordIsRefused) {
  MiniPlan mini;
  ASSERT_EQ(mini.load(), "");
  // Rewrite the plan's flatbuffer without `integrity`, the blob unchanged.
  std::vector<char> bytes = readFile(mini.path);
  plan::PlanT unpacked;
  flatbuffers::GetSizePrefixedRoot<plan::Plan>(bytes.data())->UnPackTo(&unpacked);
  unpacked.integrity.reset();
  flatbuffers::FlatBufferBuilder builder;
  builder.FinishSizePrefixed(plan::Plan::Pack(builder, &unpacked), plan::PlanIdentifier());
  std::vector<char> out(builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize());
  out.resize(size_t(weightBlobOffset(uint32_t(builder.GetSize() - 4))), 0);
  out.insert(out.end(), bytes.begin() + long(blobStart(bytes)), bytes.end());
  writeBytes(mini.path, out);
  EXPECT_EQ(loadMessage(mini.path),
            mini.path + ": the plan has no integrity record (plan formats 3 and later require one)");
}

} // namespace
} // namespace moec::test
