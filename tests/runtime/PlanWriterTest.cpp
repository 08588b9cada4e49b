//===- PlanWriterTest.cpp - Plans are written aligned, atomically, packed -===//
#include "TinyModel.h"

#include "moec/plan_writer/PlanWriter.h"
#include "moec/runtime/Liveness.h"
#include "moec/runtime/Plan.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fstream>
#include <iterator>

namespace moec::test {
namespace {

std::vector<std::string> listDir(const std::string &path) {
  std::vector<std::string> names;
  if (DIR *dir = ::opendir(path.c_str())) {
    while (dirent *entry = ::readdir(dir))
      if (entry->d_name[0] != '.')
        names.push_back(entry->d_name);
    ::closedir(dir);
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(PlanWriter, EmbeddedWeightsAreAlignedAndExact) {
  TempDir dir;
  PlanWriter writer;
  TinyModel model;
  TinyModelOptions options;
  options.layers = 2;
  buildTinyModel(options, writer, &model);
  std::string path = dir.file("tiny.plan");
  ASSERT_TRUE(writer.write(path).ok());
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{"tiny.plan"}); // no temp left over

  std::unique_ptr<Plan> plan;
  Status status = Plan::load(path, &plan);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(plan->numWeights(), writer.plan().weights.size());
  for (size_t i = 0; i < plan->numWeights(); ++i) {
    EXPECT_EQ(writer.plan().weights[i]->offset % 64, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(plan->weight(i).data) % 64, 0u);
  }
  // Stored bytes decode to the values the reference uses.
  const plan::Weight *embed = plan->root().weights()->Get(0);
  ASSERT_EQ(embed->name()->str(), "model.embed_tokens.weight");
  const RefWeight &ref = model.weight("model.embed_tokens.weight");
  const float *values = static_cast<const float *>(plan->weight(0).data);
  for (size_t i = 0; i < ref.values.size(); i += 97)
    EXPECT_EQ(double(values[i]), ref.values[i]);
  EXPECT_EQ(plan->root().provenance()->compiler_version()->str(), "tiny-model-builder");
}

TEST(PlanWriter, ExternalWeightsGoToTheirOwnFile) {
  TempDir dir;
  TinyModelOptions options;
  options.external = true;
  options.fp8 = false;
  options.layers = 2;
  PlanWriter writer;
  TinyModel model;
  buildTinyModel(options, writer, &model);
  ASSERT_TRUE(writer.write(dir.file("tiny.plan")).ok());
  EXPECT_EQ(listDir(dir.path()), (std::vector<std::string>{"tiny.plan", "tiny.weights"}));
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(dir.file("tiny.plan"), &plan).ok());
  const RefWeight &ref = model.weight("lm_head.weight");
  size_t index = plan->numWeights() - 1;
  ASSERT_EQ(plan->root().weights()->Get(uint32_t(index))->name()->str(), "lm_head.weight");
  const uint16_t *bits = static_cast<const uint16_t *>(plan->weight(index).data);
  EXPECT_EQ(decodeF16(bits[3]), ref.values[3]);
  // The plan file itself holds no weight bytes.
  std::ifstream in(dir.file("tiny.plan"), std::ios::binary | std::ios::ate);
  EXPECT_LT(uint64_t(in.tellg()), plan->weightBytes() / 4);
}

TEST(PlanWriter, ArenaPackingReusesMemoryButNeverForLiveBuffers) {
  PlanWriter writer;
  TinyModel model;
  TinyModelOptions options;
  buildTinyModel(options, writer, &model);
  const plan::PlanT &p = writer.plan();
  const plan::EntryPointT &entry = *p.entry_points[0];
  std::vector<std::vector<int32_t>> stepBuffers;
  uint64_t total = 0;
  for (const auto &step : p.steps) {
    std::vector<int32_t> touched = step->operands;
    touched.insert(touched.end(), step->results.begin(), step->results.end());
    stepBuffers.push_back(touched);
  }
  std::vector<LiveRange> ranges =
      computeLiveRanges(p.buffers.size(), entry.inputs, entry.outputs, stepBuffers);
  for (size_t a = 0; a < p.buffers.size(); ++a) {
    total += p.buffers[a]->size;
    EXPECT_EQ(p.buffers[a]->offset % 64, 0u);
    EXPECT_LE(p.buffers[a]->offset + p.buffers[a]->size, p.arena_size);
    for (size_t b = a + 1; b < p.buffers.size(); ++b) {
      bool memory = p.buffers[a]->offset < p.buffers[b]->offset + p.buffers[b]->size &&
                    p.buffers[b]->offset < p.buffers[a]->offset + p.buffers[a]->size;
      EXPECT_FALSE(memory && ranges[a].overlaps(ranges[b])) << a << " " << b;
    }
  }
  // Packing must actually save memory on a multi-layer model.
  EXPECT_LT(p.arena_size, total / 2);
}

TEST(PlanWriter, FailedWriteLeavesNothingBehind) {
  TempDir dir;
  PlanWriter writer;
  Status status = writer.write(dir.file("no/such/dir/x.plan"));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot create"), std::string::npos) << status.message();
  EXPECT_TRUE(listDir(dir.path()).empty());
}

} // namespace
} // namespace moec::test
