//===- Executor.cpp - Runs a plan's entry points on a backend -------------===//
#include "moec/runtime/Executor.h"

#include <cinttypes>

namespace moec {

Status Executor::create(const Plan &plan, const ExecutorOptions &options,
                        std::unique_ptr<Executor> *out) {
  std::unique_ptr<Executor> executor(new Executor(plan));
  BackendOptions backendOptions;
  backendOptions.threads = options.threads;
  backendOptions.device = options.device;
  MOEC_RETURN_IF_ERROR(createBackend(options.backend, backendOptions, &executor->backend_));
  MOEC_RETURN_IF_ERROR(executor->checkSteps(plan.prefill()));
  MOEC_RETURN_IF_ERROR(executor->checkSteps(plan.decode()));
  Status status = executor->backend_->allocate(plan.arenaSize(), &executor->arena_);
  if (!status.ok())
    return status.withPrefix(plan.name() + ": arena");
  MOEC_RETURN_IF_ERROR(executor->prepare(plan.prefill(), &executor->prefill_));
  MOEC_RETURN_IF_ERROR(executor->prepare(plan.decode(), &executor->decode_));
  *out = std::move(executor);
  return Status();
}

Executor::~Executor() {
  // Programs may refer to device memory of the backend: drop them first.
  prefill_.program.reset();
  decode_.program.reset();
  if (backend_)
    backend_->release(arena_);
}

Status Executor::checkSteps(const EntryPointInfo &entry) const {
  for (uint32_t s = entry.firstStep; s < entry.firstStep + entry.numSteps; ++s) {
    StepTypes types = stepTypes(plan_, s);
    std::string why;
    if (backend_->supportsStep(types, &why))
      continue;
    // e.g. "the cpu backend cannot run linear: weight 0 is f8e4m3 with block shape
    // [64, 64], the cpu kernels implement [128, 128] only"
    return Status::error("%s: %s: the %s backend cannot run %s%s%s", plan_.name().c_str(),
                         plan_.stepLabel(s).c_str(), backend_->name(),
                         stepKindName(types.kind), why.empty() ? "" : ": ", why.c_str());
  }
  return Status();
}

Status Executor::prepare(const EntryPointInfo &entry, Prepared *out) {
  out->entry = &entry;
  Status status = backend_->prepare(plan_, entry.index, &out->program);
  if (!status.ok())
    return status.withPrefix(plan_.name() + ": " + entry.name);
  const auto *buffers = plan_.root().buffers();
  auto address = [&](int32_t buffer) {
    return static_cast<uint8_t *>(arena_.data) +
           buffers->Get(flatbuffers::uoffset_t(buffer))->offset();
  };
  out->tokens = address(entry.tokens);
  out->positions = address(entry.positions);
  out->seqIds = address(entry.seqIds);
  out->logits = address(entry.logits);
  return Status();
}

Status Executor::createCache(int32_t numSequences, int64_t capacity,
                             std::unique_ptr<KvCache> *out) {
  return KvCache::create(plan_, *backend_, numSequences, capacity, out);
}

Status Executor::validate(const TokenBatch &batch) const {
  if (batch.count < 1)
    return Status::error("forward: the batch is empty");
  if (batch.count > maxTokens())
    return Status::error("forward: %" PRId64 " tokens exceed the plan's max_tokens of %" PRId64
                         "; split the batch",
                         batch.count, maxTokens());
  if (!batch.tokens || !batch.positions || !batch.seqIds)
    return Status::error("forward: tokens, positions and sequence ids are all required");
  int64_t bound = vocabSize();
  for (int64_t t = 0; t < batch.count; ++t)
    if (batch.tokens[t] < 0 || batch.tokens[t] >= bound)
      return Status::error("forward: token %" PRId64 " has id %d, the vocabulary has %" PRId64
                           " tokens",
                           t, batch.tokens[t], bound);
  return Status();
}

bool Executor::isDecode(const TokenBatch &batch, const KvCache &cache) const {
  // Each token must sit at its sequence's current length. Two tokens of one
  // sequence would then share that position and extend it by one row only, so
  // the sequences are distinct exactly when `count` of them grow.
  for (int64_t t = 0; t < batch.count; ++t)
    if (batch.positions[t] != cache.length(batch.seqIds[t]))
      return false;
  int64_t grown = 0;
  for (int32_t seq = 0; seq < cache.numSequences(); ++seq)
    grown += newLengths_[size_t(seq)] != cache.length(seq);
  return grown == batch.count;
}

Status Executor::forward(const TokenBatch &batch, KvCache &cache, float *logits) {
  return forward(batch, cache, logits, StepObserver());
}

Status Executor::forward(const TokenBatch &batch, KvCache &cache, float *logits,
                         const StepObserver &observer) {
  Prepared *ran = nullptr;
  MOEC_RETURN_IF_ERROR(runSteps(batch, cache, observer, &ran));
  return backend_->copyToHost(logits, ran->logits,
                              uint64_t(batch.count) * uint64_t(vocabSize()) * sizeof(float));
}

Status Executor::forwardGreedy(const TokenBatch &batch, KvCache &cache, int64_t row,
                               int32_t *token) {
  if (row < 0 || row >= batch.count)
    return Status::error("forward: greedy row %" PRId64 " of a batch of %" PRId64, row,
                         batch.count);
  Prepared *ran = nullptr;
  MOEC_RETURN_IF_ERROR(runSteps(batch, cache, StepObserver(), &ran));
  const uint64_t rowBytes = uint64_t(vocabSize()) * sizeof(float);
  return backend_->argmaxRows(*ran->program, ran->logits + uint64_t(row) * rowBytes, 1,
                              vocabSize(), token);
}

Status Executor::runSteps(const TokenBatch &batch, KvCache &cache, const StepObserver &observer,
                          Prepared **ran) {
  MOEC_RETURN_IF_ERROR(validate(batch));
  // A cache made for another plan would index states or rows that are not there.
  if (!cache.fits(plan_)) {
    uint64_t wantBytes = 0;
    for (size_t i = 0; i < plan_.numStates(); ++i)
      wantBytes += plan_.state(i).rowBytes;
    return Status::error("forward: the KV cache was made for another plan (%zu states of %" PRIu64
                         " bytes per token, this plan has %zu states of %" PRIu64 ")",
                         cache.bindings().size(), cache.bytesPerToken(), plan_.numStates(),
                         wantBytes);
  }
  Status status = cache.checkBatch(batch.positions, batch.seqIds, batch.count, &newLengths_);
  if (!status.ok())
    return status.withPrefix("forward");
  // Decode steps, and batches smaller than the size from which the compiler found
  // prefill's MLA form cheaper, run the decode entry point.
  const bool small = batch.count < prefill_.entry->minTokens;
  Prepared &run = small || isDecode(batch, cache) ? decode_ : prefill_;

  uint64_t indexBytes = uint64_t(batch.count) * sizeof(int32_t);
  MOEC_RETURN_IF_ERROR(backend_->copyToDevice(run.tokens, batch.tokens, indexBytes));
  MOEC_RETURN_IF_ERROR(backend_->copyToDevice(run.positions, batch.positions, indexBytes));
  MOEC_RETURN_IF_ERROR(backend_->copyToDevice(run.seqIds, batch.seqIds, indexBytes));

  Bindings bindings;
  bindings.tokens = batch.count;
  bindings.arena = static_cast<uint8_t *>(arena_.data);
  bindings.states = cache.bindings().data();
  bindings.numStates = cache.bindings().size();
  bindings.numSequences = cache.numSequences();
  std::vector<float> host;
  std::function<Status(uint32_t)> afterStep = [&](uint32_t index) -> Status {
    const plan::Step &step = *plan_.root().steps()->Get(index);
    if (!step.results() || step.results()->size() == 0)
      return Status();
    const plan::Buffer &buffer = *plan_.root().buffers()->Get(step.results()->Get(0));
    if (buffer.dtype() != plan::DType::F32 || !buffer.shape() || buffer.shape()->size() != 2)
      return Status();
    const int64_t cols = buffer.shape()->Get(1);
    host.resize(size_t(batch.count * cols));
    MOEC_RETURN_IF_ERROR(backend_->synchronize());
    MOEC_RETURN_IF_ERROR(backend_->copyToHost(host.data(), bindings.arena + buffer.offset(),
                                              host.size() * sizeof(float)));
    return observer(index, host.data(), batch.count, cols);
  };
  if (observer)
    bindings.afterStep = &afterStep;
  if (batch.wantLogits) {
    logitsRows_.clear();
    for (int64_t i = 0; i < batch.count; ++i)
      if (batch.wantLogits[i])
        logitsRows_.push_back(int32_t(i));
    if (int64_t(logitsRows_.size()) < batch.count) {
      bindings.logitsRows = logitsRows_.data();
      bindings.numLogitsRows = int64_t(logitsRows_.size());
    }
  }
  MOEC_RETURN_IF_ERROR(backend_->execute(*run.program, bindings));
  MOEC_RETURN_IF_ERROR(backend_->synchronize());
  cache.commit(newLengths_);
  lastEntry_ = run.entry;
  *ran = &run;
  return Status();
}

} // namespace moec
