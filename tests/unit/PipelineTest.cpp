//===- PipelineTest.cpp - the moe-compile pipeline through its C++ API ----===//

#include "moec/InitAll.h"
#include "moec/Transforms/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace mlir;

namespace {

/// The pipeline with every option spelled out, as plans record it (the two
/// spaces after "canonicalize{" are MLIR's printer's).
constexpr const char *kDefaultPipeline =
    "builtin.module(func.func(canonicalize{  max-iterations=10 "
    "max-num-rewrites=-1 region-simplify=normal test-convergence=false "
    "top-down=true}),moe-kv-cache-type{element=bf16},moe-split-phases,"
    "func.func(moe-decompose-mla,moe-decompose-moe),"
    "moe-absorb-mla{bandwidth-gbs=2.000000e+01 context-tokens=4096 form=auto "
    "function=prefill peak-gflops=1.000000e+02 report=false},"
    "moe-absorb-mla{bandwidth-gbs=2.000000e+01 context-tokens=4096 form=auto "
    "function=decode peak-gflops=1.000000e+02 report=false},"
    "func.func(moe-fuse-mla-input-proj{report=false},moe-fuse-gate-up{report=false rows=128},"
    "moe-fuse-residual-norm{report=false},canonicalize{  max-iterations=10 "
    "max-num-rewrites=-1 region-simplify=normal test-convergence=false top-down=true}))";

class PipelineTest : public ::testing::Test {
protected:
  PipelineTest() { moec::registerAllPasses(); }
};

TEST_F(PipelineTest, DefaultOptionsLetTheCostModelChooseEachPhasesForm) {
  moe::MoeCompilePipelineOptions options;
  EXPECT_EQ(options.prefillMlaForm, moe::AttentionForm::automatic);
  EXPECT_EQ(options.decodeMlaForm, moe::AttentionForm::automatic);
  EXPECT_EQ(moe::compilePipelineString(options), kDefaultPipeline);
  EXPECT_EQ(moe::compilePipelineInvocation(options),
            "moe-compile{activations=f32 decode-mla-form=auto fp8-scale=float fuse-gate-up=true fuse-mla-input-proj=true fuse-residual-norm=true "
            "kv-cache=bf16 prefill-mla-form=auto quantize=none quantize-lm-head=false report=false}");
  EXPECT_EQ(moe::compilePipelineString(options).find("moe-quantize-fp8"), std::string::npos);
}

TEST_F(PipelineTest, QuantizeFp8RunsBeforeTheSplitWithItsOptions) {
  auto options = moe::MoeCompilePipelineOptions::createFromString(
      "quantize=fp8 fp8-scale=ue8m0 quantize-lm-head=true");
  ASSERT_TRUE(options);
  std::string text = moe::compilePipelineString(*options);
  size_t quantize = text.find("moe-quantize-fp8{block=128 quantize-lm-head=true report=false "
                              "scale=ue8m0}");
  ASSERT_NE(quantize, std::string::npos) << text;
  EXPECT_LT(quantize, text.find("moe-split-phases"));
  EXPECT_EQ(moe::compilePipelineInvocation(*options),
            "moe-compile{activations=f32 decode-mla-form=auto fp8-scale=ue8m0 fuse-gate-up=true fuse-mla-input-proj=true fuse-residual-norm=true "
            "kv-cache=bf16 prefill-mla-form=auto quantize=fp8 quantize-lm-head=true report=false}");
  moe::MoeCompilePipelineOptions bad;
  std::string errors;
  llvm::raw_string_ostream os(errors);
  EXPECT_TRUE(failed(bad.parseFromString("quantize=int4", os)));
}

TEST_F(PipelineTest, Bf16ActivationsRunLastOnTheStepOps) {
  auto options = moe::MoeCompilePipelineOptions::createFromString("activations=bf16");
  ASSERT_TRUE(options);
  const std::string text = moe::compilePipelineString(*options);
  const size_t acts = text.find("moe-bf16-activations{report=false}");
  ASSERT_NE(acts, std::string::npos) << text;
  EXPECT_GT(acts, text.rfind("canonicalize")) << text;
  EXPECT_EQ(moe::compilePipelineString(moe::MoeCompilePipelineOptions()).find("moe-bf16-activations"),
            std::string::npos);
}

TEST_F(PipelineTest, TextualPipelineParsesBackToItself) {
  moe::MoeCompilePipelineOptions options;
  options.prefillMlaForm = moe::AttentionForm::naive;
  std::string text = moe::compilePipelineString(options);
  EXPECT_NE(text.find("form=naive function=prefill"),
            std::string::npos)
      << text;

  OpPassManager parsed(ModuleOp::getOperationName());
  std::string errors;
  llvm::raw_string_ostream os(errors);
  // parsePassPipeline takes the passes inside the anchor.
  llvm::StringRef inner = llvm::StringRef(text)
                              .drop_front(std::strlen("builtin.module("))
                              .drop_back();
  ASSERT_TRUE(succeeded(parsePassPipeline(inner, parsed, os))) << errors;
  std::string reprinted;
  llvm::raw_string_ostream ros(reprinted);
  parsed.printAsTextualPipeline(ros);
  EXPECT_EQ(reprinted, text);
}

TEST_F(PipelineTest, RegisteredPipelineBuildsTheSamePasses) {
  // `moe-compile{...}` in a textual pipeline expands to buildCompilePipeline.
  OpPassManager viaRegistry(ModuleOp::getOperationName());
  std::string errors;
  llvm::raw_string_ostream os(errors);
  ASSERT_TRUE(succeeded(parsePassPipeline(
      "moe-compile{decode-mla-form=naive}", viaRegistry, os)))
      << errors;
  std::string printed;
  llvm::raw_string_ostream pos(printed);
  viaRegistry.printAsTextualPipeline(pos);

  moe::MoeCompilePipelineOptions options;
  options.decodeMlaForm = moe::AttentionForm::naive;
  EXPECT_EQ(printed, moe::compilePipelineString(options));
}

TEST_F(PipelineTest, OptionsParseFromTextAndRejectUnknownForms) {
  auto options = moe::MoeCompilePipelineOptions::createFromString(
      "prefill-mla-form=naive decode-mla-form=absorbed");
  ASSERT_TRUE(options);
  EXPECT_EQ(options->prefillMlaForm, moe::AttentionForm::naive);
  EXPECT_EQ(options->decodeMlaForm, moe::AttentionForm::absorbed);
  EXPECT_EQ(moe::compilePipelineInvocation(*options),
            "moe-compile{activations=f32 decode-mla-form=absorbed fp8-scale=float fuse-gate-up=true fuse-mla-input-proj=true fuse-residual-norm=true "
            "kv-cache=bf16 prefill-mla-form=naive quantize=none quantize-lm-head=false report=false}");

  // llvm::cl reports the bad value on stderr ("Cannot find option named
  // 'fused'"); the parse fails.
  moe::MoeCompilePipelineOptions bad;
  std::string errors;
  llvm::raw_string_ostream os(errors);
  EXPECT_TRUE(failed(bad.parseFromString("decode-mla-form=fused", os)));
}

} // namespace
