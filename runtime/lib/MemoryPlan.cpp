//===- MemoryPlan.cpp - The arena plan of a loaded plan, for people -------===//

#include "moec/runtime/MemoryPlan.h"

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>

namespace moec {
namespace {

std::vector<int32_t> indices(const flatbuffers::Vector<int32_t> *v) {
  return v ? std::vector<int32_t>(v->begin(), v->end()) : std::vector<int32_t>();
}

std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *fmt, ...) {
  va_list args, copy;
  va_start(args, fmt);
  va_copy(copy, args);
  int length = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string text(length > 0 ? size_t(length) : 0, '\0');
  if (length > 0)
    std::vsnprintf(text.data(), text.size() + 1, fmt, args);
  va_end(args);
  return text;
}

std::string mib(uint64_t bytes) { return format("%.2f MiB", double(bytes) / 1048576.0); }

/// "in..3", "5..12", "7..out", or "-".
std::string rangeText(const LiveRange &r, int64_t numSteps) {
  if (!r.used())
    return "-";
  auto end = [&](int64_t s) {
    return s < 0 ? std::string("in") : s >= numSteps ? std::string("out") : std::to_string(s);
  };
  return end(r.first) + ".." + end(r.last);
}

std::string jsonString(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += char(c);
    else if (c < 0x20)
      out += format("\\u%04x", c);
    else
      out += char(c);
  }
  return out + "\"";
}

} // namespace

MemoryPlan describeMemoryPlan(const Plan &plan) {
  const plan::Plan &root = plan.root();
  MemoryPlan memory;
  memory.maxTokens = plan.maxTokens();
  memory.arenaBytes = plan.arenaSize();
  const auto *buffers = root.buffers();
  const size_t count = buffers ? buffers->size() : 0;
  std::vector<int32_t> scales(count, -1);
  for (size_t i = 0; i < count; ++i)
    scales[i] = buffers->Get(flatbuffers::uoffset_t(i))->scale();
  std::vector<std::vector<LiveRange>> perEntry;
  for (size_t e = 0; e < plan.numEntryPoints(); ++e) {
    const EntryPointInfo &info = plan.entryPoint(e);
    const plan::EntryPoint *entry = root.entry_points()->Get(flatbuffers::uoffset_t(info.index));
    std::vector<std::vector<int32_t>> stepBuffers;
    for (uint32_t s = info.firstStep; s < info.firstStep + info.numSteps; ++s) {
      const plan::Step *step = root.steps()->Get(s);
      std::vector<int32_t> touched = indices(step->operands());
      std::vector<int32_t> results = indices(step->results());
      touched.insert(touched.end(), results.begin(), results.end());
      stepBuffers.push_back(std::move(touched));
    }
    perEntry.push_back(computeLiveRanges(count, indices(entry->inputs()),
                                         indices(entry->outputs()), stepBuffers, scales));
    memory.entries.push_back({info.name, int64_t(info.numSteps)});
  }
  for (size_t i = 0; i < count; ++i) {
    MemoryPlan::Buffer b;
    bool used = false;
    for (const auto &ranges : perEntry) {
      b.live.push_back(ranges[i]);
      used = used || ranges[i].used();
    }
    if (!used)
      continue;
    const plan::Buffer *buffer = buffers->Get(flatbuffers::uoffset_t(i));
    b.name = buffer->name() ? buffer->name()->str() : "";
    b.index = int32_t(i);
    b.offset = buffer->offset();
    b.size = buffer->size();
    memory.separateBytes += b.size;
    memory.buffers.push_back(std::move(b));
  }
  std::stable_sort(memory.buffers.begin(), memory.buffers.end(),
                   [](const MemoryPlan::Buffer &a, const MemoryPlan::Buffer &b) {
                     return a.offset < b.offset;
                   });
  return memory;
}

std::string memoryPlanText(const MemoryPlan &memory) {
  std::string text;
  const uint64_t saved =
      memory.separateBytes > memory.arenaBytes ? memory.separateBytes - memory.arenaBytes : 0;
  text += format("arena: %s (%" PRIu64 " bytes) for %" PRId64 " tokens; %zu buffers would "
                 "take %s in memory of their own: %s (%.0f%%) saved\n",
                 mib(memory.arenaBytes).c_str(), memory.arenaBytes, memory.maxTokens,
                 memory.buffers.size(), mib(memory.separateBytes).c_str(), mib(saved).c_str(),
                 memory.separateBytes ? 100.0 * double(saved) / double(memory.separateBytes)
                                      : 0.0);
  text += format("%12s %12s", "offset", "bytes");
  for (const MemoryPlan::Entry &e : memory.entries)
    text += format("  %-14s", (e.name + " steps").c_str());
  text += "  buffer\n";
  for (const MemoryPlan::Buffer &b : memory.buffers) {
    text += format("%12" PRIu64 " %12" PRIu64, b.offset, b.size);
    for (size_t e = 0; e < memory.entries.size(); ++e)
      text += format("  %-14s", rangeText(b.live[e], memory.entries[e].numSteps).c_str());
    text += "  " + b.name + "\n";
  }
  return text;
}

std::string memoryPlanJson(const MemoryPlan &memory) {
  std::string json = "{\n";
  json += format("  \"max_tokens\": %" PRId64 ",\n  \"arena_bytes\": %" PRIu64
                 ",\n  \"separate_bytes\": %" PRIu64 ",\n  \"saved_bytes\": %" PRIu64 ",\n",
                 memory.maxTokens, memory.arenaBytes, memory.separateBytes,
                 memory.separateBytes > memory.arenaBytes
                     ? memory.separateBytes - memory.arenaBytes
                     : 0);
  json += "  \"entry_points\": [";
  for (size_t e = 0; e < memory.entries.size(); ++e)
    json += format("%s{\"name\": %s, \"steps\": %" PRId64 "}", e ? ", " : "",
                   jsonString(memory.entries[e].name).c_str(), memory.entries[e].numSteps);
  json += "],\n  \"buffers\": [\n";
  for (size_t i = 0; i < memory.buffers.size(); ++i) {
    const MemoryPlan::Buffer &b = memory.buffers[i];
    json += format("    {\"name\": %s, \"index\": %d, \"offset\": %" PRIu64
                   ", \"bytes\": %" PRIu64 ", \"live\": {",
                   jsonString(b.name).c_str(), b.index, b.offset, b.size);
    for (size_t e = 0; e < memory.entries.size(); ++e) {
      json += format("%s%s: ", e ? ", " : "", jsonString(memory.entries[e].name).c_str());
      json += b.live[e].used()
                  ? format("[%" PRId64 ", %" PRId64 "]", b.live[e].first, b.live[e].last)
                  : std::string("null");
    }
    json += i + 1 < memory.buffers.size() ? "}},\n" : "}}\n";
  }
  json += "  ]\n}\n";
  return json;
}

} // namespace moec
