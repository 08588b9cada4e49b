//===- Import.cpp - a checkpoint as a module in the moe dialect -----------===//

#include "moec/checkpoint/Import.h"

#include "moec/Dialect/Moe/IR/MoeDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using llvm::formatv;

namespace moec::checkpoint {
namespace {

/// Builds @forward op by op; each helper emits one block of spec section 6.
class Importer {
public:
  Importer(MLIRContext &ctx, const Checkpoint &ckpt)
      : ctx(ctx), ckpt(ckpt), cfg(ckpt.config()), b(&ctx),
        fileLoc(FileLineColLoc::get(&ctx, ckpt.directory(), 0, 0)), loc(fileLoc) {}

  llvm::Expected<OwningOpRef<ModuleOp>> run();

private:
  Type elementType(DType t) {
    switch (t) {
    case DType::BF16: return b.getBF16Type();
    case DType::F16: return b.getF16Type();
    case DType::F32: return b.getF32Type();
    case DType::F8_E4M3: return b.getType<Float8E4M3FNType>();
    }
    llvm_unreachable("unknown dtype");
  }

  /// A location naming the checkpoint module an op comes from, e.g.
  /// "model.layers.3.mlp.gate"; diagnostics and plan step names use it.
  Location named(llvm::StringRef module) {
    module.consume_back(".weight");
    module.consume_back(".");
    return NameLoc::get(b.getStringAttr(module), fileLoc);
  }

  /// [T, width] fp32 activation type.
  RankedTensorType act(int64_t width) {
    return RankedTensorType::get({ShapedType::kDynamic, width}, b.getF32Type());
  }

  /// A moe.weight for checkpoint tensor `name`; an FP8 weight's type carries
  /// its block quantization and the op names its scale tensor.
  llvm::Expected<Value> weight(const std::string &name);

  /// Records the first error and returns a null value, so builders stay flat.
  Value w(const std::string &name) {
    if (error)
      return {};
    llvm::Expected<Value> r = weight(name);
    if (!r) {
      error = r.takeError();
      return {};
    }
    return *r;
  }

  /// The module attribute moe.model_config: the config.json values of the
  /// plan's ModelConfig table.
  DictionaryAttr modelConfigAttr();

  /// The config's YaRN scaling as an attribute; null without YaRN.
  moe::YarnAttr yarnAttr();

  Value rmsNorm(Value x, const std::string &weightName);
  std::pair<Value, Value> attention(Value x, int64_t layer, Value cache);
  Value swiglu(Value x, const std::string &prefix);
  Value moe(Value x, int64_t layer);

  MLIRContext &ctx;
  const Checkpoint &ckpt;
  const ModelConfig &cfg;
  OpBuilder b;
  Location fileLoc;
  Location loc; ///< location of the ops being built; see named()
  Value positions, seqIds;
  llvm::Error error = llvm::Error::success();
};

llvm::Expected<Value> Importer::weight(const std::string &name) {
  const TensorInfo *t = ckpt.lookup(name);
  if (!t)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(), "%s: tensor '%s': missing",
        ckpt.tensorSourcePath().str().c_str(), name.c_str());
  Location opLoc = loc;
  loc = named(name);
  llvm::scope_exit restore([&] { loc = opLoc; });
  if (t->Type != DType::F8_E4M3) {
    auto type = RankedTensorType::get(t->Shape, elementType(t->Type));
    return moe::WeightOp::create(b, loc, type, b.getStringAttr(name),
                                 StringAttr())
        .getWeight();
  }
  std::string scaleName = name + "_scale_inv";
  if (!ckpt.lookup(scaleName))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(), "%s: tensor '%s': missing (FP8 weight '%s' needs it)",
        ckpt.tensorSourcePath().str().c_str(), scaleName.c_str(), name.c_str());
  int64_t br = cfg.Quantization ? cfg.Quantization->BlockRows : moe::kDefaultFp8Block;
  int64_t bc = cfg.Quantization ? cfg.Quantization->BlockCols : moe::kDefaultFp8Block;
  auto type = RankedTensorType::get(t->Shape, elementType(t->Type),
                                    moe::BlockFp8Attr::get(&ctx, br, bc));
  return moe::WeightOp::create(b, loc, type, b.getStringAttr(name),
                               b.getStringAttr(scaleName))
      .getWeight();
}

moe::YarnAttr Importer::yarnAttr() {
  if (!cfg.RopeScaling)
    return {};
  const YarnScaling &y = *cfg.RopeScaling;
  return moe::YarnAttr::get(&ctx, llvm::APFloat(y.Factor),
                            y.OriginalMaxPositionEmbeddings,
                            llvm::APFloat(y.BetaFast), llvm::APFloat(y.BetaSlow),
                            llvm::APFloat(y.Mscale), llvm::APFloat(y.MscaleAllDim));
}

DictionaryAttr Importer::modelConfigAttr() {
  bool groups = cfg.groupScore() != GroupScore::None;
  SmallVector<NamedAttribute> entries;
  auto add = [&](StringRef key, Attribute value) {
    entries.push_back(b.getNamedAttr(key, value));
  };
  auto i64 = [&](StringRef key, int64_t value) { add(key, b.getI64IntegerAttr(value)); };
  auto f64 = [&](StringRef key, double value) { add(key, b.getF64FloatAttr(value)); };
  add("architecture", b.getStringAttr(cfg.architectureName()));
  i64("vocab_size", cfg.VocabSize);
  i64("hidden_size", cfg.HiddenSize);
  i64("intermediate_size", cfg.IntermediateSize);
  i64("moe_intermediate_size", cfg.MoeIntermediateSize);
  i64("num_hidden_layers", cfg.NumHiddenLayers);
  i64("first_k_dense_replace", cfg.FirstKDenseReplace);
  i64("num_attention_heads", cfg.NumAttentionHeads);
  i64("qk_nope_head_dim", cfg.QkNopeHeadDim);
  i64("qk_rope_head_dim", cfg.QkRopeHeadDim);
  i64("v_head_dim", cfg.VHeadDim);
  i64("kv_lora_rank", cfg.KvLoraRank);
  i64("q_lora_rank", cfg.QLoraRank.value_or(0));
  i64("n_routed_experts", cfg.NumRoutedExperts);
  i64("n_shared_experts", cfg.NumSharedExperts);
  i64("num_experts_per_tok", cfg.NumExpertsPerTok);
  i64("n_group", groups ? cfg.NumGroups : 1);
  i64("topk_group", groups ? cfg.TopkGroup : 1);
  add("scoring_func", moe::ScoreFuncAttr::get(
                          &ctx, cfg.Scoring == ScoringFunc::Sigmoid
                                    ? moe::ScoreFunc::sigmoid
                                    : moe::ScoreFunc::softmax));
  add("group_score", moe::GroupScoreAttr::get(
                         &ctx, cfg.groupScore() == GroupScore::Top2Sum
                                   ? moe::GroupScore::top2_sum
                                   : moe::GroupScore::max));
  add("norm_topk_prob", b.getBoolAttr(cfg.NormTopkProb));
  f64("routed_scaling_factor", cfg.RoutedScalingFactor);
  f64("rms_norm_eps", cfg.RmsNormEps);
  f64("rope_theta", cfg.RopeTheta);
  if (moe::YarnAttr yarn = yarnAttr())
    add("rope_yarn", yarn);
  f64("softmax_scale", cfg.softmaxScale());
  return b.getDictionaryAttr(entries);
}

Value Importer::rmsNorm(Value x, const std::string &weightName) {
  loc = named(weightName);
  Value g = w(weightName);
  if (error)
    return x;
  return moe::RmsNormOp::create(b, loc, x.getType(), x, g,
                                b.getF32FloatAttr(cfg.RmsNormEps));
}

std::pair<Value, Value> Importer::attention(Value x, int64_t layer, Value cache) {
  std::string p = formatv("model.layers.{0}.self_attn.", layer).str();
  loc = named(p);
  bool qLora = cfg.QLoraRank.has_value();
  Value qa, qan, qb;
  if (qLora) {
    qa = w(p + "q_a_proj.weight");
    qan = w(p + "q_a_layernorm.weight");
    qb = w(p + "q_b_proj.weight");
  } else {
    qb = w(p + "q_proj.weight");
  }
  Value kva = w(p + "kv_a_proj_with_mqa.weight");
  Value kvan = w(p + "kv_a_layernorm.weight");
  Value kvb = w(p + "kv_b_proj.weight");
  Value o = w(p + "o_proj.weight");
  if (error)
    return {x, cache};

  auto op = moe::MlaAttentionOp::create(
      b, loc, TypeRange{x.getType(), cache.getType()}, x, positions, seqIds, cache,
      qa, qan, qb, kva, kvan, kvb, o, cfg.NumAttentionHeads,
      qLora ? *cfg.QLoraRank : 0, cfg.KvLoraRank, cfg.QkNopeHeadDim,
      cfg.QkRopeHeadDim, cfg.VHeadDim,
      llvm::APFloat(static_cast<float>(cfg.softmaxScale())),
      llvm::APFloat(static_cast<float>(cfg.RmsNormEps)),
      llvm::APFloat(static_cast<float>(cfg.RopeTheta)),
      moe::RopeLayout::interleaved, yarnAttr());
  return {op.getResult(), op.getNewCache()};
}

Value Importer::swiglu(Value x, const std::string &prefix) {
  loc = named(prefix);
  Value g = w(prefix + "gate_proj.weight");
  Value u = w(prefix + "up_proj.weight");
  Value d = w(prefix + "down_proj.weight");
  if (error)
    return x;
  return moe::SwigluOp::create(b, loc, x.getType(), x, g, u, d);
}

Value Importer::moe(Value x, int64_t layer) {
  std::string p = formatv("model.layers.{0}.mlp.", layer).str();
  loc = named(p);
  Value gate = w(p + "gate.weight");
  Value bias;
  if (cfg.hasCorrectionBias())
    bias = w(p + "gate.e_score_correction_bias");
  if (error)
    return x;
  // The router reads its correction bias in f32 (spec section 5).
  auto biasType = bias ? cast<RankedTensorType>(bias.getType()) : nullptr;
  if (biasType && !biasType.getElementType().isF32())
    bias = moe::ConvertWeightOp::create(
        b, named(p + "gate.e_score_correction_bias"),
        RankedTensorType::get(biasType.getShape(), b.getF32Type()), bias);

  SmallVector<Value> gates, ups, downs;
  for (int64_t e = 0; e < cfg.NumRoutedExperts; ++e) {
    std::string ep = formatv("{0}experts.{1}.", p, e).str();
    gates.push_back(w(ep + "gate_proj.weight"));
    ups.push_back(w(ep + "up_proj.weight"));
    downs.push_back(w(ep + "down_proj.weight"));
    if (error)
      return x;
  }
  Value sharedGate, sharedUp, sharedDown;
  if (cfg.NumSharedExperts > 0) {
    std::string sp = p + "shared_experts.";
    sharedGate = w(sp + "gate_proj.weight");
    sharedUp = w(sp + "up_proj.weight");
    sharedDown = w(sp + "down_proj.weight");
    if (error)
      return x;
  }

  // One model-level op named "model.layers.N.mlp"; moe-decompose-moe names
  // its steps after the modules (".gate", ".experts", ".shared_experts").
  bool groups = cfg.groupScore() != GroupScore::None;
  return moe::MoeLayerOp::create(
      b, loc, x.getType(), x, gate, bias, gates, ups, downs, sharedGate,
      sharedUp, sharedDown, cfg.NumExpertsPerTok, groups ? cfg.NumGroups : 1,
      groups ? cfg.TopkGroup : 1,
      cfg.Scoring == ScoringFunc::Sigmoid ? moe::ScoreFunc::sigmoid
                                          : moe::ScoreFunc::softmax,
      cfg.groupScore() == GroupScore::Top2Sum ? moe::GroupScore::top2_sum
                                              : moe::GroupScore::max,
      cfg.NormTopkProb,
      llvm::APFloat(static_cast<float>(cfg.RoutedScalingFactor)));
}

llvm::Expected<OwningOpRef<ModuleOp>> Importer::run() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  (*module)->setAttr(moe::kModelConfigAttrName, modelConfigAttr());
  (*module)->setAttr(moe::kSourceAttrName, b.getStringAttr(ckpt.directory()));
  b.setInsertionPointToEnd(module->getBody());

  auto ids = RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type());
  auto cacheType = moe::LatentCacheType::get(&ctx, cfg.KvLoraRank, cfg.QkRopeHeadDim);
  SmallVector<Type> inputs = {ids, ids, ids};
  SmallVector<Type> results = {act(cfg.VocabSize)};
  for (int64_t l = 0; l < cfg.NumHiddenLayers; ++l) {
    inputs.push_back(cacheType);
    results.push_back(cacheType);
  }
  auto fn = func::FuncOp::create(b, loc, ForwardFunctionName,
                                 b.getFunctionType(inputs, results));
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToEnd(entry);
  Value tokens = entry->getArgument(0);
  positions = entry->getArgument(1);
  seqIds = entry->getArgument(2);

  loc = named("model.embed_tokens");
  Value table = w("model.embed_tokens.weight");
  if (error)
    return std::move(error);
  Value h = moe::EmbeddingOp::create(b, loc, act(cfg.HiddenSize), table, tokens);

  SmallVector<Value> caches;
  for (int64_t l = 0; l < cfg.NumHiddenLayers; ++l) {
    std::string p = formatv("model.layers.{0}.", l).str();
    Value xn = rmsNorm(h, p + "input_layernorm.weight");
    auto [attn, cache] = attention(xn, l, entry->getArgument(3 + l));
    if (error)
      return std::move(error);
    caches.push_back(cache);
    loc = named(p + "attn_residual");
    h = moe::AddOp::create(b, loc, h, attn);
    Value f = rmsNorm(h, p + "post_attention_layernorm.weight");
    Value m = cfg.isMoeLayer(l) ? moe(f, l) : swiglu(f, p + "mlp.");
    if (error)
      return std::move(error);
    loc = named(p + "mlp_residual");
    h = moe::AddOp::create(b, loc, h, m);
  }
  Value n = rmsNorm(h, "model.norm.weight");
  loc = named("lm_head");
  Value head = w("lm_head.weight");
  if (error)
    return std::move(error);
  Value logits = moe::LogitsOp::create(b, loc, act(cfg.VocabSize), n, head);
  SmallVector<Value> rets = {logits};
  rets.append(caches.begin(), caches.end());
  loc = fileLoc;
  func::ReturnOp::create(b, loc, rets);

  // The importer relies on validateCheckpoint; the verifier catches the rest
  // (e.g. a shape the validator allowed but an op relation forbids).
  std::string messages;
  {
    ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
      if (!messages.empty())
        messages += "; ";
      if (auto named = dyn_cast<NameLoc>(d.getLocation()))
        messages += named.getName().str() + ": ";
      messages += d.str();
      return success();
    });
    if (failed(verify(*module)))
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "%s: the imported model does not verify: %s",
                                     ckpt.directory().str().c_str(),
                                     messages.c_str());
  }
  return std::move(module);
}

} // namespace

llvm::Expected<OwningOpRef<ModuleOp>> importCheckpoint(MLIRContext &ctx,
                                                       const Checkpoint &ckpt) {
  Importer importer(ctx, ckpt);
  return importer.run();
}

} // namespace moec::checkpoint
