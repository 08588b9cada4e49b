//===- CompileSteps.h - pieces moec compile and moec explain share -*- C++ -*-===//
#ifndef MOEC_DRIVER_COMPILESTEPS_H
#define MOEC_DRIVER_COMPILESTEPS_H

#include "moec/Driver/AccuracyReport.h"
#include "moec/Driver/Driver.h"
#include "moec/Plan/PlanEmitter.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <functional>
#include <string>

namespace moec::driver::detail {

using llvm::StringRef;
using llvm::errs;
using llvm::formatv;

/// A progress bar on stderr that shows itself only once the work has taken
/// longer than a second, so quick compiles stay quiet.
class ProgressBar {
public:
  explicit ProgressBar(StringRef label)
      : label(label.str()), tty(llvm::sys::Process::StandardErrIsDisplayed()) {}
  ~ProgressBar() { finish(); }
  /// Ends the bar's line, if it was shown.
  void finish() {
    if (shown && tty)
      errs() << "\n";
    shown = false;
  }
  void update(uint64_t done, uint64_t total) {
    using namespace std::chrono;
    auto now = steady_clock::now();
    if (!shown && now - start < seconds(1))
      return;
    double frac = total ? double(done) / double(total) : 1.0;
    if (!tty) {
      // A log, not a terminal: one line per tenth, no carriage returns.
      int tenth = static_cast<int>(frac * 10);
      if (shown && tenth <= lastTenth)
        return;
      shown = true;
      lastTenth = tenth;
      errs() << formatv("{0}: {1}% ({2:f1}/{3:f1} MiB)\n", label, tenth * 10,
                        done / 1048576.0, total / 1048576.0);
      return;
    }
    if (shown && done < total && now - last < milliseconds(100))
      return;
    shown = true;
    last = now;
    int filled = static_cast<int>(frac * 30);
    errs() << "\r" << label << " [" << std::string(filled, '#')
           << std::string(30 - filled, '.') << "] "
           << formatv("{0,5:f1}% {1:f1}/{2:f1} MiB", frac * 100,
                      done / 1048576.0, total / 1048576.0);
    errs().flush();
  }

private:
  std::string label;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last = start;
  bool tty;          ///< stderr is a terminal: redraw one line
  int lastTenth = -1; ///< not a terminal: the last tenth printed
  bool shown = false;
};


/// Generates the kernels of every step of `plan` for each of `chips`
/// (codegen/ptx StepKernels.h) and adds one KernelModule per chip: the PTX, the
/// kernel entries, and the cubin when the CUDA toolkit's ptxas is installed. One
/// summary line per chip goes to `*lines`.
llvm::Error addKernelModules(plan::PlanT &plan, llvm::ArrayRef<std::string> chips,
                             std::vector<std::string> *lines);

/// "rope (4), router (2)": the kinds of `steps`, with their counts.
std::string describeUncovered(const plan::PlanT &plan, llvm::ArrayRef<uint32_t> steps);

/// Adds the tokenizer of checkpoint directory `dir` (tokenizer.json and
/// tokenizer_config.json, when present) to the plan `emit` writes: compiled into the
/// plan's table, checked against the model's vocabulary (`vocabSize`) and built once
/// by the runtime's own tokenizer, so a tokenizer the runtime would refuse fails the
/// compile. `*summary` (when given) describes what was added, or stays empty.
llvm::Error addTokenizer(StringRef dir, int64_t vocabSize, PlanEmitOptions &emit,
                         std::string *summary);

/// Runs the moe-compile pipeline of `options` on `module` (with the IR printed after
/// every pass when `printIr`); `configure`, when set, sees the pass manager before it
/// runs (instrumentation). A failure carries the passes' error diagnostics.
llvm::Error runPipeline(mlir::MLIRContext &ctx, mlir::ModuleOp module,
                        const CompileOptions &options, bool printIr,
                        const std::function<void(mlir::PassManager &)> &configure = {});

/// --accuracy-report: compiles `reference` (the imported module, unquantized) into
/// a temporary plan whose weights stay in the checkpoint, and compares the
/// quantized plan at `options.output` with it on the runtime.
llvm::Expected<AccuracyReport> measureAccuracy(mlir::MLIRContext &ctx,
                                               mlir::ModuleOp reference,
                                               const WeightSource &weights,
                                               const CompileOptions &options);

} // namespace moec::driver::detail

#endif // MOEC_DRIVER_COMPILESTEPS_H
