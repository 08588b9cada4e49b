//===- Dispatch.cpp - SIMD level selection and thread count ---------------===//
//
// Picks the kernel table once from what the CPU supports (cpuid, and the OS saving
// the wide registers, both checked by __builtin_cpu_supports) and holds each
// calling thread's kernel thread count. The default count is the CPUs the process may
// run on (sched_getaffinity), so `taskset -c 0` runs one worker, not one per core.
//
//===----------------------------------------------------------------------===//

#include "KernelTable.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <omp.h>
#include <sched.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace moec::cpu {
namespace {

/// AMX with int8 and bf16 tiles, usable by this process: CPUID.7.0 EDX bits 22
/// (AMX-BF16), 24 (AMX-TILE) and 25 (AMX-INT8), the OS saving the tile state (XCR0 bits 17 and 18), and Linux
/// granting this process the tile data (arch_prctl ARCH_REQ_XCOMP_PERM, once).
bool amxUsable() {
#if defined(__x86_64__)
  static const bool usable = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d & (1u << 22)) || !(d & (1u << 24)) ||
        !(d & (1u << 25)))
      return false;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) // OSXSAVE
      return false;
    unsigned lo, hi;
    asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17))
      return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
#else
  return false;
#endif
}

bool cpuHas(SimdLevel level) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  switch (level) {
  case SimdLevel::Scalar:
    return true;
  case SimdLevel::Avx2:
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
  case SimdLevel::Avx2Vnni:
    return cpuHas(SimdLevel::Avx2) && __builtin_cpu_supports("avxvnni");
  case SimdLevel::Avx512:
    return cpuHas(SimdLevel::Avx2) && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  case SimdLevel::Avx512Vnni:
    return cpuHas(SimdLevel::Avx512) && __builtin_cpu_supports("avx512vnni");
  case SimdLevel::Avx512Amx:
    return cpuHas(SimdLevel::Avx512Vnni) && amxUsable();
  }
  return false;
#else
  return level == SimdLevel::Scalar;
#endif
}

const detail::KernelTable &tableFor(SimdLevel level) {
  switch (level) {
  case SimdLevel::Avx512Amx:
    return detail::avx512AmxKernelTable();
  case SimdLevel::Avx512Vnni:
    return detail::avx512VnniKernelTable();
  case SimdLevel::Avx512:
    return detail::avx512KernelTable();
  case SimdLevel::Avx2Vnni:
    return detail::avx2VnniKernelTable();
  case SimdLevel::Avx2:
    return detail::avx2KernelTable();
  case SimdLevel::Scalar:
    break;
  }
  return detail::scalarKernelTable();
}

/// The active table; null until first use.
std::atomic<const detail::KernelTable *> gActive{nullptr};
/// The default thread count, computed on first use; 0 until then.
std::atomic<int> gDefaultThreads{0};
/// Threads requested with setNumThreads by this thread; <= 0 means the default.
/// Thread-local: each backend sets its own count around the kernels it calls.
thread_local int tThreads = 0;

/// MOEC_SIMD=scalar|avx2|avx2-vnni|avx512|avx512-vnni|avx512-amx caps the level (to compare the paths
/// with the same program); a level this CPU lacks, or another word, is ignored with a
/// line on stderr.
SimdLevel cappedByEnvironment(SimdLevel best) {
  const char *env = std::getenv("MOEC_SIMD");
  if (!env || !*env)
    return best;
  SimdLevel level;
  if (simdLevelFromName(env, &level)) {
    if (cpuHas(level))
      return level;
    std::fprintf(stderr, "moec: MOEC_SIMD=%s: this CPU lacks it; using the detected level\n",
                 env);
    return best;
  }
  std::fprintf(stderr,
               "moec: MOEC_SIMD=%s: not a level (scalar, avx2, avx2-vnni, avx512, avx512-vnni, "
               "avx512-amx); "
               "ignored\n",
               env);
  return best;
}

} // namespace

bool simdLevelFromName(const char *name, SimdLevel *out) {
  static const std::pair<const char *, SimdLevel> kNames[] = {
      {"scalar", SimdLevel::Scalar},   {"avx2", SimdLevel::Avx2},
      {"avx2-vnni", SimdLevel::Avx2Vnni}, {"avx512", SimdLevel::Avx512},
      {"avx512-vnni", SimdLevel::Avx512Vnni}, {"avx512-amx", SimdLevel::Avx512Amx}};
  for (const auto &[n, level] : kNames)
    if (std::strcmp(name, n) == 0) {
      *out = level;
      return true;
    }
  return false;
}

SimdLevel detectedSimdLevel() {
  static const SimdLevel level =
      cappedByEnvironment(cpuHas(SimdLevel::Avx512Amx)    ? SimdLevel::Avx512Amx
                          : cpuHas(SimdLevel::Avx512Vnni) ? SimdLevel::Avx512Vnni
                          : cpuHas(SimdLevel::Avx512)   ? SimdLevel::Avx512
                          : cpuHas(SimdLevel::Avx2Vnni) ? SimdLevel::Avx2Vnni
                          : cpuHas(SimdLevel::Avx2)     ? SimdLevel::Avx2
                                                        : SimdLevel::Scalar);
  return level;
}

bool setSimdLevelForTesting(SimdLevel level) {
  if (!cpuHas(level))
    return false;
  gActive.store(&tableFor(level), std::memory_order_release);
  return true;
}

const char *simdLevel() { return detail::activeKernels().name; }

void setNumThreads(int n) { tThreads = n; }

int defaultNumThreads() {
  // OMP_NUM_THREADS, when set, is the user's choice; omp_get_max_threads applies it.
  const char *env = std::getenv("OMP_NUM_THREADS");
  if (env && *env)
    return omp_get_max_threads();
  // The CPUs this thread may run on; cpu_set_t covers 1024 CPUs, so grow the mask
  // while the kernel says it is too small (EINVAL).
  for (int cpus = CPU_SETSIZE; cpus <= (1 << 20); cpus *= 2) {
    cpu_set_t *set = CPU_ALLOC(cpus);
    if (!set)
      break;
    const size_t bytes = CPU_ALLOC_SIZE(cpus);
    const int got = sched_getaffinity(0, bytes, set) == 0 ? CPU_COUNT_S(bytes, set) : -1;
    const int error = errno;
    CPU_FREE(set);
    if (got > 0)
      return got;
    if (got == 0 || error != EINVAL)
      break;
  }
  return omp_get_max_threads();
}

int numThreads() {
  const int n = tThreads;
  if (n > 0)
    return n;
  int threads = gDefaultThreads.load(std::memory_order_relaxed);
  if (threads <= 0) {
    threads = defaultNumThreads();
    gDefaultThreads.store(threads, std::memory_order_relaxed);
  }
  return threads;
}

ScopedNumThreads::ScopedNumThreads(int n) : saved_(tThreads) { tThreads = n; }

ScopedNumThreads::~ScopedNumThreads() { tThreads = saved_; }

namespace detail {

const KernelTable &activeKernels() {
  const KernelTable *table = gActive.load(std::memory_order_acquire);
  if (!table) {
    table = &tableFor(detectedSimdLevel());
    const KernelTable *expected = nullptr;
    // Another thread may have forced a level meanwhile; keep its choice.
    if (!gActive.compare_exchange_strong(expected, table, std::memory_order_acq_rel))
      table = expected;
  }
  return *table;
}

int threadsFor(int64_t work) {
  // Below this many operations a parallel region costs more than it saves.
  constexpr int64_t kMinParallelWork = 1 << 15;
  return work < kMinParallelWork ? 1 : numThreads();
}

} // namespace detail
} // namespace moec::cpu
