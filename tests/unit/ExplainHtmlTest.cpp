//===- ExplainHtmlTest.cpp - The explain report's HTML rendering ----------===//
//
// Renders facts objects built here (and tests/explain/sample-facts.json) and
// checks the document: the sections of docs/explain.md, escaping, one SVG
// rectangle per live buffer, nothing external, and facts that are missing,
// null or mistyped. With MOEC_EXPLAIN_SAMPLE_OUT=PATH set, the sample's report
// is also written to PATH (for tests/explain/check_report.py).
//
//===----------------------------------------------------------------------===//

#include "Driver/ExplainHtml.h"

#include "gtest/gtest.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

using moec::driver::renderExplainHtml;
using json = nlohmann::json;

namespace {

const char *const kSections[] = {"summary", "pipeline", "weights", "fusions", "mla", "memory"};

json parse(const std::string &text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << text;
  return j;
}

/// A small compile's facts, shaped as docs/explain.md says.
json facts() {
  return parse(R"json({
    "moec_explain": 1, "checkpoint": "models/tiny", "options": "moec explain models/tiny",
    "pipeline": "builtin.module(moe-compile)",
    "model": { "model_type": "deepseek_v3", "hidden_size": 64 },
    "passes": [
      { "name": "moe-fuse-residual-norm", "anchor": "func.func", "runs": 2, "seconds": 0.0015,
        "changed": true,
        "ops_before": { "moe.add": 16, "moe.rms_norm": 17, "moe.linear": 8 },
        "ops_after": { "moe.add_rms_norm": 16, "moe.rms_norm": 1, "moe.linear": 8 },
        "diff": "@@ -1,3 +1,2 @@\n-  %1 = moe.add %0, %0\n+  %1:2 = moe.add_rms_norm %0, %0, %w\n   return\n",
        "diff_lines": 40, "diff_truncated": true, "remarks": ["16 pairs fused"] },
      { "name": "canonicalize", "anchor": "builtin.module", "runs": 1, "seconds": 0.0002,
        "changed": false, "ops_before": {}, "ops_after": {}, "diff": "", "diff_lines": 0,
        "diff_truncated": false, "remarks": [] } ],
    "weights": { "quantize": "fp8",
      "before": [ { "dtype": "bf16", "count": 40, "bytes": 2097152 } ],
      "after": [ { "dtype": "f8E4M3", "count": 28, "bytes": 786432 },
                 { "dtype": "bf16", "count": 12, "bytes": 524288 },
                 { "dtype": "f32", "count": 28, "bytes": 1120 } ] },
    "accuracy": { "positions": 64, "mean_cosine": 0.998, "min_cosine": 0.991, "top1_agree": 62,
      "logits_relative_error": 0.04,
      "layers": [ { "name": "model.layers.0", "relative_error": 0.011 } ] },
    "fusions": [ { "pass": "moe-fuse-residual-norm", "op": "moe.add_rms_norm", "count": 16,
                   "replaced": { "moe.add": 16, "moe.rms_norm": 16 } } ],
    "mla": { "requested": { "prefill": "auto", "decode": "auto" },
             "chosen": { "prefill": "naive", "decode": "absorbed" },
             "prefill_min_tokens": 96,
             "cost_model": { "heads": 4, "latent_dim": 64, "rope_dim": 16, "nope_dim": 32,
               "v_dim": 32, "layers": 2, "peak_gflops": 100, "bandwidth_gbs": 20,
               "points": [ { "new_tokens": 1, "cached_tokens": 4096,
                 "naive": { "flops": 1.23e9, "bytes": 4.5e6, "seconds": 0.0123 },
                 "absorbed": { "flops": 1.0e7, "bytes": 2.0e6, "seconds": 1.23e-5 },
                 "cheaper": "absorbed" } ] },
             "kv_cache": { "latent_bytes_per_token": 1152, "mha_bytes_per_token": 16384 } },
    "memory_plan": { "max_tokens": 16, "arena_bytes": 4096, "separate_bytes": 8192,
      "saved_bytes": 4096,
      "entry_points": [ { "name": "prefill", "steps": 4 }, { "name": "decode", "steps": 3 } ],
      "buffers": [
        { "name": "tokens", "index": 0, "offset": 0, "bytes": 64,
          "live": { "prefill": [-1, 0], "decode": [-1, 0] } },
        { "name": "hidden", "index": 1, "offset": 1024, "bytes": 2048,
          "live": { "prefill": [0, 3], "decode": [0, 2] } },
        { "name": "kv_expanded", "index": 2, "offset": 0, "bytes": 1024,
          "live": { "prefill": [1, 2], "decode": null } },
        { "name": "logits", "index": 3, "offset": 3072, "bytes": 1024,
          "live": { "prefill": [3, 4], "decode": [2, 3] } } ] },
    "plan": { "path": "model.plan", "version": 4, "steps": 7, "buffers": 4, "weights": 68,
      "weight_bytes": 1311840, "arena_bytes": 4096, "max_tokens": 16, "kv_bytes_per_token": 1152,
      "entry_points": [ { "name": "prefill", "steps": 4, "min_tokens": 96 },
                        { "name": "decode", "steps": 3, "min_tokens": 0 } ],
      "provenance": { "compiler_version": "moec 0.1.0", "pipeline": "builtin.module(moe-compile)",
                      "source_checkpoint": "models/tiny" } }
  })json");
}

/// The text of `<section id="id">` up to its end, or "" when absent.
std::string section(const std::string &html, const std::string &id) {
  size_t begin = html.find("<section id=\"" + id + "\">");
  if (begin == std::string::npos)
    return "";
  size_t end = html.find("</section>", begin);
  return html.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

size_t count(const std::string &haystack, const std::string &needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

/// The `index`th `<svg ...>...</svg>` of `html`, or "".
std::string svg(const std::string &html, size_t index) {
  size_t at = 0;
  for (size_t i = 0;; ++i) {
    at = html.find("<svg", at);
    if (at == std::string::npos)
      return "";
    size_t end = html.find("</svg>", at);
    if (end == std::string::npos)
      return "";
    if (i == index)
      return html.substr(at, end - at);
    at = end;
  }
}

void expectWellFormedReport(const std::string &html) {
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  size_t last = 0;
  for (const char *id : kSections) {
    std::string s = section(html, id);
    ASSERT_FALSE(s.empty()) << "no section " << id;
    EXPECT_NE(s.find("<h2>"), std::string::npos) << "section " << id << " has no <h2>";
    size_t at = html.find(std::string("<section id=\"") + id + "\">");
    EXPECT_GT(at, last) << "section " << id << " out of order";
    last = at;
    EXPECT_NE(html.find(std::string("href=\"#") + id + "\""), std::string::npos)
        << "no nav link to " << id;
  }
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_NE(html.find("</html>"), std::string::npos);
}

TEST(ExplainHtml, HasEverySectionInOrderAndNothingExternal) {
  std::string html = renderExplainHtml(facts());
  expectWellFormedReport(html);
  EXPECT_EQ(count(html, "<section "), 6u);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
}

TEST(ExplainHtml, EscapesEveryString) {
  json f = facts();
  const std::string nasty = "<b>&\"";
  const std::string escaped = "&lt;b&gt;&amp;&quot;";
  f["checkpoint"] = nasty;
  f["passes"][0]["name"] = nasty;
  f["passes"][0]["remarks"][0] = nasty;
  f["passes"][0]["diff"] = "+" + nasty + "\n";
  f["passes"][0]["ops_after"][nasty] = 1;
  f["model"][nasty] = nasty;
  f["weights"]["after"][0]["dtype"] = nasty;
  f["accuracy"]["layers"][0]["name"] = nasty;
  f["fusions"][0]["op"] = nasty;
  f["mla"]["chosen"]["prefill"] = nasty;
  f["memory_plan"]["buffers"][1]["name"] = nasty;
  f["plan"]["provenance"]["compiler_version"] = nasty;
  std::string html = renderExplainHtml(f);
  expectWellFormedReport(html);
  EXPECT_EQ(html.find(nasty), std::string::npos);
  size_t raw = html.find("<b>&");
  EXPECT_EQ(raw, std::string::npos) << html.substr(raw < 200 ? 0 : raw - 200, 400);
  for (const char *id : kSections)
    EXPECT_NE(section(html, id).find(escaped), std::string::npos) << "section " << id;
  // The buffer's name in its rectangle's tooltip, too.
  EXPECT_NE(svg(html, 0).find("<title>" + escaped), std::string::npos);
}

TEST(ExplainHtml, OneRectanglePerLiveBuffer) {
  std::string html = renderExplainHtml(facts());
  std::string memory = section(html, "memory");
  // @prefill: all four buffers are live; @decode: kv_expanded is not.
  std::string prefill = svg(memory, 0), decode = svg(memory, 1);
  ASSERT_FALSE(prefill.empty());
  ASSERT_FALSE(decode.empty());
  EXPECT_TRUE(svg(memory, 2).empty());
  EXPECT_EQ(count(prefill, "<rect"), 4u);
  EXPECT_EQ(count(decode, "<rect"), 3u);
  EXPECT_EQ(count(decode, "kv_expanded"), 0u);
  EXPECT_EQ(count(html, "<rect"), 7u);
  // Every rectangle has a tooltip with the buffer's offset and size.
  EXPECT_EQ(count(prefill, "<title>"), 4u);
  EXPECT_NE(prefill.find("hidden\noffset 1,024, 2,048 bytes"), std::string::npos);
  EXPECT_NE(prefill.find("live steps 0 … 3 of @prefill"), std::string::npos);
  // The buffer table lists all four, in a collapsed <details>.
  EXPECT_NE(memory.find("<details><summary>Buffer table (4 buffers)"), std::string::npos);
}

TEST(ExplainHtml, RectanglesFollowStepsAndOffsets) {
  std::string prefill = svg(section(renderExplainHtml(facts()), "memory"), 0);
  // The plot spans x 78..884 for steps -1..5 (4 steps, inputs and outputs) and
  // y 14..370 for offsets 0..4096. hidden: steps 0..3 -> x 212.33..749.67,
  // offset 1024 + 2048 -> y 103..281.
  EXPECT_NE(prefill.find("<rect x=\"212.33\" y=\"103.00\" width=\"537.33\" height=\"178.00\""),
            std::string::npos)
      << prefill;
  EXPECT_NE(prefill.find("width=\"900\" height=\"420\""), std::string::npos);
}

TEST(ExplainHtml, TinyBuffersStayVisible) {
  json f = facts();
  f["memory_plan"]["arena_bytes"] = 1 << 30;
  f["memory_plan"]["buffers"][0]["bytes"] = 1;
  std::string prefill = svg(section(renderExplainHtml(f), "memory"), 0);
  EXPECT_NE(prefill.find("height=\"1.00\""), std::string::npos);
}

TEST(ExplainHtml, PipelineTableShowsDeltasAndDiffs) {
  std::string pipeline = section(renderExplainHtml(facts()), "pipeline");
  EXPECT_NE(pipeline.find("<code>moe.add_rms_norm</code>&nbsp;<span class=\"pos\">+16</span>"),
            std::string::npos);
  EXPECT_NE(pipeline.find("<code>moe.add</code>&nbsp;<span class=\"neg\">−16</span>"),
            std::string::npos);
  EXPECT_NE(pipeline.find("<code>moe.rms_norm</code>&nbsp;<span class=\"neg\">−16</span>"),
            std::string::npos);
  EXPECT_EQ(pipeline.find("moe.linear</code>&nbsp;"), std::string::npos); // unchanged count
  EXPECT_LT(pipeline.find("moe.add_rms_norm</code>&nbsp;"), pipeline.find("moe.add</code>&nbsp;"));
  EXPECT_NE(pipeline.find("<summary>IR diff (40 lines)</summary>"), std::string::npos);
  EXPECT_NE(pipeline.find("<span class=\"dd\">-  %1 = moe.add %0, %0\n</span>"), std::string::npos);
  EXPECT_NE(pipeline.find("<span class=\"da\">+  %1:2 = moe.add_rms_norm %0, %0, %w\n</span>"),
            std::string::npos);
  EXPECT_NE(pipeline.find("<span class=\"dh\">@@ -1,3 +1,2 @@\n</span>"), std::string::npos);
  EXPECT_NE(pipeline.find("Truncated: showing the first 4 of 40 lines."), std::string::npos);
  // canonicalize changed nothing: no diff, no op changes.
  EXPECT_EQ(count(pipeline, "<details>"), 1u);
  EXPECT_NE(pipeline.find("1.500"), std::string::npos); // 0.0015 s in ms
}

TEST(ExplainHtml, NumbersAreFormatted) {
  std::string html = renderExplainHtml(facts());
  std::string mla = section(html, "mla");
  EXPECT_NE(mla.find("1.23 GFLOP"), std::string::npos);
  EXPECT_NE(mla.find("4.50 MB"), std::string::npos);
  EXPECT_NE(mla.find("12.3 ms"), std::string::npos);
  EXPECT_NE(mla.find("12.3 µs"), std::string::npos);
  EXPECT_NE(mla.find("<strong>96</strong>"), std::string::npos);
  EXPECT_NE(mla.find("14.2×"), std::string::npos); // 16384 / 1152
  std::string weights = section(html, "weights");
  EXPECT_NE(weights.find("2.00 MiB"), std::string::npos);
  EXPECT_NE(weights.find("62 / 64 (96.9%)"), std::string::npos);
  std::string memory = section(html, "memory");
  EXPECT_NE(memory.find("50.0% of separate"), std::string::npos);
}

TEST(ExplainHtml, MissingAccuracyAndMlaAreNotApplicable) {
  json f = facts();
  f["accuracy"] = nullptr;
  f["weights"]["quantize"] = "none";
  f.erase("mla");
  std::string html = renderExplainHtml(f);
  expectWellFormedReport(html);
  EXPECT_NE(section(html, "weights").find("Not applicable"), std::string::npos);
  EXPECT_NE(section(html, "mla").find("Not applicable"), std::string::npos);
  f["mla"] = nullptr;
  EXPECT_NE(section(renderExplainHtml(f), "mla").find("Not applicable"), std::string::npos);
}

TEST(ExplainHtml, EmptyAndMistypedFactsRender) {
  for (const char *text : {
           "{}",
           "null",
           "[]",
           "42",
           "\"facts\"",
           R"json({"passes": [], "fusions": [], "memory_plan": {"buffers": []}})json",
           R"json({"passes": 5, "weights": [], "accuracy": "x", "fusions": {"a": 1}, "mla": [],
               "memory_plan": 3, "plan": "p", "model": [1, 2]})json",
           R"json({"passes": [null, 1, {"name": 3, "runs": "x", "seconds": null, "changed": 1,
                 "ops_before": [], "ops_after": {"a": "b"}, "diff": 7, "remarks": [null, {}]},
               {"ops_before": {"a": 9223372036854775807, "b": -9e18},
                "ops_after": {"a": -9223372036854775807, "b": 9e18}}],
               "weights": {"before": [null, {"dtype": null, "count": "x"},
                 {"dtype": "a", "count": 9223372036854775807, "bytes": 9223372036854775807},
                 {"dtype": "a", "count": 9223372036854775807, "bytes": 9223372036854775807}],
                 "after": 1},
               "accuracy": {"positions": 0, "top1_agree": 3, "layers": [1, {"name": null}]},
               "mla": {"requested": 1, "chosen": {"prefill": 2}, "prefill_min_tokens": "x",
                       "cost_model": {"points": [null, {"naive": 1, "absorbed": {"flops": "x"}}]},
                       "kv_cache": {"latent_bytes_per_token": 0, "mha_bytes_per_token": 10}},
               "memory_plan": {"arena_bytes": 0,
                 "entry_points": [null, {"name": "e"}, {"name": "f", "steps": -3}],
                 "buffers": [null, 1, {"name": "b", "offset": 0, "bytes": 10,
                   "live": {"e": [3, 1], "f": [0, 2], "g": [0], "h": "x"}},
                   {"name": "c", "offset": -5, "bytes": 1e300, "live": {"e": [-1, 1e18]}}]},
               "plan": {"entry_points": [{}, null], "provenance": []}})json",
       }) {
    SCOPED_TRACE(text);
    std::string html = renderExplainHtml(parse(text));
    expectWellFormedReport(html);
  }
}

TEST(ExplainHtml, RendersTheSampleFacts) {
  std::ifstream in(MOEC_EXPLAIN_SAMPLE_FACTS);
  ASSERT_TRUE(in) << "cannot read " << MOEC_EXPLAIN_SAMPLE_FACTS;
  std::stringstream text;
  text << in.rdbuf();
  json f = parse(text.str());
  std::string html = renderExplainHtml(f);
  expectWellFormedReport(html);
  // One rectangle per buffer live in each entry point.
  std::string memory = section(html, "memory");
  size_t index = 0;
  for (const json &entry : f["memory_plan"]["entry_points"]) {
    size_t live = 0;
    for (const json &b : f["memory_plan"]["buffers"])
      live += b["live"].contains(entry["name"].get<std::string>()) &&
              b["live"][entry["name"].get<std::string>()].is_array();
    EXPECT_EQ(count(svg(memory, index++), "<rect"), live) << entry["name"];
  }
  if (const char *path = std::getenv("MOEC_EXPLAIN_SAMPLE_OUT")) {
    std::ofstream out(path, std::ios::binary);
    out << html;
    ASSERT_TRUE(out.good()) << "cannot write " << path;
  }
}

} // namespace
