//===- Scratch.cpp - Per-thread scratch memory reused across kernel calls -===//

#include "Scratch.h"

#include <new>

namespace moec::cpu::detail {
namespace {

constexpr std::align_val_t kAlign{64};

/// One thread's buffers, freed when the thread exits.
struct ThreadBuffers {
  void *data[static_cast<int>(ScratchSlot::Count)] = {};
  size_t capacity[static_cast<int>(ScratchSlot::Count)] = {};
  ~ThreadBuffers() {
    for (void *p : data)
      if (p)
        ::operator delete(p, kAlign);
  }
};

thread_local ThreadBuffers tBuffers;

} // namespace

Scratch::Scratch(ScratchSlot slot, size_t bytes) : data_(nullptr), owned_(false) {
  if (bytes == 0)
    bytes = 64;
  if (bytes > kKeepScratchBytes) {
    data_ = ::operator new(bytes, kAlign);
    owned_ = true;
    return;
  }
  const int s = static_cast<int>(slot);
  if (tBuffers.capacity[s] < bytes) {
    if (tBuffers.data[s])
      ::operator delete(tBuffers.data[s], kAlign);
    tBuffers.data[s] = nullptr;
    tBuffers.capacity[s] = 0;
    // Grow to a power of two: a few steps reach any size under the cap.
    size_t grown = 4096;
    while (grown < bytes)
      grown *= 2;
    tBuffers.data[s] = ::operator new(grown, kAlign);
    tBuffers.capacity[s] = grown;
  }
  data_ = tBuffers.data[s];
}

Scratch::~Scratch() {
  if (owned_)
    ::operator delete(data_, kAlign);
}

} // namespace moec::cpu::detail
