//===- Scheduler.cpp - Continuous batching: one forward, many sequences ---===//
#include "moec/runtime/Scheduler.h"

#include <algorithm>
#include <chrono>
#include <cinttypes>

namespace moec {

struct Scheduler::Sequence {
  uint64_t id = 0;
  ScheduledRequest request;
  Sampler sampler;
  int32_t slot = -1;
  size_t prefilled = 0;     ///< prompt tokens run so far
  bool decoding = false;    ///< the prompt has run; feeding generated tokens
  int32_t lastToken = 0;    ///< the token to feed next while decoding
  int64_t position = 0;     ///< its position
  int64_t generated = 0;
  std::atomic<bool> cancelled{false};
  bool done = false;
  explicit Sequence(ScheduledRequest r)
      : request(std::move(r)), sampler(request.sampling) {}
};

Scheduler::Scheduler(Executor &executor, std::unique_ptr<KvCache> cache, int32_t slots,
                     int64_t contextTokens)
    : executor_(executor), cache_(std::move(cache)), slots_(slots),
      contextTokens_(contextTokens), slotUsed_(size_t(slots), false) {
  stats_.kvTokensCapacity = int64_t(slots) * contextTokens;
}

Status Scheduler::create(Executor &executor, int32_t slots, int64_t contextTokens,
                         std::unique_ptr<Scheduler> *out) {
  if (slots < 1 || contextTokens < 2)
    return Status::error("scheduler: needs at least 1 sequence of 2 tokens, got %d of %" PRId64,
                         slots, contextTokens);
  std::unique_ptr<KvCache> cache;
  MOEC_RETURN_IF_ERROR(executor.createCache(slots, contextTokens, &cache));
  out->reset(new Scheduler(executor, std::move(cache), slots, contextTokens));
  (*out)->thread_ = std::thread([s = out->get()] { s->loop(); });
  return Status();
}

Scheduler::~Scheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable())
    thread_.join();
  for (auto &s : active_)
    if (!s->done)
      finish(*s, "cancelled", Status());
  for (auto &s : queue_)
    if (!s->done)
      finish(*s, "cancelled", Status());
}

Status Scheduler::submit(ScheduledRequest request, uint64_t *id) {
  if (request.prompt.empty())
    return Status::error("the prompt has no tokens");
  if (request.maxNewTokens < 1)
    return Status::error("max tokens must be at least 1, got %" PRId64, request.maxNewTokens);
  int64_t need = int64_t(request.prompt.size()) + request.maxNewTokens - 1;
  if (need > contextTokens_)
    return Status::error("the prompt's %zu tokens and up to %" PRId64 " new ones need %" PRId64
                         " tokens of context; a sequence has %" PRId64,
                         request.prompt.size(), request.maxNewTokens, need, contextTokens_);
  MOEC_RETURN_IF_ERROR(Sampler::validate(request.sampling));
  for (int32_t t : request.prompt)
    if (t < 0 || t >= executor_.vocabSize())
      return Status::error("prompt token %d is outside the vocabulary of %" PRId64, t,
                           executor_.vocabSize());
  auto s = std::make_shared<Sequence>(std::move(request));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    s->id = nextId_++;
    *id = s->id;
    queue_.push_back(s);
    ++stats_.submitted;
    stats_.promptTokens += s->request.prompt.size();
  }
  wake_.notify_all();
  return Status();
}

void Scheduler::cancel(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto &s : active_)
    if (s->id == id)
      s->cancelled = true;
  for (auto &s : queue_)
    if (s->id == id)
      s->cancelled = true;
  wake_.notify_all();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SchedulerStats s = stats_;
  s.queued = int64_t(queue_.size());
  s.active = int64_t(active_.size());
  return s;
}

void Scheduler::finish(Sequence &s, const std::string &reason, const Status &status) {
  if (s.done)
    return;
  s.done = true;
  if (s.request.onDone)
    s.request.onDone(reason, status);
}

void Scheduler::loop() {
  for (;;) {
    std::vector<std::shared_ptr<Sequence>> working;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !active_.empty(); });
      if (stopping_)
        return;
      // Queued requests cancelled before they started end here.
      for (auto it = queue_.begin(); it != queue_.end();) {
        if ((*it)->cancelled) {
          finish(**it, "cancelled", Status());
          ++stats_.finished;
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      // Join: a free slot each, in arrival order.
      for (int32_t slot = 0; slot < slots_ && !queue_.empty(); ++slot) {
        if (slotUsed_[size_t(slot)])
          continue;
        std::shared_ptr<Sequence> s = queue_.front();
        queue_.pop_front();
        s->slot = slot;
        slotUsed_[size_t(slot)] = true;
        cache_->clear(slot);
        active_.push_back(s);
      }
      working = active_;
    }
    if (!working.empty())
      step(working);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      // Leave: finished sequences free their slots.
      for (auto it = active_.begin(); it != active_.end();) {
        if ((*it)->done) {
          slotUsed_[size_t((*it)->slot)] = false;
          stats_.kvTokensUsed -= std::min(stats_.kvTokensUsed, cache_->length((*it)->slot));
          cache_->clear((*it)->slot);
          ++stats_.finished;
          it = active_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }
}

void Scheduler::step(std::vector<std::shared_ptr<Sequence>> &working) {
  const int64_t budget = executor_.maxTokens(), vocab = executor_.vocabSize();
  std::vector<int32_t> tokens, positions, seqIds;
  std::vector<std::pair<Sequence *, int64_t>> rows; // sequence, its logits row
  auto add = [&](Sequence &s, int32_t token, int64_t position) {
    tokens.push_back(token);
    positions.push_back(int32_t(position));
    seqIds.push_back(s.slot);
  };
  for (auto &sp : working) {
    Sequence &s = *sp;
    if (s.cancelled) {
      finish(s, "cancelled", Status());
      continue;
    }
    if (s.decoding && int64_t(tokens.size()) < budget) {
      rows.emplace_back(&s, int64_t(tokens.size()));
      add(s, s.lastToken, s.position);
    }
  }
  for (auto &sp : working) {
    Sequence &s = *sp;
    if (s.done || s.decoding)
      continue;
    int64_t room = budget - int64_t(tokens.size());
    int64_t chunk = std::min<int64_t>(room, int64_t(s.request.prompt.size() - s.prefilled));
    if (chunk <= 0)
      continue;
    for (int64_t k = 0; k < chunk; ++k)
      add(s, s.request.prompt[s.prefilled + size_t(k)], int64_t(s.prefilled) + k);
    s.prefilled += size_t(chunk);
    if (s.prefilled == s.request.prompt.size())
      rows.emplace_back(&s, int64_t(tokens.size()) - 1);
  }
  if (tokens.empty())
    return;
  std::vector<float> logits(size_t(int64_t(tokens.size()) * vocab));
  // Only the rows sampled from: each decoding sequence's, and a prompt's last.
  std::vector<uint8_t> want(tokens.size(), 0);
  for (const auto &[sp, row] : rows)
    want[size_t(row)] = 1;
  TokenBatch batch{tokens.data(), positions.data(), seqIds.data(), int64_t(tokens.size())};
  batch.wantLogits = want.data();
  auto start = std::chrono::steady_clock::now();
  Status status = executor_.forward(batch, *cache_, logits.data());
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.forwardPasses;
    stats_.batchedTokens += tokens.size();
    stats_.busySeconds += seconds;
  }
  if (!status.ok()) {
    for (auto &sp : working)
      if (!sp->done && (sp->decoding || sp->prefilled > 0))
        finish(*sp, "error", status);
    return;
  }
  uint64_t generated = 0;
  for (auto &[sp, row] : rows) {
    Sequence &s = *sp;
    const float *l = logits.data() + row * vocab;
    int32_t token = s.sampler.sample(l, vocab);
    // log_softmax under the sampling temperature (1 when greedy).
    const TemperedLogSoftmax logSoftmax(l, vocab, s.request.sampling.temperature);
    float logprob = logSoftmax.at(token);
    std::vector<std::pair<int32_t, float>> top;
    if (s.request.topLogprobs > 0) {
      int64_t k = std::min<int64_t>(s.request.topLogprobs, vocab);
      std::vector<int32_t> ids(static_cast<size_t>(vocab));
      for (int64_t v = 0; v < vocab; ++v)
        ids[size_t(v)] = int32_t(v);
      auto better = [&](int32_t a, int32_t b) { return l[a] != l[b] ? l[a] > l[b] : a < b; };
      std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), better);
      for (int64_t i = 0; i < k; ++i)
        top.emplace_back(ids[size_t(i)], logSoftmax.at(ids[size_t(i)]));
    }
    ++s.generated;
    ++generated;
    bool keep = !s.request.onToken || s.request.onToken(token, logprob, top);
    bool stop = std::find(s.request.stopTokens.begin(), s.request.stopTokens.end(), token) !=
                s.request.stopTokens.end();
    if (!keep)
      finish(s, "cancelled", Status());
    else if (stop)
      finish(s, "stop", Status());
    else if (s.generated >= s.request.maxNewTokens)
      finish(s, "length", Status());
    else {
      s.position = s.decoding ? s.position + 1 : int64_t(s.request.prompt.size());
      s.lastToken = token;
      s.decoding = true;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.generatedTokens += generated;
  // KV-cache rows in use (read here, on the thread that changes them).
  stats_.kvTokensUsed = 0;
  for (int32_t slot = 0; slot < slots_; ++slot)
    if (slotUsed_[size_t(slot)])
      stats_.kvTokensUsed += cache_->length(slot);
}

} // namespace moec
