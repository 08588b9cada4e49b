//===- Plan.h - A loaded and verified plan ----------------------*- C++ -*-===//
//
// Loading a plan is two phases: the flatbuffers verifier (the bytes are a well-formed
// `Plan`), then semantic checks (every index in range, sizes agree with dtype x shape,
// weights inside their files, buffers that are live together do not overlap in the
// arena, shapes agree with each step kind). A plan that loads can be executed without
// further validation of its structure; only run-time inputs (tokens, positions,
// sequence ids) are checked per call.
//
// Ownership: a Plan owns the mapping of its file and of every external weight file.
// The flatbuffer root, the config and every WeightView point into those mappings and
// stay valid as long as the Plan lives. Everything built on a Plan (backends,
// executors, KV caches) borrows it and must not outlive it.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_PLAN_H
#define MOEC_RUNTIME_PLAN_H

#include "moec/runtime/MappedFile.h"
#include "moec/runtime/PlanFormat.h"
#include "moec/runtime/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace moec {

/// A weight as a backend reads it: where its bytes are and their logical layout.
struct WeightView {
  plan::DType dtype = plan::DType::F32; ///< stored element type
  const void *data = nullptr;           ///< first element, inside a mapped file
  uint64_t bytes = 0;                   ///< size of the stored tensor
  int64_t rows = 0;                     ///< first dimension; 1 for a vector
  int64_t cols = 0;                     ///< second dimension; the length of a vector
  const float *blockScale = nullptr;    ///< F8E4M3 only: [ceil(rows/128), ceil(cols/128)]
};

/// The buffers and steps of the "forward" entry point.
struct ForwardEntry {
  int32_t tokens = -1;    ///< buffer of the token ids, i32 [T]
  int32_t positions = -1; ///< buffer of the positions, i32 [T]
  int32_t seqIds = -1;    ///< buffer of the sequence ids, i32 [T]
  int32_t logits = -1;    ///< buffer of the logits, f32 [T, vocab]
  uint32_t firstStep = 0; ///< index of its first step in Plan.steps
  uint32_t numSteps = 0;  ///< number of steps
};

/// A plan file, mapped and verified.
class Plan {
public:
  /// Maps and verifies the plan at `path`. On error, the message starts with `path`.
  static Status load(const std::string &path, std::unique_ptr<Plan> *out);
  /// Verifies a plan held in memory (the bytes are copied). `name` is used in messages;
  /// external weight files are resolved relative to `baseDir`.
  static Status loadFromBytes(const void *data, size_t size, const std::string &name,
                              const std::string &baseDir, std::unique_ptr<Plan> *out);

  /// The path (or name) the plan was loaded from.
  const std::string &name() const { return name_; }
  /// The verified flatbuffer root.
  const plan::Plan &root() const { return *root_; }
  /// The model configuration.
  const plan::ModelConfig &config() const { return *root_->model(); }
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
  /// The forward entry point.
  const ForwardEntry &forward() const { return forward_; }

private:
  Plan() = default;
  Status verify(const std::string &baseDir);
  Status resolveWeights(const std::string &baseDir);

  std::string name_;                      ///< path or name, for messages
  MappedFile file_;                       ///< the plan's bytes
  std::vector<MappedFile> externalFiles_; ///< mapped external weight files
  const plan::Plan *root_ = nullptr;      ///< verified root inside file_
  std::vector<WeightView> weights_;       ///< one per plan weight
  uint64_t weightBytes_ = 0;              ///< sum of weight sizes
  ForwardEntry forward_;                  ///< the "forward" entry point
};

} // namespace moec

#endif // MOEC_RUNTIME_PLAN_H
