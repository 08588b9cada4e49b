//===- DialectTest.cpp - the moe dialect through its C++ API ---------------===//

#include "moec/Dialect/Moe/IR/MoeDialect.h"
#include "moec/InitAll.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

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
}

TEST_F(MoeDialectTest, BuiltLinearVerifiesAndRejectsWrongShape) {
  OpBuilder b(&ctx);
  Location loc = b.getUnknownLoc();
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  auto x = RankedTensorType::get({ShapedType::kDynamic, 300}, b.getF32Type());
  auto w8 = RankedTensorType::get({200, 300}, b.getType<Float8E4M3FNType>());
  auto scale = RankedTensorType::get({2, 3}, b.getF32Type());
  auto y = RankedTensorType::get({ShapedType::kDynamic, 200}, b.getF32Type());
  auto fn = func::FuncOp::create(b, loc, "f", b.getFunctionType({x}, {y}));
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  auto weight = moe::WeightOp::create(
      b, loc, TypeRange{w8, scale}, b.getStringAttr("w"), b.getStringAttr("w_s"),
      moe::BlockScaleLayoutAttr::get(&ctx, 128, 128));
  auto lin = moe::LinearOp::create(b, loc, y, entry->getArgument(0),
                                   weight.getWeight(), weight.getScale());
  func::ReturnOp::create(b, loc, lin.getResult());
  EXPECT_TRUE(succeeded(verify(*module)));

  // A scale of the wrong block count must be rejected with the exact reason.
  std::string messages;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
    messages += d.str();
    return success();
  });
  b.setInsertionPoint(lin);
  auto badScale = RankedTensorType::get({2, 2}, b.getF32Type());
  auto bad = moe::WeightOp::create(b, loc, TypeRange{w8, badScale},
                                   b.getStringAttr("w2"), b.getStringAttr("w2_s"),
                                   moe::BlockScaleLayoutAttr::get(&ctx, 128, 128));
  EXPECT_TRUE(failed(verify(bad)));
  EXPECT_EQ(messages, "'moe.weight' op expected scale shape [2, 3], got [2, 2]");
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
