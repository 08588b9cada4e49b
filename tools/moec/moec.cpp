//===- moec.cpp - the moec command line: compile, synth, emit-ptx ---------===//
//
// A thin main: it parses arguments and calls the driver library.
//
//===----------------------------------------------------------------------===//

#include "moec/Driver/Driver.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;

namespace {
cl::OptionCategory moecCategory("moec options");

// moec emit-ptx
cl::SubCommand emitPtxCmd("emit-ptx",
                          "Generate a GPU kernel's PTX ahead of time through "
                          "LLVM's NVPTX backend\n"
                          "  example: moec emit-ptx --kernel=rms_norm "
                          "--arch=sm_90a -o rms_norm.ptx");
cl::opt<std::string> ptxKernel("kernel", cl::desc("Kernel to generate (rms_norm)"),
                               cl::init("rms_norm"), cl::sub(emitPtxCmd),
                               cl::cat(moecCategory));
cl::opt<std::string> ptxArch("arch", cl::desc("GPU architecture: sm_90a or sm_80"),
                             cl::init("sm_90a"), cl::sub(emitPtxCmd),
                             cl::cat(moecCategory));
cl::opt<std::string> ptxOutput("o", cl::desc("Output PTX file ('-' for stdout)"),
                               cl::value_desc("file"), cl::init("-"),
                               cl::sub(emitPtxCmd), cl::cat(moecCategory));
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
      "  emit-ptx   generate a kernel's PTX (moec emit-ptx --help)\n");

  if (emitPtxCmd) {
    if (Error err = moec::driver::emitPtx(ptxKernel, ptxArch, ptxOutput))
      return fail(std::move(err));
    return 0;
  }
  cl::PrintHelpMessage();
  return 1;
}
