//===- PlanWriterTest.cpp - Plans are written aligned, atomically, packed -===//
#include "TinyModel.h"

#include "moec/plan_writer/PlanWriter.h"
#include "moec/runtime/Liveness.h"
#include "moec/runtime/MemoryPlan.h"
#include "moec/runtime/Plan.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <thread>
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

/// For every entry point of `p`: no two buffers live together share arena bytes.
/// Returns the number of buffer pairs that do share bytes (not live together).
size_t checkPacking(const plan::PlanT &p) {
  size_t shared = 0;
  std::vector<std::vector<LiveRange>> perEntry;
  for (const auto &entry : p.entry_points) {
    std::vector<std::vector<int32_t>> stepBuffers;
    for (uint32_t s = entry->first_step; s < entry->first_step + entry->num_steps; ++s) {
      std::vector<int32_t> touched = p.steps[s]->operands;
      touched.insert(touched.end(), p.steps[s]->results.begin(), p.steps[s]->results.end());
      stepBuffers.push_back(touched);
    }
    perEntry.push_back(
        computeLiveRanges(p.buffers.size(), entry->inputs, entry->outputs, stepBuffers));
  }
  for (size_t a = 0; a < p.buffers.size(); ++a) {
    EXPECT_EQ(p.buffers[a]->offset % 64, 0u);
    EXPECT_LE(p.buffers[a]->offset + p.buffers[a]->size, p.arena_size);
    for (size_t b = a + 1; b < p.buffers.size(); ++b) {
      bool memory = p.buffers[a]->offset < p.buffers[b]->offset + p.buffers[b]->size &&
                    p.buffers[b]->offset < p.buffers[a]->offset + p.buffers[a]->size;
      shared += memory;
      for (const auto &ranges : perEntry)
        EXPECT_FALSE(memory && ranges[a].overlaps(ranges[b])) << a << " " << b;
    }
  }
  return shared;
}

TEST(PlanWriter, ArenaPackingReusesMemoryButNeverForLiveBuffers) {
  PlanWriter writer;
  TinyModel model;
  TinyModelOptions options;
  buildTinyModel(options, writer, &model);
  const plan::PlanT &p = writer.plan();
  ASSERT_EQ(p.entry_points.size(), 2u);
  EXPECT_EQ(p.entry_points[1]->first_step, p.entry_points[0]->first_step); // shared steps
  EXPECT_GT(checkPacking(p), 0u);
  uint64_t total = 0;
  for (const auto &buffer : p.buffers)
    total += buffer->size;
  // Packing must actually save memory on a multi-layer model.
  EXPECT_LT(p.arena_size, total / 2);
}

TEST(PlanWriter, EntryPointsWithTheirOwnStepsShareTheArena) {
  PlanWriter shared, split;
  TinyModel model;
  TinyModelOptions options;
  buildTinyModel(options, shared, &model);
  options.prefillAbsorbed = false;
  buildTinyModel(options, split, &model);
  const plan::PlanT &p = split.plan();
  ASSERT_EQ(p.entry_points.size(), 2u);
  EXPECT_EQ(p.entry_points[1]->first_step,
            p.entry_points[0]->first_step + p.entry_points[0]->num_steps);
  checkPacking(p);
  // Buffers of one entry point never constrain the other's: two forward passes fit
  // in about the arena of one.
  EXPECT_LE(p.arena_size, shared.plan().arena_size * 5 / 4);
  for (const auto &entry : p.entry_points)
    EXPECT_EQ(entry->token_bound, 160);
}

TEST(PlanWriter, StatesBlockShapesAndTokenBoundsRoundTrip) {
  TempDir dir;
  PlanWriter writer;
  TinyModel model;
  TinyModelOptions options;
  options.layers = 1;
  options.fp8Block = {64, 32};
  buildTinyModel(options, writer, &model);
  std::string path = dir.file("tiny.plan");
  ASSERT_TRUE(writer.write(path).ok());
  std::unique_ptr<Plan> plan;
  Status status = Plan::load(path, &plan);
  ASSERT_TRUE(status.ok()) << status.message();
  const plan::Plan &root = plan->root();
  ASSERT_EQ(root.version(), kPlanFormatVersion);
  ASSERT_EQ(root.states()->size(), 2u);
  EXPECT_EQ(root.states()->Get(1)->name()->str(), "model.layers.0.self_attn.rope_cache");
  EXPECT_EQ(root.states()->Get(1)->shape()->Get(0), 8);
  const plan::Weight *qa = nullptr;
  for (const plan::Weight *w : *root.weights())
    if (w->name()->str() == "model.layers.0.self_attn.q_a_proj.weight")
      qa = w;
  ASSERT_NE(qa, nullptr);
  ASSERT_EQ(qa->block_shape()->size(), 2u);
  EXPECT_EQ(qa->block_shape()->Get(0), 64);
  EXPECT_EQ(qa->block_shape()->Get(1), 32);
  const plan::Weight *scale = root.weights()->Get(flatbuffers::uoffset_t(qa->block_scale()));
  EXPECT_EQ(scale->shape()->Get(0), 1);  // ceil(48 / 64)
  EXPECT_EQ(scale->shape()->Get(1), 5);  // ceil(136 / 32)
  EXPECT_EQ(root.entry_points()->Get(1)->token_bound(), 160);
  for (const plan::Step *step : *root.steps()) {
    if (step->kind() == plan::StepKind::CacheStore || step->kind() == plan::StepKind::LatentAttention) {
      EXPECT_EQ(step->states()->size(), 2u);
    }
  }
}

/// Writes a tiny plan plus one generated weight of `bytes` bytes (value i % 251 at
/// byte i) to `path`; counts the producer's calls and the bytes it produced.
Status writeWithGenerated(const std::string &path, uint64_t bytes, uint64_t quantum,
                          int *calls, uint64_t *produced, int32_t *index) {
  PlanWriter writer;
  TinyModel model;
  buildTinyModel(TinyModelOptions(), writer, &model);
  *index = writer.addWeightGenerated(
      "generated", plan::DType::F32, {int64_t(bytes / 4)}, bytes, quantum,
      [=](uint64_t offset, uint8_t *out, size_t size) -> Status {
        EXPECT_EQ(offset % quantum, 0u);
        EXPECT_TRUE(size % quantum == 0 || offset + size == bytes);
        ++*calls;
        *produced += size;
        for (size_t i = 0; i < size; ++i)
          out[i] = uint8_t((offset + i) % 251);
        return Status();
      });
  return writer.write(path);
}

TEST(PlanWriter, GeneratedWeightsAreComputedOnceIntoARegularFile) {
  TempDir dir;
  std::string path = dir.file("gen.plan");
  int calls = 0;
  uint64_t produced = 0;
  int32_t index = -1;
  const uint64_t bytes = (uint64_t(64) << 20) + 1000; // two pieces
  Status status = writeWithGenerated(path, bytes, 3000, &calls, &produced, &index);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(produced, bytes); // asked once: the header went back in place
  EXPECT_EQ(calls, 2);
  std::unique_ptr<Plan> plan;
  status = Plan::load(path, &plan);
  ASSERT_TRUE(status.ok()) << status.message();
  status = plan->verifyChecksums();
  ASSERT_TRUE(status.ok()) << status.message();
  const auto *data = static_cast<const uint8_t *>(plan->weight(size_t(index)).data);
  for (uint64_t i = 0; i < bytes; i += 4099)
    ASSERT_EQ(data[i], uint8_t(i % 251)) << i;
  EXPECT_EQ(data[bytes - 1], uint8_t((bytes - 1) % 251));
}

TEST(PlanWriter, GeneratedWeightsThroughAPipeAreHashedFirst) {
  TempDir dir;
  std::string fifo = dir.file("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string copy = dir.file("copy.plan");
  // A reader drains the FIFO into a regular file, as `moec compile -o /dev/stdout |
  // cat > x.plan` would.
  std::thread reader([&] {
    std::ifstream in(fifo, std::ios::binary);
    std::ofstream out(copy, std::ios::binary);
    out << in.rdbuf();
  });
  int calls = 0;
  uint64_t produced = 0;
  int32_t index = -1;
  Status status = writeWithGenerated(fifo, 5000, 128, &calls, &produced, &index);
  reader.join();
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(produced, 2 * 5000u); // once to hash, once to write
  std::unique_ptr<Plan> plan;
  status = Plan::load(copy, &plan);
  ASSERT_TRUE(status.ok()) << status.message();
  status = plan->verifyChecksums();
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(static_cast<const uint8_t *>(plan->weight(size_t(index)).data)[4999],
            uint8_t(4999 % 251));
}

TEST(PlanWriter, AFailingProducerLeavesNothingBehind) {
  TempDir dir;
  PlanWriter writer;
  TinyModel model;
  buildTinyModel(TinyModelOptions(), writer, &model);
  writer.addWeightGenerated("bad", plan::DType::F8E4M3, {10}, 10, 1,
                            [](uint64_t, uint8_t *, size_t) {
                              return Status::error("tensor 'bad': not finite");
                            });
  Status status = writer.write(dir.file("x.plan"));
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message(), "tensor 'bad': not finite");
  EXPECT_TRUE(listDir(dir.path()).empty());
}

TEST(PlanWriter, TheMemoryPlanReadsBackTheArenaPacking) {
  TempDir dir;
  PlanWriter writer;
  TinyModel model;
  TinyModelOptions options;
  options.layers = 2;
  buildTinyModel(options, writer, &model);
  ASSERT_TRUE(writer.write(dir.file("m.plan")).ok());
  std::unique_ptr<Plan> plan;
  ASSERT_TRUE(Plan::load(dir.file("m.plan"), &plan).ok());
  MemoryPlan memory = describeMemoryPlan(*plan);
  EXPECT_EQ(memory.arenaBytes, plan->arenaSize());
  EXPECT_EQ(memory.maxTokens, plan->maxTokens());
  ASSERT_EQ(memory.entries.size(), 2u);
  uint64_t separate = 0;
  for (size_t i = 0; i < memory.buffers.size(); ++i) {
    const MemoryPlan::Buffer &a = memory.buffers[i];
    separate += a.size;
    EXPECT_LE(a.offset + a.size, memory.arenaBytes) << a.name;
    if (i > 0) {
      EXPECT_LE(memory.buffers[i - 1].offset, a.offset); // by offset
    }
    // Buffers that share bytes are never live at once in any entry point.
    for (size_t j = i + 1; j < memory.buffers.size(); ++j) {
      const MemoryPlan::Buffer &b = memory.buffers[j];
      if (a.offset < b.offset + b.size && b.offset < a.offset + a.size && a.size && b.size) {
        for (size_t e = 0; e < memory.entries.size(); ++e) {
          EXPECT_FALSE(a.live[e].overlaps(b.live[e])) << a.name << " and " << b.name;
        }
      }
    }
  }
  EXPECT_EQ(memory.separateBytes, separate);
  EXPECT_GT(memory.separateBytes, memory.arenaBytes); // packing saved memory
  EXPECT_NE(memoryPlanText(memory).find("saved"), std::string::npos);
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
