//===- Runtime.h - The moec runtime's public C++ API ------------*- C++ -*-===//
//
// One include for users of the runtime:
//
//   std::unique_ptr<moec::Plan> plan;
//   MOEC_RETURN_IF_ERROR(moec::Plan::load("model.plan", &plan));
//   std::unique_ptr<moec::Executor> executor;
//   MOEC_RETURN_IF_ERROR(moec::Executor::create(*plan, {}, &executor));
//   std::unique_ptr<moec::KvCache> cache;
//   MOEC_RETURN_IF_ERROR(executor->createCache(/*numSequences=*/1, /*capacity=*/4096, &cache));
//   MOEC_RETURN_IF_ERROR(moec::generate(*executor, *cache, 0, prompt, options, onToken,
//                                       &tokens, &stats));
//
// Ownership rules, for every type below:
// - Functions report failure through moec::Status; nothing throws across the API.
// - Objects are returned through std::unique_ptr out-parameters and owned by the
//   caller.
// - Lifetimes nest: a Plan outlives the Executors built on it; an Executor outlives
//   the KvCaches it created. Weights, config and flatbuffer views point into the
//   Plan's mapped files and are valid while the Plan lives.
// - Pointers passed into a call (token arrays, logits outputs) are borrowed for
//   the duration of that call only.
// - An Executor and its caches are used by one thread at a time; kernels use
//   worker threads internally.
//
//===----------------------------------------------------------------------===//
#ifndef MOEC_RUNTIME_RUNTIME_H
#define MOEC_RUNTIME_RUNTIME_H

#include "moec/runtime/Backend.h"
#include "moec/runtime/Executor.h"
#include "moec/runtime/Generator.h"
#include "moec/runtime/KvCache.h"
#include "moec/runtime/Npy.h"
#include "moec/runtime/Plan.h"
#include "moec/runtime/PlanJson.h"
#include "moec/runtime/Sampler.h"
#include "moec/runtime/Status.h"

#endif // MOEC_RUNTIME_RUNTIME_H
