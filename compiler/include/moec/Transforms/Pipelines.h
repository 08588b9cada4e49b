//===- Pipelines.h - the registered moe-compile pipeline ---------*- C++ -*-===//
//
// `moec compile` runs one registered pass pipeline, `moe-compile`, so any
// compile replays in moec-opt: `moec-opt --moe-compile='decode-mla-form=naive'`
// or, with the printed textual pipeline, `moec-opt --pass-pipeline='...'`.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TRANSFORMS_PIPELINES_H
#define MOEC_TRANSFORMS_PIPELINES_H

#include "moec/Dialect/Moe/IR/MoeDialect.h"

#include "mlir/Pass/PassOptions.h"

#include <string>

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::moe {

/// Options of `moe-compile`: weight quantization and the MLA form of each entry
/// point. Invalid values are rejected by the option parser.
struct MoeCompilePipelineOptions
    : public PassPipelineOptions<MoeCompilePipelineOptions> {
  PassOptions::Option<QuantizeMode> quantize{
      *this, "quantize",
      llvm::cl::desc("Weight quantization (moe-quantize-fp8, moe-quantize-int8)"),
      llvm::cl::init(QuantizeMode::none),
      llvm::cl::values(clEnumValN(QuantizeMode::none, "none", "weights as stored"),
                       clEnumValN(QuantizeMode::fp8, "fp8",
                                  "linear weights to FP8 e4m3, 128x128 block scales"),
                       clEnumValN(QuantizeMode::int8, "int8",
                                  "linear weights to int8, 128x128 block scales (W8A8)"))};
  PassOptions::Option<bool> quantizeLmHead{
      *this, "quantize-lm-head",
      llvm::cl::desc("With quantize=fp8 or int8, quantize lm_head too"), llvm::cl::init(false)};
  PassOptions::Option<Fp8ScaleFormat> fp8Scale{
      *this, "fp8-scale", llvm::cl::desc("With quantize=fp8, how block scales are stored"),
      llvm::cl::init(Fp8ScaleFormat::fp32),
      llvm::cl::values(clEnumValN(Fp8ScaleFormat::fp32, "float", "amax / 448 as float32"),
                       clEnumValN(Fp8ScaleFormat::ue8m0, "ue8m0",
                                  "rounded up to a power of two"))};
  PassOptions::Option<KvCacheElement> kvCache{
      *this, "kv-cache",
      llvm::cl::desc("Element type of the latent KV cache (moe-kv-cache-type)"),
      llvm::cl::init(KvCacheElement::bf16),
      llvm::cl::values(clEnumValN(KvCacheElement::f32, "f32", "float32: the exact path"),
                       clEnumValN(KvCacheElement::bf16, "bf16",
                                  "bfloat16, rounded to nearest even: half the bytes"),
                       clEnumValN(KvCacheElement::fp8, "fp8",
                                  "float8 e4m3, saturating, no scale: a quarter"))};
  PassOptions::Option<ActivationElement> activations{
      *this, "activations",
      llvm::cl::desc("Element type the matrix products' activations are rounded to "
                     "(moe-bf16-activations, moe-fp8-activations)"),
      llvm::cl::init(ActivationElement::f32),
      llvm::cl::values(clEnumValN(ActivationElement::f32, "f32", "float32: the exact path"),
                       clEnumValN(ActivationElement::bf16, "bf16",
                                  "bfloat16, rounded to nearest even (AMX-BF16 tiles)"),
                       clEnumValN(ActivationElement::fp8, "fp8",
                                  "e4m3 per token and 128 columns with a scale, in the "
                                  "products with FP8 weights (DeepSeek's FP8 GEMM)"))};
  PassOptions::Option<bool> fuseResidualNorm{
      *this, "fuse-residual-norm",
      llvm::cl::desc("Fuse residual adds with the RMSNorm after them (moe-fuse-residual-norm)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> fuseMlaInputProj{
      *this, "fuse-mla-input-proj",
      llvm::cl::desc("Fuse MLA's q_a/q and kv_a projections into one linear "
                     "(moe-fuse-mla-input-proj)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> fuseGateUp{
      *this, "fuse-gate-up",
      llvm::cl::desc("Fuse each SwiGLU's gate and up projections into one product "
                     "(moe-fuse-gate-up)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> report{
      *this, "report",
      llvm::cl::desc("Every pass with a report option emits its remarks (what it "
                     "changed and why; moec explain shows them)"),
      llvm::cl::init(false)};
  PassOptions::Option<AttentionForm> prefillMlaForm{
      *this, "prefill-mla-form",
      llvm::cl::desc("MLA form of the @prefill entry point"),
      llvm::cl::init(AttentionForm::automatic),
      llvm::cl::values(
          clEnumValN(AttentionForm::automatic, "auto",
                     "chosen by moe-absorb-mla's cost model"),
          clEnumValN(AttentionForm::absorbed, "absorbed",
                     "attention over the latent cache"),
          clEnumValN(AttentionForm::naive, "naive",
                     "kv_b expanded per cached token"))};
  PassOptions::Option<AttentionForm> decodeMlaForm{
      *this, "decode-mla-form",
      llvm::cl::desc("MLA form of the @decode entry point"),
      llvm::cl::init(AttentionForm::automatic),
      llvm::cl::values(
          clEnumValN(AttentionForm::automatic, "auto",
                     "chosen by moe-absorb-mla's cost model"),
          clEnumValN(AttentionForm::absorbed, "absorbed",
                     "attention over the latent cache"),
          clEnumValN(AttentionForm::naive, "naive",
                     "kv_b expanded per cached token"))};
};

/// Adds the moe-compile passes to `pm`, which must run on builtin.module:
/// canonicalize, moe-kv-cache-type, (with quantize=fp8) moe-quantize-fp8, moe-split-phases, moe-decompose-mla, moe-decompose-moe,
/// moe-absorb-mla{function=prefill}, moe-absorb-mla{function=decode}, the fusions,
/// canonicalize, (with activations=bf16) moe-bf16-activations or (with
/// activations=fp8) moe-fp8-activations (the function-level
/// passes nested on func.func).
void buildCompilePipeline(OpPassManager &pm,
                          const MoeCompilePipelineOptions &options);

/// The textual pipeline buildCompilePipeline builds, every pass option
/// spelled out: `builtin.module(func.func(canonicalize{...}),moe-split-phases,...)`.
/// `moec-opt --pass-pipeline=<it>` replays a compile; plans record it.
std::string compilePipelineString(const MoeCompilePipelineOptions &options);

/// The options as `moe-compile` takes them, e.g.
/// `moe-compile{decode-mla-form=absorbed prefill-mla-form=naive}`.
std::string compilePipelineInvocation(const MoeCompilePipelineOptions &options);

/// Registers `moe-compile` with the pass registry (moec-opt's
/// `--moe-compile`, and pipelines parsed from text).
void registerCompilePipeline();

} // namespace mlir::moe

#endif // MOEC_TRANSFORMS_PIPELINES_H
