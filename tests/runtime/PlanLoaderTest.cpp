//===- PlanLoaderTest.cpp - The plan loader accepts good plans, names bad ones -===//
//
// Every rejection is checked against its exact one-line message: the file, the
// element, and the problem.
//
//===----------------------------------------------------------------------===//
#include "TinyModel.h"

#include "moec/plan_writer/PlanWriter.h"
#include "moec/runtime/Plan.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <unistd.h>

namespace moec::test {
namespace {

constexpr int64_t kVocab = 160, kHidden = 136;

/// The smallest valid plan: embedding -> rms_norm -> linear (logits).
/// Buffers: 0 tokens, 1 positions, 2 seq_ids, 3 h, 4 n, 5 logits.
/// Weights: 0 embed (f32), 1 norm (f32), 2 lm_head (bf16). Steps 0, 1, 2.
class MiniPlan {
public:
  MiniPlan() {
    plan::ModelConfigT &c = writer.model();
    c.architecture = "DeepseekV3ForCausalLM";
    c.vocab_size = kVocab;
    c.hidden_size = kHidden;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 4;
    c.qk_nope_head_dim = 16;
    c.qk_rope_head_dim = 8;
    c.v_head_dim = 12;
    c.kv_lora_rank = 32;
    c.softmax_scale = 0.2f;
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
    int32_t w = writer.addWeight("lm_head", plan::DType::BF16, {kVocab, kHidden}, head.data(),
                                 head.size() * 2);
    writer.addStep(plan::StepKind::Embedding, {tokens}, {h}, {e}, {}, "embed");
    plan::StepAttrsUnion attrs;
    plan::RmsNormAttrsT rms;
    attrs.Set(rms);
    writer.addStep(plan::StepKind::RmsNorm, {h}, {n}, {g}, attrs, "norm");
    writer.addStep(plan::StepKind::Linear, {n}, {logits}, {w}, {}, "lm_head");
    writer.addEntryPoint("forward", {tokens, positions, seqIds}, {logits}, 0, 3);
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
  EXPECT_EQ(plan->forward().tokens, 0);
  EXPECT_EQ(plan->forward().logits, 5);
  EXPECT_EQ(plan->forward().numSteps, 3u);
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
      std::string path = dir.file(std::string("tiny") + (fp8 ? "8" : "b") + (external ? "x" : "") + ".plan");
      ASSERT_TRUE(writeTinyModel(options, path));
      EXPECT_EQ(loadMessage(path), "") << path;
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
  EXPECT_EQ(mini.load(), mini.path + ": format version 2 is newer than this runtime reads (1); "
                                     "update the runtime or recompile the plan");
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
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (forward): input 2 refers to buffer 6, "
                                     "plan has 6");
}

TEST(PlanLoader, EntryStepsOutOfRange) {
  MiniPlan mini;
  mini.writer.plan().entry_points[0]->num_steps = 0xffffffffu;
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (forward): steps [0, +4294967295) run "
                                     "past the plan's 3 steps");
}

TEST(PlanLoader, BlockScaleOutOfRange) {
  MiniPlan mini;
  mini.weight(2).block_scale = 12;
  EXPECT_EQ(mini.load(), mini.path + ": weights[2] (lm_head): only f8e4m3 weights have a "
                                     "block_scale, this one is bf16");
}

TEST(PlanLoader, Fp8WithoutBlockScale) {
  MiniPlan mini;
  mini.weight(2).dtype = plan::DType::F8E4M3;
  mini.weight(2).size = uint64_t(kVocab * kHidden);
  EXPECT_EQ(mini.load(), mini.path + ": weights[2] (lm_head): f8e4m3 weight has no block_scale");
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
                                       "[-1, 136], linear expects f32 [-1, 160]");
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
  {
    MiniPlan mini;
    mini.writer.model().hidden_size = huge;
    EXPECT_EQ(mini.load(), mini.path + ": model: hidden_size is 4611686018427387904, expected "
                                       "1..16777216");
  }
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
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (forward): buffers[3] (h) and buffers[4] "
                                     "(n) overlap in the arena ([256, 2432) and [2304, 4480)) "
                                     "while both are live (steps 0..1 and 1..2)");
  // An input is live from the entry: tokens (entry..0) and h (0..1) meet at step 0.
  placeByHand(mini);
  mini.buffer(3).offset = 128;
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (forward): buffers[0] (tokens) and "
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
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (forward): steps[2] (lm_head): operand 0 "
                                     "(buffers[6] (unused)) is read before any step writes it");
}

TEST(PlanLoader, EmbeddingMustReadTheTokensInput) {
  MiniPlan mini;
  mini.step(0).operands[0] = 1;
  EXPECT_EQ(mini.load(), mini.path + ": entry_points[0] (forward): steps[0] (embed): operand 0 "
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
}

TEST(PlanLoader, NoForwardEntry) {
  MiniPlan mini;
  mini.writer.plan().entry_points[0]->name = "prefill";
  EXPECT_EQ(mini.load(), mini.path + ": entry_points: the plan has no \"forward\" entry point");
}

TEST(PlanLoader, ExternalWeightPastEndOfItsFile) {
  TempDir dir;
  TinyModelOptions options;
  options.external = true;
  options.layers = 2;
  std::string path = dir.file("ext.plan");
  PlanWriter writer;
  TinyModel model;
  buildTinyModel(options, writer, &model);
  ASSERT_TRUE(writer.write(path).ok());
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

/// Inputs the fuzzer once crashed on: each must now be refused with its message.
TEST(PlanLoader, FuzzRegressions) {
  const std::string dir = MOEC_FUZZ_REGRESSIONS_DIR;
  const std::pair<const char *, const char *> cases[] = {
      {"union-type-without-table.plan",
       "steps[4] (model.layers.0.self_attn.c): slice_columns needs SliceAttrs attributes, has "
       "an empty SliceAttrs"},
      {"newline-in-name.plan",
       "steps[9] (model.layers.0.self_attn.rope\\x0aq): 1 heads of stride 0 rotating 8 dims at "
       "offset 0 do not fit in 96 columns"},
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

} // namespace
} // namespace moec::test
