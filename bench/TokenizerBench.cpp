//===- TokenizerBench.cpp - moec_tokenizer_bench: encoding throughput -----===//
//
// Google Benchmark rows for the runtime tokenizer: encoding a corpus document by
// document on one thread, as `moec compile` compiles the tokenizer into the plan.
//   MOEC_BENCH_CORPUS=FILE  the text; documents separated by lines holding only "%"
//                           (bench/tokenizer_corpus.py writes the mixed Chinese and
//                           English one that bench/RESULTS.md reports)
//   MOEC_BENCH_DUMP_IDS=FILE  also write every document's ids, one line each
// Rows: BM_TokenizerEncode/deepseek_v3 (DeepSeek-V3's tokenizer, the test fixture the
// build unpacks) and BM_TokenizerEncode/poems_v3 (the default model's). Each reports
// bytes/s of UTF-8 input and tokens. The first iteration also fills the tokenizer's
// piece cache, as in a long-running server; bench/tokenizer_side_by_side.py runs Hugging
// Face `tokenizers` on the same documents, alternating with this program.
//
//===----------------------------------------------------------------------===//
#include "moec/checkpoint/Tokenizer.h"
#include "moec/runtime/Tokenizer.h"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace {

std::vector<std::string> loadCorpus(std::string *error) {
  const char *path = std::getenv("MOEC_BENCH_CORPUS");
  if (!path) {
    *error = "set MOEC_BENCH_CORPUS to a text file (bench/tokenizer_corpus.py writes one)";
    return {};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = std::string(path) + ": cannot read";
    return {};
  }
  std::vector<std::string> docs(1);
  std::string line;
  while (std::getline(in, line)) {
    if (line == "%") {
      if (!docs.back().empty())
        docs.emplace_back();
      continue;
    }
    docs.back() += line + "\n";
  }
  if (docs.back().empty())
    docs.pop_back();
  return docs;
}

void BM_TokenizerEncode(benchmark::State &state, const std::string &dir, int64_t vocab) {
  std::string error;
  std::vector<std::string> docs = loadCorpus(&error);
  if (docs.empty()) {
    state.SkipWithError(error.empty() ? "empty corpus" : error.c_str());
    return;
  }
  auto table = moec::checkpoint::readTokenizer(dir, vocab);
  if (!table || !*table) {
    state.SkipWithError(("cannot read " + dir + "/tokenizer.json").c_str());
    return;
  }
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(moec::plan::Tokenizer::Pack(fbb, table->get()));
  std::unique_ptr<moec::Tokenizer> tokenizer;
  moec::Status status = moec::Tokenizer::create(
      *flatbuffers::GetRoot<moec::plan::Tokenizer>(fbb.GetBufferPointer()), vocab, &tokenizer);
  if (!status.ok()) {
    state.SkipWithError(status.message().c_str());
    return;
  }
  size_t bytes = 0;
  for (const std::string &d : docs)
    bytes += d.size();
  // MOEC_BENCH_DUMP_IDS=FILE: every document's ids, one line each, before timing (the
  // side-by-side script checks them against Hugging Face's).
  if (const char *dump = std::getenv("MOEC_BENCH_DUMP_IDS")) {
    std::ofstream out(dump);
    for (const std::string &d : docs) {
      std::vector<int32_t> docIds = tokenizer->encode(d);
      for (size_t i = 0; i < docIds.size(); ++i)
        out << (i ? " " : "") << docIds[i];
      out << "\n";
    }
  }
  std::vector<int32_t> ids;
  int64_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const std::string &d : docs) {
      ids.clear();
      tokenizer->encode(d, &ids);
      tokens += int64_t(ids.size());
    }
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes));
  state.counters["tokens"] = double(tokens);
  state.counters["docs"] = double(docs.size());
  state.counters["MB"] = double(bytes) / 1e6;
}

BENCHMARK_CAPTURE(BM_TokenizerEncode, deepseek_v3, MOEC_DSV3_TOKENIZER_DIR, 129280)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_TokenizerEncode, poems_v3, MOEC_MODELS_DIR "/poems-v3", 4096)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

} // namespace

BENCHMARK_MAIN();
