//===- WaitPolicyProbe.cpp - What the OpenMP runtime read at start-up -----===//
//
// Starts like moec-run (moec::cpu::boundOpenMpSpinning first), then prints the spin
// variables as the process sees them and the OpenMP runtime's own view of its
// settings (omp_display_env), which libgomp read when it was loaded: the ctest checks
// in tests/kernels/CMakeLists.txt match both.
//
//===----------------------------------------------------------------------===//
#include "moec/cpu/WaitPolicy.h"

#include <cstdio>
#include <cstdlib>
#include <initializer_list>

#include <omp.h>

int main(int, char **argv) {
  moec::cpu::boundOpenMpSpinning(argv);
  for (const char *name :
       {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MOEC_OMP_SPIN_REEXEC"}) {
    const char *value = std::getenv(name);
    std::printf("env %s=%s\n", name, value ? value : "(unset)");
  }
  std::fflush(stdout);
  omp_display_env(1);
  return 0;
}
