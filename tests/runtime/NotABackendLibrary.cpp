//===- NotABackendLibrary.cpp - a shared library without the entry point --===//
extern "C" __attribute__((visibility("default"))) int moec_not_a_backend() { return 42; }
