//===- ThreadsTest.cpp - The kernels' default thread count ----------------===//

#include "moec/cpu/kernels.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <sched.h>
#include <thread>

namespace moec::cpu::test {
namespace {

TEST(Threads, DefaultIsTheCpusThisThreadMayRunOn) {
  if (std::getenv("OMP_NUM_THREADS"))
    GTEST_SKIP() << "OMP_NUM_THREADS is set: it decides the default";
  cpu_set_t allowed;
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  EXPECT_EQ(defaultNumThreads(), CPU_COUNT(&allowed));

  // A thread confined to one CPU (as under `taskset -c N`) defaults to one worker,
  // whatever the machine's core count.
  int first = 0;
  while (!CPU_ISSET(first, &allowed))
    ++first;
  int confined = -1, status = -1;
  std::thread([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    status = sched_setaffinity(0, sizeof(one), &one);
    confined = defaultNumThreads();
  }).join();
  ASSERT_EQ(status, 0);
  EXPECT_EQ(confined, 1);
  // An explicit count wins over the default.
  {
    ScopedNumThreads threads(3);
    EXPECT_EQ(numThreads(), 3);
  }
}

} // namespace
} // namespace moec::cpu::test
