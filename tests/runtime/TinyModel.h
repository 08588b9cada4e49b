//===- TinyModel.h - A tiny random DeepSeek model as a plan -----*- C++ -*-===//
//
// Builds the plan of a small DeepSeek-V2/V3-shaped model (MLA attention, one dense
// layer then MoE layers with shared experts) with random weights from a fixed seed,
// written step by step with the PlanWriter the way the compiler's passes lower it
// (MLA as linear / slice / rope / cache_store / head_linear + latent_attention or
// expanded_attention steps).
// The weights are drawn directly as bf16 / f16 / f8e4m3 bit patterns, so the test
// knows every stored value exactly (decoded by its own code, not the kernels') and
// the reference forward pass computes with the very same numbers.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_TESTS_RUNTIME_TINYMODEL_H
#define MOEC_TESTS_RUNTIME_TINYMODEL_H

#include "moec/plan_writer/PlanWriter.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moec::test {

/// Choices that change the model or its plan.
struct TinyModelOptions {
  bool qLora = true;        ///< q_a/q_b projections (true) or a single q_proj
  bool fp8 = true;          ///< f8e4m3 block-scaled projections (true) or bf16
  bool v3Router = true;     ///< sigmoid + bias + top-2-sum groups + renormalise; else V2
  /// MLA form of each entry point: absorbed (head_linear W_UK + latent_attention +
  /// head_linear W_UV) or naive (expanded_attention). Equal forms share one step
  /// range; different forms give each entry point its own steps and buffers.
  bool prefillAbsorbed = true;
  bool decodeAbsorbed = true;
  /// EntryPoint.min_tokens of prefill: smaller batches run decode.
  int64_t prefillMinTokens = 0;
  bool yarn = true;         ///< YaRN rope scaling
  /// Store the rope rows of q and kv_a in HF's half-split order and rotate with
  /// RopeLayout::Half (what a compiler may do); the function is unchanged.
  bool halfRope = false;
  bool external = false;    ///< weights in an external file instead of the plan
  std::string externalFile = "tiny.weights"; ///< its name, beside the plan
  /// Block shape [rows, cols] of the f8e4m3 weights' scales.
  std::vector<int64_t> fp8Block = {128, 128};
  int64_t layers = 3;       ///< layers; the first is dense, the rest MoE
  int64_t maxTokens = 16;   ///< T the plan is built for
  uint64_t seed = 20240601; ///< weight seed
};

/// A weight as the reference sees it: decoded values, row-major.
struct RefWeight {
  std::vector<int64_t> shape; ///< [rows, cols] or [n]
  std::vector<double> values; ///< decoded exactly from the stored bits
};

/// The model: config + every weight's exact value, by checkpoint name.
struct TinyModel {
  plan::ModelConfigT config;                ///< as stored in the plan
  std::map<std::string, RefWeight> weights; ///< by tensor name
  /// Looks up a weight; aborts the test program if absent (a bug in the test).
  const RefWeight &weight(const std::string &name) const;
};

/// Adds the whole model to `writer` (config as metadata, weights, KV-cache states,
/// buffers, steps lowered by hand to step level, the "prefill" and "decode" entry
/// points, arena plan) and fills `model`. The caller then writes the plan.
void buildTinyModel(const TinyModelOptions &options, PlanWriter &writer, TinyModel *model);

/// Builds the model and writes it to `path`; returns false and prints on failure.
bool writeTinyModel(const TinyModelOptions &options, const std::string &path,
                    TinyModel *model = nullptr);

/// Decoders written for the tests (independent of the kernels' converters).
double decodeBf16(uint16_t bits);
double decodeF16(uint16_t bits);
double decodeFp8(uint8_t bits);

/// A fresh empty directory under $TMPDIR (or /tmp); removed by the destructor.
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  /// The directory's path.
  const std::string &path() const { return path_; }
  /// path() + "/" + name.
  std::string file(const std::string &name) const { return path_ + "/" + name; }

private:
  std::string path_; ///< absolute path
};

} // namespace moec::test

#endif // MOEC_TESTS_RUNTIME_TINYMODEL_H
