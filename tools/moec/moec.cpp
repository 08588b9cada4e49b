//===- moec.cpp - the moec command line: compile, synth, emit-ptx ---------===//
//
// A thin main: it parses arguments and calls the driver library.
//
//===----------------------------------------------------------------------===//

#include "moec/Driver/Driver.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace {
cl::OptionCategory moecCategory("moec options");

// moec emit-ptx
cl::SubCommand emitPtxCmd(
    "emit-ptx",
    "Generate the GPU kernels of a checkpoint's plan ahead of time, through LLVM's\n"
    "NVPTX backend: one .ptx per kernel in DIR/<target>/, specialised to the\n"
    "model's shapes, as moec compile --target puts them into the plan (the compile\n"
    "options --quantize, --activations, ... apply), and a resource table from\n"
    "ptxas -v (registers, shared memory, stack, spills) in DIR/resources.tsv and on\n"
    "stdout when the CUDA toolkit's ptxas is found (CUDA_HOME, PATH or\n"
    "/usr/local/cuda). Without a checkpoint, --kernel writes one standalone kernel.\n"
    "  example: moec emit-ptx ckpt/ --target=sm_90a,sm_80 -o kernels/\n"
    "           moec emit-ptx ckpt/ --quantize=fp8 --target=sm_90a -o kernels-fp8/\n"
    "           moec emit-ptx --kernel=rms_norm --arch=sm_90a -o rms_norm.ptx");
cl::opt<std::string> ptxInput(cl::Positional, cl::desc("[<checkpoint dir>]"),
                              cl::sub(emitPtxCmd));
cl::opt<std::string> ptxTargets("target",
                                cl::desc("GPU targets, comma-separated: sm_90a, sm_80 "
                                         "(default sm_90a)"),
                                cl::init("sm_90a"), cl::sub(emitPtxCmd),
                                cl::cat(moecCategory));
cl::opt<std::string> ptxKernel("kernel", cl::desc("Kernel to generate (rms_norm)"),
                               cl::init("rms_norm"), cl::sub(emitPtxCmd),
                               cl::cat(moecCategory));
cl::opt<std::string> ptxArch("arch", cl::desc("GPU architecture: sm_90a or sm_80"),
                             cl::init("sm_90a"), cl::sub(emitPtxCmd),
                             cl::cat(moecCategory));
cl::opt<std::string> ptxOutput("o",
                               cl::desc("Output directory with a checkpoint; the PTX file "
                                        "('-' for stdout) with --kernel"),
                               cl::value_desc("file"), cl::init("-"),
                               cl::sub(emitPtxCmd), cl::cat(moecCategory));
// moec bench
cl::SubCommand benchCmd(
    "bench",
    "Measure a plan's prefill and decode speed, as llama-bench does: after a warm-up\n"
    "(every weight page touched, then one untimed generation, so page faults on\n"
    "first touch happen before any timing), R repetitions of a P-token prefill of\n"
    "random ids and N greedy decode steps; median and range of tokens/s, the bytes\n"
    "one decode token reads, the machine's read bandwidth measured before each\n"
    "repetition with the same threads, and the fraction of it decode achieves.\n"
    "The CPU kernels' level (avx512-amx, avx512-vnni, avx512, avx2-vnni, avx2, scalar) is\n"
    "reported;"
    " the environment variable MOEC_SIMD=LEVEL caps it, to compare levels on one machine\n"
    "  example: moec bench model.plan -p 128 -n 64 -r 5\n"
    "           moec bench model.plan --threads 1 -o json > bench.json\n"
    "           MOEC_SIMD=avx2 moec bench model.plan");
cl::opt<std::string> benchPlan(cl::Positional, cl::desc("<plan>"), cl::Required,
                               cl::sub(benchCmd));
cl::opt<int64_t> benchPrompt("p", cl::desc("Prompt tokens per prefill (default 128)"),
                             cl::init(128), cl::sub(benchCmd), cl::cat(moecCategory));
cl::opt<int64_t> benchGenerate("n", cl::desc("Decode steps after each prefill (default 64)"),
                               cl::init(64), cl::sub(benchCmd), cl::cat(moecCategory));
cl::opt<int> benchReps("r", cl::desc("Repetitions (default 5)"), cl::init(5),
                       cl::sub(benchCmd), cl::cat(moecCategory));
cl::opt<int> benchThreads("threads",
                          cl::desc("Worker threads (default: the CPUs this process may run on)"),
                          cl::init(0), cl::sub(benchCmd), cl::cat(moecCategory));
cl::opt<unsigned> benchSeed("seed", cl::desc("Seed of the prompts' random token ids"),
                            cl::init(1), cl::sub(benchCmd), cl::cat(moecCategory));
cl::opt<bool> benchNoBandwidth(
    "no-bandwidth", cl::desc("Do not measure the read bandwidth (it needs a 1 GiB buffer)"),
    cl::sub(benchCmd), cl::cat(moecCategory));
cl::opt<bool> benchQuiet("quiet", cl::desc("No progress lines on stderr"), cl::sub(benchCmd),
                         cl::cat(moecCategory));
cl::opt<moec::driver::BenchFormat> benchFormat(
    "o", cl::desc("Report format on stdout"),
    cl::values(clEnumValN(moec::driver::BenchFormat::Markdown, "md",
                          "a markdown table and the bandwidth lines (default)"),
               clEnumValN(moec::driver::BenchFormat::Json, "json",
                          "every repetition's figures, for scripts")),
    cl::init(moec::driver::BenchFormat::Markdown), cl::sub(benchCmd), cl::cat(moecCategory));
// moec compile
cl::SubCommand compileCmd(
    "compile",
    "Compile a Hugging Face DeepSeek checkpoint directory into a plan\n"
    "  example: moec compile ckpt/ -o model.plan\n"
    "           moec compile ckpt/ --weights=external -o model.plan\n"
    "           moec compile ckpt/ --quantize=fp8 -o model-fp8.plan\n"
    "           moec compile ckpt/ --quantize=fp8 --accuracy-report -o model-fp8.plan\n"
    "           moec compile ckpt/ --precision=exact -o model-exact.plan\n"
    "           moec compile ckpt/ --activations=bf16 -o model-bf16acts.plan\n"
    "           moec compile ckpt/ --quantize=fp8 --activations=fp8 -o model-w8a8fp8.plan\n"
    "           moec compile ckpt/ --emit=mlir -o model.mlir\n"
    "           moec compile ckpt/ --quantize=fp8 --target=cpu,sm_90a,sm_80 -o model.plan\n"
    "  The pass pipeline (the plan records it; replay it with\n"
    "  moec-opt --pass-pipeline='...'):\n"
    "    builtin.module(moe-compile{activations=f32 decode-mla-form=auto fp8-scale=float\n"
    "        fuse-gate-up=true fuse-mla-input-proj=true fuse-residual-norm=true\n"
    "        activations=f32 kv-cache=bf16 prefill-mla-form=auto quantize=none\n"
    "        quantize-lm-head=false report=false})\n"
    "    = canonicalize,\n"
    "      moe-kv-cache-type (the latent KV cache's element type: bf16 by\n"
    "        default, fp8 e4m3 with --kv-cache=fp8, f32 with --kv-cache=f32\n"
    "        or --precision=exact),\n"
    "      moe-quantize-fp8 (only with --quantize=fp8: linear weights to FP8\n"
    "        e4m3 with 128x128 block scales, DeepSeek-V3's recipe),\n"
    "      moe-split-phases (@prefill, @decode), moe-decompose-mla,\n"
    "      moe-decompose-moe, moe-absorb-mla per phase (auto: a cost model\n"
    "        gives @prefill the naive form from the batch size where it is\n"
    "        cheaper, recorded in the plan, and @decode the absorbed one),\n"
    "      moe-fuse-mla-input-proj (q_a_proj or q_proj and kv_a_proj_with_mqa,\n"
    "        which read the same input, as one linear; --no-fuse-mla-input-proj),\n"
    "      moe-fuse-gate-up (each SwiGLU's gate and up as one product over\n"
    "        weights interleaved while the plan is packed, silu(g)*u as its\n"
    "        epilogue: dense MLPs, shared and routed experts; --no-fuse-gate-up),\n"
    "      moe-fuse-residual-norm (residual add + next RMSNorm in one step;\n"
    "        --no-fuse-residual-norm leaves them apart), canonicalize,\n"
    "      moe-bf16-activations (only with --activations=bf16: the weight\n"
    "        products round their inputs to bf16; AMX-BF16 tiles at prefill),\n"
    "      or moe-fp8-activations (only with --activations=fp8: the products\n"
    "        with FP8 weights quantize their inputs to e4m3 per token and 128\n"
    "        columns, as DeepSeek's FP8 GEMM and a Hopper GPU's FP8 tensor\n"
    "        cores do);\n"
    "    then the plan emitter (quantized weights are computed as they are packed).\n"
    "  --print-ir-after-all shows the IR after each pass; moec explain shows\n"
    "  what each pass did as a report.");
// moec explain: compiles like moec compile (the options both take are declared
// with both subcommands) and reports what the compiler did.
cl::SubCommand explainCmd(
    "explain",
    "Compile a checkpoint as moec compile would and write a report of what the\n"
    "compiler did, pass by pass: op counts, IR diffs and time per pass, weight\n"
    "bytes per dtype (with --quantize=fp8 the accuracy table), fusions, the MLA\n"
    "form chosen and its cost model, KV-cache bytes per token, the memory plan\n"
    "as a chart, the plan's summary. One self-contained HTML file (inline CSS\n"
    "and SVG, nothing fetched), or the same facts as JSON (docs/explain.md)\n"
    "  example: moec explain ckpt/ -o report.html\n"
    "           moec explain ckpt/ --quantize=fp8 -o report.html\n"
    "           moec explain ckpt/ --format=json -o - | jq '.passes[].name'");
cl::opt<std::string> explainInput(cl::Positional, cl::desc("<checkpoint dir>"),
                                  cl::Required, cl::sub(explainCmd));
cl::opt<std::string> explainOutput(
    "o", cl::desc("Report file ('-' for stdout; default: <checkpoint name>.explain.html "
                  "or .json in the current directory)"),
    cl::value_desc("file"), cl::sub(explainCmd), cl::cat(moecCategory));
cl::opt<moec::driver::ExplainFormat> explainFormat(
    "format", cl::desc("Report format"),
    cl::values(clEnumValN(moec::driver::ExplainFormat::Html, "html",
                          "one self-contained page (default)"),
               clEnumValN(moec::driver::ExplainFormat::Json, "json",
                          "the same facts, for scripts")),
    cl::init(moec::driver::ExplainFormat::Html), cl::sub(explainCmd), cl::cat(moecCategory));
cl::opt<std::string> explainPlan(
    "plan", cl::desc("Also keep the compiled plan at this path (default: it is removed)"),
    cl::value_desc("file"), cl::sub(explainCmd), cl::cat(moecCategory));
cl::opt<std::string> compileInput(cl::Positional, cl::desc("<checkpoint dir>"),
                                  cl::Required, cl::sub(compileCmd));
cl::opt<std::string> compileOutput("o", cl::desc("Output plan (or .mlir) file"),
                                   cl::value_desc("file"), cl::Required,
                                   cl::sub(compileCmd), cl::cat(moecCategory));
cl::opt<moec::WeightPlacement> compileWeights(
    "weights", cl::desc("Where the plan's weights live"),
    cl::values(clEnumValN(moec::WeightPlacement::Embed, "embed",
                          "copied into the plan: one self-contained file (default)"),
               clEnumValN(moec::WeightPlacement::External, "external",
                          "referenced in the checkpoint's safetensors files (weights "
                          "the compiler makes, quantized or stacked for a fusion, are "
                          "written into the plan)")),
    cl::init(moec::WeightPlacement::Embed), cl::sub(compileCmd), cl::sub(explainCmd),
    cl::cat(moecCategory));
cl::opt<int64_t> compileMaxTokens(
    "max-tokens",
    cl::desc("Most tokens one forward call may carry; activation memory is "
             "planned for it (default 1024)"),
    cl::init(1024), cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
cl::opt<moec::driver::EmitKind> compileEmit(
    "emit", cl::desc("What to write"),
    cl::values(clEnumValN(moec::driver::EmitKind::Plan, "plan", "the plan (default)"),
               clEnumValN(moec::driver::EmitKind::Mlir, "mlir",
                          "the imported moe-dialect IR, before any pass")),
    cl::init(moec::driver::EmitKind::Plan), cl::sub(compileCmd),
    cl::cat(moecCategory));
cl::opt<bool> compilePrintIr("print-ir-after-all",
                             cl::desc("Print the IR after every pass to stderr"),
                             cl::sub(compileCmd), cl::cat(moecCategory));
// How MLA attention is evaluated: the pipeline's typed options, per phase.
#define MOEC_MLA_FORM_VALUES                                                           \
  cl::values(clEnumValN(moec::driver::MlaForm::automatic, "auto",                       \
                        "a cost model chooses per entry point: naive for prefill "     \
                        "batches from the size it finds cheaper, absorbed for "        \
                        "decode; the plan records the size (default)"),                \
             clEnumValN(moec::driver::MlaForm::absorbed, "absorbed",                   \
                        "W_UK/W_UV per head around attention over the latent cache "   \
                        "(reads C + rope values per cached token; best for decode)"),  \
             clEnumValN(moec::driver::MlaForm::naive, "naive",                         \
                        "expand kv_b over every cached token, then standard "          \
                        "attention"))
cl::opt<moec::driver::MlaForm> compileMlaForm(
    "mla-form", cl::desc("How MLA attention runs in both phases (default: auto)"),
    MOEC_MLA_FORM_VALUES, cl::init(moec::driver::MlaForm::automatic), cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd),
    cl::cat(moecCategory));
cl::opt<moec::driver::MlaForm> compilePrefillMlaForm(
    "prefill-mla-form", cl::desc("MLA form of the prefill entry point (overrides --mla-form)"),
    MOEC_MLA_FORM_VALUES, cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
cl::opt<moec::driver::MlaForm> compileDecodeMlaForm(
    "decode-mla-form", cl::desc("MLA form of the decode entry point (overrides --mla-form)"),
    MOEC_MLA_FORM_VALUES, cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
#undef MOEC_MLA_FORM_VALUES
cl::opt<moec::driver::QuantizeMode> compileQuantize(
    "quantize", cl::desc("Weight quantization (default: none)"),
    cl::values(clEnumValN(moec::driver::QuantizeMode::none, "none",
                          "weights as the checkpoint stores them"),
               clEnumValN(moec::driver::QuantizeMode::fp8, "fp8",
                          "linear weights to FP8 e4m3 with 128x128 block scales, as "
                          "DeepSeek-V3 ships them; embeddings, norms, the router and "
                          "lm_head stay; an FP8 checkpoint passes through unchanged"),
               clEnumValN(moec::driver::QuantizeMode::int8, "int8",
                          "the same weights to int8 with 128x128 block scales; products "
                          "with them quantize their activations to int8 per token and "
                          "128 columns (W8A8, integer dot products on the CPU); an FP8 "
                          "checkpoint's weights are requantized (dequantized with their "
                          "block scales, then quantized to int8)")),
    cl::init(moec::driver::QuantizeMode::none), cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
cl::opt<bool> compileQuantizeLmHead(
    "quantize-lm-head", cl::desc("With --quantize=fp8 or int8, quantize lm_head too"),
    cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
cl::opt<moec::driver::Fp8ScaleFormat> compileFp8Scale(
    "fp8-scale", cl::desc("With --quantize=fp8, how block scales are stored"),
    cl::values(clEnumValN(moec::driver::Fp8ScaleFormat::fp32, "float",
                          "amax / 448 as float32 (DeepSeek-V3, R1; default)"),
               clEnumValN(moec::driver::Fp8ScaleFormat::ue8m0, "ue8m0",
                          "rounded up to a power of two (DeepSeek-V3.1)")),
    cl::init(moec::driver::Fp8ScaleFormat::fp32), cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
cl::opt<moec::driver::KvCacheElement> compileKvCache(
    "kv-cache", cl::desc("How the latent KV cache stores its values (moe-kv-cache-type)"),
    cl::values(clEnumValN(moec::driver::KvCacheElement::bf16, "bf16",
                          "bfloat16, rounded to nearest even when stored: half the bytes "
                          "per token of f32 (default)"),
               clEnumValN(moec::driver::KvCacheElement::fp8, "fp8",
                          "float8 e4m3, rounded to nearest even, saturating at +-448, no "
                          "scale: a quarter of f32's bytes"),
               clEnumValN(moec::driver::KvCacheElement::f32, "f32",
                          "float32, the exact path")),
    cl::init(moec::driver::KvCacheElement::bf16), cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd),
    cl::cat(moecCategory));
cl::opt<moec::driver::ActivationElement> compileActivations(
    "activations",
    cl::desc("What the matrix products round their input activations to "
             "(moe-bf16-activations, moe-fp8-activations)"),
    cl::values(clEnumValN(moec::driver::ActivationElement::f32, "f32",
                          "float32, the exact path (default)"),
               clEnumValN(moec::driver::ActivationElement::bf16, "bf16",
                          "bfloat16, rounded to nearest even, fp32 sums: bf16 weights run "
                          "on AMX-BF16 tiles at prefill where the CPU has them"),
               clEnumValN(moec::driver::ActivationElement::fp8, "fp8",
                          "e4m3 per token and 128 columns with a float32 scale, in the "
                          "products with FP8 weights (DeepSeek's FP8 GEMM; with "
                          "--quantize=fp8 or an FP8 checkpoint)")),
    cl::init(moec::driver::ActivationElement::f32), cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd),
    cl::cat(moecCategory));
enum class Precision { Fast, Exact };
cl::opt<Precision> compilePrecision(
    "precision", cl::desc("Numerics of the values the plan keeps between products"),
    cl::values(clEnumValN(Precision::Fast, "fast",
                          "the KV cache in bf16 unless --kv-cache says otherwise (default)"),
               clEnumValN(Precision::Exact, "exact",
                          "float32 everywhere the weights and --quantize allow: the KV "
                          "cache in f32; the golden tests check it to 1e-4")),
    cl::init(Precision::Fast), cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
cl::opt<bool> compileNoFuseResidualNorm(
    "no-fuse-residual-norm",
    cl::desc("Keep residual adds and RMSNorms as separate steps (for measuring the fusion)"),
    cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
cl::opt<bool> compileNoFuseGateUp(
    "no-fuse-gate-up",
    cl::desc("Keep each SwiGLU's gate and up projections as two products (for "
             "measuring the fusion)"),
    cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
cl::opt<bool> compileNoFuseMlaInputProj(
    "no-fuse-mla-input-proj",
    cl::desc("Keep MLA's query and latent input projections as two linears (for "
             "measuring the fusion)"),
    cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));
cl::opt<bool> compileAccuracyReport(
    "accuracy-report",
    cl::desc("With --quantize=fp8: also compile the unquantized plan, run both on "
             "calibration tokens and print the per-layer relative error of the hidden "
             "state, the logits' cosine similarity and the top-1 agreement"),
    cl::sub(compileCmd), cl::cat(moecCategory));
cl::list<int32_t> compileCalibrationTokens(
    "calibration-tokens",
    cl::desc("Token ids for --accuracy-report, comma-separated (default: 64 fixed ids "
             "spread over the vocabulary)"),
    cl::CommaSeparated, cl::sub(compileCmd), cl::sub(explainCmd), cl::cat(moecCategory));
cl::opt<std::string> compileTargets(
    "target",
    cl::desc("Where the plan will run, comma-separated: cpu (always), sm_90a (Hopper), "
             "sm_80 (Ampere). Each GPU target adds its kernels' PTX, and the cubin when "
             "ptxas is found, to the plan (default: cpu)"),
    cl::init("cpu"), cl::sub(compileCmd), cl::cat(moecCategory));
cl::opt<bool> compileQuiet("quiet", cl::desc("No notes, progress or summary"),
                           cl::sub(compileCmd), cl::sub(explainCmd), cl::sub(emitPtxCmd), cl::cat(moecCategory));

// moec synth
cl::SubCommand synthCmd(
    "synth",
    "Write a small deterministic DeepSeek-shaped checkpoint with random weights\n"
    "  example: moec synth --preset tiny-v3 -o tiny-v3/");
cl::opt<std::string> synthPreset("preset", cl::desc("Preset name (see --list)"),
                                 cl::init("tiny-v3"), cl::sub(synthCmd),
                                 cl::cat(moecCategory));
cl::opt<std::string> synthOutput("o", cl::desc("Output checkpoint directory"),
                                 cl::value_desc("dir"), cl::sub(synthCmd),
                                 cl::cat(moecCategory));
cl::opt<uint64_t> synthSeed("seed", cl::desc("Random seed (default 0)"),
                            cl::init(0), cl::sub(synthCmd), cl::cat(moecCategory));
cl::opt<bool> synthFp8("fp8",
                       cl::desc("Store projections as FP8 e4m3 with 128x128 "
                                "block scales, as DeepSeek-V3 ships"),
                       cl::sub(synthCmd), cl::cat(moecCategory));
cl::opt<unsigned> synthShards("shards",
                              cl::desc("Number of safetensors shards (default 1)"),
                              cl::init(1), cl::sub(synthCmd), cl::cat(moecCategory));
cl::opt<bool> synthNoTokenizer(
    "no-tokenizer",
    cl::desc("Write no tokenizer.json / tokenizer_config.json (by default the checkpoint "
             "gets moec's small byte-level BPE in DeepSeek-V3's format, 652 tokens, so "
             "its plans take and give text)"),
    cl::sub(synthCmd), cl::cat(moecCategory));
cl::opt<bool> synthList("list", cl::desc("List the presets and exit"),
                        cl::sub(synthCmd), cl::cat(moecCategory));
} // namespace

/// Prints `err` as one line and returns the process exit code.
static int fail(Error err) {
  WithColor::error(errs(), "moec") << toString(std::move(err)) << "\n";
  return 1;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(moecCategory);
  cl::ParseCommandLineOptions(
      argc, argv,
      "moec: ahead-of-time compiler for DeepSeek-family MoE models\n\n"
      "Subcommands:\n"
      "  compile    checkpoint directory -> plan (moec compile --help)\n"
      "  explain    compile and report what the compiler did, pass by pass, as\n"
      "             one HTML page or JSON (moec explain --help)\n"
      "  synth      write a small synthetic checkpoint (moec synth --help)\n"
      "  bench      measure a plan's prefill and decode speed (moec bench --help)\n"
      "  emit-ptx   generate a plan's GPU kernels as PTX (moec emit-ptx --help)\n\n"
      "Example, end to end:\n"
      "  moec synth --preset tiny-v3 -o tiny-v3/\n"
      "  moec compile tiny-v3/ -o tiny-v3.plan\n"
      "  moec-run tiny-v3.plan --tokens 3,14,15 --max-new-tokens 16\n"
      "  moec explain tiny-v3/ -o tiny-v3.html\n"
      "  moec bench tiny-v3.plan -p 64 -n 32\n");

  // The options compile and explain share.
  auto sharedOptions = [&](moec::driver::CompileOptions &o) -> Error {
    o.weights = compileWeights;
    o.maxTokens = compileMaxTokens;
    o.quiet = compileQuiet;
    o.prefillMlaForm = compilePrefillMlaForm.getNumOccurrences() ? compilePrefillMlaForm.getValue()
                                                                 : compileMlaForm.getValue();
    o.decodeMlaForm = compileDecodeMlaForm.getNumOccurrences() ? compileDecodeMlaForm.getValue()
                                                               : compileMlaForm.getValue();
    o.quantize = compileQuantize;
    o.quantizeLmHead = compileQuantizeLmHead;
    o.fp8Scale = compileFp8Scale;
    o.kvCache = compilePrecision == Precision::Exact ? moec::driver::KvCacheElement::f32
                                                     : compileKvCache.getValue();
    if (compilePrecision == Precision::Exact && compileKvCache.getNumOccurrences() &&
        compileKvCache != moec::driver::KvCacheElement::f32)
      return createStringError(inconvertibleErrorCode(),
                               "--precision=exact keeps the KV cache in f32; drop --kv-cache=%s",
                               compileKvCache == moec::driver::KvCacheElement::fp8 ? "fp8"
                                                                                    : "bf16");
    o.activations = compileActivations;
    if (compilePrecision == Precision::Exact &&
        compileActivations != moec::driver::ActivationElement::f32)
      return createStringError(inconvertibleErrorCode(),
                               "--precision=exact keeps the activations in f32; drop "
                               "--activations=%s",
                               compileActivations == moec::driver::ActivationElement::bf16
                                   ? "bf16"
                                   : "fp8");
    if (compileActivations == moec::driver::ActivationElement::fp8 &&
        o.quantize == moec::driver::QuantizeMode::int8)
      return createStringError(inconvertibleErrorCode(),
                               "--activations=fp8 quantizes the inputs of FP8 products; "
                               "--quantize=int8 quantizes its activations to int8 already");
    o.fuseResidualNorm = !compileNoFuseResidualNorm;
    o.fuseGateUp = !compileNoFuseGateUp;
    o.fuseMlaInputProj = !compileNoFuseMlaInputProj;
    o.calibrationTokens.assign(compileCalibrationTokens.begin(), compileCalibrationTokens.end());
    if (compileQuantizeLmHead && o.quantize == moec::driver::QuantizeMode::none)
      return createStringError(inconvertibleErrorCode(),
                               "--quantize-lm-head needs --quantize=fp8 or int8");
    if (compileFp8Scale.getNumOccurrences() && o.quantize != moec::driver::QuantizeMode::fp8)
      return createStringError(inconvertibleErrorCode(), "--fp8-scale needs --quantize=fp8");
    return Error::success();
  };

  if (explainCmd) {
    moec::driver::ExplainOptions e;
    e.compile.checkpointDir = explainInput;
    if (Error err = sharedOptions(e.compile))
      return fail(createStringError(inconvertibleErrorCode(), "moec explain: %s",
                                    toString(std::move(err)).c_str()));
    if (!e.compile.calibrationTokens.empty() &&
        e.compile.quantize == moec::driver::QuantizeMode::none)
      return fail(createStringError(inconvertibleErrorCode(),
                                    "moec explain: --calibration-tokens needs --quantize=fp8 "
                                    "or int8 (the accuracy table compares the quantized plan)"));
    e.format = explainFormat;
    e.planPath = explainPlan;
    e.output = explainOutput;
    if (e.output.empty()) {
      StringRef dir = StringRef(explainInput).rtrim('/');
      StringRef name = sys::path::filename(dir);
      e.output = (name.empty() ? std::string("moec") : name.str()) +
                 (e.format == moec::driver::ExplainFormat::Json ? ".explain.json"
                                                                : ".explain.html");
    }
    for (int i = 1; i < argc; ++i)
      e.commandLine += (i > 1 ? " " : "") + std::string(argv[i]);
    e.commandLine = "moec " + e.commandLine;
    if (Error err = moec::driver::explain(e))
      return fail(std::move(err));
    return 0;
  }

  if (compileCmd) {
    moec::driver::CompileOptions o;
    o.checkpointDir = compileInput;
    o.output = compileOutput;
    if (Error err = sharedOptions(o))
      return fail(createStringError(inconvertibleErrorCode(), "moec compile: %s",
                                    toString(std::move(err)).c_str()));
    o.emit = compileEmit;
    auto targets = moec::driver::parseTargetList(compileTargets);
    if (!targets)
      return fail(createStringError(inconvertibleErrorCode(), "moec compile: %s",
                                    toString(targets.takeError()).c_str()));
    o.gpuTargets = *targets;
    if (!o.gpuTargets.empty() && o.emit == moec::driver::EmitKind::Mlir)
      return fail(createStringError(inconvertibleErrorCode(),
                                    "moec compile: --target puts GPU kernels into a plan; "
                                    "--emit=mlir writes no plan (moec emit-ptx writes the "
                                    "kernels alone)"));
    o.printIrAfterAll = compilePrintIr;
    o.accuracyReport = compileAccuracyReport;
    if (!o.calibrationTokens.empty() && !o.accuracyReport)
      return fail(createStringError(inconvertibleErrorCode(),
                                    "moec compile: --calibration-tokens needs "
                                    "--accuracy-report"));
    if (Error err = moec::driver::compile(o))
      return fail(std::move(err));
    return 0;
  }
  if (benchCmd) {
    moec::driver::BenchCommandOptions b;
    b.plan = benchPlan;
    b.promptTokens = benchPrompt;
    b.generateTokens = benchGenerate;
    b.repetitions = benchReps;
    b.threads = benchThreads;
    b.seed = benchSeed;
    b.bandwidth = !benchNoBandwidth;
    b.format = benchFormat;
    b.quiet = benchQuiet;
    if (Error err = moec::driver::bench(b))
      return fail(std::move(err));
    return 0;
  }
  if (synthCmd) {
    if (synthList) {
      outs() << moec::driver::listPresets();
      return 0;
    }
    if (synthOutput.empty())
      return fail(createStringError(inconvertibleErrorCode(),
                                    "moec synth: -o DIR is required"));
    if (Error err = moec::driver::synth(synthPreset, synthOutput, synthSeed,
                                        synthFp8, synthShards, !synthNoTokenizer))
      return fail(std::move(err));
    errs() << "moec: wrote checkpoint '" << synthPreset << "' to " << synthOutput
           << "\n";
    return 0;
  }
  if (emitPtxCmd) {
    if (!ptxInput.empty()) {
      if (ptxKernel.getNumOccurrences() || ptxArch.getNumOccurrences())
        return fail(createStringError(inconvertibleErrorCode(),
                                      "moec emit-ptx: --kernel and --arch are for the "
                                      "standalone kernel; with a checkpoint use --target"));
      if (ptxOutput == "-")
        return fail(createStringError(inconvertibleErrorCode(),
                                      "moec emit-ptx: -o DIR is required with a checkpoint"));
      moec::driver::CompileOptions o;
      o.checkpointDir = ptxInput;
      if (Error err = sharedOptions(o))
        return fail(createStringError(inconvertibleErrorCode(), "moec emit-ptx: %s",
                                      toString(std::move(err)).c_str()));
      auto targets = moec::driver::parseTargetList(ptxTargets);
      if (!targets)
        return fail(createStringError(inconvertibleErrorCode(), "moec emit-ptx: %s",
                                      toString(targets.takeError()).c_str()));
      if (targets->empty())
        return fail(createStringError(inconvertibleErrorCode(),
                                      "moec emit-ptx: --target names no GPU (sm_90a, sm_80)"));
      o.gpuTargets = *targets;
      if (Error err = moec::driver::emitCheckpointPtx(o, ptxOutput))
        return fail(std::move(err));
      return 0;
    }
    if (ptxTargets.getNumOccurrences())
      return fail(createStringError(inconvertibleErrorCode(),
                                    "moec emit-ptx: --target needs a checkpoint directory"));
    if (Error err = moec::driver::emitPtx(ptxKernel, ptxArch, ptxOutput))
      return fail(std::move(err));
    return 0;
  }
  cl::PrintHelpMessage();
  return 1;
}
