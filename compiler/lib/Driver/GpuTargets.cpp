//===- GpuTargets.cpp - moec compile --target: GPU kernels in the plan ----===//

#include "CompileSteps.h"

#include "moec/Codegen/PTX.h"
#include "moec/Codegen/Ptxas.h"
#include "moec/Codegen/StepKernels.h"
#include "moec/checkpoint/SafetensorsWriter.h"
#include "moec/runtime/PlanFormat.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringExtras.h"

#include <set>

using namespace llvm;

namespace moec::driver {

Expected<std::vector<std::string>> parseTargetList(StringRef list) {
  std::vector<std::string> chips;
  SmallVector<StringRef> items;
  list.split(items, ',', /*MaxSplit=*/-1, /*KeepEmpty=*/false);
  if (items.empty())
    return createStringError(inconvertibleErrorCode(),
                             "--target is empty (use cpu, sm_90a, sm_80 or a list of them)");
  for (StringRef item : items) {
    item = item.trim();
    if (item == "cpu")
      continue; // every plan runs on the CPU
    if (!is_contained(ptx::supportedChips(), item))
      return createStringError(inconvertibleErrorCode(),
                               "unknown --target '%s' (targets: cpu, sm_90a, sm_80)",
                               item.str().c_str());
    if (!is_contained(chips, item.str()))
      chips.push_back(item.str());
  }
  return chips;
}

std::string detail::describeUncovered(const plan::PlanT &plan, ArrayRef<uint32_t> steps) {
  MapVector<StringRef, unsigned> kinds;
  for (uint32_t s : steps)
    ++kinds[stepKindName(plan.steps[s]->kind)];
  std::string text;
  for (auto &[kind, count] : kinds)
    text += formatv("{0}{1} ({2})", text.empty() ? "" : ", ", kind, count).str();
  return text;
}

Error detail::addKernelModules(plan::PlanT &plan, ArrayRef<std::string> chips,
                               std::vector<std::string> *lines) {
  std::optional<std::string> ptxas = ptx::findPtxas();
  for (const std::string &chip : chips) {
    auto generated = ptx::generateStepKernelPtx(plan, chip);
    if (!generated)
      return createStringError(inconvertibleErrorCode(), "%s kernels: %s", chip.c_str(),
                               toString(generated.takeError()).c_str());
    auto module = std::make_unique<plan::KernelModuleT>();
    module->target_arch = chip;
    module->ptx = generated->ptx;
    for (plan::KernelEntryT &entry : generated->entries)
      module->kernels.push_back(std::make_unique<plan::KernelEntryT>(std::move(entry)));
    for (plan::KernelEntryT &entry : generated->argmax)
      module->argmax.push_back(std::make_unique<plan::KernelEntryT>(std::move(entry)));
    std::string line =
        formatv("{0}: {1} kernels for {2} of {3} steps{5}, PTX {4:f1} KiB", chip,
                generated->distinctKernels, plan.steps.size() - generated->uncovered.size(),
                plan.steps.size(), generated->ptx.size() / 1024.0,
                generated->argmax.empty() ? "" : " and the greedy argmax");
    if (!generated->ptx.empty() && ptxas) {
      auto assembled = ptx::assemblePtx(*ptxas, generated->ptx, chip);
      if (!assembled)
        return assembled.takeError();
      module->cubin = std::move(assembled->cubin);
      module->ptxas_version = assembled->version;
      unsigned registers = 0;
      uint64_t spills = 0;
      for (const ptx::KernelResources &k : assembled->kernels) {
        registers = std::max(registers, k.registers);
        spills += k.spillStoreBytes + k.spillLoadBytes;
      }
      line += formatv(", cubin {0:f1} KiB (ptxas {1}: at most {2} registers, {3})",
                      module->cubin.size() / 1024.0, module->ptxas_version, registers,
                      spills ? formatv("{0} bytes of spills", spills).str()
                             : std::string("no spills"));
    } else if (!generated->ptx.empty()) {
      line += ", no cubin (ptxas not found: set CUDA_HOME or put ptxas on PATH; the "
              "driver will JIT-compile the PTX)";
    }
    // Steps whose prefill runs on the FP8 tensor cores: the TMA kernels, and the
    // routed experts' grouped GEMM (its weights copied by the threads).
    std::set<int32_t> gemmLinears, gemmMlps, gemmExperts;
    uint32_t gemmFrom = 0;
    for (const auto &entry : module->kernels) {
      bool grouped = StringRef(entry->name).ends_with("_grouped_down_wgmma");
      if (entry->tma_box.empty() && !grouped)
        continue;
      bool linear = plan.steps[size_t(entry->step)]->kind == plan::StepKind::Linear;
      (grouped ? gemmExperts : linear ? gemmLinears : gemmMlps).insert(entry->step);
      gemmFrom = entry->min_tokens;
    }
    if (!gemmLinears.empty() || !gemmMlps.empty() || !gemmExperts.empty()) {
      SmallVector<std::string> kinds;
      if (!gemmLinears.empty())
        kinds.push_back(formatv("{0} linear", gemmLinears.size()).str());
      if (!gemmMlps.empty())
        kinds.push_back(formatv("{0} MLP", gemmMlps.size()).str());
      if (!gemmExperts.empty())
        kinds.push_back(formatv("{0} routed-expert", gemmExperts.size()).str());
      std::string list = kinds.front();
      for (size_t i = 1; i < kinds.size(); ++i)
        list += (i + 1 == kinds.size() ? " and " : ", ") + kinds[i];
      line += formatv("; {0} step(s) on the FP8 tensor cores from {1} tokens (wgmma{2})", list,
                      gemmFrom,
                      gemmExperts.empty()                          ? ", TMA"
                      : gemmLinears.empty() && gemmMlps.empty() ? ""
                                                                : "; TMA for the dense weights")
                  .str();
    }
    if (!generated->uncovered.empty())
      line += "; no kernel yet for " + describeUncovered(plan, generated->uncovered);
    if (lines)
      lines->push_back(std::move(line));
    plan.kernel_modules.push_back(std::move(module));
  }
  return Error::success();
}

Error emitCheckpointPtx(const CompileOptions &options, StringRef dir) {
  struct ChipKernels {
    std::string chip;
    std::vector<ptx::KernelPtx> kernels;
    std::vector<uint32_t> uncovered;
  };
  std::vector<ChipKernels> generated;
  std::string uncoveredText;
  size_t numSteps = 0;

  // Compile as moec compile would, to a plan in a temporary directory (weights
  // referenced, not copied), and take the kernels from the finished plan.
  SmallString<128> tmp;
  if (std::error_code ec = sys::fs::createUniqueDirectory("moec-emit-ptx", tmp))
    return createStringError(ec, "cannot make a temporary directory: %s", ec.message().c_str());
  CompileOptions o = options;
  o.output = (tmp + "/kernels.plan").str();
  o.weights = WeightPlacement::External;
  o.emit = EmitKind::Plan;
  o.accuracyReport = false;
  o.quiet = true;
  o.gpuTargets.clear();
  o.inspectPlan = [&](const plan::PlanT &plan) -> Error {
    numSteps = plan.steps.size();
    for (const std::string &chip : options.gpuTargets) {
      ChipKernels c{chip};
      auto kernels = ptx::generateEachKernelPtx(plan, chip, &c.uncovered);
      if (!kernels)
        return kernels.takeError();
      c.kernels = std::move(*kernels);
      if (uncoveredText.empty() && !c.uncovered.empty())
        uncoveredText = detail::describeUncovered(plan, c.uncovered);
      generated.push_back(std::move(c));
    }
    return Error::success();
  };
  Error compiled = compile(o);
  sys::fs::remove_directories(tmp);
  if (compiled)
    return compiled;

  std::optional<std::string> ptxas = ptx::findPtxas();
  std::string table = "target\tkernel\tsteps\tregisters\tshared_bytes\tstack_bytes\t"
                      "spill_store_bytes\tspill_load_bytes\n";
  for (const ChipKernels &c : generated) {
    SmallString<128> chipDir(dir);
    sys::path::append(chipDir, c.chip);
    if (std::error_code ec = sys::fs::create_directories(chipDir))
      return createStringError(ec, "%s: cannot create the directory: %s", chipDir.c_str(),
                               ec.message().c_str());
    for (const ptx::KernelPtx &k : c.kernels) {
      SmallString<128> path(chipDir);
      sys::path::append(path, k.name + ".ptx");
      if (Error err = checkpoint::writeOutput(path, [&](raw_ostream &os) { os << k.ptx; }))
        return err;
      if (!ptxas)
        continue;
      auto assembled = ptx::assemblePtx(*ptxas, k.ptx, c.chip);
      if (!assembled)
        return createStringError(inconvertibleErrorCode(), "%s: %s", path.c_str(),
                                 toString(assembled.takeError()).c_str());
      for (const ptx::KernelResources &r : assembled->kernels)
        table += formatv("{0}\t{1}\t{2}\t{3}\t{4}\t{5}\t{6}\t{7}\n", c.chip, r.name,
                         k.steps.size(), r.registers, r.sharedBytes, r.stackBytes,
                         r.spillStoreBytes, r.spillLoadBytes)
                     .str();
    }
    bool argmax = llvm::any_of(c.kernels, [](const ptx::KernelPtx &k) {
      return StringRef(k.name).starts_with("moec_argmax_");
    });
    errs() << formatv("moec: {0}: wrote {1} kernels for {2} of {3} steps{5} to {4}\n", c.chip,
                      c.kernels.size(), numSteps - c.uncovered.size(), numSteps, chipDir,
                      argmax ? " and the greedy argmax" : "");
  }
  if (!uncoveredText.empty())
    errs() << "moec: note: no kernel yet for " << uncoveredText << "\n";
  if (!ptxas) {
    errs() << "moec: note: ptxas not found (set CUDA_HOME or put it on PATH): no resource "
              "table\n";
    return Error::success();
  }
  SmallString<128> tablePath(dir);
  sys::path::append(tablePath, "resources.tsv");
  if (Error err = checkpoint::writeOutput(tablePath, [&](raw_ostream &os) { os << table; }))
    return err;
  outs() << table;
  return Error::success();
}

} // namespace moec::driver
