//===- StepKernelsTest.cpp - every golden variant's GPU kernels -----------===//
//
// For every golden fixture (tests/golden/data) and both GPU targets, `moec
// compile --target=sm_90a,sm_80` puts a kernel module into the plan: the tests
// check that each step of a kind with a generator got a kernel entry, that the
// launch shapes are what the runtime expects, that the PTX holds the
// instructions that matter, and that ptxas assembles every kernel with zero
// spill bytes (skipped, with one line, where ptxas is absent).
//
//===----------------------------------------------------------------------===//

#include "moec/Codegen/Ptxas.h"
#include "moec/Codegen/StepKernels.h"
#include "moec/Driver/Driver.h"
#include "moec/runtime/PlanFormat.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include "../golden/GoldenVariants.h"

#include <gtest/gtest.h>

#include <set>

namespace {

namespace plan = moec::plan;

const std::string kGolden = MOEC_GOLDEN_DIR;

/// What one compile of a fixture is checked for.
struct Case {
  std::string variant;       ///< the manifest's name
  std::string checkpoint;    ///< its checkpoint directory
  bool quantizeFp8 = false;  ///< --quantize=fp8
  bool bf16Acts = false;     ///< --activations=bf16
  bool fp8Acts = false;      ///< --activations=fp8
};

std::string caseName(const testing::TestParamInfo<Case> &info) {
  return info.param.variant + (info.param.quantizeFp8 ? "_quantized_fp8" : "") +
         (info.param.bf16Acts ? "_bf16acts" : "") + (info.param.fp8Acts ? "_fp8acts" : "");
}

/// What the kernel modules of a compiled plan look like.
struct Module {
  std::string chip, ptx;
  std::vector<uint8_t> cubin;
  std::vector<plan::KernelEntryT> entries;
  std::vector<plan::KernelEntryT> argmax; ///< KernelModule.argmax
};
struct Compiled {
  std::vector<plan::StepKind> stepKinds;
  /// Per step: its first operand, and its last result (an RMSNorm's normed output).
  std::vector<int32_t> firstOperand, lastResult;
  std::vector<Module> modules;
  bool hasFp8Weights = false;
};

Compiled compileWithKernels(const Case &c) {
  llvm::SmallString<128> dir;
  EXPECT_FALSE(llvm::sys::fs::createUniqueDirectory("moec-step-kernels", dir));
  moec::driver::CompileOptions o;
  o.checkpointDir = c.checkpoint;
  o.output = (dir + "/model.plan").str();
  o.quiet = true;
  o.weights = moec::WeightPlacement::External;
  o.quantize = c.quantizeFp8 ? moec::driver::QuantizeMode::fp8 : moec::driver::QuantizeMode::none;
  o.activations = c.bf16Acts  ? moec::driver::ActivationElement::bf16
                  : c.fp8Acts ? moec::driver::ActivationElement::fp8
                              : moec::driver::ActivationElement::f32;
  o.gpuTargets = {"sm_90a", "sm_80"};
  Compiled out;
  o.inspectPlan = [&](const plan::PlanT &p) -> llvm::Error {
    for (const auto &step : p.steps) {
      out.stepKinds.push_back(step->kind);
      out.firstOperand.push_back(step->operands.empty() ? -1 : step->operands[0]);
      out.lastResult.push_back(step->results.empty() ? -1 : step->results.back());
    }
    for (const auto &w : p.weights)
      out.hasFp8Weights |= w->dtype == plan::DType::F8E4M3;
    for (const auto &m : p.kernel_modules) {
      Module copy{m->target_arch, m->ptx, m->cubin, {}};
      for (const auto &e : m->kernels)
        copy.entries.push_back(*e);
      for (const auto &e : m->argmax)
        copy.argmax.push_back(*e);
      out.modules.push_back(std::move(copy));
    }
    return llvm::Error::success();
  };
  llvm::Error err = moec::driver::compile(o);
  EXPECT_FALSE(static_cast<bool>(err)) << llvm::toString(std::move(err));
  llvm::sys::fs::remove_directories(dir);
  return out;
}

class StepKernels : public testing::TestWithParam<Case> {};

TEST_P(StepKernels, EveryGeneratedKindHasAKernelWithItsLaunchShape) {
  Compiled compiled = compileWithKernels(GetParam());
  ASSERT_EQ(compiled.modules.size(), 2u);
  EXPECT_EQ(compiled.modules[0].chip, "sm_90a");
  EXPECT_EQ(compiled.modules[1].chip, "sm_80");
  for (const Module &m : compiled.modules) {
    SCOPED_TRACE(m.chip);
    std::set<int32_t> covered;
    for (const plan::KernelEntryT &e : m.entries) {
      ASSERT_GE(e.step, 0);
      ASSERT_LT(size_t(e.step), compiled.stepKinds.size());
      covered.insert(e.step);
      EXPECT_NE(m.ptx.find(".entry " + e.name + "("), std::string::npos) << e.name;
      ASSERT_EQ(e.grid.size(), 3u);
      ASSERT_EQ(e.block.size(), 3u);
      EXPECT_EQ(e.grid[0], 1u) << "grid x is the token axis";
      // The routed experts' grouped GEMM (FP8 activations, sm_90a, from 16 tokens):
      // _grouped_route, a warp per expert (grid y, not the token axis), then x
      // quantized, the gate_up GEMM, silu, h quantized, the down GEMM, the sum.
      const bool grouped = e.name.find("_grouped_") != std::string::npos;
      const bool route = grouped && e.name.find("_grouped_route") != std::string::npos;
      EXPECT_EQ(e.tokens_per_block >= 1u, !route) << e.name;
      // The wgmma GEMMs: linear steps', an MLP's two products (_gate_up_wgmma,
      // _down_wgmma; its silu between them is _silu_wgmma, 256 threads, no TMA), and
      // the routed experts' two (their weights copied by the threads: no TMA).
      const bool gemm = e.name.rfind("moec_linear_wgmma_", 0) == 0 ||
                        (e.name.find("_wgmma") != std::string::npos &&
                         e.name.find("_silu_wgmma") == std::string::npos);
      // A GEMM's first kernel: the activations quantized once, into scratch.
      const bool actQuant = e.name.find("actquant") != std::string::npos;
      if (gemm || actQuant)
        EXPECT_TRUE(GetParam().fp8Acts && m.chip == "sm_90a") << e.name;
      EXPECT_TRUE(e.block[0] == 32 || e.block[0] == 256 || (gemm && e.block[0] == 128))
          << e.block[0];
      // TMA: a 16 x 64 box of the weight, and only for the GEMM.
      const std::vector<uint32_t> box =
          gemm && !grouped ? std::vector<uint32_t>{16, 64} : std::vector<uint32_t>();
      EXPECT_EQ(e.tma_box, box) << e.name;
      plan::StepKind kind = compiled.stepKinds[e.step];
      if (grouped) {
        EXPECT_EQ(kind, plan::StepKind::FusedMoeExperts) << e.name;
        EXPECT_TRUE(GetParam().fp8Acts && m.chip == "sm_90a") << e.name;
        EXPECT_EQ(e.min_tokens, 16u) << e.name;
        EXPECT_EQ(e.max_tokens, 0u) << e.name;
        if (route)
          EXPECT_EQ(e.block[0], 32u) << e.name;
        if (route)
          EXPECT_GE(e.grid[1], 2u) << e.name << ": a block per expert";
        // Every kernel of the step shares one scratch layout.
        for (const plan::KernelEntryT &other : m.entries)
          if (other.step == e.step && other.name.find("_grouped_") != std::string::npos)
            EXPECT_EQ(other.scratch_bytes_per_token, e.scratch_bytes_per_token) << other.name;
      }
      if (kind == plan::StepKind::FusedMoeExperts && !grouped) {
        // The per-token kernels take the batches below the grouped GEMM's, if any.
        bool hasGrouped = false;
        for (const plan::KernelEntryT &other : m.entries)
          hasGrouped |= other.step == e.step && other.name.find("_grouped_") != std::string::npos;
        EXPECT_EQ(e.max_tokens, hasGrouped ? 15u : 0u) << e.name;
      }
      EXPECT_TRUE(moec::ptx::hasStepKernelGenerator(kind)) << moec::stepKindName(kind);
      if (kind == plan::StepKind::Linear || kind == plan::StepKind::HeadLinear) {
        // 16-token tiles on the tensor cores (bf16 activations), 64 in the wgmma
        // GEMM (FP8 activations, sm_90a, from 16 tokens: the matrix-vector kernel
        // takes the smaller batches), else 4 per block, and 1 in the matrix-vector
        // kernel for one token (decode: "_t1").
        bool mma = e.name.rfind("moec_linear_mma_", 0) == 0;
        bool single = e.name.size() > 3 && e.name.compare(e.name.size() - 3, 3, "_t1") == 0;
        EXPECT_EQ(e.tokens_per_block,
                  mma ? 16u : gemm ? 64u : (actQuant || single) ? 1u : 4u)
            << e.name;
        EXPECT_TRUE(!mma || GetParam().bf16Acts) << e.name;
        EXPECT_TRUE(!(gemm || actQuant) || (GetParam().fp8Acts && m.chip == "sm_90a")) << e.name;
        if (gemm || actQuant)
          EXPECT_EQ(e.min_tokens, 16u) << e.name;
        EXPECT_EQ(single, !mma && e.max_tokens == 1) << e.name;
        if (!mma && !gemm && !actQuant && !single)
          EXPECT_EQ(e.min_tokens, 2u) << e.name << ": one token runs the _t1 kernel";
        if (e.max_tokens > 0) { // the alternative below the next one's batch sizes
          EXPECT_TRUE(e.max_tokens == 1 || e.max_tokens == 15) << e.name;
          bool paired = false;
          for (const plan::KernelEntryT &other : m.entries)
            paired |= other.step == e.step && other.min_tokens == e.max_tokens + 1;
          EXPECT_TRUE(paired) << e.name << " has no alternative for "
                              << e.max_tokens + 1 << " tokens or more";
        }
      }
      // Phased steps pass data through scratch (the GEMM's codes and scales too);
      // the routed experts their weights through a table.
      // MLA decode splits each head's rows, then combines the partial softmaxes.
      const bool split = e.name.rfind("moec_latent_attention_split_", 0) == 0 ||
                         e.name.rfind("moec_latent_attention_combine_", 0) == 0;
      EXPECT_EQ(e.max_tokens, split ? 16u : e.max_tokens) << e.name;
      if (split)
        EXPECT_EQ(e.grid[2], e.name.find("_split_") != std::string::npos ? 16u : 1u) << e.name;
      // An RMSNorm right before FP8 GEMMs that read its output (a linear step's, an
      // MLP's, the routed experts' grouped GEMM; routers may come between, as in an MoE
      // layer) quantizes for them (from 16 tokens, into their scratch); those steps
      // have no quantize kernel for their input, and the norm's kernel, their GEMMs'
      // kernels and the routers' kernels share one scratch row.
      const bool normQuant = e.name.find("_fp8q_") != std::string::npos;
      if (normQuant) {
        EXPECT_TRUE(kind == plan::StepKind::RmsNorm || kind == plan::StepKind::AddRmsNorm)
            << e.name;
        EXPECT_TRUE(GetParam().fp8Acts && m.chip == "sm_90a") << e.name;
        EXPECT_EQ(e.min_tokens, 16u) << e.name;
        bool plainBelow = false;
        for (const plan::KernelEntryT &other : m.entries)
          plainBelow |= other.step == e.step && other.max_tokens == 15;
        EXPECT_TRUE(plainBelow) << e.name << ": the plain norm takes up to 15 tokens";
        size_t consumers = 0;
        for (size_t s = size_t(e.step) + 1; s < compiled.stepKinds.size(); ++s) {
          const bool router = compiled.stepKinds[s] == plan::StepKind::Router;
          bool gemmHere = false, quantHere = false;
          for (const plan::KernelEntryT &other : m.entries) {
            if (other.step != int32_t(s))
              continue;
            gemmHere |= other.name.rfind("moec_linear_wgmma_", 0) == 0 ||
                        other.name.find("_gate_up_wgmma") != std::string::npos;
            quantHere |= other.name.rfind("moec_linear_actquant_", 0) == 0 ||
                         other.name.find("_gate_up_actquant") != std::string::npos;
          }
          if ((!router && !gemmHere) ||
              compiled.firstOperand[s] != compiled.lastResult[size_t(e.step)])
            break;
          EXPECT_FALSE(quantHere) << "step " << s << " after " << e.name;
          consumers += gemmHere;
          for (const plan::KernelEntryT &other : m.entries)
            if (other.step == int32_t(s) && (router || other.min_tokens == 16))
              EXPECT_EQ(other.scratch_bytes_per_token, e.scratch_bytes_per_token)
                  << other.name << " after " << e.name;
        }
        EXPECT_GE(consumers, 1u) << e.name << ": no GEMM reads its codes";
      }
      bool phased = gemm || actQuant || normQuant || split || kind == plan::StepKind::Router ||
                    kind == plan::StepKind::SwigluMlp ||
                    kind == plan::StepKind::FusedSwigluMlp ||
                    kind == plan::StepKind::MoeExperts ||
                    kind == plan::StepKind::FusedMoeExperts ||
                    kind == plan::StepKind::ExpandedAttention;
      EXPECT_EQ(e.scratch_bytes_per_token > 0, phased) << e.name;
      EXPECT_EQ(e.weight_table, kind == plan::StepKind::MoeExperts ||
                                    kind == plan::StepKind::FusedMoeExperts)
          << e.name;
    }
    // Greedy decoding on the device: a warp per (row, 1/32 of the vocabulary), then
    // a warp per row over the 32 winners, through 8 bytes of scratch per winner.
    ASSERT_EQ(m.argmax.size(), 2u);
    for (const plan::KernelEntryT &e : m.argmax) {
      const bool split = e.name.rfind("moec_argmax_split_v", 0) == 0;
      EXPECT_TRUE(split || e.name.rfind("moec_argmax_combine_v", 0) == 0) << e.name;
      EXPECT_NE(m.ptx.find(".entry " + e.name + "("), std::string::npos) << e.name;
      EXPECT_EQ(e.step, -1) << e.name;
      EXPECT_EQ(e.block, (std::vector<uint32_t>{32, 1, 1})) << e.name;
      EXPECT_EQ(e.grid, (std::vector<uint32_t>{1, 1, split ? 32u : 1u})) << e.name;
      EXPECT_EQ(e.tokens_per_block, 1u) << e.name;
      EXPECT_EQ(e.scratch_bytes_per_token, 256u) << e.name;
    }
    EXPECT_EQ(m.argmax[0].name.rfind("moec_argmax_split_v", 0), 0u) << "split runs first";
    // Every step of every golden plan has its kernels (their KV caches are bf16).
    for (size_t s = 0; s < compiled.stepKinds.size(); ++s)
      EXPECT_TRUE(covered.count(int32_t(s)))
          << "step " << s << " (" << moec::stepKindName(compiled.stepKinds[s])
          << ") has no kernel";
    EXPECT_NE(m.ptx.find(".target " + m.chip), std::string::npos);
    EXPECT_NE(m.ptx.find("shfl.sync.bfly.b32"), std::string::npos);
    EXPECT_NE(m.ptx.find("sqrt.rn.f32"), std::string::npos);
    bool sm90 = m.chip == "sm_90a";
    bool cvt = m.ptx.find("cvt.rn.f16x2.e4m3x2") != std::string::npos;
    EXPECT_EQ(cvt, sm90 && compiled.hasFp8Weights)
        << "FP8 weights widen through cvt.rn.f16x2.e4m3x2 on sm_90a only";
    EXPECT_EQ(m.ptx.find("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32") !=
                  std::string::npos,
              GetParam().bf16Acts)
        << "bf16 activations put the linear steps on the tensor cores";
    EXPECT_EQ(m.ptx.find("_fp8acts(") != std::string::npos, GetParam().fp8Acts)
        << "FP8 activations have kernels of their own (quantizing per 128 columns)";
    // FP8 activations on sm_90a: the linear steps' prefill on the FP8 tensor cores.
    const bool hopperGemm = sm90 && GetParam().fp8Acts;
    for (const char *instruction :
         {"wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3",
          "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes",
          "mbarrier.try_wait.parity", "mbarrier.arrive.expect_tx", "wgmma.wait_group.sync.aligned",
          "fence.proxy.async.shared::cta"})
      EXPECT_EQ(m.ptx.find(instruction) != std::string::npos, hopperGemm) << instruction;
    // ... and the trained model's routed experts (128-wide FP8 blocks, 256 x 128
    // products) on the grouped GEMM.
    size_t groupedKernels = 0;
    for (const plan::KernelEntryT &e : m.entries)
      groupedKernels += e.name.find("_grouped_") != std::string::npos;
    if (GetParam().variant.rfind("poems", 0) == 0)
      EXPECT_EQ(groupedKernels, hopperGemm ? 6u * 3u * 2u : 0u)
          << "six kernels for each of three MoE layers in prefill and decode (x is "
             "quantized by the RMSNorm before the router)";
    size_t normQuants = 0;
    for (const plan::KernelEntryT &e : m.entries)
      normQuants += e.name.find("_fp8q_") != std::string::npos;
    EXPECT_EQ(normQuants > 0, hopperGemm) << "RMSNorms quantize for the GEMM after them";
  }
}

TEST_P(StepKernels, PtxasAssemblesEveryKernelWithoutSpills) {
  std::optional<std::string> ptxas = moec::ptx::findPtxas();
  if (!ptxas)
    GTEST_SKIP() << "ptxas not found (CUDA_HOME, PATH, /usr/local/cuda/bin): the "
                    "generated PTX is not assembled";
  Compiled compiled = compileWithKernels(GetParam());
  for (const Module &m : compiled.modules) {
    SCOPED_TRACE(m.chip);
    EXPECT_FALSE(m.cubin.empty()) << "the compile found ptxas but stored no cubin";
    auto assembled = moec::ptx::assemblePtx(*ptxas, m.ptx, m.chip);
    ASSERT_TRUE(static_cast<bool>(assembled)) << llvm::toString(assembled.takeError());
    std::set<std::string> names;
    for (const plan::KernelEntryT &e : m.entries)
      names.insert(e.name);
    for (const plan::KernelEntryT &e : m.argmax)
      names.insert(e.name);
    ASSERT_EQ(assembled->kernels.size(), names.size()) << assembled->log;
    for (const moec::ptx::KernelResources &k : assembled->kernels) {
      EXPECT_TRUE(names.count(k.name)) << k.name;
      EXPECT_EQ(k.spillStoreBytes, 0u) << k.name;
      EXPECT_EQ(k.spillLoadBytes, 0u) << k.name;
      EXPECT_EQ(k.stackBytes, 0u) << k.name;
      EXPECT_GT(k.registers, 0u) << k.name;
      // 8 warps per block: 64 registers keep a full SM busy. The wgmma GEMM runs one
      // warpgroup per block with 32 accumulators and a block's 32 sums in registers.
      const bool gemm = k.name.find("_wgmma") != std::string::npos &&
                        k.name.find("_silu_wgmma") == std::string::npos;
      EXPECT_LE(k.registers, gemm ? 128u : 64u) << k.name;
    }
  }
}

/// Every variant of tests/golden/manifest.json; the unquantized ones also with
/// --quantize=fp8, and with bf16 activations; every one with FP8 weights and FP8
/// activations.
std::vector<Case> cases() {
  std::vector<Case> out;
  for (const moec::testing::GoldenVariant &v : moec::testing::goldenVariants(kGolden)) {
    const std::string &name = v.name, &path = v.checkpoint;
    out.push_back({name, path});
    if (name.find("fp8") == std::string::npos) {
      out.push_back({name, path, /*quantizeFp8=*/true});
      out.push_back({name, path, true, /*bf16Acts=*/true});
      out.push_back({name, path, true, false, /*fp8Acts=*/true});
    } else {
      out.push_back({name, path, false, false, /*fp8Acts=*/true});
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(GoldenVariants, StepKernels, testing::ValuesIn(cases()), caseName);

TEST(StepKernels, ParsesPtxasResourceLines) {
  auto kernels = moec::ptx::parsePtxasLog(
      "ptxas info    : 0 bytes gmem\n"
      "ptxas info    : Compiling entry function 'moec_add_256' for 'sm_90a'\n"
      "ptxas info    : Function properties for moec_add_256\n"
      "    8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n"
      "ptxas info    : Used 12 registers, used 0 barriers, 2048 bytes smem, 380 bytes cmem[0]\n"
      "ptxas info    : Compiling entry function 'k2' for 'sm_90a'\n"
      "ptxas info    : Used 7 registers\n");
  ASSERT_EQ(kernels.size(), 2u);
  EXPECT_EQ(kernels[0].name, "moec_add_256");
  EXPECT_EQ(kernels[0].registers, 12u);
  EXPECT_EQ(kernels[0].sharedBytes, 2048u);
  EXPECT_EQ(kernels[0].stackBytes, 8u);
  EXPECT_EQ(kernels[0].spillStoreBytes, 4u);
  EXPECT_EQ(kernels[0].spillLoadBytes, 12u);
  EXPECT_EQ(kernels[1].name, "k2");
  EXPECT_EQ(kernels[1].registers, 7u);
}

TEST(StepKernels, RejectsAnUnknownTarget) {
  auto targets = moec::driver::parseTargetList("cpu,sm_70");
  ASSERT_FALSE(static_cast<bool>(targets));
  EXPECT_EQ(llvm::toString(targets.takeError()),
            "unknown --target 'sm_70' (targets: cpu, sm_90a, sm_80)");
  auto ok = moec::driver::parseTargetList("cpu, sm_80,sm_90a,sm_80");
  ASSERT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(*ok, (std::vector<std::string>{"sm_80", "sm_90a"}));
}

} // namespace
