//===- PlanEmitter.cpp - translate a moe module into a plan file ----------===//

#include "moec/Plan/PlanEmitter.h"

#include "moec/Dialect/Moe/IR/MoeDialect.h"
#include "moec/checkpoint/FloatFormats.h"
#include "moec/plan_writer/PlanSteps.h"
#include "moec/plan_writer/PlanWriter.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include "moec/runtime/Plan.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

using namespace mlir;
using llvm::formatv;

namespace moec {
namespace {

llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

plan::DType planType(checkpoint::DType t) {
  switch (t) {
  case checkpoint::DType::BF16: return plan::DType::BF16;
  case checkpoint::DType::F16: return plan::DType::F16;
  case checkpoint::DType::F32: return plan::DType::F32;
  case checkpoint::DType::F8_E4M3: return plan::DType::F8E4M3;
  }
  llvm_unreachable("unknown dtype");
}

/// Translates @forward op by op into PlanWriter calls.
class Emitter {
public:
  Emitter(const checkpoint::Checkpoint &ckpt, llvm::StringRef planPath,
          const PlanEmitOptions &options)
      : ckpt(ckpt), cfg(ckpt.config()), options(options) {
    std::filesystem::path p(planPath.str());
    planDir = std::filesystem::absolute(p).parent_path();
  }

  llvm::Error run(func::FuncOp fn);
  PlanWriter &writer() { return w; }
  uint64_t weightBytes = 0;
  /// External weights embedded anyway because their file offset is misaligned.
  uint64_t misalignedExternal = 0;

private:
  void fillModelConfig();

  /// The buffer of SSA value `v`, created on first use.
  int32_t buffer(Value v);
  /// A new scratch buffer of `width` fp32 columns.
  int32_t scratch(const std::string &name, int64_t width) {
    return w.addBuffer(name, plan::DType::F32, {-1, width});
  }
  /// The plan weight of checkpoint tensor `name`, added on first use.
  llvm::Expected<int32_t> tensor(llvm::StringRef name, bool forceF32 = false);
  /// The plan weight of a moe.weight result, with its block scale attached.
  llvm::Expected<int32_t> weight(Value v);

  llvm::Error emitMla(moe::MlaAttentionOp op);
  llvm::Error emitOp(Operation *op);

  const checkpoint::Checkpoint &ckpt;
  const checkpoint::ModelConfig &cfg;
  const PlanEmitOptions &options;
  std::filesystem::path planDir;
  PlanWriter w;
  llvm::DenseMap<Value, int32_t> buffers;
  llvm::StringMap<int32_t> weights;
  std::vector<std::vector<float>> converted; ///< f32 copies (bias) kept alive
  int32_t positions = -1, seqIds = -1;
  unsigned nextName = 0;
};

int32_t Emitter::buffer(Value v) {
  auto it = buffers.find(v);
  if (it != buffers.end())
    return it->second;
  auto type = cast<RankedTensorType>(v.getType());
  std::vector<int64_t> shape;
  for (int64_t d : type.getShape())
    shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
  plan::DType dt = type.getElementType().isInteger(32) ? plan::DType::I32
                                                       : plan::DType::F32;
  int32_t idx = w.addBuffer(formatv("v{0}", nextName++).str(), dt, shape);
  buffers[v] = idx;
  return idx;
}

llvm::Expected<int32_t> Emitter::tensor(llvm::StringRef name, bool forceF32) {
  auto it = weights.find(name);
  if (it != weights.end())
    return it->second;
  const checkpoint::TensorInfo *t = ckpt.lookup(name);
  if (!t)
    return makeError(formatv("{0}: tensor '{1}': missing",
                             ckpt.tensorSourcePath(), name));
  std::vector<int64_t> shape(t->Shape.begin(), t->Shape.end());
  int32_t idx;
  if (forceF32 && t->Type != checkpoint::DType::F32) {
    // The router's correction bias is kept in fp32 (spec section 5).
    std::vector<float> &f = converted.emplace_back(t->numElements());
    checkpoint::decodeToFloat(t->Type, t->Data, f.size(), f.data());
    idx = w.addWeightBorrowed(name.str(), plan::DType::F32, shape, f.data(),
                              f.size() * sizeof(float));
    weightBytes += f.size() * sizeof(float);
  } else if (options.weights == WeightPlacement::External &&
             t->FileOffset % dtypeSize(planType(t->Type)) == 0) {
    std::filesystem::path file =
        std::filesystem::absolute(std::filesystem::path(t->FilePath));
    std::string rel = std::filesystem::relative(file, planDir).string();
    idx = w.addWeightReference(name.str(), planType(t->Type), shape, rel,
                               t->FileOffset);
    w.plan().weights[idx]->size = t->ByteSize;
    weightBytes += t->ByteSize;
  } else {
    // Embedded, or external but misaligned for its element type (safetensors
    // does not align tensors; the runtime requires it): copy into the plan.
    if (options.weights == WeightPlacement::External)
      ++misalignedExternal;
    idx = w.addWeightBorrowed(name.str(), planType(t->Type), shape, t->Data,
                              t->ByteSize);
    weightBytes += t->ByteSize;
  }
  weights[name] = idx;
  return idx;
}

llvm::Expected<int32_t> Emitter::weight(Value v) {
  auto op = v.getDefiningOp<moe::WeightOp>();
  if (!op)
    return makeError("a weight operand is not a moe.weight (plans hold only "
                     "checkpoint tensors)");
  llvm::Expected<int32_t> idx = tensor(op.getName());
  if (!idx || !op.getScaleName())
    return idx;
  llvm::Expected<int32_t> scale = tensor(*op.getScaleName());
  if (!scale)
    return scale.takeError();
  w.setBlockScale(*idx, *scale);
  return idx;
}

void Emitter::fillModelConfig() {
  plan::ModelConfigT &m = w.model();
  m.architecture = cfg.architectureName().str();
  m.vocab_size = cfg.VocabSize;
  m.hidden_size = cfg.HiddenSize;
  m.intermediate_size = cfg.IntermediateSize;
  m.moe_intermediate_size = cfg.MoeIntermediateSize;
  m.num_hidden_layers = cfg.NumHiddenLayers;
  m.first_k_dense_replace = cfg.FirstKDenseReplace;
  m.num_attention_heads = cfg.NumAttentionHeads;
  m.qk_nope_head_dim = cfg.QkNopeHeadDim;
  m.qk_rope_head_dim = cfg.QkRopeHeadDim;
  m.v_head_dim = cfg.VHeadDim;
  m.kv_lora_rank = cfg.KvLoraRank;
  m.q_lora_rank = cfg.QLoraRank.value_or(0);
  m.n_routed_experts = cfg.NumRoutedExperts;
  m.n_shared_experts = cfg.NumSharedExperts;
  m.num_experts_per_tok = cfg.NumExpertsPerTok;
  bool groups = cfg.groupScore() != checkpoint::GroupScore::None;
  m.n_group = groups ? cfg.NumGroups : 1;
  m.topk_group = groups ? cfg.TopkGroup : 1;
  m.scoring_func = cfg.Scoring == checkpoint::ScoringFunc::Sigmoid
                       ? plan::ScoreFunc::Sigmoid
                       : plan::ScoreFunc::Softmax;
  m.group_score = cfg.groupScore() == checkpoint::GroupScore::Top2Sum
                      ? plan::GroupScore::Top2Sum
                      : plan::GroupScore::Max;
  m.norm_topk_prob = cfg.NormTopkProb;
  m.routed_scaling_factor = static_cast<float>(cfg.RoutedScalingFactor);
  m.rms_norm_eps = static_cast<float>(cfg.RmsNormEps);
  m.rope_theta = static_cast<float>(cfg.RopeTheta);
  m.softmax_scale = static_cast<float>(cfg.softmaxScale());
  if (cfg.RopeScaling) {
    auto y = std::make_unique<plan::YarnParamsT>();
    y->factor = static_cast<float>(cfg.RopeScaling->Factor);
    y->original_max_position_embeddings =
        cfg.RopeScaling->OriginalMaxPositionEmbeddings;
    y->beta_fast = static_cast<float>(cfg.RopeScaling->BetaFast);
    y->beta_slow = static_cast<float>(cfg.RopeScaling->BetaSlow);
    y->mscale = static_cast<float>(cfg.RopeScaling->Mscale);
    y->mscale_all_dim = static_cast<float>(cfg.RopeScaling->MscaleAllDim);
    // Spec section 4: mscale(factor, mscale) / mscale(factor, mscale_all_dim),
    // with mscale(f, m) = 0.1 * m * ln(f) + 1 (1 when f <= 1). It is 1.0 for
    // every released config, but not for every config.
    auto mscale = [](double f, double m) {
      return f <= 1.0 ? 1.0 : 0.1 * m * std::log(f) + 1.0;
    };
    y->attention_factor = static_cast<float>(
        mscale(cfg.RopeScaling->Factor, cfg.RopeScaling->Mscale) /
        mscale(cfg.RopeScaling->Factor, cfg.RopeScaling->MscaleAllDim));
    m.rope_yarn = std::move(y);
  }
  w.plan().max_tokens = options.maxTokens;
  auto prov = std::make_unique<plan::ProvenanceT>();
  prov->compiler_version = "moec 0.1.0";
  prov->pipeline = options.pipeline;
  prov->source_checkpoint = ckpt.directory().str();
  w.plan().provenance = std::move(prov);
}

/// A step's name: the op's NameLoc (the importer names ops after the
/// checkpoint module they come from, e.g. "model.layers.3.mlp.router"), else
/// the op name.
std::string stepName(Operation *op) {
  if (auto named = dyn_cast<NameLoc>(op->getLoc()))
    return named.getName().str();
  return op->getName().getStringRef().str();
}

llvm::Error Emitter::emitMla(moe::MlaAttentionOp op) {
  auto cacheArg = dyn_cast<BlockArgument>(op.getCache());
  if (!cacheArg || cacheArg.getArgNumber() < 3)
    return makeError("moe.mla_attention: the cache must be an argument of "
                     "@forward (one per layer)");
  int32_t layer = static_cast<int32_t>(cacheArg.getArgNumber() - 3);
  // The plan carries one model config that every attention step reads, so an
  // op whose attributes differ from it cannot be expressed.
  auto differs = [](float a, double b) {
    return std::fabs(a - b) > 1e-6 * std::max(1.0, std::fabs(b));
  };
  auto dim = [](uint64_t attr) { return static_cast<int64_t>(attr); };
  if (dim(op.getQkRopeHeadDim()) != cfg.QkRopeHeadDim ||
      dim(op.getQkNopeHeadDim()) != cfg.QkNopeHeadDim ||
      dim(op.getVHeadDim()) != cfg.VHeadDim ||
      dim(op.getKvLoraRank()) != cfg.KvLoraRank ||
      dim(op.getNumHeads()) != cfg.NumAttentionHeads ||
      dim(op.getQLoraRank()) != cfg.QLoraRank.value_or(0) ||
      differs(op.getSoftmaxScale().convertToFloat(), cfg.softmaxScale()) ||
      differs(op.getRopeTheta().convertToFloat(), cfg.RopeTheta) ||
      differs(op.getRmsNormEps().convertToFloat(), cfg.RmsNormEps) ||
      static_cast<bool>(op.getYarnAttr()) != cfg.RopeScaling.has_value())
    return makeError(formatv("{0}: layer {1}: moe.mla_attention attributes "
                             "differ from the model config",
                             ckpt.directory(), layer));
  if (op.getRopeLayout() != moe::RopeLayout::interleaved)
    return makeError(formatv("{0}: layer {1}: rope layout 'half' needs the rope "
                             "rows of q_b/kv_a permuted, which no pass does yet",
                             ckpt.directory(), layer));
  MlaWeights weights;
  for (auto [value, slot] :
       {std::pair<Value, int32_t *>{op.getQA(), &weights.qA},
        {op.getQANorm(), &weights.qANorm},
        {op.getQB(), &weights.qB},
        {op.getKvA(), &weights.kvA},
        {op.getKvANorm(), &weights.kvANorm},
        {op.getKvB(), &weights.kvB},
        {op.getOProj(), &weights.oProj}}) {
    if (!value)
      continue;
    llvm::Expected<int32_t> idx = weight(value);
    if (!idx)
      return idx.takeError();
    *slot = *idx;
  }
  MlaStepsConfig steps;
  steps.input = buffer(op.getInput());
  steps.positions = positions;
  steps.seqIds = seqIds;
  steps.output = buffer(op.getResult());
  steps.layer = layer;
  steps.absorbed = op.getForm() == moe::AttentionForm::absorbed;
  steps.prefix = formatv("model.layers.{0}.self_attn.", layer).str();
  addMlaSteps(w, weights, steps);
  return llvm::Error::success();
}

llvm::Error Emitter::emitOp(Operation *op) {
  auto one = [&](plan::StepKind kind, std::vector<Value> operands, Value result,
                 std::vector<Value> weightValues,
                 plan::StepAttrsUnion attrs = {}) -> llvm::Error {
    std::vector<int32_t> ins, ws;
    for (Value v : operands)
      ins.push_back(buffer(v));
    for (Value v : weightValues) {
      llvm::Expected<int32_t> idx = weight(v);
      if (!idx)
        return idx.takeError();
      ws.push_back(*idx);
    }
    w.addStep(kind, ins, {buffer(result)}, ws, std::move(attrs), stepName(op));
    return llvm::Error::success();
  };
  return llvm::TypeSwitch<Operation *, llvm::Error>(op)
      .Case([&](moe::WeightOp) { return llvm::Error::success(); })
      .Case([&](moe::EmbeddingOp e) {
        return one(plan::StepKind::Embedding, {e.getTokens()}, e.getResult(),
                   {e.getTable()});
      })
      .Case([&](moe::RmsNormOp n) {
        return one(plan::StepKind::RmsNorm, {n.getInput()}, n.getResult(),
                   {n.getWeight()}, rmsNormAttrs(n.getEpsilon().convertToFloat()));
      })
      .Case([&](moe::LinearOp l) {
        return one(plan::StepKind::Linear, {l.getInput()}, l.getResult(),
                   {l.getWeight()});
      })
      .Case([&](moe::LogitsOp l) {
        return one(plan::StepKind::Linear, {l.getInput()}, l.getResult(),
                   {l.getLmHead()});
      })
      .Case([&](moe::AddOp a) {
        return one(plan::StepKind::Add, {a.getLhs(), a.getRhs()}, a.getResult(), {});
      })
      .Case([&](moe::RopeOp r) -> llvm::Error {
        if (static_cast<int64_t>(r.getRopeDim()) != cfg.QkRopeHeadDim ||
            std::fabs(r.getTheta().convertToFloat() - cfg.RopeTheta) >
                1e-6 * cfg.RopeTheta ||
            static_cast<bool>(r.getYarnAttr()) != cfg.RopeScaling.has_value())
          return makeError(formatv("{0}: moe.rope: rope_dim, theta or yarn "
                                   "differ from the model config",
                                   ckpt.directory()));
        return one(plan::StepKind::Rope, {r.getInput(), r.getPositions()},
                   r.getResult(), {},
                   ropeAttrs(r.getHeads(), r.getHeadDim(), r.getOffset(),
                             r.getLayout() == moe::RopeLayout::half
                                 ? plan::RopeLayout::Half
                                 : plan::RopeLayout::Interleaved));
      })
      .Case([&](moe::MlaAttentionOp m) { return emitMla(m); })
      .Case([&](moe::RouterOp r) -> llvm::Error {
        std::vector<int32_t> ws;
        llvm::Expected<int32_t> gate = weight(r.getGate());
        if (!gate)
          return gate.takeError();
        ws.push_back(*gate);
        if (Value bias = r.getBias()) {
          auto def = bias.getDefiningOp<moe::WeightOp>();
          if (!def)
            return makeError("moe.router: the bias is not a moe.weight");
          llvm::Expected<int32_t> b = tensor(def.getName(), /*forceF32=*/true);
          if (!b)
            return b.takeError();
          ws.push_back(*b);
        }
        plan::RouterAttrsT a;
        a.experts = cast<RankedTensorType>(r.getGate().getType()).getDimSize(0);
        a.top_k = r.getTopK();
        a.groups = r.getNGroup();
        a.topk_groups = r.getTopkGroup();
        a.score_func = r.getScoreFunc() == moe::ScoreFunc::sigmoid
                           ? plan::ScoreFunc::Sigmoid
                           : plan::ScoreFunc::Softmax;
        a.group_score = r.getGroupScore() == moe::GroupScore::top2_sum
                            ? plan::GroupScore::Top2Sum
                            : plan::GroupScore::Max;
        a.norm_topk_prob = r.getNormTopkProb();
        a.routed_scaling_factor = r.getRoutedScalingFactor().convertToFloat();
        plan::StepAttrsUnion u;
        u.Set(std::move(a));
        w.addStep(plan::StepKind::Router, {buffer(r.getInput())},
                  {buffer(r.getIndices()), buffer(r.getWeights())}, ws,
                  std::move(u), stepName(r));
        return llvm::Error::success();
      })
      .Case([&](moe::RoutedExpertsOp r) -> llvm::Error {
        std::vector<int32_t> ws;
        size_t n = r.getGateWeights().size();
        for (size_t e = 0; e < n; ++e)
          for (Value v : {r.getGateWeights()[e], r.getUpWeights()[e],
                          r.getDownWeights()[e]}) {
            llvm::Expected<int32_t> idx = weight(v);
            if (!idx)
              return idx.takeError();
            ws.push_back(*idx);
          }
        plan::MoeAttrsT a;
        a.experts = static_cast<int64_t>(n);
        a.top_k = cast<RankedTensorType>(r.getIndices().getType()).getDimSize(1);
        plan::StepAttrsUnion u;
        u.Set(std::move(a));
        w.addStep(plan::StepKind::MoeExperts,
                  {buffer(r.getInput()), buffer(r.getIndices()),
                   buffer(r.getWeights())},
                  {buffer(r.getResult())}, ws, std::move(u), stepName(r));
        return llvm::Error::success();
      })
      .Case([&](moe::SwigluOp s) {
        return one(plan::StepKind::SwigluMlp, {s.getInput()}, s.getResult(),
                   {s.getGate(), s.getUp(), s.getDown()});
      })
      .Case([&](func::ReturnOp) { return llvm::Error::success(); })
      .Default([&](Operation *other) {
        return makeError(formatv("no plan step for '{0}'", other->getName()));
      });
}

llvm::Error Emitter::run(func::FuncOp fn) {
  fillModelConfig();
  Block &body = fn.getBody().front();
  int32_t tokens = buffer(body.getArgument(0));
  positions = buffer(body.getArgument(1));
  seqIds = buffer(body.getArgument(2));
  for (Operation &op : body)
    if (llvm::Error err = emitOp(&op))
      return err;
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  int32_t logits = buffer(ret.getOperand(0));
  w.addEntryPoint("forward", {tokens, positions, seqIds}, {logits}, 0,
                  w.numSteps());
  return llvm::Error::success();
}

} // namespace

llvm::Expected<PlanSummary> emitPlan(ModuleOp module,
                                     const checkpoint::Checkpoint &ckpt,
                                     llvm::StringRef planPath,
                                     const PlanEmitOptions &options) {
  auto fn = module.lookupSymbol<func::FuncOp>("forward");
  if (!fn)
    return makeError("the module has no @forward function");
  if (options.maxTokens < 1 || options.maxTokens > kMaxModelDim)
    return makeError(formatv("--max-tokens must be in 1..{0}, got {1}",
                             kMaxModelDim, options.maxTokens));
  Emitter e(ckpt, planPath, options);
  if (llvm::Error err = e.run(fn))
    return std::move(err);
  PlanWriter &w = e.writer();
  if (Status s = w.planArena(); !s.ok())
    return makeError(s.message());
  // The plan is written beside its destination, checked with the runtime's
  // own loader (one set of limits and rules), and only then renamed into
  // place, so a failed compile never replaces an existing plan.
  std::string staged = planPath.str() + ".moec-staged";
  if (Status s = w.write(staged, options.progress); !s.ok())
    return makeError(s.message());
  std::unique_ptr<Plan> loaded;
  Status check = Plan::load(staged, &loaded);
  loaded.reset();
  if (!check.ok()) {
    std::remove(staged.c_str());
    return makeError("internal error: the emitted plan fails verification: " +
                     check.message());
  }
  if (std::rename(staged.c_str(), planPath.str().c_str()) != 0) {
    std::string reason = std::strerror(errno);
    std::remove(staged.c_str());
    return makeError(planPath + ": cannot rename the finished plan into place: " +
                     reason);
  }
  const checkpoint::ModelConfig &cfg = ckpt.config();
  PlanSummary summary;
  summary.steps = w.plan().steps.size();
  summary.buffers = w.plan().buffers.size();
  summary.weights = w.plan().weights.size();
  summary.weightBytes = e.weightBytes;
  summary.embeddedAnyway = e.misalignedExternal;
  summary.arenaBytes = w.plan().arena_size;
  summary.kvBytesPerToken = static_cast<uint64_t>(cfg.NumHiddenLayers) *
                            (cfg.KvLoraRank + cfg.QkRopeHeadDim) * sizeof(float);
  return summary;
}

} // namespace moec
