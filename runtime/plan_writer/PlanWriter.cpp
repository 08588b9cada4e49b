//===- PlanWriter.cpp - Builds and writes plan files ----------------------===//
#include "moec/plan_writer/PlanWriter.h"

#include "moec/runtime/AtomicFile.h"
#include "moec/runtime/Integrity.h"
#include "moec/runtime/MappedFile.h"

#include <algorithm>
#include <map>
#include <set>

namespace moec {

PlanWriter::PlanWriter() {
  plan_.version = kPlanFormatVersion;
  plan_.model = std::make_unique<plan::ModelConfigT>();
  plan_.provenance = std::make_unique<plan::ProvenanceT>();
}

int32_t PlanWriter::addBuffer(const std::string &name, plan::DType dtype,
                              std::vector<int64_t> shape) {
  auto buffer = std::make_unique<plan::BufferT>();
  buffer->name = name;
  buffer->dtype = dtype;
  buffer->shape = std::move(shape);
  plan_.buffers.push_back(std::move(buffer));
  return int32_t(plan_.buffers.size() - 1);
}

void PlanWriter::setBufferScale(int32_t buffer, int32_t scale,
                                std::vector<int64_t> blockShape) {
  plan_.buffers[size_t(buffer)]->scale = scale;
  plan_.buffers[size_t(buffer)]->block_shape = std::move(blockShape);
}

int32_t PlanWriter::addState(const std::string &name, plan::DType dtype,
                             std::vector<int64_t> rowShape) {
  auto state = std::make_unique<plan::StateT>();
  state->name = name;
  state->dtype = dtype;
  state->shape = std::move(rowShape);
  plan_.states.push_back(std::move(state));
  return int32_t(plan_.states.size() - 1);
}

int32_t PlanWriter::addWeightEntry(const std::string &name, plan::DType dtype,
                                   std::vector<int64_t> shape, const std::string &file,
                                   uint64_t offset, uint64_t size) {
  auto weight = std::make_unique<plan::WeightT>();
  weight->name = name;
  weight->dtype = dtype;
  weight->shape = std::move(shape);
  weight->file = file;
  weight->offset = offset;
  weight->size = size;
  plan_.weights.push_back(std::move(weight));
  bytes_.emplace_back();
  return int32_t(plan_.weights.size() - 1);
}

int32_t PlanWriter::addWeight(const std::string &name, plan::DType dtype,
                              std::vector<int64_t> shape, const void *data, size_t bytes) {
  return addWeightInFile(name, dtype, std::move(shape), "", data, bytes);
}

int32_t PlanWriter::addWeightBorrowed(const std::string &name, plan::DType dtype,
                                      std::vector<int64_t> shape, const void *data,
                                      size_t bytes) {
  int32_t index = addWeightEntry(name, dtype, std::move(shape), "", 0, bytes);
  bytes_.back().data = static_cast<const uint8_t *>(data);
  bytes_.back().size = bytes;
  return index;
}

int32_t PlanWriter::addWeightInFile(const std::string &name, plan::DType dtype,
                                    std::vector<int64_t> shape, const std::string &file,
                                    const void *data, size_t bytes) {
  int32_t index = addWeightEntry(name, dtype, std::move(shape), file, 0, bytes);
  WeightBytes &stored = bytes_.back();
  const auto *begin = static_cast<const uint8_t *>(data);
  stored.owned.assign(begin, begin + bytes);
  stored.data = stored.owned.data();
  stored.size = bytes;
  return index;
}

int32_t PlanWriter::addWeightGenerated(const std::string &name, plan::DType dtype,
                                       std::vector<int64_t> shape, uint64_t bytes,
                                       uint64_t quantum, WeightProducer produce) {
  int32_t index = addWeightEntry(name, dtype, std::move(shape), "", 0, bytes);
  WeightBytes &stored = bytes_.back();
  stored.produce = std::move(produce);
  stored.quantum = quantum ? quantum : 1;
  stored.size = size_t(bytes);
  return index;
}

int32_t PlanWriter::addWeightReference(const std::string &name, plan::DType dtype,
                                       std::vector<int64_t> shape, const std::string &file,
                                       uint64_t offset) {
  uint64_t size = 0;
  if (!tensorBytes(shape, dtype, 0, &size))
    size = UINT64_MAX; // the loader reports the overflow with the weight's name
  return addWeightEntry(name, dtype, std::move(shape), file, offset, size);
}

void PlanWriter::setBlockScale(int32_t weight, int32_t scale, std::vector<int64_t> blockShape) {
  plan_.weights[size_t(weight)]->block_scale = scale;
  plan_.weights[size_t(weight)]->block_shape = std::move(blockShape);
}

int32_t PlanWriter::addStep(plan::StepKind kind, std::vector<int32_t> operands,
                            std::vector<int32_t> results, std::vector<int32_t> weights,
                            plan::StepAttrsUnion attrs, const std::string &name,
                            std::vector<int32_t> states) {
  auto step = std::make_unique<plan::StepT>();
  step->kind = kind;
  step->operands = std::move(operands);
  step->results = std::move(results);
  step->weights = std::move(weights);
  step->attrs = std::move(attrs);
  step->name = name;
  step->states = std::move(states);
  plan_.steps.push_back(std::move(step));
  return int32_t(plan_.steps.size() - 1);
}

void PlanWriter::setStepActivations(int32_t step, plan::DType activations) {
  plan_.steps[size_t(step)]->activations = activations;
}

void PlanWriter::addEntryPoint(const std::string &name, std::vector<int32_t> inputs,
                               std::vector<int32_t> outputs, uint32_t firstStep,
                               uint32_t numSteps, int64_t tokenBound,
                               int64_t minTokens) {
  auto entry = std::make_unique<plan::EntryPointT>();
  entry->name = name;
  entry->inputs = std::move(inputs);
  entry->outputs = std::move(outputs);
  entry->first_step = firstStep;
  entry->num_steps = numSteps;
  entry->token_bound = tokenBound;
  entry->min_tokens = minTokens;
  plan_.entry_points.push_back(std::move(entry));
}

std::string StagedPlan::externalPath(const std::string &name) const {
  for (const auto &[file, output] : externals_)
    if (file == name && !output->readBackPath().empty())
      return output->readBackPath();
  return baseDir_ + "/" + name;
}

Status StagedPlan::commit() {
  for (auto &[file, output] : externals_)
    MOEC_RETURN_IF_ERROR(output->commit());
  return plan_ ? plan_->commit() : Status();
}

Status PlanWriter::write(const std::string &path, const WriteProgress &progress) {
  StagedPlan staged;
  MOEC_RETURN_IF_ERROR(stage(path, &staged, progress));
  return staged.commit();
}

Status PlanWriter::stage(const std::string &path, StagedPlan *staged,
                         const WriteProgress &progress) {
  // Lay out the embedded blob and each external file: 64-byte-aligned offsets in
  // weight order.
  std::map<std::string, uint64_t> fileSizes; // "" = the embedded blob
  std::map<std::string, std::vector<size_t>> fileWeights;
  uint64_t totalBytes = 0, doneBytes = 0;
  for (size_t i = 0; i < plan_.weights.size(); ++i) {
    if (!bytes_[i].data && !bytes_[i].produce)
      continue; // a reference into an existing file
    plan::WeightT &weight = *plan_.weights[i];
    uint64_t &end = fileSizes[weight.file];
    end = alignUp(end, kPlanAlignment);
    weight.offset = end;
    end += bytes_[i].size;
    fileWeights[weight.file].push_back(i);
    totalBytes += bytes_[i].size;
  }

  // The bytes of one written weight file, in order: each weight after zero padding
  // to its offset. `sink` sees them piece by piece; generated weights are computed
  // piece by piece into one reused buffer.
  using Sink = std::function<Status(const uint8_t *, size_t, bool padding)>;
  constexpr size_t kChunk = size_t(64) << 20;
  std::vector<uint8_t> scratch;
  auto emitWeights = [&](const std::vector<size_t> &indices, const Sink &sink) -> Status {
    static const uint8_t zeros[kPlanAlignment] = {};
    uint64_t at = 0;
    for (size_t i : indices) {
      const WeightBytes &w = bytes_[i];
      uint64_t offset = plan_.weights[i]->offset;
      if (offset < at)
        return Status::error("internal error: weight %zu lands at the wrong offset", i);
      MOEC_RETURN_IF_ERROR(sink(zeros, size_t(offset - at), true));
      if (w.produce) {
        const size_t piece = size_t(std::max<uint64_t>(w.quantum, kChunk / w.quantum * w.quantum));
        scratch.resize(std::min(piece, w.size));
        for (size_t done = 0; done < w.size; done += piece) {
          size_t n = std::min(piece, w.size - done);
          MOEC_RETURN_IF_ERROR(w.produce(done, scratch.data(), n));
          MOEC_RETURN_IF_ERROR(sink(scratch.data(), n, false));
        }
      } else {
        // Large tensors go out in chunks so progress moves during one tensor.
        for (size_t done = 0; done < w.size; done += kChunk)
          MOEC_RETURN_IF_ERROR(sink(w.data + done, std::min(kChunk, w.size - done), false));
      }
      at = offset + w.size;
    }
    return Status();
  };
  // Writes (when `out` is set) and hashes (when `digest` is set) one file's weights.
  auto writeWeights = [&](OutputFile *out, const std::vector<size_t> &indices,
                          StreamDigest *digest) -> Status {
    return emitWeights(indices, [&](const uint8_t *data, size_t size, bool padding) -> Status {
      if (digest)
        digest->update(data, size);
      if (!out)
        return Status();
      MOEC_RETURN_IF_ERROR(out->write(data, size));
      if (padding)
        return Status();
      doneBytes += size;
      if (progress)
        progress(doneBytes, totalBytes);
      return Status();
    });
  };
  auto digestEntry = [](const std::string &file, const StreamDigest &digest) {
    auto entry = std::make_unique<plan::WeightFileDigestT>();
    entry->file = file;
    entry->size = digest.size();
    entry->head_xxh3 = digest.head();
    entry->xxh3 = digest.full();
    return entry;
  };

  // External weight files: written and hashed in one pass.
  std::string directory = directoryOf(path);
  auto integrity = std::make_unique<plan::IntegrityT>();
  StagedPlan result;
  result.baseDir_ = directory;
  for (const auto &[file, indices] : fileWeights) {
    if (file.empty())
      continue;
    std::unique_ptr<OutputFile> out;
    MOEC_RETURN_IF_ERROR(OutputFile::open(directory + "/" + file, &out));
    StreamDigest digest;
    MOEC_RETURN_IF_ERROR(writeWeights(out.get(), indices, &digest));
    MOEC_RETURN_IF_ERROR(out->finish());
    integrity->weight_files.push_back(digestEntry(file, digest));
    result.externals_.emplace_back(file, std::move(out));
  }
  // Files the plan refers to: read and hashed.
  std::set<std::string> referenced;
  for (size_t i = 0; i < plan_.weights.size(); ++i)
    if (!bytes_[i].data && !bytes_[i].produce && !plan_.weights[i]->file.empty() &&
        !fileWeights.count(plan_.weights[i]->file))
      referenced.insert(plan_.weights[i]->file);
  for (const std::string &file : referenced) {
    MappedFile mapped;
    if (file[0] == '/' || !MappedFile::open(directory + "/" + file, &mapped).ok())
      continue; // the loader reports a missing or absolute file by its weight's name
    auto entry = std::make_unique<plan::WeightFileDigestT>();
    entry->file = file;
    entry->size = mapped.size();
    digestBytes(mapped.data(), mapped.size(), &entry->head_xxh3, &entry->xxh3);
    integrity->weight_files.push_back(std::move(entry));
  }

  // The plan: the size-prefixed header, then the embedded blob. The header holds
  // the blob's digest. A regular destination gets a header with placeholder
  // digests (same size), the blob written and hashed in one pass, then the real
  // header in its place; a destination that cannot go back (a pipe, a device)
  // gets the blob hashed in a first pass.
  auto blob = fileWeights.find("");
  plan::WeightFileDigestT *blobEntry = nullptr;
  if (blob != fileWeights.end()) {
    auto entry = std::make_unique<plan::WeightFileDigestT>();
    blobEntry = entry.get();
    integrity->weight_files.push_back(std::move(entry));
  }
  std::sort(integrity->weight_files.begin(), integrity->weight_files.end(),
            [](const auto &a, const auto &b) { return a->file < b->file; });
  // A non-zero placeholder, so that the field is stored; replaced in header().
  integrity->metadata_xxh3 = ~uint64_t(0);
  plan_.integrity = std::move(integrity);
  flatbuffers::FlatBufferBuilder builder(1 << 16);
  auto header = [&]() -> Status {
    builder.Clear();
    builder.FinishSizePrefixed(plan::Plan::Pack(builder, &plan_), plan::PlanIdentifier());
    uint8_t *table = builder.GetBufferPointer();
    size_t at = 0;
    if (!metadataDigestOffset(*flatbuffers::GetSizePrefixedRoot<plan::Plan>(table), table, &at))
      return Status::error("internal error: the integrity record was not stored");
    flatbuffers::WriteScalar<uint64_t>(table + at, 0);
    flatbuffers::WriteScalar<uint64_t>(table + at,
                                       metadataDigest(table, builder.GetSize(), at));
    return Status();
  };
  auto setBlobDigest = [&](const StreamDigest &digest) {
    blobEntry->size = digest.size();
    blobEntry->head_xxh3 = digest.head();
    blobEntry->xxh3 = digest.full();
  };

  MOEC_RETURN_IF_ERROR(OutputFile::open(path, &result.plan_));
  OutputFile &out = *result.plan_;
  if (!blobEntry) {
    MOEC_RETURN_IF_ERROR(header());
    MOEC_RETURN_IF_ERROR(out.write(builder.GetBufferPointer(), builder.GetSize()));
    MOEC_RETURN_IF_ERROR(out.padTo(kPlanAlignment));
  } else if (out.canOverwrite()) {
    blobEntry->size = fileSizes[""];
    blobEntry->head_xxh3 = blobEntry->xxh3 = ~uint64_t(0);
    MOEC_RETURN_IF_ERROR(header());
    const size_t headerSize = builder.GetSize();
    MOEC_RETURN_IF_ERROR(out.write(builder.GetBufferPointer(), headerSize));
    MOEC_RETURN_IF_ERROR(out.padTo(kPlanAlignment));
    StreamDigest digest;
    MOEC_RETURN_IF_ERROR(writeWeights(&out, blob->second, &digest));
    setBlobDigest(digest);
    MOEC_RETURN_IF_ERROR(header());
    if (builder.GetSize() != headerSize)
      return Status::error("internal error: the plan header changed size (%zu -> %zu bytes)",
                           headerSize, size_t(builder.GetSize()));
    MOEC_RETURN_IF_ERROR(out.overwrite(0, builder.GetBufferPointer(), headerSize));
  } else {
    StreamDigest digest;
    MOEC_RETURN_IF_ERROR(writeWeights(nullptr, blob->second, &digest));
    setBlobDigest(digest);
    MOEC_RETURN_IF_ERROR(header());
    MOEC_RETURN_IF_ERROR(out.write(builder.GetBufferPointer(), builder.GetSize()));
    MOEC_RETURN_IF_ERROR(out.padTo(kPlanAlignment));
    MOEC_RETURN_IF_ERROR(writeWeights(&out, blob->second, nullptr));
  }
  MOEC_RETURN_IF_ERROR(out.finish());
  *staged = std::move(result);
  return Status();
}

} // namespace moec
