//===- PtxBackend.cpp - lower gpu.module to PTX via LLVM's NVPTX backend ---===//

#include "moec/Codegen/PTX.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Triple.h"

#include <memory>
#include <mutex>

using namespace mlir;

namespace moec::ptx {

namespace {
/// A supported chip and the PTX ISA version it is emitted with.
struct ChipInfo {
  llvm::StringRef chip;
  llvm::StringRef features;
};
constexpr ChipInfo kChips[] = {
    {"sm_90a", "+ptx83"}, // Hopper; 'a' needs PTX ISA 8.0, fence.proxy.tensormap 8.3
    {"sm_80", "+ptx70"},  // Ampere
};
} // namespace

llvm::ArrayRef<llvm::StringRef> supportedChips() {
  static const llvm::StringRef names[] = {kChips[0].chip, kChips[1].chip};
  return names;
}

void registerPtxDialects(DialectRegistry &registry) {
  registry.insert<arith::ArithDialect, cf::ControlFlowDialect,
                  gpu::GPUDialect, LLVM::LLVMDialect, NVVM::NVVMDialect,
                  scf::SCFDialect>();
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
}

/// Collects the diagnostics emitted while `fn` runs into one error message.
static llvm::Error withDiagnostics(MLIRContext &ctx, llvm::StringRef what,
                                   llvm::function_ref<LogicalResult()> fn) {
  std::string messages;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &diag) {
    if (!messages.empty())
      messages += "; ";
    messages += diag.str();
    return success();
  });
  if (succeeded(fn()))
    return llvm::Error::success();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "%s failed: %s", what.str().c_str(),
                                 messages.c_str());
}

/// Runs LLVM's O3 middle end on the module for `tm`.
static void optimize(llvm::Module &module, llvm::TargetMachine &tm) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm =
      pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  mpm.run(module, mam);
}

llvm::Expected<std::string> translateToPtx(ModuleOp module,
                                           llvm::StringRef chip) {
  const ChipInfo *info = nullptr;
  for (const ChipInfo &c : kChips)
    if (c.chip == chip)
      info = &c;
  if (!info)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "unsupported GPU architecture '%s' (supported: sm_90a, sm_80)",
        chip.str().c_str());

  MLIRContext &ctx = *module.getContext();
  // gpu/scf/arith -> LLVM + NVVM, inside every gpu.module.
  if (llvm::Error err = withDiagnostics(ctx, "lowering to NVVM", [&] {
        PassManager pm(&ctx);
        pm.addPass(createSCFToControlFlowPass());
        ConvertGpuOpsToNVVMOpsOptions options;
        options.indexBitwidth = 64;
        pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps(options));
        // Constants feeding NVVM ops can survive the GPU conversion.
        pm.addNestedPass<gpu::GPUModuleOp>(createArithToLLVMConversionPass());
        // NVVM ops without an LLVM intrinsic (wgmma.mma_async, mbarrier.try_wait.parity)
        // become inline PTX.
        pm.addNestedPass<gpu::GPUModuleOp>(createConvertNVVMToLLVMPass());
        // Branches from scf-to-cf, inside the gpu.module's functions.
        pm.addPass(createConvertControlFlowToLLVMPass());
        pm.addPass(createReconcileUnrealizedCastsPass());
        return pm.run(module);
      }))
    return std::move(err);

  auto gpuModules = llvm::to_vector(module.getOps<gpu::GPUModuleOp>());
  if (gpuModules.size() != 1)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "expected exactly one gpu.module, got %zu",
                                   gpuModules.size());
  gpu::GPUModuleOp gpuModule = gpuModules.front();

  static std::once_flag initOnce;
  std::call_once(initOnce, [] {
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
  });

  llvm::Triple triple("nvptx64-nvidia-cuda");
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "NVPTX target unavailable: %s",
                                   error.c_str());
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, info->chip, info->features, llvm::TargetOptions(), std::nullopt,
      std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!tm)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "cannot create an NVPTX target machine for %s",
                                   info->chip.str().c_str());

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule;
  if (llvm::Error err = withDiagnostics(ctx, "translation to LLVM IR", [&] {
        llvmModule = translateModuleToLLVMIR(gpuModule, llvmContext,
                                             gpuModule.getName());
        return success(llvmModule != nullptr);
      }))
    return std::move(err);
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(tm->createDataLayout());
  optimize(*llvmModule, *tm);

  std::string ptx;
  {
    llvm::raw_string_ostream os(ptx);
    llvm::buffer_ostream bos(os);
    llvm::legacy::PassManager codegen;
    if (tm->addPassesToEmitFile(codegen, bos, nullptr,
                                llvm::CodeGenFileType::AssemblyFile))
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "NVPTX cannot emit assembly");
    codegen.run(*llvmModule);
  }
  return ptx;
}

llvm::Expected<std::string> emitRmsNormPtx(llvm::StringRef chip) {
  DialectRegistry registry;
  registerPtxDialects(registry);
  MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  OwningOpRef<ModuleOp> module = buildRmsNormKernel(ctx);
  if (!module)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the built-in RMSNorm kernel failed to parse");
  return translateToPtx(*module, chip);
}

} // namespace moec::ptx
