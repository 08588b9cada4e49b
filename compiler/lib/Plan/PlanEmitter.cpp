//===- PlanEmitter.cpp - translate step-level moe IR into a plan file -----===//
//
// The emitter is a table from step-level op to plan step. Passes have already
// lowered every model-level op; anything without an entry is an error naming it.
// Weight-producing ops (`moe.weight`, and the derived `moe.slice_heads` and
// `moe.convert_weight`, `moe.quantize_weight`) are evaluated when a step uses them:
// a weight resolves through the WeightSource, a slice of heads becomes a strided
// view (no bytes), a conversion is computed here, and a quantized copy is
// computed while the plan's weights are written, block row by block row from the
// source's mapping (moec/cpu/quantize.h), never whole in memory. A derived weight
// is packed once, however many entry points use it.
//
//===----------------------------------------------------------------------===//

#include "moec/Plan/PlanEmitter.h"

#include "moec/Dialect/Moe/IR/MoeDialect.h"
#include "moec/cpu/kernels.h"
#include "moec/cpu/quantize.h"
#include "moec/plan_writer/PlanWriter.h"
#include "moec/runtime/Plan.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>

using namespace mlir;
using llvm::formatv;

namespace moec {
namespace {

llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// A step's name: the first NameLoc inside the op's location (passes name the
/// steps they create after the checkpoint module, e.g.
/// "model.layers.3.self_attn.q_a_proj"), else the op name.
std::string stepName(Operation *op) {
  std::string name;
  op->getLoc()->walk([&](Location loc) {
    if (auto named = dyn_cast<NameLoc>(loc)) {
      name = named.getName().str();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return name.empty() ? op->getName().getStringRef().str() : name;
}

std::vector<int64_t> planShape(ShapedType type) {
  std::vector<int64_t> shape;
  for (int64_t d : type.getShape())
    shape.push_back(ShapedType::isDynamic(d) ? -1 : d);
  return shape;
}

/// A plan weight as a step sees it: an index, and for a per-head slice the
/// strided view of that weight's rows.
struct WeightRef {
  int32_t index = -1;
  bool sliced = false; ///< from moe.slice_heads
  int64_t rowStride = 0, rowOffset = 0, rows = 0;
};

/// The two plan states that hold one layer's latent cache.
struct CacheStates {
  int32_t latent = -1;
  int32_t rope = -1;
};

class Emitter;
using EmitFn = std::function<llvm::Error(Emitter &, Operation *)>;

class Emitter {
public:
  Emitter(const WeightSource &source, llvm::StringRef planPath, const PlanEmitOptions &options)
      : source(source), options(options) {
    planDir = std::filesystem::absolute(std::filesystem::path(planPath.str())).parent_path();
  }

  llvm::Error run(ModuleOp module);
  PlanWriter &writer() { return w; }
  uint64_t weightBytes = 0;
  uint64_t misalignedExternal = 0;
  uint64_t kvBytesPerToken = 0;
  uint64_t quantized = 0, quantizedSourceBytes = 0;
  uint64_t stacked = 0, stackedBytes = 0; ///< moe.concat_weights written (codes + scales)
  double quantizeSeconds = 0; ///< wall time inside the quantizer while writing

  // Step emitters, one per step-level op (see table()).
  llvm::Error emit(moe::EmbeddingOp op);
  llvm::Error emit(moe::RmsNormOp op);
  llvm::Error emit(moe::LinearOp op);
  llvm::Error emit(moe::LogitsOp op);
  llvm::Error emit(moe::AddOp op);
  llvm::Error emit(moe::AddRmsNormOp op);
  llvm::Error emit(moe::SliceColumnsOp op);
  llvm::Error emit(moe::RopeOp op);
  llvm::Error emit(moe::CacheStoreOp op);
  llvm::Error emit(moe::HeadLinearOp op);
  llvm::Error emit(moe::LatentAttentionOp op);
  llvm::Error emit(moe::ExpandedAttentionOp op);
  llvm::Error emit(moe::RouterOp op);
  llvm::Error emit(moe::RoutedExpertsOp op);
  llvm::Error emit(moe::SwigluOp op);
  llvm::Error emit(moe::FusedRoutedExpertsOp op);
  llvm::Error emit(moe::FusedSwigluOp op);

private:
  void fillMetadata(ModuleOp module);
  llvm::Error emitFunction(func::FuncOp fn, uint32_t *firstStep, uint32_t *numSteps,
                           std::vector<int32_t> *inputs, std::vector<int32_t> *outputs,
                           int64_t *tokenBound);

  /// The buffer of SSA value `v`, created on first use.
  int32_t buffer(Value v);
  /// The plan weight that value `v` (a weight-producing op's result) evaluates to.
  llvm::Expected<WeightRef> weight(Value v);
  /// A weight that must not be a per-head view.
  llvm::Expected<int32_t> plainWeight(Value v, Operation *user);
  /// plainWeight of each of `values`, appended to `ws`.
  llvm::Error appendWeights(llvm::ArrayRef<Value> values, Operation *user,
                            std::vector<int32_t> &ws);
  /// The plan weight of source tensor `name`, added on first use.
  llvm::Expected<int32_t> sourceWeight(llvm::StringRef name);
  /// The FP8 codes (with their scale weight attached) of a moe.quantize_weight.
  llvm::Expected<int32_t> quantizedWeight(moe::QuantizeWeightOp op);
  /// The source of a quantization band: `in`'s values (bf16, f16, f32), or, for int8
  /// codes, an FP8 weight with its block scales (a requantization).
  llvm::Error bandSource(moe::WeightOp in, const SourceTensor &t, bool int8,
                         cpu::Fp8QuantizeBand &band);
  /// The stacked copy of a moe.concat_weights (with its stacked scales).
  llvm::Expected<int32_t> concatWeight(moe::ConcatWeightsOp op);
  /// The plan states of a latent-cache value.
  llvm::Expected<CacheStates> cache(Value v);

  llvm::Error step(Operation *op, plan::StepKind kind, std::vector<Value> operands,
                   std::vector<Value> results, std::vector<int32_t> weights,
                   plan::StepAttrsUnion attrs = {}, std::vector<int32_t> states = {});

  const WeightSource &source;
  const PlanEmitOptions &options;
  std::filesystem::path planDir;
  PlanWriter w;
  llvm::DenseMap<Value, int32_t> buffers;
  llvm::StringMap<int32_t> weights;              ///< source tensor name -> plan weight
  llvm::StringMap<int32_t> derivedWeights;      ///< derived weights by what they are
  llvm::DenseMap<Value, CacheStates> caches;     ///< latent-cache values -> states
  std::vector<CacheStates> layerStates;          ///< per cache argument of the entries
  std::vector<std::vector<uint8_t>> owned;       ///< bytes of derived weights
};

template <typename OpT> void addEntry(llvm::DenseMap<TypeID, EmitFn> &m) {
  m[TypeID::get<OpT>()] = [](Emitter &e, Operation *op) { return e.emit(cast<OpT>(op)); };
}

/// The table: step-level op -> its emitter.
const llvm::DenseMap<TypeID, EmitFn> &table() {
  static const llvm::DenseMap<TypeID, EmitFn> t = [] {
    llvm::DenseMap<TypeID, EmitFn> m;
    addEntry<moe::EmbeddingOp>(m);
    addEntry<moe::RmsNormOp>(m);
    addEntry<moe::LinearOp>(m);
    addEntry<moe::LogitsOp>(m);
    addEntry<moe::AddOp>(m);
    addEntry<moe::AddRmsNormOp>(m);
    addEntry<moe::SliceColumnsOp>(m);
    addEntry<moe::RopeOp>(m);
    addEntry<moe::CacheStoreOp>(m);
    addEntry<moe::HeadLinearOp>(m);
    addEntry<moe::LatentAttentionOp>(m);
    addEntry<moe::ExpandedAttentionOp>(m);
    addEntry<moe::RouterOp>(m);
    addEntry<moe::RoutedExpertsOp>(m);
    addEntry<moe::SwigluOp>(m);
    addEntry<moe::FusedRoutedExpertsOp>(m);
    addEntry<moe::FusedSwigluOp>(m);
    return m;
  }();
  return t;
}

/// The kernels' type of a bf16, f16 or f32 source tensor; false for any other.
bool floatWeightType(plan::DType dtype, cpu::WeightType *out) {
  switch (dtype) {
  case plan::DType::F32: *out = cpu::WeightType::F32; return true;
  case plan::DType::F16: *out = cpu::WeightType::F16; return true;
  case plan::DType::BF16: *out = cpu::WeightType::BF16; return true;
  default: return false;
  }
}

/// Ops that produce weights; they become plan weights when a step uses them.
bool isWeightOp(Operation *op) {
  return isa<moe::WeightOp, moe::SliceHeadsOp, moe::ConvertWeightOp,
             moe::QuantizeWeightOp, moe::ConcatWeightsOp>(op);
}

int32_t Emitter::buffer(Value v) {
  auto it = buffers.find(v);
  if (it != buffers.end())
    return it->second;
  auto type = cast<RankedTensorType>(v.getType());
  plan::DType dt = type.getElementType().isInteger(32) ? plan::DType::I32 : plan::DType::F32;
  // Named for people (memory plans, messages): an entry argument by its role, a
  // step's result by the step ("name#1" for a second result).
  std::string name;
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    static const char *const roles[] = {"tokens", "positions", "seq_ids"};
    name = arg.getArgNumber() < 3 ? roles[arg.getArgNumber()]
                                  : formatv("arg{0}", arg.getArgNumber()).str();
  } else {
    auto result = cast<OpResult>(v);
    name = stepName(result.getOwner());
    if (result.getResultNumber() > 0)
      name += formatv("#{0}", result.getResultNumber()).str();
  }
  int32_t idx = w.addBuffer(name, dt, planShape(type));
  buffers[v] = idx;
  return idx;
}

llvm::Expected<int32_t> Emitter::sourceWeight(llvm::StringRef name) {
  auto it = weights.find(name);
  if (it != weights.end())
    return it->second;
  const SourceTensor *t = source.lookup(name);
  if (!t)
    return makeError(formatv("{0}: tensor '{1}': missing", source.blame(name), name));
  int32_t idx;
  uint64_t elem = dtypeSize(t->dtype);
  if (options.weights == WeightPlacement::External && !t->file.empty() &&
      t->fileOffset % elem == 0) {
    std::string rel = std::filesystem::relative(t->file, planDir).string();
    idx = w.addWeightReference(name.str(), t->dtype, t->shape, rel, t->fileOffset);
    w.plan().weights[size_t(idx)]->size = t->bytes;
  } else {
    // Embedded, or external but misaligned for its element type (safetensors does
    // not align tensors; the runtime requires it): copy into the plan.
    if (options.weights == WeightPlacement::External)
      ++misalignedExternal;
    idx = w.addWeightBorrowed(name.str(), t->dtype, t->shape, t->data, t->bytes);
  }
  weightBytes += t->bytes;
  weights[name] = idx;
  return idx;
}

llvm::Expected<WeightRef> Emitter::weight(Value v) {
  Operation *def = v.getDefiningOp();
  if (auto op = dyn_cast_or_null<moe::WeightOp>(def)) {
    llvm::Expected<int32_t> idx = sourceWeight(op.getName());
    if (!idx)
      return idx.takeError();
    auto type = cast<RankedTensorType>(op.getWeight().getType());
    if (moe::ScaleBlock block = moe::getScaleBlock(type)) {
      if (!op.getScaleName())
        return makeError(formatv("{0}: block-quantized weight without a scale tensor",
                                 op.getName()));
      llvm::Expected<int32_t> scale = sourceWeight(*op.getScaleName());
      if (!scale)
        return scale.takeError();
      w.setBlockScale(*idx, *scale, {block.getRows(), block.getCols()});
    }
    WeightRef ref;
    ref.index = *idx;
    return ref;
  }
  if (auto op = dyn_cast_or_null<moe::SliceHeadsOp>(def)) {
    llvm::Expected<WeightRef> base = weight(op.getWeight());
    if (!base)
      return base.takeError();
    if (base->sliced)
      return makeError(formatv("{0}: a slice of a slice of heads has no plan form",
                               stepName(op)));
    auto baseType = cast<RankedTensorType>(op.getWeight().getType());
    WeightRef ref = *base;
    ref.sliced = true;
    ref.rowStride = baseType.getDimSize(0) / static_cast<int64_t>(op.getHeads());
    ref.rowOffset = static_cast<int64_t>(op.getOffset());
    ref.rows = static_cast<int64_t>(op.getSize());
    return ref;
  }
  if (auto op = dyn_cast_or_null<moe::QuantizeWeightOp>(def)) {
    llvm::Expected<int32_t> idx = quantizedWeight(op);
    if (!idx)
      return idx.takeError();
    WeightRef ref;
    ref.index = *idx;
    return ref;
  }
  if (auto op = dyn_cast_or_null<moe::ConcatWeightsOp>(def)) {
    llvm::Expected<int32_t> idx = concatWeight(op);
    if (!idx)
      return idx.takeError();
    WeightRef ref;
    ref.index = *idx;
    return ref;
  }
  if (auto op = dyn_cast_or_null<moe::ConvertWeightOp>(def)) {
    auto in = op.getWeight().getDefiningOp<moe::WeightOp>();
    auto outType = cast<RankedTensorType>(op.getResult().getType());
    if (!in || !outType.getElementType().isF32())
      return makeError(formatv("{0}: moe.convert_weight is evaluated only from a "
                               "moe.weight to f32",
                               stepName(op)));
    std::string key = ("convert " + in.getName()).str();
    if (auto found = derivedWeights.find(key); found != derivedWeights.end()) {
      WeightRef ref;
      ref.index = found->second;
      return ref;
    }
    const SourceTensor *t = source.lookup(in.getName());
    if (!t)
      return makeError(
          formatv("{0}: tensor '{1}': missing", source.blame(in.getName()), in.getName()));
    // Converted at compile time: the plan stores the f32 values.
    cpu::WeightType type;
    if (!floatWeightType(t->dtype, &type))
      return makeError(formatv("{0}: tensor '{1}': cannot convert {2} to f32",
                               source.blame(in.getName()), in.getName(),
                               dtypeName(t->dtype)));
    uint64_t n = t->bytes / dtypeSize(t->dtype);
    std::vector<uint8_t> &bytes = owned.emplace_back(n * sizeof(float));
    cpu::decodeToFloat(type, t->data, int64_t(n), reinterpret_cast<float *>(bytes.data()));
    int32_t idx = w.addWeightBorrowed(in.getName().str(), plan::DType::F32, t->shape,
                                      bytes.data(), bytes.size());
    weightBytes += bytes.size();
    derivedWeights[key] = idx;
    WeightRef ref;
    ref.index = idx;
    return ref;
  }
  return makeError("a weight operand is not produced by moe.weight, moe.slice_heads "
                   "or moe.convert_weight");
}

llvm::Error Emitter::bandSource(moe::WeightOp in, const SourceTensor &t, bool int8,
                                cpu::Fp8QuantizeBand &band) {
  llvm::StringRef name = in.getName();
  band.data = t.data;
  if (floatWeightType(t.dtype, &band.type))
    return llvm::Error::success();
  if (t.dtype != plan::DType::F8E4M3 || !int8)
    return makeError(formatv("{0}: tensor '{1}': cannot quantize {2} (bf16, f16 and f32 "
                             "weights are, and FP8 ones to int8)",
                             source.blame(name), name, dtypeName(t.dtype)));
  // An FP8 weight requantized to int8: dequantized with its own block scales first.
  auto inType = cast<RankedTensorType>(in.getWeight().getType());
  moe::ScaleBlock sourceBlock = moe::getScaleBlock(inType);
  if (!sourceBlock || !in.getScaleName())
    return makeError(formatv("{0}: tensor '{1}': an FP8 weight without block scales",
                             source.blame(name), name));
  llvm::StringRef scaleName = *in.getScaleName();
  const SourceTensor *s = source.lookup(scaleName);
  const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 0,
                cols = t.shape.size() == 2 ? t.shape[1] : 0;
  const int64_t gridRows = (rows + sourceBlock.getRows() - 1) / sourceBlock.getRows(),
                gridCols = (cols + sourceBlock.getCols() - 1) / sourceBlock.getCols();
  if (!s || s->dtype != plan::DType::F32 ||
      s->shape != std::vector<int64_t>{gridRows, gridCols})
    return makeError(formatv("{0}: tensor '{1}': missing, not f32, or not the {2}x{3} scales "
                             "of '{4}'",
                             source.blame(scaleName), scaleName, gridRows, gridCols, name));
  band.type = cpu::WeightType::F8E4M3;
  band.sourceScales = reinterpret_cast<const float *>(s->data);
  band.sourceBlockRows = sourceBlock.getRows();
  band.sourceBlockCols = sourceBlock.getCols();
  return llvm::Error::success();
}

llvm::Expected<int32_t> Emitter::quantizedWeight(moe::QuantizeWeightOp op) {
  auto in = op.getWeight().getDefiningOp<moe::WeightOp>();
  if (!in)
    return makeError(formatv("{0}: moe.quantize_weight is evaluated only from a moe.weight",
                             stepName(op)));
  auto outType = cast<RankedTensorType>(op.getResult().getType());
  moe::ScaleBlock block = moe::getScaleBlock(outType);
  const bool ue8m0 = op.getScale() == moe::Fp8ScaleFormat::ue8m0;
  std::string key = formatv("quantize {0} {1}x{2} {3}{4}", in.getName(), block.getRows(),
                            block.getCols(), ue8m0 ? "ue8m0" : "float",
                            block.int8 ? " int8" : "")
                        .str();
  if (auto found = derivedWeights.find(key); found != derivedWeights.end())
    return found->second;
  if (block.getRows() != block.getCols())
    return makeError(formatv("{0}: '{1}': the quantizer makes square blocks, got {2}x{3}",
                             stepName(op), in.getName(), block.getRows(), block.getCols()));
  llvm::StringRef name = in.getName();
  const SourceTensor *t = source.lookup(name);
  if (!t)
    return makeError(formatv("{0}: tensor '{1}': missing", source.blame(name), name));
  if (t->shape.size() != 2 || t->shape[0] != outType.getDimSize(0) ||
      t->shape[1] != outType.getDimSize(1))
    return makeError(formatv("{0}: tensor '{1}': its shape does not match the IR's {2}",
                             source.blame(name), name, outType));
  const int64_t rows = t->shape[0], cols = t->shape[1], B = block.getRows();
  const int64_t gridRows = (rows + B - 1) / B, gridCols = (cols + B - 1) / B;
  cpu::Fp8QuantizeBand band;
  if (llvm::Error e = bandSource(in, *t, block.int8, band))
    return std::move(e);
  band.rows = rows;
  band.cols = cols;
  band.block = B;
  band.format = ue8m0 ? cpu::Fp8ScaleFormat::Ue8m0 : cpu::Fp8ScaleFormat::Float;
  band.code = block.int8 ? cpu::WeightType::I8 : cpu::WeightType::F8E4M3;
  const plan::DType codeType = block.int8 ? plan::DType::I8 : plan::DType::F8E4M3;
  std::string blame = source.blame(name);
  std::string tensor = name.str();
  // The scales the codes' pieces computed, for the scale weight written right
  // after the codes (one weight's scales at a time; recomputed when absent, as
  // when a pipe makes the writer hash first).
  auto computed = std::make_shared<std::vector<float>>();
  auto computedRows = std::make_shared<int64_t>(0);
  double *seconds = &quantizeSeconds;
  // Rows [r0, r1) of the weight into codes and/or scales; a clear error on a NaN or
  // an infinity, which no scale can represent.
  auto quantizeRows = [=](int64_t r0, int64_t r1, uint8_t *codes, float *scales) -> Status {
    cpu::Fp8QuantizeBand b = band;
    b.rowBegin = r0;
    b.rowEnd = r1;
    int64_t badRow = 0, badCol = 0;
    auto start = std::chrono::steady_clock::now();
    bool ok = cpu::quantizeFp8Band(b, codes, scales, &badRow, &badCol);
    *seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (ok)
      return Status();
    return Status::error("%s: tensor '%s': a value in rows %lld..%lld, columns %lld..%lld "
                         "is not finite (NaN or infinity); it cannot be quantized",
                         blame.c_str(), tensor.c_str(), (long long)badRow,
                         (long long)std::min(rows, badRow + B) - 1, (long long)badCol,
                         (long long)std::min(cols, badCol + B) - 1);
  };
  const uint64_t codeBytes = uint64_t(rows) * uint64_t(cols);
  int32_t codes = w.addWeightGenerated(
      tensor, codeType, {rows, cols}, codeBytes, uint64_t(B * cols),
      [=](uint64_t offset, uint8_t *out, size_t size) {
        const int64_t r0 = int64_t(offset) / cols, r1 = r0 + int64_t(size) / cols;
        if (r0 == 0) {
          computed->assign(size_t(gridRows * gridCols), 0.f);
          *computedRows = 0;
        }
        MOEC_RETURN_IF_ERROR(
            quantizeRows(r0, r1, out, computed->data() + (r0 / B) * gridCols));
        *computedRows = r1;
        return Status();
      });
  const uint64_t rowBytes = uint64_t(gridCols) * sizeof(float);
  int32_t scales = w.addWeightGenerated(
      tensor + "_scale_inv", plan::DType::F32, {gridRows, gridCols},
      uint64_t(gridRows) * rowBytes, rowBytes,
      [=](uint64_t offset, uint8_t *out, size_t size) -> Status {
        const int64_t br = int64_t(offset / rowBytes);
        const int64_t r1 = std::min(rows, (br + int64_t(size / rowBytes)) * B);
        if (*computedRows >= r1 && !computed->empty()) {
          std::memcpy(out, computed->data() + br * gridCols, size);
          if (r1 == rows)
            std::vector<float>().swap(*computed);
          return Status();
        }
        return quantizeRows(br * B, r1, nullptr, reinterpret_cast<float *>(out));
      });
  w.setBlockScale(codes, scales, {B, B});
  weightBytes += codeBytes + uint64_t(gridRows) * rowBytes;
  ++quantized;
  quantizedSourceBytes += t->bytes;
  derivedWeights[key] = codes;
  return codes;
}

namespace {

/// One part of a moe.concat_weights, as its rows are produced: rows of a source
/// tensor (codes and, for an FP8 one, its scale rows), or rows quantized from one.
struct ConcatPart {
  std::string name;            ///< the source tensor
  int64_t rows = 0;
  const uint8_t *data = nullptr;     ///< the source tensor's bytes
  const float *scales = nullptr;     ///< an FP8 source's scale grid
  bool quantize = false;             ///< codes and scales from the quantizer
  cpu::Fp8QuantizeBand band;         ///< what to quantize (quantize only)
  std::string blame;                 ///< the source file, for messages
};

} // namespace

llvm::Expected<int32_t> Emitter::concatWeight(moe::ConcatWeightsOp op) {
  auto outType = cast<RankedTensorType>(op.getResult().getType());
  moe::ScaleBlock block = moe::getScaleBlock(outType);
  const int64_t cols = outType.getDimSize(1);
  std::string key = "concat";
  std::vector<ConcatPart> parts;
  uint64_t partsQuantized = 0, partsQuantizedBytes = 0;
  for (Value v : op.getWeights()) {
    ConcatPart part;
    auto type = cast<RankedTensorType>(v.getType());
    part.rows = type.getDimSize(0);
    moe::WeightOp def = v.getDefiningOp<moe::WeightOp>();
    auto quantize = v.getDefiningOp<moe::QuantizeWeightOp>();
    if (quantize) {
      def = quantize.getWeight().getDefiningOp<moe::WeightOp>();
      part.quantize = true;
    }
    if (!def)
      return makeError(formatv("{0}: moe.concat_weights is evaluated only from moe.weight "
                               "or moe.quantize_weight of one",
                               stepName(op)));
    part.name = def.getName().str();
    part.blame = source.blame(part.name);
    const SourceTensor *t = source.lookup(part.name);
    if (!t)
      return makeError(formatv("{0}: tensor '{1}': missing", part.blame, part.name));
    if (t->shape.size() != 2 || t->shape[0] != part.rows || t->shape[1] != cols)
      return makeError(formatv("{0}: tensor '{1}': its shape does not match the IR's {2}",
                               part.blame, part.name, type));
    part.data = static_cast<const uint8_t *>(t->data);
    if (part.quantize) {
      if (llvm::Error e = bandSource(def, *t, block.int8, part.band))
        return std::move(e);
      part.band.rows = part.rows;
      part.band.cols = cols;
      part.band.block = block.getRows();
      part.band.format = quantize.getScale() == moe::Fp8ScaleFormat::ue8m0
                             ? cpu::Fp8ScaleFormat::Ue8m0
                             : cpu::Fp8ScaleFormat::Float;
      part.band.code = block.int8 ? cpu::WeightType::I8 : cpu::WeightType::F8E4M3;
      key += formatv(" quantize({0} {1}{2})", part.name,
                     stringifyFp8ScaleFormat(quantize.getScale()), block.int8 ? " int8" : "")
                 .str();
      partsQuantized += 1;
      partsQuantizedBytes += t->bytes;
    } else if (block) {
      if (!def.getScaleName())
        return makeError(
            formatv("{0}: block-quantized weight without a scale tensor", part.name));
      const SourceTensor *s = source.lookup(*def.getScaleName());
      if (!s || s->dtype != plan::DType::F32)
        return makeError(formatv("{0}: tensor '{1}': missing or not f32",
                                 source.blame(*def.getScaleName()),
                                 *def.getScaleName()));
      part.scales = reinterpret_cast<const float *>(s->data);
      key += " " + part.name;
    } else {
      key += " " + part.name;
    }
    parts.push_back(std::move(part));
  }
  const int64_t interleave = op.getInterleave().value_or(0);
  if (interleave)
    key += formatv(" interleave {0}", interleave).str();
  if (auto found = derivedWeights.find(key); found != derivedWeights.end())
    return found->second;
  // Counted once, however many entry points read the stack.
  quantized += partsQuantized;
  quantizedSourceBytes += partsQuantizedBytes;

  // Where each part's rows go: one segment per part, or with `interleave` one per
  // part per unit, in stacking order.
  struct Segment {
    size_t part;
    int64_t local;   ///< first row in the part
    int64_t rows;
    int64_t stacked; ///< first row in the stack
  };
  std::vector<Segment> segments;
  int64_t stackedRows = 0;
  if (interleave) {
    for (int64_t r0 = 0; r0 < parts[0].rows; r0 += interleave)
      for (size_t p = 0; p < parts.size(); ++p) {
        const int64_t n = std::min(interleave, parts[p].rows - r0);
        segments.push_back({p, r0, n, stackedRows});
        stackedRows += n;
      }
  } else {
    for (size_t p = 0; p < parts.size(); ++p) {
      segments.push_back({p, 0, parts[p].rows, stackedRows});
      stackedRows += parts[p].rows;
    }
  }

  // The stacked tensor's name: the parts' names joined by '+' ('|' interleaved).
  std::string name;
  for (const ConcatPart &part : parts)
    name += (name.empty() ? "" : interleave ? "|" : "+") + part.name;
  const SourceTensor *first = source.lookup(parts[0].name);
  const plan::DType dtype =
      !block ? first->dtype : block.int8 ? plan::DType::I8 : plan::DType::F8E4M3;
  const uint64_t elem = block ? 1 : dtypeSize(dtype);
  const int64_t rows = outType.getDimSize(0);
  const uint64_t rowBytes = uint64_t(cols) * elem;
  const int64_t B = block ? block.getRows() : 1;
  double *seconds = &quantizeSeconds;
  // Rows [r0, r1) of the stack into `out` (codes), segment by segment.
  auto produceRows = [=](int64_t r0, int64_t r1, uint8_t *out) -> Status {
    for (const Segment &segment : segments) {
      const ConcatPart &part = parts[segment.part];
      const int64_t base = segment.stacked - segment.local; // the part's row 0
      int64_t a = std::max(r0, segment.stacked);
      int64_t b = std::min(r1, segment.stacked + segment.rows);
      if (a < b) {
        uint8_t *dst = out + uint64_t(a - r0) * rowBytes;
        if (part.quantize) {
          cpu::Fp8QuantizeBand band = part.band;
          band.rowBegin = a - base;
          band.rowEnd = b - base;
          int64_t badRow = 0, badCol = 0;
          auto start = std::chrono::steady_clock::now();
          bool ok = cpu::quantizeFp8Band(band, dst, nullptr, &badRow, &badCol);
          *seconds +=
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          if (!ok)
            return Status::error("%s: tensor '%s': a value near row %lld, column %lld is "
                                 "not finite (NaN or infinity); it cannot be quantized",
                                 part.blame.c_str(), part.name.c_str(), (long long)badRow,
                                 (long long)badCol);
        } else {
          std::memcpy(dst, part.data + uint64_t(a - base) * rowBytes,
                      uint64_t(b - a) * rowBytes);
        }
      }
    }
    return Status();
  };
  const uint64_t codeBytes = uint64_t(rows) * rowBytes;
  int32_t codes = w.addWeightGenerated(
      name, dtype, {rows, cols}, codeBytes, uint64_t(B) * rowBytes,
      [=](uint64_t offset, uint8_t *out, size_t size) {
        const int64_t r0 = int64_t(offset / rowBytes);
        return produceRows(r0, r0 + int64_t(size / rowBytes), out);
      });
  weightBytes += codeBytes;
  // Copies of checkpoint tensors (quantized ones are the compiler's own anyway).
  const bool copied = partsQuantized == 0;
  if (copied) {
    ++stacked;
    stackedBytes += codeBytes;
  }
  if (block) {
    if (copied)
      stackedBytes += uint64_t((stackedRows + B - 1) / B) * ((cols + B - 1) / B) * sizeof(float);
    // The segments' scale rows, stacked: every segment but the last starts and
    // ends on a block boundary (the verifier's rule), so block rows move whole.
    const int64_t gridCols = (cols + B - 1) / B;
    const int64_t gridRows = (stackedRows + B - 1) / B;
    const uint64_t scaleRowBytes = uint64_t(gridCols) * sizeof(float);
    int32_t scales = w.addWeightGenerated(
        name + "_scale_inv", plan::DType::F32, {gridRows, gridCols},
        uint64_t(gridRows) * scaleRowBytes, scaleRowBytes,
        [=](uint64_t offset, uint8_t *out, size_t size) -> Status {
          const int64_t g0 = int64_t(offset / scaleRowBytes);
          const int64_t g1 = g0 + int64_t(size / scaleRowBytes);
          for (const Segment &segment : segments) {
            const ConcatPart &part = parts[segment.part];
            const int64_t segmentGrid0 = segment.stacked / B;
            const int64_t segmentGrid = (segment.rows + B - 1) / B;
            int64_t a = std::max(g0, segmentGrid0), b = std::min(g1, segmentGrid0 + segmentGrid);
            if (a >= b)
              continue;
            float *dst = reinterpret_cast<float *>(out) + (a - g0) * gridCols;
            const int64_t local = segment.local / B + (a - segmentGrid0); // the part's grid row
            if (!part.quantize) {
              std::memcpy(dst, part.scales + local * gridCols,
                          uint64_t(b - a) * scaleRowBytes);
              continue;
            }
            cpu::Fp8QuantizeBand band = part.band;
            band.rowBegin = local * B;
            band.rowEnd = std::min(part.rows, (local + (b - a)) * B);
            int64_t badRow = 0, badCol = 0;
            if (!cpu::quantizeFp8Band(band, nullptr, dst, &badRow, &badCol))
              return Status::error("%s: tensor '%s': a value is not finite; it cannot be "
                                   "quantized",
                                   part.blame.c_str(), part.name.c_str());
          }
          return Status();
        });
    w.setBlockScale(codes, scales, {B, block.getCols()});
    weightBytes += uint64_t(gridRows) * scaleRowBytes;
  }
  derivedWeights[key] = codes;
  return codes;
}

llvm::Expected<int32_t> Emitter::plainWeight(Value v, Operation *user) {
  llvm::Expected<WeightRef> ref = weight(v);
  if (!ref)
    return ref.takeError();
  if (ref->sliced)
    return makeError(formatv("{0}: '{1}' cannot take a slice of heads as its weight",
                             stepName(user), user->getName()));
  return ref->index;
}

llvm::Expected<CacheStates> Emitter::cache(Value v) {
  auto it = caches.find(v);
  if (it == caches.end())
    return makeError("a latent cache value is neither an entry argument nor the "
                     "result of moe.cache_store");
  return it->second;
}

llvm::Error Emitter::step(Operation *op, plan::StepKind kind, std::vector<Value> operands,
                          std::vector<Value> results, std::vector<int32_t> weightIdx,
                          plan::StepAttrsUnion attrs, std::vector<int32_t> states) {
  std::vector<int32_t> ins, outs;
  for (Value v : operands)
    ins.push_back(buffer(v));
  for (Value v : results)
    outs.push_back(buffer(v));
  const int32_t index =
      w.addStep(kind, ins, outs, weightIdx, std::move(attrs), stepName(op), states);
  // The dialect's verifier holds moe.activations to bf16 or f8E4M3FN.
  if (auto acts = op->getAttrOfType<mlir::TypeAttr>(mlir::moe::kActivationsAttrName))
    w.setStepActivations(index, acts.getValue().isBF16() ? plan::DType::BF16
                                                         : plan::DType::F8E4M3);
  return llvm::Error::success();
}

template <typename T> plan::StepAttrsUnion attrsOf(T &&value) {
  plan::StepAttrsUnion u;
  u.Set(std::forward<T>(value));
  return u;
}

std::unique_ptr<plan::YarnParamsT> yarnParams(moe::YarnAttr yarn) {
  if (!yarn)
    return nullptr;
  auto y = std::make_unique<plan::YarnParamsT>();
  y->factor = static_cast<float>(yarn.getFactor().convertToDouble());
  y->original_max_position_embeddings = yarn.getOriginalMaxPositions();
  y->beta_fast = static_cast<float>(yarn.getBetaFast().convertToDouble());
  y->beta_slow = static_cast<float>(yarn.getBetaSlow().convertToDouble());
  y->mscale = static_cast<float>(yarn.getMscale().convertToDouble());
  y->mscale_all_dim = static_cast<float>(yarn.getMscaleAllDim().convertToDouble());
  y->attention_factor = static_cast<float>(yarn.getAttentionFactor());
  return y;
}

llvm::Error Emitter::emit(moe::EmbeddingOp op) {
  llvm::Expected<int32_t> table = plainWeight(op.getTable(), op);
  if (!table)
    return table.takeError();
  return step(op, plan::StepKind::Embedding, {op.getTokens()}, {op.getResult()}, {*table});
}

llvm::Error Emitter::emit(moe::RmsNormOp op) {
  llvm::Expected<int32_t> gamma = plainWeight(op.getWeight(), op);
  if (!gamma)
    return gamma.takeError();
  plan::RmsNormAttrsT a;
  a.eps = op.getEpsilon().convertToFloat();
  return step(op, plan::StepKind::RmsNorm, {op.getInput()}, {op.getResult()}, {*gamma},
              attrsOf(std::move(a)));
}

llvm::Error Emitter::emit(moe::LinearOp op) {
  llvm::Expected<int32_t> wt = plainWeight(op.getWeight(), op);
  if (!wt)
    return wt.takeError();
  return step(op, plan::StepKind::Linear, {op.getInput()}, {op.getResult()}, {*wt});
}

llvm::Error Emitter::emit(moe::LogitsOp op) {
  llvm::Expected<int32_t> wt = plainWeight(op.getLmHead(), op);
  if (!wt)
    return wt.takeError();
  return step(op, plan::StepKind::Linear, {op.getInput()}, {op.getResult()}, {*wt});
}

llvm::Error Emitter::emit(moe::AddOp op) {
  return step(op, plan::StepKind::Add, {op.getLhs(), op.getRhs()}, {op.getResult()}, {});
}

llvm::Error Emitter::emit(moe::AddRmsNormOp op) {
  llvm::Expected<int32_t> gamma = plainWeight(op.getWeight(), op);
  if (!gamma)
    return gamma.takeError();
  plan::RmsNormAttrsT a;
  a.eps = op.getEpsilon().convertToFloat();
  return step(op, plan::StepKind::AddRmsNorm, {op.getLhs(), op.getRhs()},
              {op.getSum(), op.getResult()}, {*gamma}, attrsOf(std::move(a)));
}

llvm::Error Emitter::emit(moe::SliceColumnsOp op) {
  plan::SliceAttrsT a;
  a.begin = static_cast<int64_t>(op.getBegin());
  a.width = static_cast<int64_t>(op.getWidth());
  return step(op, plan::StepKind::SliceColumns, {op.getInput()}, {op.getResult()}, {},
              attrsOf(std::move(a)));
}

llvm::Error Emitter::emit(moe::RopeOp op) {
  plan::RopeAttrsT a;
  a.heads = static_cast<int64_t>(op.getHeads());
  a.head_stride = static_cast<int64_t>(op.getHeadDim());
  a.offset = static_cast<int64_t>(op.getOffset());
  a.rope_dim = static_cast<int64_t>(op.getRopeDim());
  a.theta = op.getTheta().convertToFloat();
  a.layout = op.getLayout() == moe::RopeLayout::half ? plan::RopeLayout::Half
                                                      : plan::RopeLayout::Interleaved;
  a.yarn = yarnParams(op.getYarnAttr());
  return step(op, plan::StepKind::Rope, {op.getInput(), op.getPositions()}, {op.getResult()},
              {}, attrsOf(std::move(a)));
}

llvm::Error Emitter::emit(moe::CacheStoreOp op) {
  llvm::Expected<CacheStates> states = cache(op.getCache());
  if (!states)
    return states.takeError();
  caches[op.getResult()] = *states;
  return step(op, plan::StepKind::CacheStore,
              {op.getLatent(), op.getRope(), op.getPositions(), op.getSeqIds()}, {}, {}, {},
              {states->latent, states->rope});
}

llvm::Error Emitter::emit(moe::HeadLinearOp op) {
  llvm::Expected<WeightRef> ref = weight(op.getWeight());
  if (!ref)
    return ref.takeError();
  auto wType = cast<RankedTensorType>(op.getWeight().getType());
  plan::HeadLinearAttrsT a;
  a.heads = static_cast<int64_t>(op.getHeads());
  a.in_stride = static_cast<int64_t>(op.getInStride());
  a.in_offset = static_cast<int64_t>(op.getInOffset());
  a.in_width = static_cast<int64_t>(op.getInWidth());
  a.transpose = op.getTranspose();
  if (ref->sliced) {
    a.row_stride = ref->rowStride;
    a.row_offset = ref->rowOffset;
    a.rows = ref->rows;
  } else {
    // An unsliced [H, N, K] weight: head h owns rows [h*N, (h+1)*N).
    a.row_stride = wType.getDimSize(1);
    a.row_offset = 0;
    a.rows = wType.getDimSize(1);
  }
  return step(op, plan::StepKind::HeadLinear, {op.getInput()}, {op.getResult()},
              {ref->index}, attrsOf(std::move(a)));
}

llvm::Error Emitter::emit(moe::LatentAttentionOp op) {
  llvm::Expected<CacheStates> states = cache(op.getCache());
  if (!states)
    return states.takeError();
  plan::LatentAttentionAttrsT a;
  a.heads = static_cast<int64_t>(op.getHeads());
  a.latent_dim = static_cast<int64_t>(op.getLatentDim());
  a.rope_dim = static_cast<int64_t>(op.getRopeDim());
  a.q_stride = static_cast<int64_t>(op.getQStride());
  a.q_rope_offset = static_cast<int64_t>(op.getQRopeOffset());
  a.softmax_scale = op.getSoftmaxScale().convertToFloat();
  return step(op, plan::StepKind::LatentAttention,
              {op.getQLat(), op.getQ(), op.getPositions(), op.getSeqIds()},
              {op.getResult()}, {}, attrsOf(std::move(a)), {states->latent, states->rope});
}

llvm::Error Emitter::emit(moe::ExpandedAttentionOp op) {
  llvm::Expected<CacheStates> states = cache(op.getCache());
  if (!states)
    return states.takeError();
  llvm::Expected<int32_t> kvB = plainWeight(op.getKvB(), op);
  if (!kvB)
    return kvB.takeError();
  plan::ExpandedAttentionAttrsT a;
  a.heads = static_cast<int64_t>(op.getHeads());
  a.nope_dim = static_cast<int64_t>(op.getNopeDim());
  a.rope_dim = static_cast<int64_t>(op.getRopeDim());
  a.v_dim = static_cast<int64_t>(op.getVDim());
  a.latent_dim = static_cast<int64_t>(op.getLatentDim());
  a.softmax_scale = op.getSoftmaxScale().convertToFloat();
  return step(op, plan::StepKind::ExpandedAttention,
              {op.getQ(), op.getPositions(), op.getSeqIds()}, {op.getResult()}, {*kvB},
              attrsOf(std::move(a)), {states->latent, states->rope});
}

llvm::Error Emitter::emit(moe::RouterOp op) {
  std::vector<int32_t> ws;
  llvm::Expected<int32_t> gate = plainWeight(op.getGate(), op);
  if (!gate)
    return gate.takeError();
  ws.push_back(*gate);
  if (Value bias = op.getBias()) {
    llvm::Expected<int32_t> b = plainWeight(bias, op);
    if (!b)
      return b.takeError();
    ws.push_back(*b);
  }
  plan::RouterAttrsT a;
  a.experts = cast<RankedTensorType>(op.getGate().getType()).getDimSize(0);
  a.top_k = static_cast<int64_t>(op.getTopK());
  a.groups = static_cast<int64_t>(op.getNGroup());
  a.topk_groups = static_cast<int64_t>(op.getTopkGroup());
  a.score_func = op.getScoreFunc() == moe::ScoreFunc::sigmoid ? plan::ScoreFunc::Sigmoid
                                                              : plan::ScoreFunc::Softmax;
  a.group_score = op.getGroupScore() == moe::GroupScore::top2_sum ? plan::GroupScore::Top2Sum
                                                                  : plan::GroupScore::Max;
  a.norm_topk_prob = op.getNormTopkProb();
  a.routed_scaling_factor = op.getRoutedScalingFactor().convertToFloat();
  return step(op, plan::StepKind::Router, {op.getInput()}, {op.getIndices(), op.getWeights()},
              ws, attrsOf(std::move(a)));
}

llvm::Error Emitter::appendWeights(ArrayRef<Value> values, Operation *user,
                                   std::vector<int32_t> &ws) {
  for (Value v : values) {
    llvm::Expected<int32_t> idx = plainWeight(v, user);
    if (!idx)
      return idx.takeError();
    ws.push_back(*idx);
  }
  return llvm::Error::success();
}

llvm::Error Emitter::emit(moe::RoutedExpertsOp op) {
  std::vector<int32_t> ws;
  size_t n = op.getGateWeights().size();
  for (size_t e = 0; e < n; ++e)
    if (llvm::Error err = appendWeights(
            {op.getGateWeights()[e], op.getUpWeights()[e], op.getDownWeights()[e]}, op, ws))
      return err;
  plan::MoeAttrsT a;
  a.experts = static_cast<int64_t>(n);
  a.top_k = cast<RankedTensorType>(op.getIndices().getType()).getDimSize(1);
  return step(op, plan::StepKind::MoeExperts, {op.getInput(), op.getIndices(), op.getWeights()},
              {op.getResult()}, ws, attrsOf(std::move(a)));
}

/// The gate_up weight of a fused SwiGLU must be stacked with the interleave the
/// step records (the kernels read the rows by it).
static llvm::Error checkGateUp(Value gateUp, int64_t rows, Operation *user) {
  auto concat = gateUp.getDefiningOp<moe::ConcatWeightsOp>();
  if (!concat || concat.getInterleave() != std::optional<int64_t>(rows) ||
      concat.getWeights().size() != 2)
    return makeError(formatv("{0}: '{1}': its gate_up weight is not a moe.concat_weights "
                             "of two weights with interleave = {2}",
                             stepName(user), user->getName(), rows));
  return llvm::Error::success();
}

llvm::Error Emitter::emit(moe::FusedRoutedExpertsOp op) {
  std::vector<int32_t> ws;
  const size_t n = op.getGateUpWeights().size();
  for (size_t e = 0; e < n; ++e) {
    if (llvm::Error err = checkGateUp(op.getGateUpWeights()[e], op.getGateUpRows(), op))
      return err;
    if (llvm::Error err =
            appendWeights({op.getGateUpWeights()[e], op.getDownWeights()[e]}, op, ws))
      return err;
  }
  plan::MoeAttrsT a;
  a.experts = static_cast<int64_t>(n);
  a.top_k = cast<RankedTensorType>(op.getIndices().getType()).getDimSize(1);
  a.gate_up_rows = op.getGateUpRows();
  return step(op, plan::StepKind::FusedMoeExperts,
              {op.getInput(), op.getIndices(), op.getWeights()}, {op.getResult()}, ws,
              attrsOf(std::move(a)));
}

llvm::Error Emitter::emit(moe::FusedSwigluOp op) {
  if (llvm::Error err = checkGateUp(op.getGateUp(), op.getGateUpRows(), op))
    return err;
  std::vector<int32_t> ws;
  if (llvm::Error err = appendWeights({op.getGateUp(), op.getDown()}, op, ws))
    return err;
  plan::GateUpAttrsT a;
  a.rows = op.getGateUpRows();
  return step(op, plan::StepKind::FusedSwigluMlp, {op.getInput()}, {op.getResult()}, ws,
              attrsOf(std::move(a)));
}

llvm::Error Emitter::emit(moe::SwigluOp op) {
  std::vector<int32_t> ws;
  if (llvm::Error err = appendWeights({op.getGate(), op.getUp(), op.getDown()}, op, ws))
    return err;
  return step(op, plan::StepKind::SwigluMlp, {op.getInput()}, {op.getResult()}, ws);
}

/// Reads an integer or float entry of the `moe.model_config` dictionary.
template <typename T> void readMeta(DictionaryAttr dict, llvm::StringRef key, T &out) {
  Attribute a = dict.get(key);
  if (auto i = dyn_cast_or_null<IntegerAttr>(a)) {
    if constexpr (std::is_same_v<T, bool>)
      out = i.getValue().getBoolValue();
    else
      out = static_cast<T>(i.getValue().getSExtValue());
  } else if (auto f = dyn_cast_or_null<FloatAttr>(a)) {
    out = static_cast<T>(f.getValueAsDouble());
  } else if (auto b = dyn_cast_or_null<BoolAttr>(a)) {
    out = static_cast<T>(b.getValue());
  }
}

void Emitter::fillMetadata(ModuleOp module) {
  plan::ModelConfigT &m = w.model();
  if (auto dict = module->getAttrOfType<DictionaryAttr>("moe.model_config")) {
    if (auto s = dict.getAs<StringAttr>("architecture"))
      m.architecture = s.getValue().str();
    readMeta(dict, "vocab_size", m.vocab_size);
    readMeta(dict, "hidden_size", m.hidden_size);
    readMeta(dict, "intermediate_size", m.intermediate_size);
    readMeta(dict, "moe_intermediate_size", m.moe_intermediate_size);
    readMeta(dict, "num_hidden_layers", m.num_hidden_layers);
    readMeta(dict, "first_k_dense_replace", m.first_k_dense_replace);
    readMeta(dict, "num_attention_heads", m.num_attention_heads);
    readMeta(dict, "qk_nope_head_dim", m.qk_nope_head_dim);
    readMeta(dict, "qk_rope_head_dim", m.qk_rope_head_dim);
    readMeta(dict, "v_head_dim", m.v_head_dim);
    readMeta(dict, "kv_lora_rank", m.kv_lora_rank);
    readMeta(dict, "q_lora_rank", m.q_lora_rank);
    readMeta(dict, "n_routed_experts", m.n_routed_experts);
    readMeta(dict, "n_shared_experts", m.n_shared_experts);
    readMeta(dict, "num_experts_per_tok", m.num_experts_per_tok);
    readMeta(dict, "n_group", m.n_group);
    readMeta(dict, "topk_group", m.topk_group);
    readMeta(dict, "norm_topk_prob", m.norm_topk_prob);
    readMeta(dict, "routed_scaling_factor", m.routed_scaling_factor);
    readMeta(dict, "rms_norm_eps", m.rms_norm_eps);
    readMeta(dict, "rope_theta", m.rope_theta);
    readMeta(dict, "softmax_scale", m.softmax_scale);
    if (auto f = dict.getAs<moe::ScoreFuncAttr>("scoring_func"))
      m.scoring_func = f.getValue() == moe::ScoreFunc::sigmoid ? plan::ScoreFunc::Sigmoid
                                                               : plan::ScoreFunc::Softmax;
    if (auto g = dict.getAs<moe::GroupScoreAttr>("group_score"))
      m.group_score = g.getValue() == moe::GroupScore::top2_sum ? plan::GroupScore::Top2Sum
                                                                : plan::GroupScore::Max;
    if (auto yarn = dict.getAs<moe::YarnAttr>("rope_yarn"))
      m.rope_yarn = yarnParams(yarn);
  }
  w.plan().max_tokens = options.maxTokens;
  auto prov = std::make_unique<plan::ProvenanceT>();
  prov->compiler_version = "moec 0.2.0";
  prov->pipeline = options.pipeline;
  if (auto s = module->getAttrOfType<StringAttr>("moe.source"))
    prov->source_checkpoint = s.getValue().str();
  w.plan().provenance = std::move(prov);
}

llvm::Error Emitter::emitFunction(func::FuncOp fn, uint32_t *firstStep, uint32_t *numSteps,
                                  std::vector<int32_t> *inputs,
                                  std::vector<int32_t> *outputs, int64_t *tokenBound) {
  Block &body = fn.getBody().front();
  if (body.getNumArguments() < 3)
    return makeError(formatv("@{0}: expected (tokens, positions, seq_ids, caches...) "
                             "arguments, got {1}",
                             fn.getSymName(), body.getNumArguments()));
  *inputs = {buffer(body.getArgument(0)), buffer(body.getArgument(1)),
             buffer(body.getArgument(2))};
  // Cache arguments: argument 3 + i is the i-th latent cache; every entry point
  // binds it to the same pair of states.
  for (unsigned i = 3; i < body.getNumArguments(); ++i) {
    auto type = dyn_cast<moe::LatentCacheType>(body.getArgument(i).getType());
    if (!type)
      return makeError(formatv("@{0}: argument {1} is not a !moe.latent_cache",
                               fn.getSymName(), i));
    size_t layer = i - 3;
    if (layer >= layerStates.size()) {
      std::string prefix = formatv("model.layers.{0}.self_attn.", layer).str();
      int64_t C = type.getKvLoraRank();
      int64_t R = type.getRopeDim();
      // moe-kv-cache-type chose how the rows are stored (the verifier allows
      // f32, bf16 and f8E4M3FN only).
      const Type element = type.getElementType();
      const plan::DType dtype = element.isBF16()                   ? plan::DType::BF16
                                : isa<Float8E4M3FNType>(element) ? plan::DType::F8E4M3
                                                                   : plan::DType::F32;
      CacheStates s;
      s.latent = w.addState(prefix + "latent_cache", dtype, {C});
      s.rope = w.addState(prefix + "rope_cache", dtype, {R});
      kvBytesPerToken += uint64_t(C + R) * (element.getIntOrFloatBitWidth() / 8);
      layerStates.push_back(s);
    }
    caches[body.getArgument(i)] = layerStates[layer];
  }
  *firstStep = w.numSteps();
  for (Operation &op : body) {
    if (isWeightOp(&op) || isa<func::ReturnOp>(op))
      continue;
    auto found = table().find(op.getName().getTypeID());
    if (found == table().end())
      return makeError(formatv("{0}: no plan step for '{1}' (a pass should have lowered "
                               "it to step-level ops)",
                               stepName(&op), op.getName()));
    if (llvm::Error err = found->second(*this, &op))
      return err;
  }
  *numSteps = w.numSteps() - *firstStep;
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  if (ret.getNumOperands() < 1)
    return makeError(formatv("@{0}: returns no logits", fn.getSymName()));
  Value logits = ret.getOperand(0);
  *outputs = {buffer(logits)};
  *tokenBound = cast<RankedTensorType>(logits.getType()).getDimSize(1);
  return llvm::Error::success();
}

/// The generic text of a function with its name blanked, to find entry points
/// that lowered identically.
std::string bodyText(func::FuncOp fn) {
  std::string text;
  llvm::raw_string_ostream os(text);
  fn->print(os, OpPrintingFlags().printGenericOpForm().useLocalScope());
  std::string name = "sym_name = \"" + fn.getSymName().str() + "\"";
  if (size_t at = text.find(name); at != std::string::npos)
    text.replace(at, name.size(), "sym_name = \"\"");
  return text;
}

llvm::Error Emitter::run(ModuleOp module) {
  fillMetadata(module);
  auto prefill = module.lookupSymbol<func::FuncOp>("prefill");
  auto decode = module.lookupSymbol<func::FuncOp>("decode");
  if (!prefill || !decode) {
    // A module that was not split into phases: both entry points run @forward.
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    if (!forward)
      return makeError("the module has no @prefill and @decode (or @forward) function");
    prefill = decode = forward;
  }
  uint32_t first = 0, count = 0;
  std::vector<int32_t> inputs, outputs;
  int64_t bound = 0;
  if (llvm::Error err = emitFunction(prefill, &first, &count, &inputs, &outputs, &bound))
    return err;
  int64_t minTokens = 0;
  if (auto attr = module->getAttrOfType<IntegerAttr>(moe::kPrefillMinTokensAttr))
    minTokens = attr.getInt();
  if (minTokens < 0 || minTokens > kMaxModelDim)
    return makeError(formatv("the module's {0} is {1}, expected 0..{2}",
                             moe::kPrefillMinTokensAttr, minTokens, kMaxModelDim));
  w.addEntryPoint("prefill", inputs, outputs, first, count, bound, minTokens);
  // Entry points that lowered identically share their steps and buffers.
  if (decode != prefill && bodyText(decode) != bodyText(prefill)) {
    if (llvm::Error err = emitFunction(decode, &first, &count, &inputs, &outputs, &bound))
      return err;
  }
  w.addEntryPoint("decode", inputs, outputs, first, count, bound);
  return llvm::Error::success();
}

} // namespace

llvm::Expected<PlanSummary> emitPlan(ModuleOp module, const WeightSource &weights,
                                     llvm::StringRef planPath, const PlanEmitOptions &options) {
  if (options.maxTokens < 1 || options.maxTokens > kMaxModelDim)
    return makeError(
        formatv("--max-tokens must be in 1..{0}, got {1}", kMaxModelDim, options.maxTokens));
  Emitter e(weights, planPath, options);
  if (llvm::Error err = e.run(module))
    return std::move(err);
  PlanWriter &w = e.writer();
  if (options.finishPlan)
    if (llvm::Error err = options.finishPlan(w.plan()))
      return std::move(err);
  if (Status s = w.planArena(); !s.ok())
    return makeError(s.message());
  // The plan and its weight files are staged beside their destinations (unnamed
  // files where the filesystem allows it), read back with the runtime's own loader
  // (one set of limits and rules), and only then put in place, so a failed or
  // interrupted compile never replaces an existing plan and leaves nothing behind.
  StagedPlan staged;
  if (Status s = w.stage(planPath.str(), &staged, options.progress); !s.ok())
    return makeError(s.message());
  if (std::string readBack = staged.planReadBack(); !readBack.empty()) {
    std::unique_ptr<Plan> loaded;
    PlanLoadOptions load;
    load.externalPath = [&](const std::string &name) { return staged.externalPath(name); };
    Status check = Plan::load(readBack, &loaded, load);
    loaded.reset();
    if (!check.ok())
      return makeError("internal error: the emitted plan fails verification: " +
                       check.message());
  }
  if (Status s = staged.commit(); !s.ok())
    return makeError(s.message());
  PlanSummary summary;
  summary.steps = w.plan().steps.size();
  summary.buffers = w.plan().buffers.size();
  summary.weights = w.plan().weights.size();
  summary.weightBytes = e.weightBytes;
  summary.embeddedAnyway = e.misalignedExternal;
  summary.arenaBytes = w.plan().arena_size;
  summary.kvBytesPerToken = e.kvBytesPerToken;
  summary.quantized = e.quantized;
  summary.quantizedSourceBytes = e.quantizedSourceBytes;
  summary.stacked = e.stacked;
  summary.stackedBytes = e.stackedBytes;
  summary.quantizeSeconds = e.quantizeSeconds;
  return summary;
}

} // namespace moec
