//===- WaitPolicy.cpp - OpenMP workers sleep soon when they have no work --===//
//
// See moec/cpu/WaitPolicy.h.
//
//===----------------------------------------------------------------------===//
#include "moec/cpu/WaitPolicy.h"

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <unistd.h>

namespace moec::cpu {
namespace {

// About 5 microseconds of spinning, then sleep: long enough to bridge the gap between
// two parallel regions of a decode step on an idle machine, short enough that a worker
// does not burn the time slice another thread needs when every CPU is taken
// (bench/busy_cpu.py; bench/RESULTS.md, "Decode under a busy CPU").
#if defined(__clang__)
// LLVM's libomp: KMP_BLOCKTIME is the time a waiting thread spins (default 200 ms;
// libomp 18 and later accept microseconds). libomp reads it when it initializes, at
// its first use.
constexpr const char *kVariable = "KMP_BLOCKTIME";
constexpr const char *kValue = "5us";
constexpr bool kReadBeforeMain = false;
#else
// GCC's libgomp: GOMP_SPINCOUNT is the number of pause-and-check iterations a waiting
// thread spins before it sleeps on a futex (default 300000, about 3 ms on the Xeon of
// bench/RESULTS.md, where one iteration takes 9 ns). libgomp reads it when it is
// loaded, before main.
constexpr const char *kVariable = "GOMP_SPINCOUNT";
constexpr const char *kValue = "500";
constexpr bool kReadBeforeMain = true;
#endif

/// Set in the environment of the re-executed program only, so that it never loops.
constexpr const char *kGuard = "MOEC_OMP_SPIN_REEXEC";

/// True when /proc/self/exe is the program itself, not the dynamic loader running it
/// (`/lib64/ld-linux-x86-64.so.2 ./moec-run ...`), which would read argv differently.
bool selfIsTheProgram() {
  char path[4096];
  ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0)
    return false;
  path[n] = '\0';
  const char *slash = std::strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  return std::strncmp(base, "ld-", 3) != 0 && std::strncmp(base, "ld.so", 5) != 0;
}

bool userChose() {
  for (const char *name :
       {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "KMP_LIBRARY"})
    if (std::getenv(name))
      return true;
  return false;
}

} // namespace

void boundOpenMpSpinning(char **argv) {
  if (std::getenv(kGuard)) {
    // The re-executed program: the setting is in place; leave no trace for children.
    ::unsetenv(kGuard);
    return;
  }
  if (userChose())
    return;
  if (::setenv(kVariable, kValue, 0) != 0 || !kReadBeforeMain)
    return;
  if (!argv || !argv[0] || !selfIsTheProgram() || ::setenv(kGuard, "1", 1) != 0) {
    ::unsetenv(kVariable);
    return;
  }
  ::execv("/proc/self/exe", argv);
  // Not re-executed (no /proc, ...): run on with libgomp's defaults, and an environment
  // that says so.
  ::unsetenv(kGuard);
  ::unsetenv(kVariable);
}

} // namespace moec::cpu
