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

/// A weight value and, for FP8, its block scale.
struct WeightRef {
  Value weight;
  Value scale; ///< null unless FP8
};

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

  /// A moe.weight for checkpoint tensor `name` (with its scale when FP8).
  llvm::Expected<WeightRef> weight(const std::string &name);

  /// Records the first error and returns a null ref, so builders stay flat.
  WeightRef w(const std::string &name) {
    if (error)
      return {};
    llvm::Expected<WeightRef> r = weight(name);
    if (!r) {
      error = r.takeError();
      return {};
    }
    return *r;
  }

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

llvm::Expected<WeightRef> Importer::weight(const std::string &name) {
  const TensorInfo *t = ckpt.lookup(name);
  if (!t)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(), "%s: tensor '%s': missing",
        ckpt.tensorSourcePath().str().c_str(), name.c_str());
  auto type = RankedTensorType::get(t->Shape, elementType(t->Type));
  Location opLoc = loc;
  loc = named(name);
  auto restore = llvm::make_scope_exit([&] { loc = opLoc; });
  if (t->Type != DType::F8_E4M3)
    return WeightRef{moe::WeightOp::create(b, loc, TypeRange{type},
                                           b.getStringAttr(name), StringAttr(),
                                           moe::BlockScaleLayoutAttr())
                         .getWeight(),
                     Value()};
  std::string scaleName = name + "_scale_inv";
  const TensorInfo *s = ckpt.lookup(scaleName);
  if (!s)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(), "%s: tensor '%s': missing (FP8 weight '%s' needs it)",
        ckpt.tensorSourcePath().str().c_str(), scaleName.c_str(), name.c_str());
  int64_t br = cfg.Quantization ? cfg.Quantization->BlockRows : moe::kDefaultFp8Block;
  int64_t bc = cfg.Quantization ? cfg.Quantization->BlockCols : moe::kDefaultFp8Block;
  auto scaleType = RankedTensorType::get(s->Shape, b.getF32Type());
  auto op = moe::WeightOp::create(b, loc, TypeRange{type, scaleType},
                                  b.getStringAttr(name), b.getStringAttr(scaleName),
                                  moe::BlockScaleLayoutAttr::get(&ctx, br, bc));
  return WeightRef{op.getWeight(), op.getScale()};
}

Value Importer::rmsNorm(Value x, const std::string &weightName) {
  loc = named(weightName);
  WeightRef g = w(weightName);
  if (error)
    return x;
  return moe::RmsNormOp::create(b, loc, x.getType(), x, g.weight,
                                b.getF32FloatAttr(cfg.RmsNormEps));
}

std::pair<Value, Value> Importer::attention(Value x, int64_t layer, Value cache) {
  std::string p = formatv("model.layers.{0}.self_attn.", layer).str();
  loc = named(p);
  bool qLora = cfg.QLoraRank.has_value();
  WeightRef qa, qan, qb;
  if (qLora) {
    qa = w(p + "q_a_proj.weight");
    qan = w(p + "q_a_layernorm.weight");
    qb = w(p + "q_b_proj.weight");
  } else {
    qb = w(p + "q_proj.weight");
  }
  WeightRef kva = w(p + "kv_a_proj_with_mqa.weight");
  WeightRef kvan = w(p + "kv_a_layernorm.weight");
  WeightRef kvb = w(p + "kv_b_proj.weight");
  WeightRef o = w(p + "o_proj.weight");
  if (error)
    return {x, cache};

  moe::YarnAttr yarn;
  if (cfg.RopeScaling) {
    const YarnScaling &y = *cfg.RopeScaling;
    yarn = moe::YarnAttr::get(&ctx, llvm::APFloat(y.Factor),
                              y.OriginalMaxPositionEmbeddings,
                              llvm::APFloat(y.BetaFast), llvm::APFloat(y.BetaSlow),
                              llvm::APFloat(y.Mscale), llvm::APFloat(y.MscaleAllDim));
  }
  auto op = moe::MlaAttentionOp::create(
      b, loc, TypeRange{x.getType(), cache.getType()}, x, positions, seqIds, cache,
      qa.weight, qa.scale, qan.weight, qb.weight, qb.scale, kva.weight, kva.scale,
      kvan.weight, kvb.weight, kvb.scale, o.weight, o.scale,
      cfg.NumAttentionHeads, qLora ? *cfg.QLoraRank : 0, cfg.KvLoraRank,
      cfg.QkNopeHeadDim, cfg.QkRopeHeadDim, cfg.VHeadDim,
      llvm::APFloat(static_cast<float>(cfg.softmaxScale())),
      llvm::APFloat(static_cast<float>(cfg.RmsNormEps)),
      llvm::APFloat(static_cast<float>(cfg.RopeTheta)),
      moe::RopeLayout::interleaved, yarn, moe::AttentionForm::naive);
  return {op.getResult(), op.getNewCache()};
}

Value Importer::swiglu(Value x, const std::string &prefix) {
  loc = named(prefix);
  WeightRef g = w(prefix + "gate_proj.weight");
  WeightRef u = w(prefix + "up_proj.weight");
  WeightRef d = w(prefix + "down_proj.weight");
  if (error)
    return x;
  return moe::SwigluOp::create(b, loc, x.getType(), x, g.weight, g.scale, u.weight,
                               u.scale, d.weight, d.scale);
}

Value Importer::moe(Value x, int64_t layer) {
  std::string p = formatv("model.layers.{0}.mlp.", layer).str();
  loc = named(p + "gate");
  WeightRef gate = w(p + "gate.weight");
  WeightRef bias;
  if (cfg.hasCorrectionBias())
    bias = w(p + "gate.e_score_correction_bias");
  if (error)
    return x;
  int64_t k = cfg.NumExpertsPerTok;
  auto idxType = RankedTensorType::get({ShapedType::kDynamic, k}, b.getI32Type());
  bool groups = cfg.groupScore() != GroupScore::None;
  auto router = moe::RouterOp::create(
      b, loc, TypeRange{idxType, act(k)}, x, gate.weight, bias.weight, k,
      groups ? cfg.NumGroups : 1, groups ? cfg.TopkGroup : 1,
      cfg.Scoring == ScoringFunc::Sigmoid ? moe::ScoreFunc::sigmoid
                                          : moe::ScoreFunc::softmax,
      cfg.groupScore() == GroupScore::Top2Sum ? moe::GroupScore::top2_sum
                                              : moe::GroupScore::max,
      cfg.NormTopkProb,
      llvm::APFloat(static_cast<float>(cfg.RoutedScalingFactor)));

  SmallVector<Value> gates, ups, downs, gateScales, upScales, downScales;
  for (int64_t e = 0; e < cfg.NumRoutedExperts; ++e) {
    std::string ep = formatv("{0}experts.{1}.", p, e).str();
    WeightRef g = w(ep + "gate_proj.weight");
    WeightRef u = w(ep + "up_proj.weight");
    WeightRef d = w(ep + "down_proj.weight");
    if (error)
      return x;
    gates.push_back(g.weight);
    ups.push_back(u.weight);
    downs.push_back(d.weight);
    if (g.scale) gateScales.push_back(g.scale);
    if (u.scale) upScales.push_back(u.scale);
    if (d.scale) downScales.push_back(d.scale);
  }
  loc = named(p + "experts");
  Value routed = moe::RoutedExpertsOp::create(
      b, loc, x.getType(), x, router.getIndices(), router.getWeights(), gates, ups,
      downs, gateScales, upScales, downScales);
  if (cfg.NumSharedExperts == 0)
    return routed;
  Value shared = swiglu(x, p + "shared_experts.");
  loc = named(p + "routed_plus_shared");
  return moe::AddOp::create(b, loc, routed, shared);
}

llvm::Expected<OwningOpRef<ModuleOp>> Importer::run() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
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
  WeightRef table = w("model.embed_tokens.weight");
  if (error)
    return std::move(error);
  Value h = moe::EmbeddingOp::create(b, loc, act(cfg.HiddenSize), table.weight, tokens);

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
  WeightRef head = w("lm_head.weight");
  if (error)
    return std::move(error);
  Value logits =
      moe::LogitsOp::create(b, loc, act(cfg.VocabSize), n, head.weight);
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
