//===- PlanEmitterTest.cpp - the plan emitter on step-level IR ------------===//
//
// The emitter translates step-level ops one to one and reads weights only through
// a WeightSource. These tests give it a module written by hand and an in-memory
// WeightSource (no checkpoint), run the plan it writes, and check the errors for
// ops that have no plan step and for missing tensors.
//
//===----------------------------------------------------------------------===//
#include "moec/InitAll.h"
#include "moec/Plan/PlanEmitter.h"
#include "moec/cpu/kernels.h"
#include "moec/runtime/Executor.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace moec {
namespace {

/// Tensors held in memory, by name.
class MemoryWeights final : public WeightSource {
public:
  void add(const std::string &name, plan::DType dtype, std::vector<int64_t> shape,
           std::vector<uint8_t> bytes) {
    Entry &e = tensors[name];
    e.bytes = std::move(bytes);
    e.tensor.dtype = dtype;
    e.tensor.shape = std::move(shape);
    e.tensor.data = e.bytes.data();
    e.tensor.bytes = e.bytes.size();
  }
  void addF32(const std::string &name, std::vector<int64_t> shape, const std::vector<float> &v) {
    std::vector<uint8_t> bytes(v.size() * sizeof(float));
    std::memcpy(bytes.data(), v.data(), bytes.size());
    add(name, plan::DType::F32, std::move(shape), std::move(bytes));
  }
  const SourceTensor *lookup(llvm::StringRef name) const override {
    auto it = tensors.find(name.str());
    return it == tensors.end() ? nullptr : &it->second.tensor;
  }
  std::string blame(llvm::StringRef) const override { return "memory"; }

private:
  struct Entry {
    std::vector<uint8_t> bytes;
    SourceTensor tensor;
  };
  std::map<std::string, Entry> tensors;
};

/// embedding -> rms_norm -> linear with FP8 weights in BRxBC blocks.
constexpr const char *kModuleTemplate = R"mlir(
module {
  func.func @forward(%tok: tensor<?xi32>, %pos: tensor<?xi32>, %seq: tensor<?xi32>) -> tensor<?x5xf32> {
    %e = moe.weight "embed" : tensor<5x4xf32>
    %h = moe.embedding %e[%tok] : tensor<5x4xf32>, tensor<?xi32> -> tensor<?x4xf32>
    %g = moe.weight "norm" : tensor<4xf32>
    %n = moe.rms_norm %h, %g {epsilon = 1.0e-06 : f32} : tensor<?x4xf32>, tensor<4xf32>
    %w = moe.weight "head" scale "head_scale" : tensor<5x4xf8E4M3FN, #moe.block_fp8<BR, BC>>
    %l = moe.linear %n, %w : tensor<?x4xf32>, tensor<5x4xf8E4M3FN, #moe.block_fp8<BR, BC>> -> tensor<?x5xf32>
    return %l : tensor<?x5xf32>
  }
}
)mlir";

/// The module with FP8 blocks of `rows` x `cols`.
std::string moduleText(int rows, int cols) {
  std::string text = kModuleTemplate;
  for (auto [key, value] : {std::pair<std::string, int>{"BR", rows}, {"BC", cols}})
    for (size_t at; (at = text.find(key)) != std::string::npos;)
      text.replace(at, key.size(), std::to_string(value));
  return text;
}

class PlanEmitterTest : public ::testing::Test {
protected:
  void SetUp() override {
    mlir::DialectRegistry registry;
    registerAllDialects(registry);
    ctx = std::make_unique<mlir::MLIRContext>(registry);
    ctx->loadAllAvailableDialects();
    llvm::SmallString<128> dir;
    ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("moec-emitter", dir));
    tmp = dir.str().str();
  }
  void TearDown() override { llvm::sys::fs::remove_directories(tmp); }

  mlir::OwningOpRef<mlir::ModuleOp> parse(const std::string &text) {
    return mlir::parseSourceString<mlir::ModuleOp>(text, ctx.get());
  }

  /// The weights, with FP8 block scales for blocks of `blockRows` x `blockCols`.
  void addWeights(MemoryWeights &w, int blockRows = 128, int blockCols = 128) {
    embed.resize(20);
    for (size_t i = 0; i < embed.size(); ++i)
      embed[i] = std::sin(0.7f * float(i)) * 2.f;
    w.addF32("embed", {5, 4}, embed);
    norm = {1.f, 0.5f, -1.5f, 2.f};
    w.addF32("norm", {4}, norm);
    codes.resize(20);
    for (size_t i = 0; i < codes.size(); ++i)
      codes[i] = cpu::floatToFp8e4m3(0.25f * float(int(i) - 9));
    w.add("head", plan::DType::F8E4M3, {5, 4}, codes);
    sr = (5 + blockRows - 1) / blockRows;
    sc = (4 + blockCols - 1) / blockCols;
    scales = {0.5f, 2.f, 1.5f, -1.f, 0.75f, 3.f};
    scales.resize(size_t(sr * sc));
    w.addF32("head_scale", {sr, sc}, scales);
    br = blockRows;
    bc = blockCols;
  }

  std::unique_ptr<mlir::MLIRContext> ctx;
  std::string tmp;
  std::vector<float> embed, norm, scales;
  std::vector<uint8_t> codes;
  int64_t sr = 1, sc = 1, br = 128, bc = 128;
};

TEST_F(PlanEmitterTest, StepLevelModuleFromMemoryRunsExactly) {
  auto module = parse(moduleText(128, 128));
  ASSERT_TRUE(module);
  MemoryWeights weights;
  addWeights(weights);
  PlanEmitOptions options;
  options.maxTokens = 8;
  std::string path = tmp + "/m.plan";
  auto summary = emitPlan(*module, weights, path, options);
  ASSERT_TRUE(bool(summary)) << llvm::toString(summary.takeError());
  EXPECT_EQ(summary->steps, 3u);
  EXPECT_EQ(summary->weights, 4u);
  EXPECT_EQ(summary->kvBytesPerToken, 0u);

  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(path, &plan).ok());
  const plan::Plan &root = plan->root();
  ASSERT_EQ(root.steps()->size(), 3u);
  EXPECT_EQ(root.steps()->Get(0)->kind(), plan::StepKind::Embedding);
  EXPECT_EQ(root.steps()->Get(1)->kind(), plan::StepKind::RmsNorm);
  EXPECT_FLOAT_EQ(root.steps()->Get(1)->attrs_as_RmsNormAttrs()->eps(), 1e-6f);
  EXPECT_EQ(root.steps()->Get(2)->kind(), plan::StepKind::Linear);
  // The block shape travels from the type's encoding to the plan's weight.
  const plan::Weight *head = root.weights()->Get(uint32_t(root.steps()->Get(2)->weights()->Get(0)));
  ASSERT_TRUE(head->block_shape());
  EXPECT_EQ(head->block_shape()->Get(0), 128);
  EXPECT_EQ(head->block_shape()->Get(1), 128);
  EXPECT_EQ(root.entry_points()->size(), 2u);
  EXPECT_EQ(root.entry_points()->Get(0)->token_bound(), 5);

  std::unique_ptr<Executor> executor;
  Status created = Executor::create(*plan, ExecutorOptions(), &executor);
  ASSERT_TRUE(created.ok()) << created.message();
  std::unique_ptr<KvCache> cache;
  ASSERT_TRUE(executor->createCache(1, 8, &cache).ok());
  int32_t tokens[2] = {3, 1}, positions[2] = {0, 1}, seqs[2] = {0, 0};
  TokenBatch batch{tokens, positions, seqs, 2};
  float logits[10];
  ASSERT_TRUE(executor->forward(batch, *cache, logits).ok());
  for (int t = 0; t < 2; ++t) {
    const float *x = &embed[size_t(tokens[t]) * 4];
    double ms = 0;
    for (int k = 0; k < 4; ++k)
      ms += double(x[k]) * x[k];
    double inv = 1.0 / std::sqrt(ms / 4 + 1e-6);
    for (int r = 0; r < 5; ++r) {
      double y = 0;
      for (int k = 0; k < 4; ++k)
        y += double(cpu::fp8e4m3ToFloat(codes[size_t(r * 4 + k)])) *
             scales[size_t((r / br) * sc + k / bc)] * x[k] * inv * norm[size_t(k)];
      EXPECT_NEAR(logits[t * 5 + r], y, 1e-5 * (1 + std::fabs(y))) << t << "," << r;
    }
  }
}

TEST_F(PlanEmitterTest, BlockShapeTravelsToThePlanAndTheBackendJudgesIt) {
  // 2x2 blocks: the plan records them (the loader checks the [2, 2] scale grid);
  // a backend that does not implement them says so before running anything.
  auto module = parse(moduleText(2, 2));
  ASSERT_TRUE(module);
  MemoryWeights weights;
  addWeights(weights, 2, 2);
  std::string path = tmp + "/b.plan";
  auto summary = emitPlan(*module, weights, path, PlanEmitOptions());
  ASSERT_TRUE(bool(summary)) << llvm::toString(summary.takeError());
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(path, &plan).ok());
  std::unique_ptr<Executor> executor;
  Status created = Executor::create(*plan, ExecutorOptions(), &executor);
  // The CPU kernels implement [128, 128] blocks only: creating the executor names
  // the step and the block shape.
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.message().find("cannot run linear: weight 0 is f8e4m3 with block shape "
                                   "[2, 2]"),
            std::string::npos)
      << created.message();
}

TEST_F(PlanEmitterTest, OpWithoutPlanStepIsNamed) {
  std::string text = moduleText(128, 128);
  text.insert(text.find("    %e = "), "    %c = arith.constant dense<1.0> : tensor<4xf32>\n");
  auto module = parse(text);
  ASSERT_TRUE(module);
  MemoryWeights weights;
  addWeights(weights);
  auto summary = emitPlan(*module, weights, tmp + "/x.plan", PlanEmitOptions());
  ASSERT_FALSE(bool(summary));
  std::string message = llvm::toString(summary.takeError());
  EXPECT_NE(message.find("no plan step for 'arith.constant'"), std::string::npos) << message;
  EXPECT_FALSE(llvm::sys::fs::exists(tmp + "/x.plan"));
}

TEST_F(PlanEmitterTest, MissingTensorNamesTheSource) {
  auto module = parse(moduleText(128, 128));
  ASSERT_TRUE(module);
  MemoryWeights weights;
  weights.addF32("embed", {5, 4}, std::vector<float>(20, 1.f));
  auto summary = emitPlan(*module, weights, tmp + "/x.plan", PlanEmitOptions());
  ASSERT_FALSE(bool(summary));
  EXPECT_EQ(llvm::toString(summary.takeError()), "memory: tensor 'norm': missing");
}

} // namespace
} // namespace moec
