//===- Scratch.h - Per-thread scratch memory reused across kernel calls -*- C++ -*-===//
//
// A decode step calls every kernel once per layer with a handful of tokens: a heap
// allocation per call (and per token) costs as much as the work itself. Kernels
// borrow their temporary arrays from per-thread buffers instead, one per
// ScratchSlot, that grow to the largest request and are then reused. A request
// larger than kKeepBytes (a long prefill) gets its own allocation, freed when the
// Scratch object goes, so no thread keeps hundreds of MiB after one big call.
//
// Two Scratch objects alive at once on one thread must name different slots; a
// slot belongs to one kernel, and a kernel holding a slot calls no other kernel
// that takes one (linear, which the router calls, takes none).
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_LIB_SCRATCH_H
#define MOEC_CPU_LIB_SCRATCH_H

#include <cstddef>
#include <cstdint>

namespace moec::cpu::detail {

/// The per-thread buffers, one per use.
enum class ScratchSlot : uint8_t {
  RouterLogits, ///< router: [T, E] logits (calling thread)
  RouterToken,  ///< router: one token's scores, selection scores and flags
  RopeTable,    ///< rope: [T, dim] expanded cos and sin
  MlpPlan,      ///< moeExperts: the counting sort of (token, slot) pairs by expert
  MlpHidden,    ///< moeExperts/swigluMlp: gathered inputs, gate and up activations
  MlpTile,      ///< moeExperts: one worker's down-projection tile
  AttentionPlan, ///< expandedAttention: the tokens grouped by sequence (calling thread)
  AttentionWork, ///< expandedAttention: one worker's expanded keys, values, queries
  Int8Input,    ///< linearRows of an int8 weight: the quantized activations (any thread)
  Int8Shared,   ///< linear/MLPs with int8 weights: activations quantized once for all
                ///< workers (calling thread)
  Fp8Panel,     ///< linearRows of an FP8 weight at prefill: one decoded panel (any thread)
  AttentionRows, ///< attend over a bf16 KV cache: one chunk of rows widened (any thread)
  AmxTiles,     ///< int8 / bf16 prefill with AMX: the activations packed as tiles (any thread)
  Bf16Input,    ///< linearRows with bf16 or FP8 activations: x rounded (any thread)
  Count
};

/// Requests up to this size reuse the thread's buffer for the slot.
inline constexpr size_t kKeepScratchBytes = size_t(4) << 20;

/// `bytes` of 64-byte aligned memory, contents undefined, valid while this lives.
class Scratch {
public:
  Scratch(ScratchSlot slot, size_t bytes);
  ~Scratch();
  Scratch(const Scratch &) = delete;
  Scratch &operator=(const Scratch &) = delete;

  /// The memory as an array of T.
  template <class T> T *as() const { return static_cast<T *>(data_); }

private:
  void *data_;  ///< the thread's buffer for the slot, or owned memory
  bool owned_;  ///< data_ was allocated for this request alone
};

/// Lays several arrays out in one scratch request: size them with add(), then
/// take them in the same order from the Scratch with take().
class ScratchLayout {
public:
  /// Reserves n elements of T (64-byte aligned); returns the layout for chaining.
  template <class T> ScratchLayout &add(int64_t n) {
    bytes_ += roundUp(static_cast<size_t>(n) * sizeof(T));
    return *this;
  }
  /// Total bytes of all reserved arrays.
  size_t bytes() const { return bytes_; }
  /// The next array of n elements of T from `base`, advancing `base` past it.
  template <class T> static T *take(char *&base, int64_t n) {
    T *p = reinterpret_cast<T *>(base);
    base += roundUp(static_cast<size_t>(n) * sizeof(T));
    return p;
  }

private:
  static size_t roundUp(size_t b) { return (b + 63) / 64 * 64; }
  size_t bytes_ = 0;
};

} // namespace moec::cpu::detail

#endif // MOEC_CPU_LIB_SCRATCH_H
