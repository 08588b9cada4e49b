//===- Backend.cpp - The registry of backends -----------------------------===//
#include "moec/runtime/Backend.h"

#include <map>
#include <mutex>

namespace moec {

namespace {

struct Registry {
  std::mutex mutex;
  std::map<std::string, BackendFactory> factories;
};

Registry &registry() {
  static Registry instance;
  return instance;
}

/// Built-in backends register on first use rather than from static initialisers,
/// which a static library's linker may drop.
void registerBuiltins() {
  static std::once_flag once;
  std::call_once(once, [] { registerCpuBackend(); });
}

} // namespace

void registerBackend(const std::string &name, BackendFactory factory) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[name] = factory;
}

Status createBackend(const std::string &name, const BackendOptions &options,
                     std::unique_ptr<Backend> *out) {
  registerBuiltins();
  BackendFactory factory = nullptr;
  {
    Registry &r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto found = r.factories.find(name);
    if (found != r.factories.end())
      factory = found->second;
  }
  if (!factory) {
    std::string known;
    for (const std::string &n : backendNames())
      known += (known.empty() ? "" : ", ") + n;
    return Status::error("unknown backend \"%s\" (available: %s)", name.c_str(), known.c_str());
  }
  return factory(options, out);
}

std::vector<std::string> backendNames() {
  registerBuiltins();
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto &entry : r.factories)
    names.push_back(entry.first);
  return names;
}

} // namespace moec
