//===- DialectTest.cpp - the moe dialect through its C++ API ---------------===//

#include "moec/Dialect/Moe/IR/MoeDialect.h"
#include "moec/InitAll.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include <cmath>
#include <gtest/gtest.h>

using namespace mlir;

namespace {

class MoeDialectTest : public ::testing::Test {
protected:
  MoeDialectTest() {
    DialectRegistry registry;
    moec::registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
  }

  /// Parses `src` and returns the diagnostics it produced (empty on success).
  std::string parseErrors(StringRef src) {
    std::string messages;
    ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
      messages += d.str();
      return success();
    });
    OwningOpRef<ModuleOp> m = parseSourceString<ModuleOp>(src, &ctx);
    return messages;
  }

  MLIRContext ctx;
};

TEST_F(MoeDialectTest, LatentCacheTypeCarriesItsDims) {
  auto t = moe::LatentCacheType::get(&ctx, 512, 64);
  EXPECT_EQ(t.getKvLoraRank(), 512);
  EXPECT_EQ(t.getRopeDim(), 64);
  std::string printed;
  llvm::raw_string_ostream os(printed);
  os << Type(t);
  EXPECT_EQ(printed, "!moe.latent_cache<512, 64>");
  EXPECT_TRUE(t.getElementType().isF32()); // the default, not printed
  auto b = moe::LatentCacheType::get(&ctx, 512, 64, BFloat16Type::get(&ctx));
  EXPECT_NE(Type(b), Type(t));
  printed.clear();
  os << Type(b);
  EXPECT_EQ(printed, "!moe.latent_cache<512, 64, bf16>");
}

TEST_F(MoeDialectTest, BuiltLinearVerifiesAndRejectsWrongShape) {
  OpBuilder b(&ctx);
  Location loc = b.getUnknownLoc();
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  auto x = RankedTensorType::get({ShapedType::kDynamic, 300}, b.getF32Type());
  auto block = moe::BlockFp8Attr::get(&ctx, 128, 128);
  auto w8 = RankedTensorType::get({200, 300}, b.getType<Float8E4M3FNType>(),
                                  block);
  auto y = RankedTensorType::get({ShapedType::kDynamic, 200}, b.getF32Type());
  auto fn = func::FuncOp::create(b, loc, "f", b.getFunctionType({x}, {y}));
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  auto weight = moe::WeightOp::create(b, loc, w8, b.getStringAttr("w"),
                                      b.getStringAttr("w_scale_inv"));
  auto lin = moe::LinearOp::create(b, loc, y, entry->getArgument(0),
                                   weight.getWeight());
  func::ReturnOp::create(b, loc, lin.getResult());
  EXPECT_TRUE(succeeded(verify(*module)));
  EXPECT_EQ(moe::getBlockFp8(lin.getWeight().getType()), block);

  // A block-quantized weight without its scale name, and a linear whose
  // weight has the wrong shape, are rejected with the exact reason.
  std::string messages;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
    messages += d.str();
    return success();
  });
  b.setInsertionPoint(lin);
  auto unnamed = moe::WeightOp::create(b, loc, w8, b.getStringAttr("w2"),
                                       StringAttr());
  EXPECT_TRUE(failed(verify(unnamed)));
  EXPECT_EQ(messages, "'moe.weight' op expected a scale name for "
                      "block-quantized weight 'w2', got none");
  messages.clear();
  auto wide = RankedTensorType::get({200, 256}, b.getBF16Type());
  auto other = moe::WeightOp::create(b, loc, wide, b.getStringAttr("w3"),
                                     StringAttr());
  auto bad = moe::LinearOp::create(b, loc, y, entry->getArgument(0), other);
  EXPECT_TRUE(failed(verify(bad)));
  EXPECT_EQ(messages,
            "'moe.linear' op expected weight shape [200, 300], got [200, 256]");
}

TEST_F(MoeDialectTest, WeightTypesCarryTheirQuantization) {
  auto block = moe::BlockFp8Attr::get(&ctx, 128, 128);
  Type f8 = Float8E4M3FNType::get(&ctx);
  Type bf16 = BFloat16Type::get(&ctx);
  EXPECT_TRUE(moe::isWeightType(RankedTensorType::get({256, 512}, f8, block)));
  EXPECT_FALSE(moe::isWeightType(RankedTensorType::get({256, 512}, f8)));
  EXPECT_TRUE(moe::isWeightType(RankedTensorType::get({256, 512}, bf16)));
  EXPECT_TRUE(moe::isUnquantizedWeightType(RankedTensorType::get({8}, bf16)));
  EXPECT_FALSE(
      moe::isUnquantizedWeightType(RankedTensorType::get({256, 512}, f8, block)));
  EXPECT_FALSE(moe::isWeightType(
      RankedTensorType::get({ShapedType::kDynamic, 512}, bf16)));
  EXPECT_FALSE(moe::getBlockFp8(RankedTensorType::get({8}, bf16)));

  std::string printed;
  llvm::raw_string_ostream os(printed);
  os << Type(RankedTensorType::get({256, 512}, f8, block));
  EXPECT_EQ(printed, "tensor<256x512xf8E4M3FN, #moe.block_fp8<128, 128>>");

  // The encoding verifies where it is used.
  EXPECT_EQ(parseErrors(R"mlir(
func.func @f(%w: tensor<8x8xbf16, #moe.block_fp8<128, 128>>) {
  return
})mlir"),
            "expected f8E4M3FN elements for #moe.block_fp8, got 'bf16'");
}

TEST_F(MoeDialectTest, StepOpsNameTheirPlanStepKind) {
  auto kindOf = [&](StringRef opName) -> std::string {
    std::optional<RegisteredOperationName> name =
        RegisteredOperationName::lookup(opName, &ctx);
    EXPECT_TRUE(name) << opName.str();
    if (!name || !name->hasInterface<moe::StepOpInterface>())
      return "";
    return name->getInterface<moe::StepOpInterface>()->getStepKind().str();
  };
  EXPECT_EQ(kindOf("moe.embedding"), "embedding");
  EXPECT_EQ(kindOf("moe.rms_norm"), "rms_norm");
  EXPECT_EQ(kindOf("moe.linear"), "linear");
  EXPECT_EQ(kindOf("moe.logits"), "linear");
  EXPECT_EQ(kindOf("moe.add"), "add");
  EXPECT_EQ(kindOf("moe.slice_columns"), "slice_columns");
  EXPECT_EQ(kindOf("moe.rope"), "rope");
  EXPECT_EQ(kindOf("moe.cache_store"), "cache_store");
  EXPECT_EQ(kindOf("moe.head_linear"), "head_linear");
  EXPECT_EQ(kindOf("moe.latent_attention"), "latent_attention");
  EXPECT_EQ(kindOf("moe.expanded_attention"), "expanded_attention");
  EXPECT_EQ(kindOf("moe.router"), "router");
  EXPECT_EQ(kindOf("moe.routed_experts"), "moe_experts");
  EXPECT_EQ(kindOf("moe.swiglu"), "swiglu_mlp");
  // Weights and the model-level ops are not plan steps.
  EXPECT_EQ(kindOf("moe.weight"), "");
  EXPECT_EQ(kindOf("moe.slice_heads"), "");
  EXPECT_EQ(kindOf("moe.convert_weight"), "");
  EXPECT_EQ(kindOf("moe.mla_attention"), "");
  EXPECT_EQ(kindOf("moe.moe_layer"), "");
  EXPECT_EQ(moe::LinearOp::getStepKind(), "linear");
}

TEST_F(MoeDialectTest, YarnFactors) {
  auto yarn = [&](double factor, double mscale, double mscaleAllDim) {
    return moe::YarnAttr::get(&ctx, llvm::APFloat(factor), 4096,
                              llvm::APFloat(32.0), llvm::APFloat(1.0),
                              llvm::APFloat(mscale), llvm::APFloat(mscaleAllDim));
  };
  // DeepSeek-V3: factor 40, mscale = mscale_all_dim = 1 (spec section 4).
  EXPECT_NEAR(yarn(40, 1, 1).getSoftmaxFactor(), 1.87385, 1e-5);
  EXPECT_DOUBLE_EQ(yarn(40, 1, 1).getAttentionFactor(), 1.0);
  // mscale 0.707: m^2 = 1.58963.
  EXPECT_NEAR(yarn(40, 0.707, 0.707).getSoftmaxFactor(), 1.58963, 1e-5);
  // An attention factor other than 1 when mscale != mscale_all_dim.
  double m1 = 0.1 * 1.0 * std::log(40.0) + 1.0;
  EXPECT_NEAR(yarn(40, 1.0, 0.0).getAttentionFactor(), m1, 1e-12);
  EXPECT_DOUBLE_EQ(yarn(40, 1.0, 0.0).getSoftmaxFactor(), 1.0);
}

TEST_F(MoeDialectTest, RouterGroupConstraints) {
  const char *tmpl = R"mlir(
func.func @r(%f: tensor<?x64xf32>) {
  %gate = moe.weight "gate" : tensor<16x64xbf16>
  %i, %w = moe.router %f, %gate {top_k = %K : i64, n_group = %G : i64, topk_group = %KG : i64,
      score_func = #moe.score_func<sigmoid>, group_score = #moe.group_score<top2_sum>,
      norm_topk_prob = true, routed_scaling_factor = 2.5 : f32}
      : (tensor<?x64xf32>, tensor<16x64xbf16>) -> (tensor<?x%Kxi32>, tensor<?x%Kxf32>)
  return
})mlir";
  auto instantiate = [&](int k, int g, int kg) {
    std::string s = tmpl;
    auto replace = [&](const std::string &from, int v) {
      for (size_t p; (p = s.find(from)) != std::string::npos;)
        s.replace(p, from.size(), std::to_string(v));
    };
    replace("%KG", kg);
    replace("%K", k);
    replace("%G", g);
    return s;
  };
  EXPECT_EQ(parseErrors(instantiate(4, 4, 2)), "");
  EXPECT_EQ(parseErrors(instantiate(8, 4, 2)), "");
  EXPECT_EQ(parseErrors(instantiate(9, 4, 2)),
            "'moe.router' op expected 1 <= top_k <= 8 experts in the kept "
            "groups, got 9");
  EXPECT_EQ(parseErrors(instantiate(4, 4, 5)),
            "'moe.router' op expected 1 <= topk_group <= n_group (4), got 5");
  EXPECT_EQ(parseErrors(instantiate(2, 3, 1)),
            "'moe.router' op expected n_group to divide the 16 experts, got "
            "n_group = 3");
}

} // namespace
