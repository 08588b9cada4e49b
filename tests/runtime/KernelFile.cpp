//===- KernelFile.cpp - GPU kernels saved where the compiler is -----------===//
#include "KernelFile.h"

#include "moec/runtime/AtomicFile.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace moec::testing {
namespace {

const char *const kFormat = "moec-kernels 1";

nlohmann::json entryJson(const plan::KernelEntryT &e) {
  return {{"name", e.name},
          {"step", e.step},
          {"grid", e.grid},
          {"block", e.block},
          {"shared_mem_bytes", e.shared_mem_bytes},
          {"tokens_per_block", e.tokens_per_block},
          {"scratch_bytes_per_token", e.scratch_bytes_per_token},
          {"weight_table", e.weight_table},
          {"min_tokens", e.min_tokens},
          {"max_tokens", e.max_tokens},
          {"tma_box", e.tma_box}};
}

plan::KernelEntryT entryOf(const nlohmann::json &j) {
  plan::KernelEntryT e;
  e.name = j.at("name").get<std::string>();
  e.step = j.at("step").get<int32_t>();
  e.grid = j.at("grid").get<std::vector<uint32_t>>();
  e.block = j.at("block").get<std::vector<uint32_t>>();
  e.shared_mem_bytes = j.at("shared_mem_bytes").get<uint32_t>();
  e.tokens_per_block = j.at("tokens_per_block").get<uint32_t>();
  e.scratch_bytes_per_token = j.at("scratch_bytes_per_token").get<uint64_t>();
  e.weight_table = j.at("weight_table").get<bool>();
  e.min_tokens = j.at("min_tokens").get<uint32_t>();
  e.max_tokens = j.at("max_tokens").get<uint32_t>();
  e.tma_box = j.at("tma_box").get<std::vector<uint32_t>>();
  return e;
}

} // namespace

Status writeKernelFile(const std::string &path, const KernelFile &kernels) {
  nlohmann::json all = nlohmann::json::object();
  for (const auto &[name, k] : kernels) {
    nlohmann::json entries = nlohmann::json::array();
    for (const plan::KernelEntryT &e : k.entries)
      entries.push_back(entryJson(e));
    all[name] = {{"target", k.target}, {"ptx", k.ptx}, {"entries", entries}};
  }
  const std::string text = nlohmann::json{{"format", kFormat}, {"kernels", all}}.dump(1) + "\n";
  return writeFileAtomically(
      path, [&](OutputFile &f) { return f.write(text.data(), text.size()); });
}

Status readKernelFile(const std::string &path, KernelFile *kernels) {
  std::ifstream in(path);
  if (!in)
    return Status::error("%s: cannot read the kernels file", path.c_str());
  try {
    nlohmann::json j = nlohmann::json::parse(in);
    const std::string format = j.at("format").get<std::string>();
    if (format != kFormat)
      return Status::error("%s: not a kernels file (format '%s', expected '%s')", path.c_str(),
                           format.c_str(), kFormat);
    kernels->clear();
    for (const auto &[name, k] : j.at("kernels").items()) {
      SavedKernels s;
      s.target = k.at("target").get<std::string>();
      s.ptx = k.at("ptx").get<std::string>();
      for (const nlohmann::json &e : k.at("entries"))
        s.entries.push_back(entryOf(e));
      (*kernels)[name] = std::move(s);
    }
  } catch (const nlohmann::json::exception &e) {
    return Status::error("%s: %s", path.c_str(), e.what());
  }
  return Status();
}

} // namespace moec::testing
