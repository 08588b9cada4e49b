//===- ImportTest.cpp - checkpoint import and the moe-compile pipeline ----===//
//
// Imports synthetic checkpoints, checks the module the frontend writes (types,
// metadata, the router bias conversion, one moe.moe_layer per MoE layer) and
// that moe-compile lowers it to step-level ops only, named as plan steps.
//
//===----------------------------------------------------------------------===//

#include "moec/Dialect/Moe/IR/MoeDialect.h"
#include "moec/InitAll.h"
#include "moec/Transforms/Pipelines.h"
#include "moec/checkpoint/Checkpoint.h"
#include "moec/checkpoint/Import.h"
#include "moec/checkpoint/SafetensorsWriter.h"
#include "moec/checkpoint/Synthetic.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cstring>
#include <gtest/gtest.h>

using namespace mlir;
using namespace moec::checkpoint;

namespace {

/// A fresh directory, removed with its contents at the end of the test.
class ScratchDir {
public:
  ScratchDir() {
    EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("moec-import", path));
  }
  ~ScratchDir() { llvm::sys::fs::remove_directories(path); }
  std::string sub(llvm::StringRef name) const {
    llvm::SmallString<128> p(path);
    llvm::sys::path::append(p, name);
    return std::string(p);
  }

private:
  llvm::SmallString<128> path;
};

class ImportTest : public ::testing::Test {
protected:
  ImportTest() {
    DialectRegistry registry;
    moec::registerAllDialects(registry);
    ctx.appendDialectRegistry(registry);
    ctx.loadAllAvailableDialects();
    moec::registerAllPasses();
  }

  /// Writes preset `preset` into `dir` and opens it.
  std::unique_ptr<Checkpoint> synth(llvm::StringRef preset, llvm::StringRef dir,
                                    bool fp8 = false) {
    SynthOptions o;
    o.Fp8 = fp8;
    if (llvm::Error e = writeSyntheticCheckpoint(preset, dir, o)) {
      ADD_FAILURE() << llvm::toString(std::move(e));
      return nullptr;
    }
    auto ckpt = Checkpoint::open(dir);
    if (!ckpt) {
      ADD_FAILURE() << llvm::toString(ckpt.takeError());
      return nullptr;
    }
    return std::move(*ckpt);
  }

  OwningOpRef<ModuleOp> import(const Checkpoint &ckpt) {
    auto module = importCheckpoint(ctx, ckpt);
    if (!module) {
      ADD_FAILURE() << llvm::toString(module.takeError());
      return {};
    }
    return std::move(*module);
  }

  MLIRContext ctx;
};

TEST_F(ImportTest, ModuleCarriesTheConfigAndSource) {
  ScratchDir dir;
  auto ckpt = synth("tiny-v3", dir.sub("tiny"));
  ASSERT_TRUE(ckpt);
  OwningOpRef<ModuleOp> module = import(*ckpt);
  ASSERT_TRUE(module);
  const ModelConfig &cfg = ckpt->config();

  auto source = (*module)->getAttrOfType<StringAttr>(moe::kSourceAttrName);
  ASSERT_TRUE(source);
  EXPECT_EQ(source.getValue(), ckpt->directory());

  auto config =
      (*module)->getAttrOfType<DictionaryAttr>(moe::kModelConfigAttrName);
  ASSERT_TRUE(config);
  auto i64 = [&](llvm::StringRef key) -> int64_t {
    auto a = config.getAs<IntegerAttr>(key);
    EXPECT_TRUE(a) << key.str();
    return a ? a.getInt() : -1;
  };
  auto f64 = [&](llvm::StringRef key) -> double {
    auto a = config.getAs<FloatAttr>(key);
    EXPECT_TRUE(a) << key.str();
    return a ? a.getValueAsDouble() : -1;
  };
  EXPECT_EQ(config.getAs<StringAttr>("architecture").getValue(),
            "DeepseekV3ForCausalLM");
  EXPECT_EQ(i64("vocab_size"), cfg.VocabSize);
  EXPECT_EQ(i64("hidden_size"), cfg.HiddenSize);
  EXPECT_EQ(i64("intermediate_size"), cfg.IntermediateSize);
  EXPECT_EQ(i64("moe_intermediate_size"), cfg.MoeIntermediateSize);
  EXPECT_EQ(i64("num_hidden_layers"), cfg.NumHiddenLayers);
  EXPECT_EQ(i64("first_k_dense_replace"), cfg.FirstKDenseReplace);
  EXPECT_EQ(i64("num_attention_heads"), cfg.NumAttentionHeads);
  EXPECT_EQ(i64("qk_nope_head_dim"), cfg.QkNopeHeadDim);
  EXPECT_EQ(i64("qk_rope_head_dim"), cfg.QkRopeHeadDim);
  EXPECT_EQ(i64("v_head_dim"), cfg.VHeadDim);
  EXPECT_EQ(i64("kv_lora_rank"), cfg.KvLoraRank);
  EXPECT_EQ(i64("q_lora_rank"), cfg.QLoraRank.value_or(0));
  EXPECT_EQ(i64("n_routed_experts"), cfg.NumRoutedExperts);
  EXPECT_EQ(i64("n_shared_experts"), cfg.NumSharedExperts);
  EXPECT_EQ(i64("num_experts_per_tok"), cfg.NumExpertsPerTok);
  EXPECT_EQ(i64("n_group"), cfg.NumGroups);
  EXPECT_EQ(i64("topk_group"), cfg.TopkGroup);
  EXPECT_EQ(config.getAs<moe::ScoreFuncAttr>("scoring_func").getValue(),
            moe::ScoreFunc::sigmoid);
  EXPECT_EQ(config.getAs<moe::GroupScoreAttr>("group_score").getValue(),
            moe::GroupScore::top2_sum);
  EXPECT_EQ(config.getAs<BoolAttr>("norm_topk_prob").getValue(),
            cfg.NormTopkProb);
  EXPECT_DOUBLE_EQ(f64("routed_scaling_factor"), cfg.RoutedScalingFactor);
  EXPECT_DOUBLE_EQ(f64("rms_norm_eps"), cfg.RmsNormEps);
  EXPECT_DOUBLE_EQ(f64("rope_theta"), cfg.RopeTheta);
  EXPECT_DOUBLE_EQ(f64("softmax_scale"), cfg.softmaxScale());
  ASSERT_TRUE(cfg.RopeScaling);
  auto yarn = config.getAs<moe::YarnAttr>("rope_yarn");
  ASSERT_TRUE(yarn);
  EXPECT_DOUBLE_EQ(yarn.getFactor().convertToDouble(), cfg.RopeScaling->Factor);
  // The softmax scale is (nope + rope)^-0.5 times YaRN's m^2.
  EXPECT_NEAR(yarn.getSoftmaxFactor(), cfg.yarnSoftmaxFactor(), 1e-12);
}

TEST_F(ImportTest, Fp8WeightsCarryTheirBlocksInTheType) {
  ScratchDir dir;
  auto ckpt = synth("tiny-v3", dir.sub("tiny-fp8"), /*fp8=*/true);
  ASSERT_TRUE(ckpt);
  OwningOpRef<ModuleOp> module = import(*ckpt);
  ASSERT_TRUE(module);
  int quantized = 0;
  module->walk([&](moe::WeightOp w) {
    moe::BlockFp8Attr block = moe::getBlockFp8(w.getType());
    bool fp8 = isa<Float8E4M3FNType>(w.getType().getElementType());
    EXPECT_EQ(static_cast<bool>(block), fp8) << w.getName().str();
    if (!block)
      return;
    ++quantized;
    EXPECT_EQ(block.getRows(), 128);
    EXPECT_EQ(block.getCols(), 128);
    ASSERT_TRUE(w.getScaleName());
    EXPECT_EQ(*w.getScaleName(), (w.getName() + "_scale_inv").str());
  });
  EXPECT_GT(quantized, 0);
}

TEST_F(ImportTest, NonF32CorrectionBiasIsConverted) {
  // tiny-v3 stores its correction bias in f32; rewrite it as bf16.
  ScratchDir dir;
  auto f32 = synth("tiny-v3", dir.sub("f32"));
  ASSERT_TRUE(f32);
  std::string bf16Dir = dir.sub("bf16");
  ASSERT_FALSE(llvm::sys::fs::create_directories(bf16Dir));
  std::vector<TensorToWrite> tensors;
  std::vector<std::vector<uint8_t>> converted;
  for (const TensorInfo *t : f32->tensors()) {
    TensorToWrite out{t->Name, t->Type, t->Shape, t->bytes()};
    if (llvm::StringRef(t->Name).ends_with("e_score_correction_bias")) {
      EXPECT_EQ(t->Type, DType::F32);
      std::vector<uint8_t> &bytes = converted.emplace_back();
      for (int64_t i = 0; i < t->numElements(); ++i) {
        uint32_t bits;
        std::memcpy(&bits, t->Data + 4 * i, 4);
        uint16_t top = static_cast<uint16_t>(bits >> 16); // truncating to bf16
        bytes.push_back(static_cast<uint8_t>(top & 0xff));
        bytes.push_back(static_cast<uint8_t>(top >> 8));
      }
      out.Type = DType::BF16;
      out.Bytes = bytes;
    }
    tensors.push_back(out);
  }
  ASSERT_FALSE(static_cast<bool>(writeCheckpointTensors(bf16Dir, tensors)));
  llvm::SmallString<128> from(f32->directory()), to(bf16Dir);
  llvm::sys::path::append(from, "config.json");
  llvm::sys::path::append(to, "config.json");
  ASSERT_FALSE(llvm::sys::fs::copy_file(from, to));

  auto ckpt = Checkpoint::open(bf16Dir);
  ASSERT_TRUE(static_cast<bool>(ckpt)) << llvm::toString(ckpt.takeError());
  OwningOpRef<ModuleOp> module = import(**ckpt);
  ASSERT_TRUE(module);
  int layers = 0;
  module->walk([&](moe::MoeLayerOp layer) {
    ++layers;
    ASSERT_TRUE(layer.getBias());
    auto convert = layer.getBias().getDefiningOp<moe::ConvertWeightOp>();
    ASSERT_TRUE(convert);
    EXPECT_TRUE(convert.getType().getElementType().isF32());
    auto weight = convert.getWeight().getDefiningOp<moe::WeightOp>();
    ASSERT_TRUE(weight);
    EXPECT_TRUE(weight.getType().getElementType().isBF16());
  });
  EXPECT_EQ(layers, (*ckpt)->config().NumHiddenLayers -
                        (*ckpt)->config().FirstKDenseReplace);

  // ... while an f32 bias goes to the router unchanged.
  OwningOpRef<ModuleOp> plain = import(*f32);
  ASSERT_TRUE(plain);
  plain->walk([&](moe::MoeLayerOp layer) {
    EXPECT_TRUE(layer.getBias().getDefiningOp<moe::WeightOp>());
  });
}

/// The NameLoc name of `op`'s location ("" when unnamed).
std::string stepName(Operation *op) {
  auto named = dyn_cast<NameLoc>(op->getLoc());
  return named ? named.getName().str() : "";
}

TEST_F(ImportTest, MoeLayerIsOneModelLevelOpLoweredToTheSameNamedSteps) {
  ScratchDir dir;
  for (llvm::StringRef preset : {"tiny-v3", "tiny-v2"}) {
    auto ckpt = synth(preset, dir.sub(preset));
    ASSERT_TRUE(ckpt);
    const ModelConfig &cfg = ckpt->config();
    OwningOpRef<ModuleOp> module = import(*ckpt);
    ASSERT_TRUE(module);

    // The importer writes one moe.moe_layer per MoE layer, named after the
    // checkpoint's mlp module, and no router or expert steps.
    std::vector<std::string> layers;
    module->walk([&](Operation *op) {
      EXPECT_FALSE((isa<moe::RouterOp, moe::RoutedExpertsOp>(op)))
          << preset.str() << ": " << stepName(op);
      auto layer = dyn_cast<moe::MoeLayerOp>(op);
      if (!layer)
        return;
      layers.push_back(stepName(op));
      EXPECT_EQ(static_cast<int64_t>(layer.getGateWeights().size()),
                cfg.NumRoutedExperts);
      EXPECT_EQ(layer.getTopK(), cfg.NumExpertsPerTok);
      EXPECT_EQ(static_cast<bool>(layer.getBias()), cfg.hasCorrectionBias());
      EXPECT_EQ(static_cast<bool>(layer.getSharedGate()),
                cfg.NumSharedExperts > 0);
    });
    std::vector<std::string> expected;
    for (int64_t l = cfg.FirstKDenseReplace; l < cfg.NumHiddenLayers; ++l)
      expected.push_back("model.layers." + std::to_string(l) + ".mlp");
    EXPECT_EQ(layers, expected) << preset.str();

    // moe-decompose-moe (in moe-compile) names the steps as the importer
    // named them before the op existed: the plan's step names.
    PassManager pm(&ctx);
    moe::buildCompilePipeline(pm, moe::MoeCompilePipelineOptions());
    ASSERT_TRUE(succeeded(pm.run(*module)));
    auto prefill = module->lookupSymbol<func::FuncOp>("prefill");
    ASSERT_TRUE(prefill);
    std::vector<std::string> steps;
    prefill.walk([&](Operation *op) {
      bool moeStep = isa<moe::RouterOp, moe::RoutedExpertsOp, moe::SwigluOp,
                         moe::FusedRoutedExpertsOp, moe::FusedSwigluOp, moe::AddOp,
                         moe::AddRmsNormOp>(op);
      if (moeStep &&
          llvm::StringRef(stepName(op)).starts_with("model.layers.1.mlp"))
        steps.push_back(stepName(op));
    });
    std::vector<std::string> want = {
        "model.layers.1.mlp.gate", "model.layers.1.mlp.experts",
        "model.layers.1.mlp.shared_experts",
        "model.layers.1.mlp.routed_plus_shared", "model.layers.1.mlp_residual"};
    EXPECT_EQ(steps, want) << preset.str();
  }
}

/// Runs moe-compile with `options` on an imported preset and checks that only
/// step-level ops, weights and func ops are left, in @prefill and @decode.
void expectStepLevel(ModuleOp module, const moe::MoeCompilePipelineOptions &options,
                     int64_t layers) {
  PassManager pm(module->getContext());
  moe::buildCompilePipeline(pm, options);
  ASSERT_TRUE(succeeded(pm.run(module)));
  ASSERT_TRUE(succeeded(verify(module)));
  EXPECT_FALSE(module.lookupSymbol("forward"));
  for (llvm::StringRef phase : {"prefill", "decode"}) {
    auto fn = module.lookupSymbol<func::FuncOp>(phase);
    ASSERT_TRUE(fn) << phase.str();
    moe::AttentionForm form = phase == "prefill" ? options.prefillMlaForm
                                                 : options.decodeMlaForm;
    // form=auto: the cost model gives @prefill the naive form (tiny models have
    // a threshold well under 16k tokens) and @decode the absorbed one.
    if (form == moe::AttentionForm::automatic)
      form = phase == "prefill" ? moe::AttentionForm::naive : moe::AttentionForm::absorbed;
    int64_t latent = 0, expanded = 0;
    fn.walk([&](Operation *op) {
      if (isa<func::FuncOp, func::ReturnOp, moe::WeightOp, moe::SliceHeadsOp,
              moe::ConvertWeightOp, moe::QuantizeWeightOp, moe::ConcatWeightsOp>(op))
        return;
      EXPECT_TRUE(isa<moe::StepOpInterface>(op))
          << phase.str() << ": " << op->getName().getStringRef().str();
      latent += isa<moe::LatentAttentionOp>(op);
      expanded += isa<moe::ExpandedAttentionOp>(op);
    });
    EXPECT_EQ(latent, form == moe::AttentionForm::absorbed ? layers : 0);
    EXPECT_EQ(expanded, form == moe::AttentionForm::naive ? layers : 0);
  }
}

TEST_F(ImportTest, CompilePipelineLeavesOnlyStepOps) {
  ScratchDir dir;
  for (llvm::StringRef preset : {"tiny-v3", "tiny-v2"}) {
    auto ckpt = synth(preset, dir.sub(preset), /*fp8=*/preset == "tiny-v3");
    ASSERT_TRUE(ckpt);
    OwningOpRef<ModuleOp> module = import(*ckpt);
    ASSERT_TRUE(module);
    moe::MoeCompilePipelineOptions options;
    options.prefillMlaForm = moe::AttentionForm::naive;
    options.decodeMlaForm = moe::AttentionForm::absorbed;
    expectStepLevel(*module, options, ckpt->config().NumHiddenLayers);
    // The default, auto, chooses the same per phase and records the threshold.
    OwningOpRef<ModuleOp> again = import(*ckpt);
    ASSERT_TRUE(again);
    expectStepLevel(*again, moe::MoeCompilePipelineOptions(), ckpt->config().NumHiddenLayers);
    auto threshold = (*again)->getAttrOfType<IntegerAttr>(moe::kPrefillMinTokensAttr);
    ASSERT_TRUE(threshold);
    EXPECT_GT(threshold.getInt(), 1);
    EXPECT_LE(threshold.getInt(), 1024);
  }
}

} // namespace
