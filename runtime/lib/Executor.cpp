//===- Executor.cpp - Runs a plan's forward pass on a backend -------------===//
#include "moec/runtime/Executor.h"

#include <cinttypes>

namespace moec {

Status Executor::create(const Plan &plan, const ExecutorOptions &options,
                        std::unique_ptr<Executor> *out) {
  std::unique_ptr<Executor> executor(new Executor(plan));
  BackendOptions backendOptions;
  backendOptions.threads = options.threads;
  MOEC_RETURN_IF_ERROR(createBackend(options.backend, plan, backendOptions, &executor->backend_));
  Status status = executor->backend_->allocate(plan.arenaSize(), &executor->arena_);
  if (!status.ok())
    return status.withPrefix(plan.name() + ": arena");
  *out = std::move(executor);
  return Status();
}

Executor::~Executor() {
  if (backend_)
    backend_->release(arena_);
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
  for (int64_t t = 0; t < batch.count; ++t)
    if (batch.tokens[t] < 0 || batch.tokens[t] >= vocabSize())
      return Status::error("forward: token %" PRId64 " has id %d, the vocabulary has %" PRId64
                           " tokens",
                           t, batch.tokens[t], vocabSize());
  return Status();
}

Status Executor::forward(const TokenBatch &batch, KvCache &cache, float *logits) {
  MOEC_RETURN_IF_ERROR(validate(batch));
  // A cache made for another plan would index layers or rows that are not there.
  const plan::ModelConfig *model = plan_.root().model();
  uint64_t wantBytes = uint64_t(model->num_hidden_layers()) *
                       uint64_t(model->kv_lora_rank() + model->qk_rope_head_dim()) * sizeof(float);
  if (cache.bytesPerToken() != wantBytes ||
      cache.slots().size() != size_t(model->num_hidden_layers()) * size_t(cache.numSequences()))
    return Status::error("forward: the KV cache was made for another plan (%llu bytes per "
                         "token, this plan needs %llu)",
                         static_cast<unsigned long long>(cache.bytesPerToken()),
                         static_cast<unsigned long long>(wantBytes));
  std::vector<int64_t> newLengths;
  Status status = cache.checkBatch(batch.positions, batch.seqIds, batch.count, &newLengths);
  if (!status.ok())
    return status.withPrefix("forward");

  const ForwardEntry &entry = plan_.forward();
  const auto *buffers = plan_.root().buffers();
  auto address = [&](int32_t buffer) {
    return static_cast<uint8_t *>(arena_.data) + buffers->Get(flatbuffers::uoffset_t(buffer))->offset();
  };
  uint64_t indexBytes = uint64_t(batch.count) * sizeof(int32_t);
  MOEC_RETURN_IF_ERROR(backend_->copyToDevice(address(entry.tokens), batch.tokens, indexBytes));
  MOEC_RETURN_IF_ERROR(
      backend_->copyToDevice(address(entry.positions), batch.positions, indexBytes));
  MOEC_RETURN_IF_ERROR(backend_->copyToDevice(address(entry.seqIds), batch.seqIds, indexBytes));

  StepLaunch launch;
  launch.tokens = batch.count;
  launch.arena = static_cast<uint8_t *>(arena_.data);
  launch.caches = cache.slots().data();
  launch.numSequences = cache.numSequences();
  for (uint32_t s = 0; s < entry.numSteps; ++s) {
    launch.step = entry.firstStep + s;
    MOEC_RETURN_IF_ERROR(backend_->launch(launch));
  }
  MOEC_RETURN_IF_ERROR(backend_->synchronize());
  cache.commit(newLengths);
  return backend_->copyToHost(logits, address(entry.logits),
                              uint64_t(batch.count) * uint64_t(vocabSize()) * sizeof(float));
}

} // namespace moec
