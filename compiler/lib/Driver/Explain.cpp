//===- Explain.cpp - moec explain: what the compiler did, pass by pass ----===//
//
// Compiles a checkpoint as `moec compile` does, watching the pass pipeline (op
// counts, IR before and after, time, remarks of every pass), then reads the plan
// back with the runtime (summary, memory plan) and writes the facts as JSON or
// as one self-contained HTML page (ExplainHtml.cpp). docs/explain.md describes
// the facts.
//
//===----------------------------------------------------------------------===//

#include "moec/Driver/Driver.h"

#include "CompileSteps.h"
#include "ExplainHtml.h"

#include "moec/Dialect/Moe/IR/MoeDialect.h"
#include "moec/InitAll.h"
#include "moec/Transforms/MlaCostModel.h"
#include "moec/checkpoint/Checkpoint.h"
#include "moec/checkpoint/CheckpointWeights.h"
#include "moec/checkpoint/Import.h"
#include "moec/checkpoint/SafetensorsWriter.h"
#include "moec/checkpoint/Validate.h"
#include "moec/runtime/MemoryPlan.h"
#include "moec/runtime/Plan.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassInstrumentation.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <set>

using namespace llvm;
using json = nlohmann::ordered_json;

namespace moec::driver {

namespace {

/// The longest IR diff kept per pass, in lines (the count of the whole is kept).
constexpr size_t kMaxDiffLines = 4000;
/// Beyond this many differing lines the diff is not computed line by line.
constexpr int64_t kMaxEditDistance = 200000;

std::vector<StringRef> splitLines(StringRef text) {
  SmallVector<StringRef> lines;
  text.split(lines, '\n', /*MaxSplit=*/-1, /*KeepEmpty=*/true);
  if (!lines.empty() && lines.back().empty())
    lines.pop_back();
  return {lines.begin(), lines.end()};
}

/// A unified diff (3 lines of context) of `a` and `b`, by Myers' O((N+M)D)
/// algorithm on the lines between their common prefix and suffix. Sets `lines`
/// to the diff's length and `truncated` when only its first kMaxDiffLines are
/// returned.
std::string unifiedDiff(StringRef before, StringRef after, size_t *lines, bool *truncated) {
  std::vector<StringRef> a = splitLines(before), b = splitLines(after);
  size_t prefix = 0;
  while (prefix < a.size() && prefix < b.size() && a[prefix] == b[prefix])
    ++prefix;
  size_t suffix = 0;
  while (suffix < a.size() - prefix && suffix < b.size() - prefix &&
         a[a.size() - 1 - suffix] == b[b.size() - 1 - suffix])
    ++suffix;
  const int64_t n = int64_t(a.size() - prefix - suffix), m = int64_t(b.size() - prefix - suffix);
  // ops: ' ' keep, '-' delete from a, '+' insert from b, over the middle part.
  std::string ops;
  if (n + m > 0) {
    const int64_t maxD = std::min<int64_t>(n + m, kMaxEditDistance);
    const int64_t offset = maxD + 1;
    std::vector<int64_t> v(size_t(2 * maxD + 3), 0);
    std::vector<std::vector<int64_t>> trace;
    int64_t found = -1;
    for (int64_t d = 0; d <= maxD && found < 0; ++d) {
      trace.push_back(v);
      for (int64_t k = -d; k <= d; k += 2) {
        int64_t x;
        if (k == -d || (k != d && v[size_t(offset + k - 1)] < v[size_t(offset + k + 1)]))
          x = v[size_t(offset + k + 1)];
        else
          x = v[size_t(offset + k - 1)] + 1;
        int64_t y = x - k;
        while (x < n && y < m && a[prefix + size_t(x)] == b[prefix + size_t(y)])
          ++x, ++y;
        v[size_t(offset + k)] = x;
        if (x >= n && y >= m) {
          found = d;
          break;
        }
      }
    }
    if (found < 0) {
      ops = std::string(size_t(n), '-') + std::string(size_t(m), '+');
    } else {
      // Walk the trace back from (n, m).
      int64_t x = n, y = m;
      for (int64_t d = found; d > 0; --d) {
        const std::vector<int64_t> &pv = trace[size_t(d)];
        int64_t k = x - y;
        int64_t prevK = (k == -d || (k != d && pv[size_t(offset + k - 1)] <
                                                   pv[size_t(offset + k + 1)]))
                            ? k + 1
                            : k - 1;
        int64_t prevX = pv[size_t(offset + prevK)], prevY = prevX - prevK;
        while (x > prevX && y > prevY) {
          ops.push_back(' ');
          --x, --y;
        }
        ops.push_back(prevK == k + 1 ? '+' : '-');
        x = prevX, y = prevY;
      }
      while (x > 0 && y > 0) {
        ops.push_back(' ');
        --x, --y;
      }
      std::reverse(ops.begin(), ops.end());
    }
  }
  // Every line of both texts with its op, then hunks with 3 lines of context.
  struct Line {
    char op;
    StringRef text;
    size_t aLine, bLine; // 1-based numbers of the next a/b line at this point
  };
  std::vector<Line> all;
  size_t ai = 0, bi = 0;
  auto push = [&](char op) {
    StringRef text = op == '+' ? b[bi] : a[ai];
    all.push_back({op, text, ai + 1, bi + 1});
    if (op != '+')
      ++ai;
    if (op != '-')
      ++bi;
  };
  for (size_t i = 0; i < prefix; ++i)
    push(' ');
  for (char op : ops)
    push(op);
  for (size_t i = 0; i < suffix; ++i)
    push(' ');

  std::string out;
  size_t outLines = 0;
  *lines = 0;
  *truncated = false;
  constexpr size_t kContext = 3;
  size_t i = 0;
  while (i < all.size()) {
    if (all[i].op == ' ') {
      ++i;
      continue;
    }
    size_t begin = i >= kContext ? i - kContext : 0;
    size_t end = i;
    // Extend over changes separated by at most 2*kContext unchanged lines.
    size_t lastChange = i;
    for (size_t j = i; j < all.size(); ++j) {
      if (all[j].op != ' ')
        lastChange = j;
      else if (j - lastChange > 2 * kContext)
        break;
      end = j + 1;
    }
    end = std::min(all.size(), lastChange + 1 + kContext);
    size_t aCount = 0, bCount = 0;
    for (size_t j = begin; j < end; ++j) {
      aCount += all[j].op != '+';
      bCount += all[j].op != '-';
    }
    std::string header = formatv("@@ -{0},{1} +{2},{3} @@", all[begin].aLine, aCount,
                                 all[begin].bLine, bCount)
                             .str();
    auto emit = [&](const std::string &line) {
      ++*lines;
      if (outLines >= kMaxDiffLines) {
        *truncated = true;
        return;
      }
      out += line;
      out += '\n';
      ++outLines;
    };
    emit(header);
    for (size_t j = begin; j < end; ++j)
      emit(std::string(1, all[j].op) + all[j].text.str());
    i = end;
  }
  return out;
}


/// One pass of the pipeline as it ran. A pass nested on func.func runs once per
/// function (interleaved with the other passes of its nested pipeline): `before`
/// and `after` then hold each function it ran on, before and after its run, one
/// after the other, so the diff and op counts show its own changes only.
struct PassRecord {
  const mlir::Pass *pass = nullptr;
  std::string name, anchor;
  int64_t runs = 0;
  double seconds = 0;
  std::string before, after;
  std::map<std::string, int64_t> opsBefore, opsAfter;
  std::vector<std::string> remarks;
};

std::string printOp(mlir::Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  op->print(os, mlir::OpPrintingFlags().elideLargeElementsAttrs(16));
  text += '\n';
  return text;
}

/// Op counts by name in `op`'s regions (`op` itself excluded).
void countOpsInto(mlir::Operation *root, std::map<std::string, int64_t> &counts) {
  root->walk([&](mlir::Operation *op) {
    if (op != root)
      ++counts[op->getName().getStringRef().str()];
  });
}

/// Watches the pipeline: for every run of a pass, the op it ran on (text and op
/// counts) before and after, the time, and the remarks emitted while it ran.
class PipelineWatcher : public mlir::PassInstrumentation {
public:
  explicit PipelineWatcher(std::vector<PassRecord> &records) : records(records) {}

  void runBeforePass(mlir::Pass *pass, mlir::Operation *op) override {
    if (pass->getArgument().empty()) // a nested pipeline's adaptor, not a pass
      return;
    auto [it, inserted] = index.try_emplace(pass, records.size());
    if (inserted) {
      PassRecord record;
      record.pass = pass;
      record.name = pass->getArgument().str();
      record.anchor = op->getName().getStringRef().str();
      records.push_back(std::move(record));
    }
    current = &records[it->second];
    ++current->runs;
    current->before += printOp(op);
    countOpsInto(op, current->opsBefore);
    start = std::chrono::steady_clock::now();
  }

  void runAfterPass(mlir::Pass *pass, mlir::Operation *op) override { stop(pass, op); }
  void runAfterPassFailed(mlir::Pass *pass, mlir::Operation *op) override {
    stop(pass, op);
  }

  /// Remarks go to the pass running now.
  void remark(std::string text) {
    if (current)
      current->remarks.push_back(std::move(text));
  }

private:
  void stop(mlir::Pass *pass, mlir::Operation *op) {
    if (pass->getArgument().empty() || !current)
      return;
    current->seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    current->after += printOp(op);
    countOpsInto(op, current->opsAfter);
    current = nullptr;
  }

  std::vector<PassRecord> &records;
  llvm::DenseMap<const mlir::Pass *, size_t> index;
  PassRecord *current = nullptr;
  std::chrono::steady_clock::time_point start;
};

std::string dtypeName(mlir::Type element) {
  std::string text;
  llvm::raw_string_ostream os(text);
  element.print(os);
  return text;
}

/// Bytes and count of the imported weights by element type (an FP8 checkpoint's
/// scale tensors counted as f32).
json weightsByDtype(mlir::ModuleOp module) {
  std::map<std::string, std::pair<int64_t, uint64_t>> byType;
  module->walk([&](mlir::moe::WeightOp op) {
    auto type = cast<mlir::RankedTensorType>(op.getType());
    auto &entry = byType[dtypeName(type.getElementType())];
    entry.first += 1;
    entry.second += uint64_t(type.getNumElements()) *
                    type.getElementType().getIntOrFloatBitWidth() / 8;
    if (auto block = mlir::moe::getBlockFp8(type)) {
      int64_t rows = type.getDimSize(0), cols = type.getRank() > 1 ? type.getDimSize(1) : 1;
      int64_t br = block.getRows(), bc = block.getCols();
      auto &scales = byType["f32"];
      scales.first += 1;
      scales.second += 4 * uint64_t((rows + br - 1) / br) * uint64_t((cols + bc - 1) / bc);
    }
  });
  json list = json::array();
  for (const auto &[dtype, entry] : byType)
    list.push_back({{"dtype", dtype}, {"count", entry.first}, {"bytes", entry.second}});
  return list;
}

const char *planDtypeName(plan::DType dtype) {
  switch (dtype) {
  case plan::DType::F32:
    return "f32";
  case plan::DType::F16:
    return "f16";
  case plan::DType::BF16:
    return "bf16";
  case plan::DType::F8E4M3:
    return "f8E4M3FN";
  case plan::DType::I32:
    return "i32";
  case plan::DType::I8:
    return "i8";
  }
  return "?";
}

json attrToJson(mlir::Attribute attr) {
  if (auto i = dyn_cast<mlir::IntegerAttr>(attr))
    return i.getType().isInteger(1) ? json(i.getValue().getBoolValue()) : json(i.getInt());
  if (auto f = dyn_cast<mlir::FloatAttr>(attr))
    return f.getValueAsDouble();
  if (auto b = dyn_cast<mlir::BoolAttr>(attr))
    return b.getValue();
  if (auto s = dyn_cast<mlir::StringAttr>(attr))
    return s.getValue().str();
  std::string text;
  llvm::raw_string_ostream os(text);
  attr.print(os);
  return text;
}

json costJson(const mlir::moe::MlaCost &cost) {
  return {{"flops", cost.flops}, {"bytes", cost.bytes}, {"seconds", cost.seconds}};
}

/// The MLA section: the forms asked for and chosen, the threshold, the cost
/// model of the model's first MLA layer and the KV-cache bytes per token.
json mlaFacts(mlir::ModuleOp imported, mlir::ModuleOp compiled, const CompileOptions &options,
              const Plan &plan) {
  mlir::moe::MlaAttentionOp first;
  int64_t layers = 0;
  imported->walk([&](mlir::moe::MlaAttentionOp op) {
    if (!first)
      first = op;
    ++layers;
  });
  if (!first)
    return nullptr;
  json facts;
  facts["requested"] = {
      {"prefill", mlir::moe::stringifyAttentionForm(options.prefillMlaForm).str()},
      {"decode", mlir::moe::stringifyAttentionForm(options.decodeMlaForm).str()}};
  json chosen = json::object();
  for (StringRef name : {"prefill", "decode"}) {
    auto fn = compiled.lookupSymbol<mlir::func::FuncOp>(name);
    int64_t naive = 0, absorbed = 0;
    if (fn)
      fn.walk([&](mlir::Operation *op) {
        naive += isa<mlir::moe::ExpandedAttentionOp>(op);
        absorbed += isa<mlir::moe::LatentAttentionOp>(op);
      });
    chosen[name.str()] = naive && absorbed ? "mixed" : naive ? "naive" : "absorbed";
  }
  facts["chosen"] = chosen;
  const EntryPointInfo *prefill = plan.findEntryPoint("prefill");
  facts["prefill_min_tokens"] = prefill ? prefill->minTokens : 0;

  mlir::moe::MlaShape shape;
  shape.heads = first.getNumHeads();
  shape.nopeDim = first.getQkNopeHeadDim();
  shape.ropeDim = first.getQkRopeHeadDim();
  shape.vDim = first.getVHeadDim();
  shape.latentDim = first.getKvLoraRank();
  auto kvB = cast<mlir::RankedTensorType>(first.getKvB().getType());
  shape.kvBBytes = double(kvB.getNumElements()) *
                   double(kvB.getElementType().getIntOrFloatBitWidth()) / 8;
  // Bytes per cached value as the plan stores them (moe-kv-cache-type).
  const uint64_t valueBytes =
      plan.numStates() > 0 && plan.state(0).rowElements > 0
          ? plan.state(0).rowBytes / uint64_t(plan.state(0).rowElements)
          : 4;
  shape.cacheBytes = double(valueBytes);
  // The pass's defaults (Passes.td, moe-absorb-mla), which moec compile uses.
  mlir::moe::MlaMachine machine;
  const int64_t context = 4096;
  json points = json::array();
  for (const mlir::moe::MlaCostPoint &p : mlir::moe::mlaCostTable(shape, machine, context))
    points.push_back({{"new_tokens", p.newTokens},
                      {"cached_tokens", p.cachedTokens},
                      {"naive", costJson(p.naive)},
                      {"absorbed", costJson(p.absorbed)},
                      {"cheaper", p.naive.seconds <= p.absorbed.seconds ? "naive" : "absorbed"}});
  facts["cost_model"] = {{"heads", shape.heads},
                         {"latent_dim", shape.latentDim},
                         {"rope_dim", shape.ropeDim},
                         {"nope_dim", shape.nopeDim},
                         {"v_dim", shape.vDim},
                         {"layers", layers},
                         {"context_tokens", context},
                         {"peak_gflops", machine.peakGflops},
                         {"bandwidth_gbs", machine.bandwidthGBs},
                         {"points", points}};
  uint64_t latent = 0;
  for (size_t i = 0; i < plan.numStates(); ++i)
    latent += plan.state(i).rowBytes;
  // Standard multi-head attention caches K (nope+rope) and V per head, in the
  // same element type.
  uint64_t mha = uint64_t(layers) * uint64_t(shape.heads) *
                 uint64_t(shape.nopeDim + shape.ropeDim + shape.vDim) * valueBytes;
  facts["kv_cache"] = {{"latent_bytes_per_token", latent}, {"mha_bytes_per_token", mha}};
  return facts;
}

json planFacts(const Plan &plan, const std::string &path) {
  const plan::Plan &root = plan.root();
  uint64_t kv = 0;
  for (size_t i = 0; i < plan.numStates(); ++i)
    kv += plan.state(i).rowBytes;
  json entries = json::array();
  for (size_t i = 0; i < plan.numEntryPoints(); ++i) {
    const EntryPointInfo &e = plan.entryPoint(i);
    entries.push_back({{"name", e.name}, {"steps", e.numSteps}, {"min_tokens", e.minTokens}});
  }
  json provenance = json::object();
  if (const plan::Provenance *p = root.provenance()) {
    provenance["compiler_version"] = p->compiler_version() ? p->compiler_version()->str() : "";
    provenance["pipeline"] = p->pipeline() ? p->pipeline()->str() : "";
    provenance["source_checkpoint"] =
        p->source_checkpoint() ? p->source_checkpoint()->str() : "";
  }
  return {{"path", path},
          {"version", root.version()},
          {"steps", root.steps() ? root.steps()->size() : 0},
          {"buffers", root.buffers() ? root.buffers()->size() : 0},
          {"weights", plan.numWeights()},
          {"weight_bytes", plan.weightBytes()},
          {"arena_bytes", plan.arenaSize()},
          {"max_tokens", plan.maxTokens()},
          {"kv_bytes_per_token", kv},
          {"entry_points", entries},
          {"provenance", provenance}};
}

json accuracyFacts(const AccuracyReport &report) {
  json layers = json::array();
  for (const AccuracyReport::Layer &layer : report.layers)
    layers.push_back({{"name", layer.name}, {"relative_error", layer.relativeError}});
  return {{"positions", report.positions},
          {"mean_cosine", report.meanCosine},
          {"min_cosine", report.minCosine},
          {"top1_agree", report.top1Agree},
          {"logits_relative_error", report.logitsRelativeError},
          {"layers", layers}};
}

Error fail(const Twine &message) {
  return createStringError(inconvertibleErrorCode(), message);
}

} // namespace

Error explain(const ExplainOptions &options) {
  CompileOptions compileOptions = options.compile;
  auto ckptOr = checkpoint::Checkpoint::open(compileOptions.checkpointDir);
  if (!ckptOr)
    return ckptOr.takeError();
  const checkpoint::Checkpoint &ckpt = **ckptOr;
  auto notes = checkpoint::validateCheckpoint(ckpt);
  if (!notes)
    return notes.takeError();

  mlir::DialectRegistry registry;
  registerAllDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  // One pass at a time, so the snapshots and remarks belong to the pass running.
  ctx.disableMultithreading();
  auto moduleOr = checkpoint::importCheckpoint(ctx, ckpt);
  if (!moduleOr)
    return moduleOr.takeError();
  mlir::ModuleOp module = **moduleOr;
  mlir::OwningOpRef<mlir::ModuleOp> imported = module.clone();

  json facts;
  facts["moec_explain"] = 1;
  facts["checkpoint"] = compileOptions.checkpointDir;
  facts["options"] = options.commandLine;
  // What ran: the compile's pipeline with every pass reporting (the remarks below).
  compileOptions.report = true;
  facts["pipeline"] = pipelineFor(compileOptions);
  json model = json::object();
  if (auto config = module->getAttrOfType<mlir::DictionaryAttr>(mlir::moe::kModelConfigAttrName))
    for (mlir::NamedAttribute entry : config)
      model[entry.getName().str()] = attrToJson(entry.getValue());
  facts["model"] = model;

  // The pipeline, watched. Every pass reports what it did (the pipeline's
  // `report` option), and the remarks go into the facts, not to the terminal.
  std::vector<PassRecord> records;
  PipelineWatcher *watcher = nullptr;
  mlir::ScopedDiagnosticHandler remarks(&ctx, [&](mlir::Diagnostic &d) {
    if (d.getSeverity() == mlir::DiagnosticSeverity::Remark && watcher) {
      watcher->remark(d.str());
      return mlir::success();
    }
    return mlir::failure(); // errors go on to the pipeline's own handler
  });
  auto started = std::chrono::steady_clock::now();
  if (Error err = detail::runPipeline(ctx, module, compileOptions, /*printIr=*/false,
                                      [&](mlir::PassManager &pm) {
                                        // The pass manager owns it (and destroys
                                        // it when the pipeline is done).
                                        auto w = std::make_unique<PipelineWatcher>(records);
                                        watcher = w.get();
                                        pm.addInstrumentation(std::move(w));
                                      })) {
    watcher = nullptr;
    return err;
  }
  watcher = nullptr;
  double pipelineSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  json passes = json::array();
  json fusions = json::array();
  for (const PassRecord &r : records) {
    size_t diffLines = 0;
    bool truncated = false;
    std::string diff = unifiedDiff(r.before, r.after, &diffLines, &truncated);
    json before = json::object(), after = json::object();
    for (const auto &[name, count] : r.opsBefore)
      before[name] = count;
    for (const auto &[name, count] : r.opsAfter)
      after[name] = count;
    passes.push_back({{"name", r.name},
                      {"anchor", r.anchor},
                      {"runs", r.runs},
                      {"seconds", r.seconds},
                      {"changed", r.before != r.after},
                      {"ops_before", before},
                      {"ops_after", after},
                      {"diff", diff},
                      {"diff_lines", diffLines},
                      {"diff_truncated", truncated},
                      {"remarks", r.remarks}});
    if (StringRef(r.name).starts_with("moe-fuse-")) {
      // The fused op is what the pass added; what it replaced, what it removed.
      std::set<std::string> names;
      for (const auto &[name, count] : r.opsBefore)
        names.insert(name);
      for (const auto &[name, count] : r.opsAfter)
        names.insert(name);
      json replaced = json::object(), added = json::object();
      std::string primary;
      int64_t primaryCount = 0;
      for (const std::string &name : names) {
        auto get = [&](const std::map<std::string, int64_t> &m) {
          auto it = m.find(name);
          return it == m.end() ? int64_t(0) : it->second;
        };
        int64_t delta = get(r.opsAfter) - get(r.opsBefore);
        if (delta > 0) {
          added[name] = delta;
          if (delta > primaryCount)
            primary = name, primaryCount = delta;
        } else if (delta < 0) {
          replaced[name] = -delta;
        }
      }
      // The ops each fusion makes, one per fusion (the rest it adds, such as
      // the stacked weights, are in `added`).
      static const std::map<std::string, std::vector<std::string>> kFusedOps = {
          {"moe-fuse-residual-norm", {"moe.add_rms_norm"}},
          {"moe-fuse-mla-input-proj", {"moe.concat_weights"}},
          {"moe-fuse-gate-up", {"moe.fused_swiglu", "moe.fused_routed_experts"}}};
      if (auto it = kFusedOps.find(r.name); it != kFusedOps.end()) {
        primary.clear();
        primaryCount = 0;
        for (const std::string &op : it->second)
          if (int64_t n = added.value(op, int64_t(0)); n > 0) {
            primary += (primary.empty() ? "" : ", ") + op;
            primaryCount += n;
          }
      }
      if (primaryCount > 0)
        fusions.push_back({{"pass", r.name},
                           {"op", primary},
                           {"count", primaryCount},
                           {"added", added},
                           {"replaced", replaced}});
    }
  }
  facts["passes"] = passes;
  facts["pipeline_seconds"] = pipelineSeconds;

  // The plan: where the user asked for it, or in a temporary directory.
  SmallString<128> tempDir;
  std::string planPath = options.planPath;
  scope_exit cleanup([&] {
    if (!tempDir.empty())
      sys::fs::remove_directories(tempDir);
  });
  if (planPath.empty()) {
    if (std::error_code ec = sys::fs::createUniqueDirectory("moec-explain", tempDir))
      return fail("cannot make a temporary directory: " + ec.message());
    SmallString<128> path(tempDir);
    sys::path::append(path, "model.plan");
    planPath = path.str().str();
  }
  compileOptions.output = planPath;
  PlanEmitOptions emitOptions;
  emitOptions.weights = compileOptions.weights;
  emitOptions.maxTokens = compileOptions.maxTokens;
  emitOptions.pipeline = pipelineFor(compileOptions);
  detail::ProgressBar bar("moec: packing weights");
  if (!compileOptions.quiet)
    emitOptions.progress = [&](uint64_t done, uint64_t total) { bar.update(done, total); };
  if (Error err = detail::addTokenizer(ckpt.directory(), ckpt.config().VocabSize,
                                       emitOptions, nullptr))
    return err;
  checkpoint::CheckpointWeights weights(ckpt);
  auto summary = emitPlan(module, weights, planPath, emitOptions);
  bar.finish();
  if (!summary)
    return summary.takeError();

  std::unique_ptr<Plan> plan;
  if (Status status = Plan::load(planPath, &plan); !status.ok())
    return fail(status.message());

  // Weights before (as imported) and after (as the plan holds them).
  std::map<std::string, std::pair<int64_t, uint64_t>> planWeights;
  for (size_t i = 0; i < plan->numWeights(); ++i) {
    auto &entry = planWeights[planDtypeName(plan->weight(i).dtype)];
    entry.first += 1;
    entry.second += plan->weight(i).bytes;
  }
  json afterWeights = json::array();
  for (const auto &[dtype, entry] : planWeights)
    afterWeights.push_back({{"dtype", dtype}, {"count", entry.first}, {"bytes", entry.second}});
  facts["weights"] = {
      {"quantize", mlir::moe::stringifyQuantizeMode(compileOptions.quantize).str()},
      {"before", weightsByDtype(*imported)},
      {"after", afterWeights}};

  facts["accuracy"] = nullptr;
  if (compileOptions.quantize != QuantizeMode::none) {
    mlir::OwningOpRef<mlir::ModuleOp> reference = imported->clone();
    CompileOptions plain = compileOptions;
    plain.report = false;
    auto report = detail::measureAccuracy(ctx, *reference, weights, plain);
    if (!report)
      return report.takeError();
    facts["accuracy"] = accuracyFacts(*report);
  }
  facts["fusions"] = fusions;
  facts["mla"] = mlaFacts(*imported, module, compileOptions, *plan);
  facts["memory_plan"] = json::parse(memoryPlanJson(describeMemoryPlan(*plan)));
  facts["plan"] = planFacts(*plan, options.planPath.empty() ? "" : options.planPath);

  std::string text = options.format == ExplainFormat::Json
                         ? facts.dump(2) + "\n"
                         : renderExplainHtml(nlohmann::json::parse(facts.dump()));
  if (Error err = checkpoint::writeOutput(
          options.output, [&](raw_ostream &os) { os << text; }, /*AllowStdout=*/true))
    return err;
  if (!compileOptions.quiet && options.output != "-")
    errs() << formatv("moec: wrote {0}: {1} passes, {2} steps, {3} fusion kind(s); open it "
                      "in a browser\n",
                      options.output, records.size(), summary->steps, fusions.size());
  return Error::success();
}

} // namespace moec::driver
