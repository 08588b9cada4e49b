//===- AccuracyReport.h - A quantized plan against its reference -*- C++ -*-===//
//
// `moec compile --quantize=fp8 --accuracy-report` runs the quantized plan and the
// unquantized one side by side on the runtime (the CPU backend), on calibration
// tokens, and reports how far the quantized model drifts: the relative error of
// the hidden state after every decoder layer, the logits' cosine similarity and
// the top-1 agreement over the calibration positions. The explain report shows
// the same table.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_DRIVER_ACCURACYREPORT_H
#define MOEC_DRIVER_ACCURACYREPORT_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace moec::driver {

/// What `compareQuantized` measured.
struct AccuracyReport {
  /// Per decoder layer (the plans' `model.layers.N.mlp_residual` steps, whose
  /// result is the residual stream after the layer): ||q - r||_F / ||r||_F over
  /// every calibration position.
  struct Layer {
    std::string name; ///< "model.layers.N"
    double relativeError = 0;
  };
  std::vector<Layer> layers;
  int64_t positions = 0;  ///< calibration tokens
  double meanCosine = 0;  ///< mean over positions of cos(logits_q, logits_r)
  double minCosine = 0;   ///< the lowest of them
  int64_t top1Agree = 0;  ///< positions whose argmax agrees
  double logitsRelativeError = 0; ///< ||q - r||_F / ||r||_F of the logits
};

/// The calibration tokens used without --calibration-tokens: BOS-like id 0, then
/// a fixed spread of ids over the vocabulary (not text: a tokenizer-free probe of
/// every layer), `count` in all.
std::vector<int32_t> defaultCalibrationTokens(int64_t vocab, int64_t count = 64);

/// Runs `tokens` (one sequence, positions 0..n-1; empty: the default calibration
/// tokens, at most 64) through both plans and compares.
llvm::Expected<AccuracyReport> compareQuantized(const std::string &referencePlan,
                                                const std::string &quantizedPlan,
                                                const std::vector<int32_t> &tokens);

/// The report as lines of text, each starting with "moec: ".
std::string formatAccuracyReport(const AccuracyReport &report);

} // namespace moec::driver

#endif // MOEC_DRIVER_ACCURACYREPORT_H
