//===- BackendLibraryTest.cpp - backends loaded from shared libraries -----===//
//
// A dynamically loaded backend registers through the same registry as the CPU
// backend, and the executor checks a plan against it like any other.
//
//===----------------------------------------------------------------------===//
#include "LoadedModel.h"

#include <algorithm>

namespace moec::test {
namespace {

TEST(BackendLibrary, RegistersItsBackendsAndTheExecutorChecksThem) {
  ASSERT_TRUE(loadBackendLibrary(MOEC_NULL_BACKEND_LIBRARY).ok());
  std::vector<std::string> names = backendNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "null"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "cpu"), names.end());

  std::unique_ptr<Backend> null;
  ASSERT_TRUE(createBackend("null", {}, &null).ok());
  EXPECT_EQ(null->bufferTypes().at(0).name, "null");

  TempDir dir;
  std::string path = dir.file("tiny.plan");
  ASSERT_TRUE(writeTinyModel({}, path));
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(path, &plan).ok());
  ExecutorOptions options;
  options.backend = "null";
  std::unique_ptr<Executor> executor;
  EXPECT_EQ(Executor::create(*plan, options, &executor).message(),
            path + ": steps[0] (embed_tokens): the null backend cannot run embedding: it "
                   "runs no steps");
}

TEST(BackendLibrary, ErrorsNameTheFile) {
  EXPECT_EQ(loadBackendLibrary(MOEC_NOT_A_BACKEND_LIBRARY).message(),
            std::string(MOEC_NOT_A_BACKEND_LIBRARY) +
                ": not a moec backend library (no moec_register_backends)");
  std::string missing = loadBackendLibrary("/nonexistent/libmoec_cuda.so").message();
  EXPECT_EQ(missing.rfind("/nonexistent/libmoec_cuda.so: cannot load backend library: ", 0), 0u)
      << missing;
}

} // namespace
} // namespace moec::test
