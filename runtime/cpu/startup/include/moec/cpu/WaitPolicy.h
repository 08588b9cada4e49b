//===- WaitPolicy.h - OpenMP workers sleep soon when they have no work -*- C++ -*-===//
//
// A kernel's OpenMP workers wait at every join for the next parallel region. By
// default GCC's libgomp lets them spin for 300000 pause instructions first (several
// milliseconds) and clang's libomp for 200 ms. On an idle machine that is cheap; when
// other processes keep every CPU busy, the spinning workers burn the time slices the
// working threads need, and decode falls to a few percent of its rate.
//
// boundOpenMpSpinning() makes idle workers spin briefly, then sleep until woken. The
// spin length can only be chosen through the environment, and libgomp reads its
// environment once, when it is loaded, before main() (a variable set later is never
// read, and the C library resets the environment after an executable's
// .preinit_array runs, so there is no earlier hook). So, for libgomp, the function
// re-executes the program once (/proc/self/exe, same arguments, same environment plus
// GOMP_SPINCOUNT); libomp reads its environment at its first use, so for libomp
// setting KMP_BLOCKTIME in the process is enough. A wait policy the user chose
// (OMP_WAIT_POLICY, GOMP_SPINCOUNT, KMP_BLOCKTIME or KMP_LIBRARY) is left alone: set
// one of them to run without the re-execution (under valgrind, say). If it is
// impossible (no /proc, or the program was started through the dynamic loader), the
// program continues unchanged.
//
// Call it first thing in main(), before any output, thread or OpenMP region: moec-run
// and moec_bench do.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_CPU_WAITPOLICY_H
#define MOEC_CPU_WAITPOLICY_H

namespace moec::cpu {

/// Bounds the spinning to about 5 microseconds ("GOMP_SPINCOUNT=500" with libgomp,
/// "KMP_BLOCKTIME=5us" with libomp) unless the environment already chooses a wait
/// policy; with libgomp this re-executes the program (`argv` as main received it) and
/// does not return unless the re-execution failed.
void boundOpenMpSpinning(char **argv);

} // namespace moec::cpu

#endif // MOEC_CPU_WAITPOLICY_H
