//===- Pipelines.cpp - the registered moe-compile pipeline ----------------===//

#include "moec/Transforms/Pipelines.h"

#include "moec/Transforms/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::moe;

void mlir::moe::buildCompilePipeline(OpPassManager &pm,
                                     const MoeCompilePipelineOptions &options) {
  pm.addNestedPass<func::FuncOp>(createCanonicalizerPass());
  KvCacheTypePassOptions cache;
  cache.element = options.kvCache;
  pm.addPass(createKvCacheTypePass(cache));
  // Quantization changes weight types only; before the split, so both entry
  // points read the same quantized weights.
  if (options.quantize == QuantizeMode::fp8) {
    QuantizeFp8PassOptions fp8;
    fp8.quantizeLmHead = options.quantizeLmHead;
    fp8.scale = options.fp8Scale;
    fp8.report = options.report;
    pm.addNestedPass<func::FuncOp>(createQuantizeFp8Pass(fp8));
  } else if (options.quantize == QuantizeMode::int8) {
    QuantizeInt8PassOptions int8;
    int8.quantizeLmHead = options.quantizeLmHead;
    int8.report = options.report;
    pm.addNestedPass<func::FuncOp>(createQuantizeInt8Pass(int8));
  }
  pm.addPass(createSplitPhasesPass());
  // The model-level ops become step-level ops, one function at a time.
  OpPassManager &decompose = pm.nest<func::FuncOp>();
  decompose.addPass(createDecomposeMlaPass());
  decompose.addPass(createDecomposeMoePass());
  AbsorbMlaPassOptions prefill;
  prefill.form = options.prefillMlaForm;
  prefill.function = "prefill";
  prefill.report = options.report;
  pm.addPass(createAbsorbMlaPass(prefill));
  AbsorbMlaPassOptions decode;
  decode.form = options.decodeMlaForm;
  decode.function = "decode";
  decode.report = options.report;
  pm.addPass(createAbsorbMlaPass(decode));
  // Fusions on the step-level ops of both entry points, then a last cleanup.
  OpPassManager &late = pm.nest<func::FuncOp>();
  if (options.fuseMlaInputProj) {
    FuseMlaInputProjPassOptions fuse;
    fuse.report = options.report;
    late.addPass(createFuseMlaInputProjPass(fuse));
  }
  if (options.fuseGateUp) {
    FuseGateUpPassOptions fuse;
    fuse.report = options.report;
    late.addPass(createFuseGateUpPass(fuse));
  }
  if (options.fuseResidualNorm) {
    FuseResidualNormPassOptions fuse;
    fuse.report = options.report;
    late.addPass(createFuseResidualNormPass(fuse));
  }
  late.addPass(createCanonicalizerPass());
  // After the last rewrite of the step ops, so the attribute is on the ops the
  // plan emitter sees.
  if (options.activations == ActivationElement::bf16) {
    Bf16ActivationsPassOptions acts;
    acts.report = options.report;
    late.addPass(createBf16ActivationsPass(acts));
  } else if (options.activations == ActivationElement::fp8) {
    Fp8ActivationsPassOptions acts;
    acts.report = options.report;
    late.addPass(createFp8ActivationsPass(acts));
  }
}

std::string
mlir::moe::compilePipelineString(const MoeCompilePipelineOptions &options) {
  OpPassManager pm(ModuleOp::getOperationName());
  buildCompilePipeline(pm, options);
  std::string text;
  llvm::raw_string_ostream os(text);
  pm.printAsTextualPipeline(os);
  return text;
}

std::string
mlir::moe::compilePipelineInvocation(const MoeCompilePipelineOptions &options) {
  std::string text = "moe-compile";
  llvm::raw_string_ostream os(text);
  options.print(os);
  return text;
}

void mlir::moe::registerCompilePipeline() {
  // The registry refuses a second registration of the same name.
  static bool registered = [] {
    PassPipelineRegistration<MoeCompilePipelineOptions>(
        "moe-compile",
        "The moec compile pipeline: optionally quantize the linear weights to "
        "FP8, split @forward into @prefill and @decode, "
        "decompose MLA and MoE layers, choose the MLA form per phase, "
        "canonicalize",
        buildCompilePipeline);
    return true;
  }();
  (void)registered;
}
