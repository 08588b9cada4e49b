//===- NullBackendLibrary.cpp - a backend library for the loader's tests --===//
//
// Built as a shared library and loaded with moec::loadBackendLibrary, the way the
// CUDA backend will be: it exports moec_register_backends and registers "null", a
// device with host memory that runs no step (supportsStep says so).
//
//===----------------------------------------------------------------------===//
#include "moec/runtime/Backend.h"

#include <cstdlib>
#include <cstring>

namespace {

using namespace moec;

class NullBackend final : public Backend {
public:
  const char *name() const override { return "null"; }
  std::vector<BufferType> bufferTypes() const override { return {{"null", 64, true}}; }
  Status allocate(uint64_t bytes, DeviceBuffer *out, int type) override {
    out->data = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    if (!out->data)
      return Status::error("null: cannot allocate %llu bytes", (unsigned long long)bytes);
    std::memset(out->data, 0, (bytes + 63) / 64 * 64 + 64);
    out->bytes = bytes;
    out->bufferType = type;
    out->owned = true;
    return Status();
  }
  void release(DeviceBuffer &buffer) override {
    if (buffer.owned)
      std::free(buffer.data);
    buffer = DeviceBuffer();
  }
  Status copyToDevice(void *device, const void *host, uint64_t bytes) override {
    std::memcpy(device, host, bytes);
    return Status();
  }
  Status copyToHost(void *host, const void *device, uint64_t bytes) override {
    std::memcpy(host, device, bytes);
    return Status();
  }
  Status importHost(const void *host, uint64_t bytes, DeviceBuffer *out) override {
    out->data = const_cast<void *>(host);
    out->bytes = bytes;
    out->owned = false;
    return Status();
  }
  bool supportsStep(const StepTypes &, std::string *why) const override {
    if (why)
      *why = "it runs no steps";
    return false;
  }
  Status prepare(const Plan &, uint32_t, std::unique_ptr<Program> *) override {
    return Status::error("null: the null backend runs no steps");
  }
  Status execute(Program &, const Bindings &) override {
    return Status::error("null: the null backend runs no steps");
  }
  Status synchronize() override { return Status(); }
};

Status createNullBackend(const BackendOptions &, std::unique_ptr<Backend> *out) {
  *out = std::make_unique<NullBackend>();
  return Status();
}

} // namespace

extern "C" __attribute__((visibility("default"))) void
moec_register_backends(moec::BackendRegistrar registrar) {
  registrar("null", createNullBackend);
}
