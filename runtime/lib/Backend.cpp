//===- Backend.cpp - The registry of backends -----------------------------===//
#include "moec/runtime/Backend.h"

#include <dlfcn.h>
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
  std::call_once(once, [] {
    registerCpuBackend();
    registerCudaBackend();
  });
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

Status loadBackendLibrary(const std::string &path) {
  // RTLD_LOCAL: the library's symbols stay its own; it reaches the registry only
  // through the registrar it is handed. The handle is kept for the process's life,
  // since registered factories point into the library.
  void *handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *reason = ::dlerror();
    return Status::error("%s: cannot load backend library: %s", path.c_str(),
                         reason ? reason : "unknown error");
  }
  using Entry = void (*)(BackendRegistrar);
  auto entry = reinterpret_cast<Entry>(::dlsym(handle, kBackendLibraryEntry));
  if (!entry) {
    ::dlclose(handle);
    return Status::error("%s: not a moec backend library (no %s)", path.c_str(),
                         kBackendLibraryEntry);
  }
  entry([](const char *name, BackendFactory factory) { registerBackend(name, factory); });
  return Status();
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
