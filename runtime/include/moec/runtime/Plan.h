//===- Plan.h - A loaded and verified plan ----------------------*- C++ -*-===//
//
// Loading a plan is three phases: the flatbuffers verifier (the bytes are a well-formed
// `Plan` of format version 3), then semantic checks (every index in range, sizes agree
// with dtype x shape, weights inside their files, block shapes and scales consistent,
// buffers that are live together do not overlap in the arena, shapes agree with each
// step kind and its attributes, the "prefill" and "decode" entry points have the
// expected signature), then the integrity record: the metadata checksum, and the size
// and leading bytes of every weight file (verifyChecksums() reads them all). A plan
// that loads can be executed without further validation
// of its structure; only run-time inputs (tokens, positions, sequence ids) are
// checked per call.
//
// The plan describes itself: the runtime reads step attributes, states and entry
// points, never the model config (`root().model()` is metadata for people).
//
// Ownership: a Plan owns the mapping of its file and of every external weight file.
// The flatbuffer root and every WeightView point into those mappings and stay valid
// as long as the Plan lives. Everything built on a Plan (programs, executors, KV
// caches) borrows it and must not outlive it.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_PLAN_H
#define MOEC_RUNTIME_PLAN_H

#include "moec/runtime/MappedFile.h"
#include "moec/runtime/PlanFormat.h"
#include "moec/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace moec {

/// Options of Plan::load.
struct PlanLoadOptions {
  /// Where external weight file `name` (relative, as in the plan) is read from;
  /// unset: the plan's directory + "/" + name. (The compiler reads back a plan
  /// before its files are in place.)
  std::function<std::string(const std::string &name)> externalPath;
  /// Check the integrity record. Only the fuzzer turns it off, to reach what follows
  /// a load with mutated bytes.
  bool checkIntegrity = true;
};

namespace detail {
struct PlanInfo;
} // namespace detail

/// A weight as a backend reads it: where its bytes are and their logical layout.
struct WeightView {
  plan::DType dtype = plan::DType::F32; ///< stored element type
  const void *data = nullptr;           ///< first element, inside a mapped file
  uint64_t bytes = 0;                   ///< size of the stored tensor
  int64_t rows = 0;                     ///< first dimension; 1 for a vector
  int64_t cols = 0;                     ///< second dimension; the length of a vector
  /// F8E4M3 only: the multiplicative scales, [ceil(rows/blockRows), ceil(cols/blockCols)]
  /// row-major; nullptr otherwise.
  const float *blockScale = nullptr;
  int64_t blockRows = 0; ///< rows one scale covers; 0 when not block-quantized
  int64_t blockCols = 0; ///< columns one scale covers; 0 when not block-quantized
};

/// One entry point of the plan, resolved for the executor.
struct EntryPointInfo {
  std::string name;       ///< "prefill", "decode", ...
  uint32_t index = 0;     ///< index in Plan.entry_points
  int32_t tokens = -1;    ///< buffer of the token ids, i32 [T]
  int32_t positions = -1; ///< buffer of the positions, i32 [T]
  int32_t seqIds = -1;    ///< buffer of the sequence ids, i32 [T]
  int32_t logits = -1;    ///< buffer of the logits, f32 [T, tokenBound]
  uint32_t firstStep = 0; ///< index of its first step in Plan.steps
  uint32_t numSteps = 0;  ///< number of steps
  int64_t tokenBound = 0; ///< token ids are < tokenBound; columns of the logits
  /// prefill: batches below this many tokens run decode instead (0: none).
  int64_t minTokens = 0;
};

/// One persistent state (Plan.states entry): a row per token and sequence.
struct StateInfo {
  std::string name;                     ///< e.g. "model.layers.0.self_attn.latent_cache"
  plan::DType dtype = plan::DType::F32; ///< element type of a row
  std::vector<int64_t> shape;           ///< shape of one row
  int64_t rowElements = 0;              ///< elements of one row (product of shape)
  uint64_t rowBytes = 0;                ///< bytes of one row
};

/// A plan file, mapped and verified.
class Plan {
public:
  /// Maps and verifies the plan at `path`. On error, the message starts with `path`.
  static Status load(const std::string &path, std::unique_ptr<Plan> *out,
                     const PlanLoadOptions &options = {});
  /// Verifies a plan held in memory (the bytes are copied). `name` is used in messages;
  /// external weight files are resolved relative to `baseDir`.
  static Status loadFromBytes(const void *data, size_t size, const std::string &name,
                              const std::string &baseDir, std::unique_ptr<Plan> *out,
                              const PlanLoadOptions &options = {});

  /// The path (or name) the plan was loaded from.
  const std::string &name() const { return name_; }
  /// The verified flatbuffer root.
  const plan::Plan &root() const { return *root_; }
  /// The token count T the arena was planned for.
  int64_t maxTokens() const { return root_->max_tokens(); }
  /// Bytes of the activation arena.
  uint64_t arenaSize() const { return root_->arena_size(); }

  /// Number of weights.
  size_t numWeights() const { return weights_.size(); }
  /// Weight `index` (< numWeights()).
  const WeightView &weight(size_t index) const { return weights_[index]; }
  /// Total bytes of all weights.
  uint64_t weightBytes() const { return weightBytes_; }

  /// Number of entry points.
  size_t numEntryPoints() const { return entries_.size(); }
  /// Entry point `index` (< numEntryPoints()), in Plan.entry_points order.
  const EntryPointInfo &entryPoint(size_t index) const { return entries_[index]; }
  /// The entry point called `name`, or nullptr.
  const EntryPointInfo *findEntryPoint(const std::string &name) const;
  /// The "prefill" entry point (every loaded plan has one): runs any batch.
  const EntryPointInfo &prefill() const { return entries_[prefill_]; }
  /// The "decode" entry point (every loaded plan has one): runs batches whose every
  /// token is the next token of a distinct sequence.
  const EntryPointInfo &decode() const { return entries_[decode_]; }
  /// Token ids are < tokenBound() (the vocabulary size; every entry point agrees).
  int64_t tokenBound() const { return entries_[prefill_].tokenBound; }

  /// Number of persistent states (Plan.states).
  size_t numStates() const { return states_.size(); }
  /// State `index` (< numStates()).
  const StateInfo &state(size_t index) const { return states_[index]; }

  /// Reads every weight file in full and compares it with the plan's digests
  /// (moec-run --verify). `progress`, if set, gets (bytes hashed, bytes in all).
  Status verifyChecksums(const std::function<void(uint64_t, uint64_t)> &progress = {}) const;

  /// "steps[7]" or "steps[7] (name)", for messages; `step` < number of steps.
  std::string stepLabel(uint32_t step) const;

private:
  Plan() = default;
  Status verify(const std::string &baseDir, const PlanLoadOptions &options);
  Status resolveWeights(const std::string &baseDir, const PlanLoadOptions &options,
                        const detail::PlanInfo &info);
  Status checkIntegrity() const;
  /// The bytes a WeightFileDigest describes ("" = the weight blob); false when the
  /// plan maps no such file.
  bool digestedBytes(const std::string &file, const uint8_t **data, uint64_t *size) const;

  std::string name_;                      ///< path or name, for messages
  MappedFile file_;                       ///< the plan's bytes
  std::vector<MappedFile> externalFiles_; ///< mapped external weight files
  std::vector<std::string> externalNames_; ///< their names as the plan gives them
  const plan::Plan *root_ = nullptr;      ///< verified root inside file_
  std::vector<WeightView> weights_;       ///< one per plan weight
  uint64_t weightBytes_ = 0;              ///< sum of weight sizes
  std::vector<EntryPointInfo> entries_;   ///< one per plan entry point
  size_t prefill_ = 0;                    ///< index of "prefill" in entries_
  size_t decode_ = 0;                     ///< index of "decode" in entries_
  std::vector<StateInfo> states_;         ///< one per plan state
};

} // namespace moec

#endif // MOEC_RUNTIME_PLAN_H
