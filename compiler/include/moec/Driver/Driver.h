//===- Driver.h - the work behind moec's subcommands -------------*- C++ -*-===//
#ifndef MOEC_DRIVER_DRIVER_H
#define MOEC_DRIVER_DRIVER_H

#include "moec/Dialect/Moe/IR/MoeDialect.h"
#include "moec/Plan/PlanEmitter.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace moec::driver {

/// Generates `kernel`'s PTX for `arch` and writes it atomically to `output`
/// ("-" is stdout). Nothing is written when generation fails.
llvm::Error emitPtx(llvm::StringRef kernel, llvm::StringRef arch,
                    llvm::StringRef output);

/// What `moec compile` produces.
enum class EmitKind {
  Plan, ///< the plan file (default)
  Mlir, ///< the imported moe-dialect module, before any pass
};

/// Options of `moec compile`.
/// How MLA attention is evaluated in one phase (docs/pipeline.md): the
/// pipeline's own typed option.
using MlaForm = mlir::moe::AttentionForm;
using QuantizeMode = mlir::moe::QuantizeMode;
using Fp8ScaleFormat = mlir::moe::Fp8ScaleFormat;
using KvCacheElement = mlir::moe::KvCacheElement;
using ActivationElement = mlir::moe::ActivationElement;

struct CompileOptions {
  std::string checkpointDir;                        ///< HF checkpoint directory
  std::string output;                               ///< plan (or .mlir) path
  WeightPlacement weights = WeightPlacement::Embed; ///< --weights
  int64_t maxTokens = 1024;                         ///< --max-tokens
  EmitKind emit = EmitKind::Plan;                   ///< --emit
  bool printIrAfterAll = false;                     ///< --print-ir-after-all
  MlaForm prefillMlaForm = MlaForm::automatic;      ///< --prefill-mla-form (or --mla-form)
  MlaForm decodeMlaForm = MlaForm::automatic;       ///< --decode-mla-form (or --mla-form)
  bool quiet = false;                               ///< no summary on stderr
  QuantizeMode quantize = QuantizeMode::none;       ///< --quantize
  bool quantizeLmHead = false;                      ///< --quantize-lm-head
  Fp8ScaleFormat fp8Scale = Fp8ScaleFormat::fp32;   ///< --fp8-scale
  KvCacheElement kvCache = KvCacheElement::bf16;    ///< --kv-cache (--precision=exact: f32)
  ActivationElement activations = ActivationElement::f32; ///< --activations
  bool fuseResidualNorm = true;                     ///< not --no-fuse-residual-norm
  bool fuseGateUp = true;                           ///< not --no-fuse-gate-up
  bool fuseMlaInputProj = true;                     ///< not --no-fuse-mla-input-proj
  bool report = false;                              ///< passes emit their remarks
  /// --accuracy-report: also compile the unquantized plan (to a temporary
  /// directory), run both on `calibrationTokens` and print the comparison.
  bool accuracyReport = false;
  std::vector<int32_t> calibrationTokens;           ///< --calibration-tokens (empty: default)
  /// --target's GPU chips ("sm_90a", "sm_80"): each adds a kernel module to the plan.
  std::vector<std::string> gpuTargets;
  /// Called with the finished plan (kernels included) before it is written.
  std::function<llvm::Error(const plan::PlanT &)> inspectPlan;
};

/// The GPU chips of a --target list such as "cpu,sm_90a,sm_80" (cpu needs no
/// kernels and adds none); an unknown name is an error listing the targets.
llvm::Expected<std::vector<std::string>> parseTargetList(llvm::StringRef list);

/// moec emit-ptx CKPT: compiles `options` (its output and weight placement are
/// ignored: nothing but the kernels is kept) and writes one .ptx per distinct
/// kernel into `dir`/<chip>/, and, when ptxas is found, `dir`/resources.tsv
/// (the table is printed on stdout too).
llvm::Error emitCheckpointPtx(const CompileOptions &options, llvm::StringRef dir);

/// The textual pass pipeline `moec compile` runs for `options`: the registered
/// `moe-compile` pipeline with its options, e.g. "builtin.module(moe-compile{
/// decode-mla-form=absorbed fp8-scale=float fuse-gate-up=true fuse-mla-input-proj=true fuse-residual-norm=true prefill-mla-form=absorbed quantize=fp8
/// quantize-lm-head=false report=false})". `moec-opt --pass-pipeline=<it>` replays the compile;
/// the plan records it.
std::string pipelineFor(const CompileOptions &options);

/// Compiles a checkpoint directory into a plan (see CompileOptions). Notes,
/// progress and the summary go to stderr; nothing is written on failure.
llvm::Error compile(const CompileOptions &options);

/// What `moec explain` writes.
enum class ExplainFormat {
  Html, ///< one self-contained page (default)
  Json, ///< the same facts for scripts (docs/explain.md)
};

/// Options of `moec explain`.
struct ExplainOptions {
  CompileOptions compile;      ///< how to compile (its `output` is ignored)
  std::string output;          ///< the report ("-" is stdout)
  ExplainFormat format = ExplainFormat::Html;
  std::string planPath;        ///< --plan: keep the plan here (empty: a temporary one)
  std::string commandLine;     ///< the options as given, for the report
};

/// Compiles `options.compile` as `moec compile` would, watching every pass, and
/// writes what the compiler did (docs/explain.md) to `options.output`, atomically.
llvm::Error explain(const ExplainOptions &options);

/// What `moec bench` prints.
enum class BenchFormat {
  Markdown, ///< a table like llama-bench's, then the bytes and bandwidth lines
  Json,     ///< every repetition's figures, for scripts
};

/// Options of `moec bench`.
struct BenchCommandOptions {
  std::string plan;                  ///< the plan to measure
  int64_t promptTokens = 128;        ///< -p
  int64_t generateTokens = 64;       ///< -n
  int repetitions = 5;               ///< -r
  int threads = 0;                   ///< --threads (<= 0: the CPUs it may run on)
  uint32_t seed = 1;                 ///< --seed: the prompts' token ids
  bool bandwidth = true;             ///< not --no-bandwidth
  BenchFormat format = BenchFormat::Markdown;
  bool quiet = false;                ///< no progress on stderr
};

/// Measures a plan's prefill and decode speed (moec::runBench) and prints the
/// report on stdout.
llvm::Error bench(const BenchCommandOptions &options);

/// Writes synthetic checkpoint `preset` into `dir` (moec synth).
/// With `tokenizer`, the checkpoint gets moec's small synthetic tokenizer.
llvm::Error synth(llvm::StringRef preset, llvm::StringRef dir, uint64_t seed,
                  bool fp8, unsigned shards, bool tokenizer = true);

/// One line per synthetic preset: "name  description".
std::string listPresets();

} // namespace moec::driver

#endif // MOEC_DRIVER_DRIVER_H
