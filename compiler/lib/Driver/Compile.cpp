//===- Compile.cpp - moec compile: checkpoint -> moe IR -> passes -> plan --===//

#include "moec/Driver/Driver.h"

#include "moec/Driver/AccuracyReport.h"

#include "CompileSteps.h"

#include "moec/InitAll.h"
#include "moec/Transforms/Pipelines.h"
#include "moec/checkpoint/Checkpoint.h"
#include "moec/checkpoint/CheckpointWeights.h"
#include "moec/checkpoint/Import.h"
#include "moec/checkpoint/Synthetic.h"
#include "moec/checkpoint/SafetensorsWriter.h"
#include "moec/checkpoint/Tokenizer.h"
#include "moec/checkpoint/Validate.h"
#include "moec/runtime/Tokenizer.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/ADT/ScopeExit.h"

#include <chrono>

using namespace llvm;

namespace moec::driver {

static void setPipelineOptions(mlir::moe::MoeCompilePipelineOptions &pipeline,
                               const CompileOptions &options) {
  pipeline.quantize = options.quantize;
  pipeline.quantizeLmHead = options.quantizeLmHead;
  pipeline.fp8Scale = options.fp8Scale;
  pipeline.kvCache = options.kvCache;
  pipeline.activations = options.activations;
  pipeline.fuseResidualNorm = options.fuseResidualNorm;
  pipeline.fuseGateUp = options.fuseGateUp;
  pipeline.fuseMlaInputProj = options.fuseMlaInputProj;
  pipeline.report = options.report;
  pipeline.prefillMlaForm = options.prefillMlaForm;
  pipeline.decodeMlaForm = options.decodeMlaForm;
}

std::string pipelineFor(const CompileOptions &options) {
  mlir::moe::MoeCompilePipelineOptions pipeline;
  setPipelineOptions(pipeline, options);
  return "builtin.module(" + mlir::moe::compilePipelineInvocation(pipeline) + ")";
}


Error detail::runPipeline(mlir::MLIRContext &ctx, mlir::ModuleOp module,
                          const CompileOptions &options, bool printIr,
                          const std::function<void(mlir::PassManager &)> &configure) {
  static bool passesRegistered = (registerAllPasses(), true);
  (void)passesRegistered;
  mlir::PassManager pm(&ctx);
  // The registered pipeline, built from its typed options; the plan records its
  // textual form, which `moec-opt --pass-pipeline=...` replays.
  mlir::moe::MoeCompilePipelineOptions pipelineOptions;
  setPipelineOptions(pipelineOptions, options);
  mlir::moe::buildCompilePipeline(pm, pipelineOptions);
  if (printIr) {
    ctx.disableMultithreading();
    pm.enableIRPrinting(
        /*shouldPrintBeforePass=*/[](mlir::Pass *, mlir::Operation *) { return false; },
        /*shouldPrintAfterPass=*/[](mlir::Pass *, mlir::Operation *) { return true; },
        /*printModuleScope=*/true, /*printAfterOnlyOnChange=*/false);
  }
  if (configure)
    configure(pm);
  std::string passErrors;
  mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic &d) {
    // Errors become the returned error; remarks go on to an outer handler
    // (moec explain collects them).
    if (d.getSeverity() != mlir::DiagnosticSeverity::Error)
      return mlir::failure();
    passErrors += (passErrors.empty() ? "" : "; ") + d.str();
    return mlir::success();
  });
  if (mlir::failed(pm.run(module)))
    return createStringError(inconvertibleErrorCode(), "%s: the pass pipeline failed: %s",
                             options.checkpointDir.c_str(), passErrors.c_str());
  return Error::success();
}

Error detail::addTokenizer(StringRef dir, int64_t vocabSize, PlanEmitOptions &emit,
                           std::string *summary) {
  auto tokenizer = checkpoint::readTokenizer(dir, vocabSize);
  if (!tokenizer)
    return tokenizer.takeError();
  if (!*tokenizer)
    return Error::success();
  // Built once by the runtime's tokenizer: what it would refuse fails here.
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(plan::Tokenizer::Pack(fbb, tokenizer->get()));
  std::unique_ptr<Tokenizer> check;
  if (Status status = Tokenizer::create(*flatbuffers::GetRoot<plan::Tokenizer>(
                                            fbb.GetBufferPointer()),
                                        vocabSize, &check);
      !status.ok())
    return createStringError(inconvertibleErrorCode(), "%s/tokenizer.json: %s",
                             dir.str().c_str(), status.message().c_str());
  if (summary)
    *summary = formatv("tokenizer: {0} tokens, {1} merges, {2} added tokens{3}",
                       check->size(), (*tokenizer)->merges.size() / 3,
                       (*tokenizer)->added_tokens.size(),
                       (*tokenizer)->chat_template.empty() ? "" : ", chat template")
                   .str();
  std::shared_ptr<plan::TokenizerT> shared(std::move(*tokenizer));
  emit.finishPlan = [shared](plan::PlanT &plan) {
    plan.tokenizer = std::make_unique<plan::TokenizerT>(*shared);
    return Error::success();
  };
  return Error::success();
}

Expected<AccuracyReport> detail::measureAccuracy(mlir::MLIRContext &ctx,
                                                 mlir::ModuleOp reference,
                                                 const WeightSource &weights,
                                                 const CompileOptions &options) {
  if (!sys::fs::is_regular_file(options.output))
    return createStringError(inconvertibleErrorCode(),
                             "%s: --accuracy-report reads the plan back; write it to a "
                             "regular file",
                             options.output.c_str());
  CompileOptions plain = options;
  plain.quantize = QuantizeMode::none;
  if (Error err = detail::runPipeline(ctx, reference, plain, /*printIr=*/false))
    return err;
  SmallString<128> dir;
  if (std::error_code ec = sys::fs::createUniqueDirectory("moec-accuracy", dir))
    return createStringError(ec, "cannot make a temporary directory: %s",
                             ec.message().c_str());
  SmallString<128> path(dir);
  sys::path::append(path, "reference.plan");
  scope_exit cleanup([&] { sys::fs::remove_directories(dir); });
  PlanEmitOptions emitOptions;
  emitOptions.weights = WeightPlacement::External;
  emitOptions.maxTokens = options.maxTokens;
  emitOptions.pipeline = pipelineFor(plain);
  auto summary = emitPlan(reference, weights, path, emitOptions);
  if (!summary)
    return summary.takeError();
  return compareQuantized(path.str().str(), options.output, options.calibrationTokens);
}

Error compile(const CompileOptions &options) {
  auto ckptOr = checkpoint::Checkpoint::open(options.checkpointDir);
  if (!ckptOr)
    return ckptOr.takeError();
  const checkpoint::Checkpoint &ckpt = **ckptOr;
  auto notes = checkpoint::validateCheckpoint(ckpt);
  if (!notes)
    return notes.takeError();
  if (!options.quiet)
    for (const std::string &note : *notes)
      errs() << "moec: note: " << note << "\n";

  mlir::DialectRegistry registry;
  registerAllDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  auto moduleOr = checkpoint::importCheckpoint(ctx, ckpt);
  if (!moduleOr)
    return moduleOr.takeError();
  mlir::ModuleOp module = **moduleOr;

  if (options.emit == EmitKind::Mlir)
    return checkpoint::writeOutput(
        options.output, [&](raw_ostream &os) { module.print(os); }, /*AllowStdout=*/true);

  if (options.accuracyReport && options.quantize == QuantizeMode::none)
    return createStringError(inconvertibleErrorCode(),
                             "--accuracy-report compares a quantized plan with the "
                             "unquantized one: it needs --quantize=fp8 or int8");
  // The reference for --accuracy-report: the same module, compiled unquantized.
  mlir::OwningOpRef<mlir::ModuleOp> reference;
  if (options.accuracyReport)
    reference = module.clone();

  if (Error err = detail::runPipeline(ctx, module, options, options.printIrAfterAll))
    return err;
  std::string pipeline = pipelineFor(options);

  PlanEmitOptions emitOptions;
  emitOptions.weights = options.weights;
  emitOptions.maxTokens = options.maxTokens;
  emitOptions.pipeline = pipeline;
  detail::ProgressBar bar("moec: packing weights");
  if (!options.quiet)
    emitOptions.progress = [&](uint64_t done, uint64_t total) {
      bar.update(done, total);
    };
  std::string tokenizerSummary;
  if (Error err = detail::addTokenizer(ckpt.directory(), ckpt.config().VocabSize, emitOptions,
                                       &tokenizerSummary))
    return err;
  std::vector<std::string> kernelLines;
  if (!options.gpuTargets.empty() || options.inspectPlan) {
    auto tokenizerStep = std::move(emitOptions.finishPlan);
    emitOptions.finishPlan = [&, tokenizerStep](plan::PlanT &plan) -> Error {
      if (tokenizerStep)
        if (Error err = tokenizerStep(plan))
          return err;
      if (!options.gpuTargets.empty())
        if (Error err = detail::addKernelModules(plan, options.gpuTargets, &kernelLines))
          return err;
      return options.inspectPlan ? options.inspectPlan(plan) : Error::success();
    };
  }
  checkpoint::CheckpointWeights weights(ckpt);
  auto summary = emitPlan(module, weights, options.output, emitOptions);
  bar.finish();
  if (!summary)
    return summary.takeError();
  if (!options.quiet && summary->embeddedAnyway)
    errs() << formatv("moec: note: {0} external tensor(s) sit at offsets not "
                      "aligned to their element size and were embedded\n",
                      summary->embeddedAnyway);
  if (!options.quiet && summary->stacked && options.weights == WeightPlacement::External)
    errs() << formatv("moec: note: {0} weight(s) stacked for fusions ({1:f2} MiB) are written "
                      "into the plan, not referenced (--no-fuse-gate-up and "
                      "--no-fuse-mla-input-proj keep them in the checkpoint)\n",
                      summary->stacked, summary->stackedBytes / 1048576.0);
  if (!options.quiet && summary->quantized)
    errs() << formatv("moec: quantized {0} weights to {4}: {1:f2} MiB in {2:f2} s "
                      "({3:f2} GB/s)\n",
                      summary->quantized, summary->quantizedSourceBytes / 1048576.0,
                      summary->quantizeSeconds,
                      summary->quantizeSeconds > 0
                          ? summary->quantizedSourceBytes / summary->quantizeSeconds / 1e9
                          : 0.0,
                      options.quantize == QuantizeMode::int8 ? "int8" : "FP8 e4m3");
  if (!options.quiet)
    errs() << formatv(
        "moec: wrote {0}: {1} steps, {2} buffers, {3} weights ({4:f2} MiB, {5}), "
        "arena {6:f2} MiB for {7} tokens, KV cache {8} bytes/token\n",
        options.output, summary->steps, summary->buffers, summary->weights,
        summary->weightBytes / 1048576.0,
        options.weights == WeightPlacement::Embed ? "embedded" : "external",
        summary->arenaBytes / 1048576.0, options.maxTokens,
        summary->kvBytesPerToken);
  if (!options.quiet)
    errs() << "moec: "
           << (tokenizerSummary.empty()
                   ? std::string("no tokenizer.json in the checkpoint: the plan takes and "
                                 "gives token ids only")
                   : tokenizerSummary)
           << "\n";
  if (!options.quiet)
    for (const std::string &line : kernelLines)
      errs() << "moec: " << line << "\n";
  if (options.accuracyReport) {
    auto report = detail::measureAccuracy(ctx, *reference, weights, options);
    if (!report)
      return report.takeError();
    outs() << formatAccuracyReport(*report);
  }
  return Error::success();
}

Error synth(StringRef preset, StringRef dir, uint64_t seed, bool fp8,
            unsigned shards, bool tokenizer) {
  checkpoint::SynthOptions o;
  o.Tokenizer = tokenizer;
  o.Seed = seed;
  o.Fp8 = fp8;
  o.NumShards = shards;
  return checkpoint::writeSyntheticCheckpoint(preset, dir, o);
}

std::string listPresets() {
  std::string s;
  for (const checkpoint::SynthPreset &p : checkpoint::syntheticPresets())
    s += formatv("  {0,-18} {1}\n", p.Name, p.Description).str();
  return s;
}

} // namespace moec::driver
