//===- PlanWriter.h - Builds and writes plan files --------------*- C++ -*-===//
//
// Assembles a plan (runtime/schema/plan.fbs) and writes it atomically: the
// size-prefixed flatbuffer, then the weight blob with every embedded weight at a
// 64-byte-aligned offset, so the runtime maps the file and uses weights in place.
// Weights can instead go to external files beside the plan (also written
// atomically), or refer to bytes already in an existing file.
//
// The writer stores the current format version (plan.fbs FormatVersion::Current) and
// serialises what it is given; it does not validate. Validation is the
// loader's job (moec::Plan::load), and tests rely on being able to write bad plans.
//
// Ownership: the writer owns the plan it builds (plan()) and copies weight bytes
// passed to addWeight/addWeightInFile. Bytes passed to addWeightBorrowed are
// borrowed and must stay valid until write() returns.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_PLAN_WRITER_PLANWRITER_H
#define MOEC_PLAN_WRITER_PLANWRITER_H

#include "moec/runtime/AtomicFile.h"
#include "moec/runtime/PlanFormat.h"
#include "moec/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace moec {

/// A plan and its external weight files, written completely but not yet in place
/// (PlanWriter::stage). commit() puts the weight files in place first, then the
/// plan; destroying it uncommitted leaves every destination untouched.
class StagedPlan {
public:
  /// A path the staged plan can be read back through (empty when the destination
  /// cannot be read back, e.g. /dev/null).
  std::string planReadBack() const { return plan_ ? plan_->readBackPath() : std::string(); }
  /// Where a loader finds external file `name` (relative to the plan's directory)
  /// before commit: the staged copy when this plan writes it, else the file beside
  /// the destination.
  std::string externalPath(const std::string &name) const;
  /// Puts every file in place.
  Status commit();

private:
  friend class PlanWriter;
  std::string baseDir_;
  std::vector<std::pair<std::string, std::unique_ptr<OutputFile>>> externals_;
  std::unique_ptr<OutputFile> plan_;
};

/// Builds a plan in memory and writes it to disk.
class PlanWriter {
public:
  /// Starts an empty plan with version = kPlanFormatVersion and an empty model config.
  PlanWriter();

  /// The plan under construction in flatbuffers' object API; every field may be edited.
  plan::PlanT &plan() { return plan_; }
  const plan::PlanT &plan() const { return plan_; }
  /// The model config: metadata for people and `moec-run --dump-plan`; the runtime
  /// never reads it (never null).
  plan::ModelConfigT &model() { return *plan_.model; }

  /// Adds an activation buffer; its offset and size are set by planArena().
  int32_t addBuffer(const std::string &name, plan::DType dtype, std::vector<int64_t> shape);
  /// Makes `scale` (an F32 buffer) the block scales of the F8E4M3 buffer `buffer`,
  /// one per block of `blockShape` ([1, bc] for a token-major buffer).
  void setBufferScale(int32_t buffer, int32_t scale, std::vector<int64_t> blockShape);

  /// Adds a persistent per-sequence state (a KV cache) with rows of `rowShape`.
  int32_t addState(const std::string &name, plan::DType dtype, std::vector<int64_t> rowShape);

  /// Adds a weight stored in the plan's blob; the bytes are copied.
  int32_t addWeight(const std::string &name, plan::DType dtype, std::vector<int64_t> shape,
                    const void *data, size_t bytes);
  /// Same, but borrows `data` until write() returns (no copy of large tensors).
  int32_t addWeightBorrowed(const std::string &name, plan::DType dtype,
                            std::vector<int64_t> shape, const void *data, size_t bytes);
  /// Adds a weight that write() stores in the external file `file` (a path relative to
  /// the plan's directory, shared by all weights naming it); the bytes are copied.
  int32_t addWeightInFile(const std::string &name, plan::DType dtype,
                          std::vector<int64_t> shape, const std::string &file,
                          const void *data, size_t bytes);
  /// Adds a weight whose bytes already sit in `file` (relative to the plan's
  /// directory) at `offset`; nothing is written for it.
  int32_t addWeightReference(const std::string &name, plan::DType dtype,
                             std::vector<int64_t> shape, const std::string &file,
                             uint64_t offset);
  /// Computes bytes [offset, offset + size) of a generated weight into `out`.
  using WeightProducer = std::function<Status(uint64_t offset, uint8_t *out, size_t size)>;
  /// Adds a weight stored in the plan's blob whose `bytes` bytes `produce` computes
  /// while the plan is written: a derived weight (a quantized copy) that is never
  /// held whole in memory. The writer asks for pieces of at most about 64 MiB that
  /// start at multiples of `quantum` and end at one or at `bytes` (a quantizer's
  /// whole block rows); each piece is asked for once when the plan's destination
  /// is a regular file, twice otherwise (once to hash it before the header).
  int32_t addWeightGenerated(const std::string &name, plan::DType dtype,
                             std::vector<int64_t> shape, uint64_t bytes, uint64_t quantum,
                             WeightProducer produce);
  /// Makes `scale` (an F32 weight [ceil(rows/br), ceil(cols/bc)]) the block scales of
  /// the F8E4M3 weight `weight`, one per block of `blockShape` = {br, bc}.
  void setBlockScale(int32_t weight, int32_t scale, std::vector<int64_t> blockShape);

  /// Appends a step and returns its index. `states` are indices from addState().
  int32_t addStep(plan::StepKind kind, std::vector<int32_t> operands,
                  std::vector<int32_t> results, std::vector<int32_t> weights = {},
                  plan::StepAttrsUnion attrs = {}, const std::string &name = {},
                  std::vector<int32_t> states = {});
  /// Sets Step.activations of step `step` (F32, the default, or BF16).
  void setStepActivations(int32_t step, plan::DType activations);
  /// Number of steps so far (the first step of the next entry point).
  uint32_t numSteps() const { return uint32_t(plan_.steps.size()); }
  /// Adds an entry point over steps [firstStep, firstStep + numSteps) with inputs
  /// {tokens, positions, seq_ids}, outputs {logits} and token ids < `tokenBound`.
  /// Entry points may share steps. `minTokens`: EntryPoint.min_tokens (prefill).
  void addEntryPoint(const std::string &name, std::vector<int32_t> inputs,
                     std::vector<int32_t> outputs, uint32_t firstStep, uint32_t numSteps,
                     int64_t tokenBound, int64_t minTokens = 0);

  /// Sets every buffer's size for plan().max_tokens and packs the buffers into the
  /// arena: buffers live at the same time within one entry point never share bytes;
  /// others may (in particular buffers used by different entry points only). A
  /// buffer's block-scale buffer is live whenever it is. Sets plan().arena_size.
  /// Fails on sizes that overflow or indices out of range.
  Status planArena();

  /// Receives (bytes written, bytes to write) after each weight is written.
  using WriteProgress = std::function<void(uint64_t, uint64_t)>;

  /// Writes the plan to `path` and any external weight files beside it, each
  /// atomically. Sets the weights' offsets and the integrity record (digests of
  /// the metadata and of every weight file). `progress`, if set, is called as
  /// weight bytes are written.
  Status write(const std::string &path, const WriteProgress &progress = {});
  /// As write(), but leaves the files staged: `staged->commit()` puts them in place.
  Status stage(const std::string &path, StagedPlan *staged, const WriteProgress &progress = {});

private:
  /// Bytes to be written for one weight.
  struct WeightBytes {
    const uint8_t *data = nullptr; ///< the bytes (owned below, or borrowed)
    size_t size = 0;               ///< number of bytes
    std::vector<uint8_t> owned;    ///< storage when copied
    WeightProducer produce;        ///< a generated weight's bytes (data is null)
    uint64_t quantum = 1;          ///< pieces of a generated weight are multiples of it
  };
  int32_t addWeightEntry(const std::string &name, plan::DType dtype, std::vector<int64_t> shape,
                         const std::string &file, uint64_t offset, uint64_t size);

  plan::PlanT plan_;               ///< the plan being built
  std::vector<WeightBytes> bytes_; ///< per weight; empty for references
};

} // namespace moec

#endif // MOEC_PLAN_WRITER_PLANWRITER_H
