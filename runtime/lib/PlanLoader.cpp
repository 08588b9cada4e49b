//===- PlanLoader.cpp - Mapping, flatbuffers verification, weight lookup --===//
#include "PlanChecks.h"

#include "moec/runtime/CheckedMath.h"
#include "moec/runtime/Integrity.h"
#include "moec/runtime/Plan.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <map>

namespace moec {

namespace {

/// Upper bound of the flatbuffer part (the verifier's own limit).
constexpr uint64_t kMaxFlatbufferBytes = FLATBUFFERS_MAX_BUFFER_SIZE;

/// Phase 1: the size prefix, the identifier, the version, then the flatbuffers
/// verifier over exactly the flatbuffer part of the file.
Status verifyFlatbuffer(const uint8_t *data, size_t size, const plan::Plan **root) {
  if (size == 0)
    return Status::error("empty file");
  // Size prefix, root offset and identifier.
  if (size < 12)
    return Status::error("file of %zu bytes is too small to be a plan", size);
  const char *expected = plan::PlanIdentifier();
  if (std::memcmp(data + 8, expected, 4) != 0)
    return Status::error(
        "not a moec plan: file identifier is \"%s\", expected \"%s\"",
        detail::printableText(std::string(reinterpret_cast<const char *>(data + 8), 4)).c_str(),
        expected);
  uint32_t prefix = flatbuffers::ReadScalar<uint32_t>(data);
  if (uint64_t(prefix) + kPlanSizePrefixBytes > size)
    return Status::error("truncated: the plan table needs %" PRIu64 " bytes, the file has %zu",
                         uint64_t(prefix) + kPlanSizePrefixBytes, size);
  if (uint64_t(prefix) + kPlanSizePrefixBytes >= kMaxFlatbufferBytes)
    return Status::error("the plan table of %u bytes exceeds the flatbuffers limit", prefix);
  size_t tableBytes = size_t(prefix) + kPlanSizePrefixBytes;

  // Read the version through a minimal verification of the root table, so that a
  // newer plan is reported as newer rather than as malformed.
  {
    flatbuffers::Verifier verifier(data, tableBytes);
    flatbuffers::uoffset_t rootOffset = verifier.VerifyOffset(kPlanSizePrefixBytes);
    if (!rootOffset)
      return Status::error("malformed plan: bad root table offset");
    const auto *table = reinterpret_cast<const flatbuffers::Table *>(
        data + kPlanSizePrefixBytes + rootOffset);
    if (!table->VerifyTableStart(verifier) ||
        !table->VerifyField<uint32_t>(verifier, plan::Plan::VT_VERSION, sizeof(uint32_t)))
      return Status::error("malformed plan: bad root table");
    uint32_t version = table->GetField<uint32_t>(plan::Plan::VT_VERSION, 0);
    if (version == 0)
      return Status::error("malformed plan: format version is missing");
    if (version < kPlanFormatOldestReadable)
      return Status::error("plan format version %u is no longer supported (this runtime reads "
                           "versions %u to %u); recompile the checkpoint with moec compile",
                           version, kPlanFormatOldestReadable, kPlanFormatVersion);
    if (version > kPlanFormatVersion)
      return Status::error("plan format version %u was written by a newer moec (this runtime "
                           "reads versions %u to %u); update the runtime or recompile the "
                           "checkpoint",
                           version, kPlanFormatOldestReadable, kPlanFormatVersion);
  }

  flatbuffers::Verifier verifier(data, tableBytes);
  if (!verifier.VerifySizePrefixedBuffer<plan::Plan>(plan::PlanIdentifier()))
    return Status::error("malformed plan: flatbuffers verification failed");
  *root = flatbuffers::GetSizePrefixedRoot<plan::Plan>(data);
  return Status();
}

} // namespace

Status Plan::load(const std::string &path, std::unique_ptr<Plan> *out,
                  const PlanLoadOptions &options) {
  std::unique_ptr<Plan> result(new Plan());
  result->name_ = path;
  Status status = MappedFile::open(path, &result->file_);
  if (!status.ok())
    return status; // already names the path
  MOEC_RETURN_IF_ERROR(result->verify(directoryOf(path), options));
  *out = std::move(result);
  return Status();
}

Status Plan::loadFromBytes(const void *data, size_t size, const std::string &name,
                           const std::string &baseDir, std::unique_ptr<Plan> *out,
                           const PlanLoadOptions &options) {
  std::unique_ptr<Plan> result(new Plan());
  result->name_ = name;
  result->file_ = MappedFile::copyOf(data, size);
  if (size != 0 && !result->file_.data())
    return Status::error("%s: cannot allocate %zu bytes", name.c_str(), size);
  MOEC_RETURN_IF_ERROR(result->verify(baseDir, options));
  *out = std::move(result);
  return Status();
}

Status Plan::verify(const std::string &baseDir, const PlanLoadOptions &options) {
  Status status = verifyFlatbuffer(file_.data(), file_.size(), &root_);
  if (status.ok()) {
    detail::PlanInfo info;
    info.root = root_;
    status = detail::verifyScalars(*root_);
    if (status.ok())
      status = detail::verifyBuffers(info);
    if (status.ok())
      status = detail::verifyWeights(info);
    if (status.ok())
      status = detail::verifyStates(info);
    if (status.ok())
      status = detail::verifySteps(info);
    if (status.ok())
      status = detail::verifyKernelModules(info);
    if (status.ok())
      status = detail::verifyEntryPoints(info, &entries_, &prefill_, &decode_);
    if (status.ok())
      status = resolveWeights(baseDir, options, info);
    if (status.ok() && options.checkIntegrity)
      status = checkIntegrity();
    if (status.ok()) {
      states_.resize(info.states.size());
      for (size_t i = 0; i < states_.size(); ++i) {
        const detail::TensorInfo &tensor = info.states[i];
        const plan::State *state = root_->states()->Get(flatbuffers::uoffset_t(i));
        StateInfo &out = states_[i];
        out.name = state->name() ? state->name()->str() : std::string();
        out.dtype = tensor.dtype;
        out.shape = tensor.shape;
        out.rowElements = 1;
        for (int64_t dim : tensor.shape)
          out.rowElements *= dim; // bounded: rowBytes did not overflow
        out.rowBytes = tensor.bytes;
      }
    }
  }
  if (!status.ok()) {
    root_ = nullptr;
    entries_.clear();
    states_.clear();
    weights_.clear();
    return status.withPrefix(name_);
  }
  return Status();
}

const EntryPointInfo *Plan::findEntryPoint(const std::string &name) const {
  for (const EntryPointInfo &entry : entries_)
    if (entry.name == name)
      return &entry;
  return nullptr;
}

std::string Plan::stepLabel(uint32_t step) const {
  return detail::elementLabel("steps", step, root_->steps()->Get(step)->name());
}

Status Plan::resolveWeights(const std::string &baseDir, const PlanLoadOptions &options,
                            const detail::PlanInfo &info) {
  const auto *weights = root_->weights();
  size_t count = weights ? weights->size() : 0;
  weights_.assign(count, WeightView());
  uint64_t blobOffset = weightBlobOffset(flatbuffers::ReadScalar<uint32_t>(file_.data()));
  uint64_t blobSize = file_.size() > blobOffset ? file_.size() - blobOffset : 0;
  std::map<std::string, size_t> externalIndex; // path -> externalFiles_ index
  for (size_t i = 0; i < count; ++i) {
    const plan::Weight *weight = weights->Get(flatbuffers::uoffset_t(i));
    std::string label = detail::elementLabel("weights", i, weight->name());
    const uint8_t *base;
    uint64_t available;
    std::string where;
    uint64_t alignment;
    if (!weight->file() || weight->file()->size() == 0) {
      base = file_.data() + blobOffset;
      available = blobSize;
      where = "the weight blob";
      alignment = kPlanAlignment;
    } else {
      std::string file = weight->file()->str();
      if (file[0] == '/')
        return Status::error("%s: external file \"%s\" must be a path relative to the plan's "
                             "directory",
                             label.c_str(), detail::printableText(file).c_str());
      if (file.find('\0') != std::string::npos)
        return Status::error("%s: external file name contains a NUL byte", label.c_str());
      std::string path = options.externalPath ? options.externalPath(file) : baseDir + "/" + file;
      auto found = externalIndex.find(path);
      if (found == externalIndex.end()) {
        MappedFile mapped;
        Status status = MappedFile::open(path, &mapped);
        if (!status.ok())
          return Status::error("%s: external file: %s", label.c_str(),
                               detail::printableText(status.message(), 400).c_str());
        found = externalIndex.emplace(path, externalFiles_.size()).first;
        externalFiles_.push_back(std::move(mapped));
        externalNames_.push_back(file);
      }
      const MappedFile &mapped = externalFiles_[found->second];
      base = mapped.data();
      available = mapped.size();
      where = detail::printableText(file);
      alignment = dtypeSize(weight->dtype());
    }
    uint64_t end;
    if (!checkedAdd(weight->offset(), weight->size(), &end) || end > available)
      return Status::error("%s: %" PRIu64 " bytes at offset %" PRIu64
                           " run past the end of %s (%" PRIu64 " bytes)",
                           label.c_str(), uint64_t(weight->size()), uint64_t(weight->offset()),
                           where.c_str(), available);
    if (weight->offset() % alignment != 0)
      return Status::error("%s: offset %" PRIu64 " in %s is not a multiple of %" PRIu64,
                           label.c_str(), uint64_t(weight->offset()), where.c_str(), alignment);
    WeightView &view = weights_[i];
    view.dtype = weight->dtype();
    view.data = base ? base + weight->offset() : nullptr;
    view.bytes = weight->size();
    const std::vector<int64_t> &shape = info.weights[i].shape;
    view.rows = shape.size() == 2 ? shape[0] : 1;
    view.cols = shape.back();
    weightBytes_ += weight->size();
  }
  for (size_t i = 0; i < count; ++i) {
    const detail::TensorInfo &tensor = info.weights[i];
    if (tensor.scale < 0)
      continue;
    weights_[i].blockScale = static_cast<const float *>(weights_[size_t(tensor.scale)].data);
    weights_[i].blockRows = tensor.blockShape[0];
    weights_[i].blockCols = tensor.blockShape[1];
  }
  return Status();
}

bool Plan::digestedBytes(const std::string &file, const uint8_t **data, uint64_t *size) const {
  if (file.empty()) {
    uint64_t blob = weightBlobOffset(flatbuffers::ReadScalar<uint32_t>(file_.data()));
    *data = file_.data() + std::min<uint64_t>(blob, file_.size());
    *size = file_.size() > blob ? file_.size() - blob : 0;
    return true;
  }
  for (size_t i = 0; i < externalNames_.size(); ++i)
    if (externalNames_[i] == file) {
      *data = externalFiles_[i].data();
      *size = externalFiles_[i].size();
      return true;
    }
  return false;
}

Status Plan::checkIntegrity() const {
  const plan::Integrity *integrity = root_->integrity();
  size_t at = 0;
  if (!integrity || !metadataDigestOffset(*root_, file_.data(), &at))
    return Status::error("the plan has no integrity record (plan formats 3 and later "
                         "require one)");
  size_t tableBytes =
      size_t(flatbuffers::ReadScalar<uint32_t>(file_.data())) + kPlanSizePrefixBytes;
  if (at + 8 > tableBytes)
    return Status::error("malformed plan: the metadata checksum lies outside the metadata");
  uint64_t expected = flatbuffers::ReadScalar<uint64_t>(file_.data() + at);
  if (metadataDigest(file_.data(), tableBytes, at) != expected)
    return Status::error("metadata checksum mismatch: the file was modified or corrupted "
                         "after moec wrote it");

  // Every file that holds weights has a digest; sizes and leading bytes agree.
  std::map<std::string, const plan::WeightFileDigest *> digests;
  if (integrity->weight_files())
    for (const plan::WeightFileDigest *digest : *integrity->weight_files())
      digests[digest->file() ? digest->file()->str() : std::string()] = digest;
  std::vector<std::string> files = externalNames_;
  bool embedded = false;
  if (root_->weights())
    for (const plan::Weight *weight : *root_->weights())
      embedded |= !weight->file() || weight->file()->size() == 0;
  if (embedded)
    files.insert(files.begin(), std::string());
  for (const std::string &file : files) {
    std::string label =
        file.empty() ? std::string("the weight blob")
                     : "external file \"" + detail::printableText(file) + "\"";
    auto found = digests.find(file);
    if (found == digests.end())
      return Status::error("%s has no checksum in the integrity record", label.c_str());
    const uint8_t *data;
    uint64_t size;
    digestedBytes(file, &data, &size);
    const plan::WeightFileDigest &digest = *found->second;
    if (size != digest.size())
      return Status::error("%s is %" PRIu64 " bytes, the plan recorded %" PRIu64
                           ": it was truncated, extended or replaced after the plan was "
                           "compiled",
                           label.c_str(), size, uint64_t(digest.size()));
    if (headDigest(data, size_t(size)) != digest.head_xxh3())
      return Status::error("%s: its first bytes differ from what the plan recorded: it was "
                           "modified or replaced after the plan was compiled",
                           label.c_str());
  }
  return Status();
}

Status Plan::verifyChecksums(const std::function<void(uint64_t, uint64_t)> &progress) const {
  const plan::Integrity *integrity = root_->integrity();
  if (!integrity || !integrity->weight_files())
    return Status::error("%s: the plan has no integrity record", name_.c_str());
  uint64_t total = 0, done = 0;
  std::vector<std::pair<const plan::WeightFileDigest *, std::pair<const uint8_t *, uint64_t>>>
      work;
  for (const plan::WeightFileDigest *digest : *integrity->weight_files()) {
    const uint8_t *data;
    uint64_t size;
    if (!digestedBytes(digest->file() ? digest->file()->str() : std::string(), &data, &size))
      continue; // a file no weight uses
    work.push_back({digest, {data, size}});
    total += size;
  }
  for (const auto &[digest, bytes] : work) {
    StreamDigest hash;
    constexpr uint64_t kChunk = uint64_t(64) << 20;
    for (uint64_t at = 0; at < bytes.second; at += kChunk) {
      hash.update(bytes.first + at, size_t(std::min(kChunk, bytes.second - at)));
      done += std::min(kChunk, bytes.second - at);
      if (progress)
        progress(done, total);
    }
    std::string file = digest->file() ? digest->file()->str() : std::string();
    if (hash.full() != digest->xxh3())
      return Status::error(
          "%s: %s: checksum mismatch: the weights changed after the plan was compiled",
          name_.c_str(),
          file.empty() ? "the weight blob"
                       : ("external file \"" + detail::printableText(file) + "\"").c_str());
  }
  return Status();
}

} // namespace moec
