//===- ExplainHtml.cpp - The explain report as one HTML document ----------===//
//
// Every lookup goes through the helpers below, which check the type before
// reading a value, so that a fact that is missing, null or of another type than
// docs/explain.md says renders as "—" or "not applicable" instead of throwing
// (nlohmann::json's accessors throw on a type mismatch, or abort without
// exceptions).
//
//===----------------------------------------------------------------------===//

#include "ExplainHtml.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

namespace moec::driver {
namespace {

using json = nlohmann::json;

//===----------------------------------------------------------------------===//
// Reading the facts without throwing
//===----------------------------------------------------------------------===//

/// The member `key` of `j` when `j` is an object with a non-null value there.
const json *member(const json *j, const char *key) {
  if (!j || !j->is_object())
    return nullptr;
  auto it = j->find(key);
  if (it == j->end() || it->is_null())
    return nullptr;
  return &*it;
}

/// `j` when it is an array (possibly empty), else null.
const json *array(const json *j) { return j && j->is_array() ? j : nullptr; }

std::optional<double> number(const json *j) {
  if (!j || !j->is_number())
    return std::nullopt;
  double v = j->get<double>();
  if (!std::isfinite(v))
    return std::nullopt;
  return v;
}

std::optional<int64_t> integer(const json *j) {
  if (!j || !j->is_number())
    return std::nullopt;
  if (j->is_number_integer())
    return j->get<int64_t>();
  double v = j->get<double>();
  if (!std::isfinite(v) || std::fabs(v) > 9.0e18)
    return std::nullopt;
  return static_cast<int64_t>(std::llround(v));
}

/// a + b, saturated: sizes from a damaged facts object cannot overflow.
int64_t add(int64_t a, int64_t b) {
  int64_t sum;
  if (__builtin_add_overflow(a, b, &sum))
    return b > 0 ? INT64_MAX : INT64_MIN;
  return sum;
}

std::optional<bool> boolean(const json *j) {
  if (!j || !j->is_boolean())
    return std::nullopt;
  return j->get<bool>();
}

/// A string member as is; any other scalar as JSON text; "" when absent.
std::string text(const json *j) {
  if (!j)
    return "";
  if (j->is_string())
    return j->get_ref<const std::string &>();
  return j->dump(-1, ' ', false, json::error_handler_t::replace);
}

//===----------------------------------------------------------------------===//
// Formatting
//===----------------------------------------------------------------------===//

std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *fmt, ...) {
  va_list args, copy;
  va_start(args, fmt);
  va_copy(copy, args);
  int n = std::vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string out;
  if (n > 0) {
    out.resize(size_t(n) + 1);
    std::vsnprintf(out.data(), out.size(), fmt, args);
    out.resize(size_t(n));
  }
  va_end(args);
  return out;
}

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    case '\'':
      out += "&#39;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

const char *const kNone = "<span class=\"na\">—</span>";

/// 17825792 -> "17,825,792".
std::string grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -(v + 1) + 1ull : uint64_t(v));
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return v < 0 ? "−" + out : out;
}

std::string intCell(const json *j) {
  auto v = integer(j);
  return v ? grouped(*v) : kNone;
}

/// Bytes as MiB, e.g. "17.00 MiB" (small values keep three significant digits).
std::string mib(double bytes) {
  double v = bytes / (1024.0 * 1024.0);
  if (v == 0)
    return "0 MiB";
  if (std::fabs(v) >= 100)
    return format("%.1f MiB", v);
  if (std::fabs(v) >= 0.1)
    return format("%.2f MiB", v);
  return format("%.3g MiB", v);
}

/// Bytes with a binary prefix chosen by size: "512 B", "4.0 KiB", "17.0 MiB".
std::string binaryBytes(double bytes) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(bytes) >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  if (u == 0)
    return format("%.0f B", bytes);
  return format(std::fabs(bytes) >= 100 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
}

/// A value with an SI prefix and three significant digits: "1.23 GFLOP",
/// "4.50 MB", "12.3 µs".
std::string si(double v, const char *unit) {
  if (v == 0)
    return format("0 %s", unit);
  static const char *const up[] = {"", "k", "M", "G", "T", "P", "E"};
  static const char *const down[] = {"", "m", "µ", "n", "p"};
  double a = std::fabs(v);
  int e = 0;
  if (a >= 1) {
    while (a >= 999.5 && e < 6) {
      a /= 1000;
      ++e;
    }
  } else {
    while (a < 0.9995 && e > -4) {
      a *= 1000;
      --e;
    }
  }
  const char *prefix = e >= 0 ? up[e] : down[-e];
  const char *fmt = a >= 99.95 ? "%s%.0f %s%s" : a >= 9.995 ? "%s%.1f %s%s" : "%s%.2f %s%s";
  return format(fmt, v < 0 ? "−" : "", a, prefix, unit);
}

std::string percent(double fraction) { return format("%.1f%%", fraction * 100); }

/// A small integer-valued count of something ("3", "−16", "+16" with sign).
std::string signedCount(int64_t v) { return (v > 0 ? "+" : "") + grouped(v); }

//===----------------------------------------------------------------------===//
// HTML building blocks
//===----------------------------------------------------------------------===//

/// One row of a key/value table; `valueHtml` is already HTML.
void kvRow(std::string &out, const char *key, const std::string &valueHtml) {
  out += "<tr><th scope=\"row\">";
  out += key;
  out += "</th><td>";
  out += valueHtml.empty() ? kNone : valueHtml;
  out += "</td></tr>\n";
}

std::string codeOrNone(const json *j) {
  std::string s = text(j);
  return s.empty() ? kNone : "<code>" + escape(s) + "</code>";
}

std::string textOrNone(const json *j) {
  std::string s = text(j);
  return s.empty() ? kNone : escape(s);
}

/// A byte count as "17.0 MiB" with the exact count beside it.
std::string bytesCell(const json *j) {
  auto v = integer(j);
  if (!v)
    return kNone;
  return binaryBytes(double(*v)) + " <span class=\"muted\">(" + grouped(*v) + " B)</span>";
}

void tile(std::string &out, const char *label, const std::string &valueHtml,
          const std::string &noteHtml = "") {
  out += "<div class=\"tile\"><div class=\"tl\">";
  out += label;
  out += "</div><div class=\"tv\">";
  out += valueHtml.empty() ? kNone : valueHtml;
  out += "</div>";
  if (!noteHtml.empty())
    out += "<div class=\"tn\">" + noteHtml + "</div>";
  out += "</div>\n";
}

void openSection(std::string &out, const char *id, const char *title) {
  out += "<section id=\"";
  out += id;
  out += "\">\n<h2>";
  out += title;
  out += "</h2>\n";
}

void notApplicable(std::string &out, const std::string &why) {
  out += "<p class=\"empty\">" + why + "</p>\n";
}

/// Entry-point names: "@prefill".
std::string entryName(const std::string &name) { return "@" + escape(name); }

//===----------------------------------------------------------------------===//
// Sections
//===----------------------------------------------------------------------===//

void renderSummary(std::string &out, const json &facts) {
  openSection(out, "summary", "Summary");
  const json *plan = member(&facts, "plan");
  const json *memory = member(&facts, "memory_plan");
  // The plan's own numbers first; the memory plan's when the plan has none.
  auto planOr = [&](const char *key, const json *fallback) {
    const json *v = member(plan, key);
    return v ? v : member(fallback, key);
  };

  out += "<div class=\"tiles\">\n";
  auto steps = integer(member(plan, "steps"));
  tile(out, "Steps", steps ? grouped(*steps) : "");
  auto buffers = integer(member(plan, "buffers"));
  tile(out, "Buffers", buffers ? grouped(*buffers) : "");
  auto weights = integer(member(plan, "weights"));
  tile(out, "Weights", weights ? grouped(*weights) : "");
  auto weightBytes = integer(member(plan, "weight_bytes"));
  tile(out, "Weight bytes", weightBytes ? mib(double(*weightBytes)) : "");
  auto arena = integer(planOr("arena_bytes", memory));
  tile(out, "Arena", arena ? mib(double(*arena)) : "");
  auto maxTokens = integer(planOr("max_tokens", memory));
  tile(out, "Max tokens", maxTokens ? grouped(*maxTokens) : "");
  auto kv = integer(member(plan, "kv_bytes_per_token"));
  tile(out, "KV cache / token", kv ? binaryBytes(double(*kv)) : "");
  out += "</div>\n";

  out += "<div class=\"grid2\">\n<div>\n<h3>Plan</h3>\n<table class=\"kv\">\n";
  kvRow(out, "Checkpoint", codeOrNone(member(&facts, "checkpoint")));
  kvRow(out, "Options", codeOrNone(member(&facts, "options")));
  kvRow(out, "Plan file", codeOrNone(member(plan, "path")));
  kvRow(out, "Plan format version", textOrNone(member(plan, "version")));
  kvRow(out, "Steps", steps ? grouped(*steps) : "");
  kvRow(out, "Buffers", buffers ? grouped(*buffers) : "");
  kvRow(out, "Weights", weights ? grouped(*weights) : "");
  kvRow(out, "Weight bytes", bytesCell(member(plan, "weight_bytes")));
  kvRow(out, "Arena bytes", bytesCell(planOr("arena_bytes", memory)));
  kvRow(out, "Max tokens", maxTokens ? grouped(*maxTokens) : "");
  kvRow(out, "KV-cache bytes per token", kv ? grouped(*kv) + " B" : "");
  kvRow(out, "Explain layout version", textOrNone(member(&facts, "moec_explain")));
  out += "</table>\n";

  out += "<h3>Entry points</h3>\n";
  const json *entries = array(member(plan, "entry_points"));
  if (!entries || entries->empty()) {
    notApplicable(out, "none recorded");
  } else {
    out += "<table class=\"data\">\n<thead><tr><th>Entry point</th><th class=\"num\">Steps</th>"
           "<th class=\"num\">Min tokens</th></tr></thead>\n<tbody>\n";
    for (const json &e : *entries) {
      auto minTokens = integer(member(&e, "min_tokens"));
      out +=
          "<tr><td><code>" + entryName(text(member(&e, "name"))) +
          "</code></td><td class=\"num\">" + intCell(member(&e, "steps")) +
          "</td><td class=\"num\">" +
          (minTokens ? (*minTokens ? grouped(*minTokens) : "0 <span class=\"muted\">(any)</span>")
                     : std::string(kNone)) +
          "</td></tr>\n";
    }
    out += "</tbody></table>\n";
  }
  out += "</div>\n<div>\n<h3>Provenance</h3>\n<table class=\"kv\">\n";
  const json *provenance = member(plan, "provenance");
  kvRow(out, "Compiler", textOrNone(member(provenance, "compiler_version")));
  kvRow(out, "Pipeline", codeOrNone(member(provenance, "pipeline")));
  kvRow(out, "Source checkpoint", textOrNone(member(provenance, "source_checkpoint")));
  out += "</table>\n<h3>Model configuration</h3>\n";
  const json *model = member(&facts, "model");
  if (!model || !model->is_object() || model->empty()) {
    notApplicable(out, "not recorded");
  } else {
    out += "<table class=\"kv\">\n";
    for (auto it = model->begin(); it != model->end(); ++it) {
      const json &v = it.value();
      std::string value = v.is_number() ? escape(text(&v)) : codeOrNone(&v);
      if (v.is_null())
        value = kNone;
      out += "<tr><th scope=\"row\"><code>" + escape(it.key()) + "</code></th><td>" + value +
             "</td></tr>\n";
    }
    out += "</table>\n";
  }
  out += "</div>\n</div>\n</section>\n";
}

/// "moe.add_rms_norm +16, moe.add −16": the ops whose counts differ, largest
/// increase first.
std::string opDelta(const json *before, const json *after) {
  // In double: counts from a damaged facts object cannot overflow.
  std::map<std::string, double> delta;
  auto add = [&](const json *counts, double sign) {
    if (!counts || !counts->is_object())
      return;
    for (auto it = counts->begin(); it != counts->end(); ++it)
      delta[it.key()] += sign * double(integer(&it.value()).value_or(0));
  };
  add(after, 1);
  add(before, -1);
  std::vector<std::pair<std::string, int64_t>> changed;
  for (auto &[name, d] : delta)
    if (d != 0 && std::fabs(d) < 9.0e18)
      changed.emplace_back(name, int64_t(d));
  std::stable_sort(changed.begin(), changed.end(),
                   [](const auto &a, const auto &b) { return a.second > b.second; });
  std::string out;
  for (auto &[name, d] : changed) {
    if (!out.empty())
      out += ", ";
    out += "<span class=\"op\"><code>" + escape(name) + "</code>&nbsp;<span class=\"" +
           (d > 0 ? "pos" : "neg") + "\">" + signedCount(d) + "</span></span>";
  }
  return out;
}

/// The unified diff with one span per line, classed by its first character.
std::string diffHtml(const std::string &diff, int64_t *lines) {
  std::string out;
  *lines = 0;
  size_t start = 0;
  while (start < diff.size()) {
    size_t end = diff.find('\n', start);
    if (end == std::string::npos)
      end = diff.size();
    std::string_view line(diff.data() + start, end - start);
    const char *cls = "dc";
    if (line.substr(0, 3) == "+++" || line.substr(0, 3) == "---")
      cls = "dh";
    else if (!line.empty() && line[0] == '+')
      cls = "da";
    else if (!line.empty() && line[0] == '-')
      cls = "dd";
    else if (!line.empty() && line[0] == '@')
      cls = "dh";
    out += "<span class=\"";
    out += cls;
    // The line's end inside its block-level span: copying the diff keeps the
    // newlines, and no empty line follows each span.
    out += "\">" + escape(line) + "\n</span>";
    ++*lines;
    start = end + 1;
  }
  return out;
}

void renderPipeline(std::string &out, const json &facts) {
  openSection(out, "pipeline", "Pipeline");
  std::string pipeline = text(member(&facts, "pipeline"));
  const json *passes = array(member(&facts, "passes"));
  double total = 0, slowest = 0;
  int changedCount = 0;
  if (passes)
    for (const json &p : *passes) {
      double s = number(member(&p, "seconds")).value_or(0);
      total += s;
      slowest = std::max(slowest, s);
      changedCount += boolean(member(&p, "changed")).value_or(false);
    }
  if (!pipeline.empty())
    out += "<p>Pipeline: <code class=\"brk\">" + escape(pipeline) + "</code></p>\n";
  if (!passes || passes->empty()) {
    notApplicable(out, "No passes recorded: none.");
    out += "</section>\n";
    return;
  }
  out += format("<p>%zu passes ran in %.2f ms; %d changed the IR.</p>\n", passes->size(),
                total * 1000, changedCount);
  out += "<table class=\"data passes\">\n<thead><tr><th class=\"num\">#</th><th>Pass</th>"
         "<th class=\"num\">Runs</th><th class=\"num\">Time (ms)</th><th>Changed</th>"
         "<th>Op-count changes</th><th>Remarks</th></tr></thead>\n";
  int index = 0;
  for (const json &p : *passes) {
    ++index;
    out += "<tbody>\n<tr><td class=\"num muted\">" + std::to_string(index) +
           "</td><td><code class=\"nw\">" + escape(text(member(&p, "name"))) + "</code>";
    std::string anchor = text(member(&p, "anchor"));
    if (!anchor.empty())
      out += "<div class=\"muted small\">on " + escape(anchor) + "</div>";
    out += "</td><td class=\"num\">" + intCell(member(&p, "runs")) + "</td><td class=\"num\">";
    if (auto s = number(member(&p, "seconds"))) {
      double ms = *s * 1000;
      out += format(ms < 10 ? "%.3f" : ms < 100 ? "%.2f" : "%.1f", ms);
      double share = slowest > 0 ? *s / slowest : 0;
      out += format("<div class=\"bar\"><i style=\"width:%.0f%%\"></i></div>", share * 100);
    } else {
      out += kNone;
    }
    out += "</td><td>";
    auto changed = boolean(member(&p, "changed"));
    out += !changed   ? kNone
           : *changed ? "<span class=\"yes\">changed</span>"
                      : "<span class=\"muted nw\">no change</span>";
    out += "</td><td>";
    std::string delta = opDelta(member(&p, "ops_before"), member(&p, "ops_after"));
    out += delta.empty() ? "<span class=\"muted\">none</span>" : delta;
    out += "</td><td>";
    const json *remarks = array(member(&p, "remarks"));
    if (!remarks || remarks->empty())
      out += "<span class=\"muted\">none</span>";
    else
      for (const json &r : *remarks) {
        // A remark's first line in the table; the rest (a cost table) folded.
        std::string body = text(&r);
        size_t newline = body.find('\n');
        out += "<div class=\"remark\">" + escape(body.substr(0, newline));
        if (newline != std::string::npos && newline + 1 < body.size())
          out += "<details><summary>more</summary><pre class=\"remark-more\">" +
                 escape(body.substr(newline + 1)) + "</pre></details>";
        out += "</div>";
      }
    out += "</td></tr>\n";

    std::string diff = text(member(&p, "diff"));
    if (!diff.empty()) {
      int64_t shown = 0;
      std::string body = diffHtml(diff, &shown);
      int64_t total = integer(member(&p, "diff_lines")).value_or(shown);
      bool truncated = boolean(member(&p, "diff_truncated")).value_or(false);
      out += "<tr class=\"diffrow\"><td></td><td colspan=\"6\"><details><summary>IR diff (" +
             grouped(total) + " lines)</summary>\n<pre class=\"diff\">" + body + "</pre>\n";
      if (truncated)
        out += "<p class=\"note\">Truncated: showing the first " + grouped(shown) + " of " +
               grouped(total) + " lines.</p>\n";
      out += "</details></td></tr>\n";
    }
    out += "</tbody>\n";
  }
  out += "</table>\n</section>\n";
}

void renderWeights(std::string &out, const json &facts) {
  openSection(out, "weights", "Weights");
  const json *weights = member(&facts, "weights");
  std::string quantize = text(member(weights, "quantize"));
  out += "<p>Quantization: <span class=\"badge\">" + (quantize.empty() ? "—" : escape(quantize)) +
         "</span></p>\n";

  // dtype -> (count, bytes) before and after, in the order the dtypes appear.
  struct Row {
    std::string dtype;
    std::optional<int64_t> count[2], bytes[2];
  };
  std::vector<Row> rows;
  const char *sides[] = {"before", "after"};
  bool any[2] = {false, false};
  for (int side = 0; side < 2; ++side) {
    const json *list = array(member(weights, sides[side]));
    if (!list)
      continue;
    any[side] = true;
    for (const json &w : *list) {
      std::string dtype = text(member(&w, "dtype"));
      auto it =
          std::find_if(rows.begin(), rows.end(), [&](const Row &r) { return r.dtype == dtype; });
      if (it == rows.end()) {
        rows.push_back({dtype, {}, {}});
        it = rows.end() - 1;
      }
      if (auto c = integer(member(&w, "count")))
        it->count[side] = add(it->count[side].value_or(0), *c);
      if (auto b = integer(member(&w, "bytes")))
        it->bytes[side] = add(it->bytes[side].value_or(0), *b);
    }
  }
  if (rows.empty()) {
    notApplicable(out, "No weights recorded: none.");
  } else {
    out += "<table class=\"data narrow\">\n<thead><tr><th rowspan=\"2\">Dtype</th>"
           "<th colspan=\"2\" class=\"grp\">Checkpoint (before)</th>"
           "<th colspan=\"2\" class=\"grp\">Plan (after)</th></tr>\n<tr>"
           "<th class=\"num\">Tensors</th><th class=\"num\">Size</th>"
           "<th class=\"num\">Tensors</th><th class=\"num\">Size</th></tr></thead>\n<tbody>\n";
    int64_t totalCount[2] = {0, 0}, totalBytes[2] = {0, 0};
    for (const Row &r : rows) {
      out += "<tr><td><code>" + (r.dtype.empty() ? std::string("?") : escape(r.dtype)) +
             "</code></td>";
      for (int side = 0; side < 2; ++side) {
        totalCount[side] = add(totalCount[side], r.count[side].value_or(0));
        totalBytes[side] = add(totalBytes[side], r.bytes[side].value_or(0));
        out += "<td class=\"num\">" +
               (r.count[side] ? grouped(*r.count[side]) : std::string(kNone)) +
               "</td><td class=\"num\"";
        if (r.bytes[side])
          out += " title=\"" + grouped(*r.bytes[side]) + " bytes\">" + mib(double(*r.bytes[side]));
        else
          out += std::string(">") + kNone;
        out += "</td>";
      }
      out += "</tr>\n";
    }
    out += "</tbody>\n<tfoot><tr><th>Total</th>";
    for (int side = 0; side < 2; ++side) {
      if (!any[side]) {
        out +=
            std::string("<td class=\"num\">") + kNone + "</td><td class=\"num\">" + kNone + "</td>";
        continue;
      }
      out += "<td class=\"num\">" + grouped(totalCount[side]) + "</td><td class=\"num\" title=\"" +
             grouped(totalBytes[side]) + " bytes\">" + mib(double(totalBytes[side])) + "</td>";
    }
    out += "</tr></tfoot>\n</table>\n";
    if (any[0] && any[1] && totalBytes[0] > 0)
      out += "<p>The plan's weights take " +
             percent(double(totalBytes[1]) / double(totalBytes[0])) +
             " of the checkpoint's bytes (" + mib(double(totalBytes[0])) + " → " +
             mib(double(totalBytes[1])) + ").</p>\n";
  }

  out += "<h3>Accuracy of the quantized plan</h3>\n";
  const json *accuracy = member(&facts, "accuracy");
  if (!accuracy || !accuracy->is_object()) {
    notApplicable(out, quantize.empty() || quantize == "none"
                           ? "Not applicable: the plan is not quantized (measured with "
                             "<code>--quantize=fp8</code>)."
                           : "Not measured.");
  } else {
    out += "<table class=\"kv narrow\">\n";
    auto positions = integer(member(accuracy, "positions"));
    kvRow(out, "Calibration positions", positions ? grouped(*positions) : "");
    auto cosine = [&](const char *key) {
      auto v = number(member(accuracy, key));
      return v ? format("%.5f", *v) : std::string();
    };
    kvRow(out, "Mean logits cosine", cosine("mean_cosine"));
    kvRow(out, "Min logits cosine", cosine("min_cosine"));
    auto agree = integer(member(accuracy, "top1_agree"));
    std::string agreeHtml;
    if (agree) {
      agreeHtml = grouped(*agree);
      if (positions && *positions > 0)
        agreeHtml +=
            " / " + grouped(*positions) + " (" + percent(double(*agree) / double(*positions)) + ")";
    }
    kvRow(out, "Top-1 agreement", agreeHtml);
    auto logits = number(member(accuracy, "logits_relative_error"));
    kvRow(out, "Logits relative error", logits ? format("%.4f", *logits) : "");
    out += "</table>\n";
    const json *layers = array(member(accuracy, "layers"));
    if (layers && !layers->empty()) {
      double worst = 0;
      for (const json &l : *layers)
        worst = std::max(worst, number(member(&l, "relative_error")).value_or(0));
      out += "<table class=\"data narrow\">\n<thead><tr><th>Layer (hidden state after)</th>"
             "<th class=\"num\">Relative error</th><th></th></tr></thead>\n<tbody>\n";
      for (const json &l : *layers) {
        auto e = number(member(&l, "relative_error"));
        out += "<tr><td><code>" + escape(text(member(&l, "name"))) +
               "</code></td><td class=\"num\">" + (e ? format("%.4f", *e) : std::string(kNone)) +
               "</td><td class=\"barcell\">";
        if (e && worst > 0)
          out +=
              format("<div class=\"bar\"><i style=\"width:%.0f%%\"></i></div>", *e / worst * 100);
        out += "</td></tr>\n";
      }
      out += "</tbody></table>\n";
    }
  }
  out += "</section>\n";
}

void renderFusions(std::string &out, const json &facts) {
  openSection(out, "fusions", "Fusions");
  const json *fusions = array(member(&facts, "fusions"));
  if (!fusions || fusions->empty()) {
    notApplicable(out, "No fusions: none.");
    out += "</section>\n";
    return;
  }
  out += "<table class=\"data\">\n<thead><tr><th>Pass</th><th>Fused op</th><th "
         "class=\"num\">Count</th>"
         "<th>Replaced</th></tr></thead>\n<tbody>\n";
  for (const json &f : *fusions) {
    out += "<tr><td><code>" + escape(text(member(&f, "pass"))) + "</code></td><td><code>" +
           escape(text(member(&f, "op"))) + "</code></td><td class=\"num\">" +
           intCell(member(&f, "count")) + "</td><td>";
    const json *replaced = member(&f, "replaced");
    std::string list;
    if (replaced && replaced->is_object())
      for (auto it = replaced->begin(); it != replaced->end(); ++it) {
        if (!list.empty())
          list += ", ";
        auto n = integer(&it.value());
        list += "<code>" + escape(it.key()) + "</code>" + (n ? " ×" + grouped(*n) : "");
      }
    out += list.empty() ? "<span class=\"muted\">none</span>" : list;
    out += "</td></tr>\n";
  }
  out += "</tbody></table>\n</section>\n";
}

void renderMla(std::string &out, const json &facts) {
  openSection(out, "mla", "MLA attention");
  const json *mla = member(&facts, "mla");
  if (!mla || !mla->is_object()) {
    notApplicable(out, "Not applicable: the model has no MLA attention.");
    out += "</section>\n";
    return;
  }
  const json *requested = member(mla, "requested");
  const json *chosen = member(mla, "chosen");
  // The plan's entry points in its order, then any other the forms name.
  std::vector<std::string> entries;
  for (const json *list : {member(member(&facts, "plan"), "entry_points"),
                           member(member(&facts, "memory_plan"), "entry_points")})
    if (array(list))
      for (const json &e : *list) {
        std::string name = text(member(&e, "name"));
        bool named = member(requested, name.c_str()) || member(chosen, name.c_str());
        if (named && std::find(entries.begin(), entries.end(), name) == entries.end())
          entries.push_back(name);
      }
  for (const json *forms : {requested, chosen})
    if (forms && forms->is_object())
      for (auto it = forms->begin(); it != forms->end(); ++it)
        if (std::find(entries.begin(), entries.end(), it.key()) == entries.end())
          entries.push_back(it.key());

  out += "<h3>Form per entry point</h3>\n";
  if (entries.empty()) {
    notApplicable(out, "none recorded");
  } else {
    out += "<table class=\"data narrow\">\n<thead><tr><th>Entry point</th><th>Requested</th>"
           "<th>Chosen</th></tr></thead>\n<tbody>\n";
    for (const std::string &e : entries) {
      std::string c = text(member(chosen, e.c_str()));
      out += "<tr><td><code>" + entryName(e) + "</code></td><td>" +
             textOrNone(member(requested, e.c_str())) + "</td><td>" +
             (c.empty() ? std::string(kNone) : "<span class=\"badge\">" + escape(c) + "</span>") +
             "</td></tr>\n";
    }
    out += "</tbody></table>\n";
  }

  auto threshold = integer(member(mla, "prefill_min_tokens"));
  out += "<h3>Prefill threshold</h3>\n<p>";
  if (!threshold) {
    out += "<code>prefill_min_tokens</code>: not recorded.";
  } else if (*threshold > 0) {
    std::string n = grouped(*threshold);
    out += "<code>prefill_min_tokens</code> = <strong>" + n +
           "</strong>. The runtime runs <code>@prefill</code> for batches of at least " + n +
           " new tokens and <code>@decode</code> for smaller ones (every single-token step). "
           "From this batch size on, the cost model below finds the naive form no more "
           "expensive than the absorbed one for every context of up to " +
           (integer(member(member(mla, "cost_model"), "context_tokens"))
                ? grouped(*integer(member(member(mla, "cost_model"), "context_tokens")))
                : std::string("the modelled number of")) +
           " cached tokens, so <code>@prefill</code> uses the naive form.";
  } else {
    out += "<code>prefill_min_tokens</code> = 0: no threshold. The runtime does not choose "
           "between entry points by batch size; the cost model found no batch size from which "
           "the naive form is cheaper for every context length, or the forms were requested "
           "explicitly.";
  }
  out += "</p>\n";

  const json *model = member(mla, "cost_model");
  out += "<h3>Cost model (per MLA layer and call)</h3>\n";
  if (!model || !model->is_object()) {
    notApplicable(out, "Not recorded.");
  } else {
    static const std::pair<const char *, const char *> params[] = {
        {"heads", "heads"},       {"latent_dim", "latent dim"}, {"rope_dim", "rope dim"},
        {"nope_dim", "nope dim"}, {"v_dim", "v dim"},           {"layers", "layers"}};
    out += "<p class=\"params\">";
    for (auto &[key, label] : params)
      if (auto v = integer(member(model, key)))
        out += std::string("<span>") + label + " <b>" + grouped(*v) + "</b></span>";
    if (auto v = number(member(model, "peak_gflops")))
      out += "<span>peak <b>" + si(*v * 1e9, "FLOP/s") + "</b></span>";
    if (auto v = number(member(model, "bandwidth_gbs")))
      out += "<span>bandwidth <b>" + si(*v * 1e9, "B/s") + "</b></span>";
    out += "</p>\n";
    const json *points = array(member(model, "points"));
    if (!points || points->empty()) {
      notApplicable(out, "No points recorded: none.");
    } else {
      out +=
          "<table class=\"data\">\n<thead><tr><th colspan=\"2\" class=\"grp\">Tokens</th>"
          "<th colspan=\"3\" class=\"grp\">Naive</th><th colspan=\"3\" class=\"grp\">Absorbed</th>"
          "<th rowspan=\"2\">Cheaper</th></tr>\n<tr><th class=\"num\">New</th>"
          "<th class=\"num\">Cached</th><th class=\"num\">FLOP</th><th class=\"num\">Bytes</th>"
          "<th class=\"num\">Time</th><th class=\"num\">FLOP</th><th class=\"num\">Bytes</th>"
          "<th class=\"num\">Time</th></tr></thead>\n<tbody>\n";
      for (const json &p : *points) {
        std::string cheaper = text(member(&p, "cheaper"));
        out += "<tr><td class=\"num\">" + intCell(member(&p, "new_tokens")) +
               "</td><td class=\"num\">" + intCell(member(&p, "cached_tokens")) + "</td>";
        for (const char *form : {"naive", "absorbed"}) {
          const json *c = member(&p, form);
          bool win = cheaper == form;
          auto cell = [&](const char *key, const char *unit) {
            auto v = number(member(c, key));
            out += std::string("<td class=\"num") + (win ? " win" : "") + "\">" +
                   (v ? si(*v, unit) : std::string(kNone)) + "</td>";
          };
          cell("flops", "FLOP");
          cell("bytes", "B");
          cell("seconds", "s");
        }
        out += "<td>" +
               (cheaper.empty() ? std::string(kNone)
                                : "<span class=\"badge\">" + escape(cheaper) + "</span>") +
               "</td></tr>\n";
      }
      out += "</tbody></table>\n<p class=\"note\">Time is the roofline max(FLOP / peak, "
             "bytes / bandwidth); highlighted cells mark the cheaper form.</p>\n";
    }
  }

  out += "<h3>KV cache per token</h3>\n";
  const json *kv = member(mla, "kv_cache");
  auto latent = integer(member(kv, "latent_bytes_per_token"));
  auto mha = integer(member(kv, "mha_bytes_per_token"));
  if (!latent && !mha) {
    notApplicable(out, "Not recorded.");
  } else {
    double largest = double(std::max(latent.value_or(0), mha.value_or(0)));
    auto bar = [&](const char *label, std::optional<int64_t> v, const char *cls) {
      out += std::string("<div class=\"kvbar\"><span class=\"kl\">") + label + "</span>";
      if (v) {
        double w = largest > 0 ? double(*v) / largest * 100 : 0;
        out += format("<span class=\"kb\"><i class=\"%s\" style=\"width:%.1f%%\"></i></span>", cls,
                      w) +
               "<span class=\"kvv\">" + grouped(*v) + " B</span>";
      } else {
        out += std::string("<span class=\"kb\"></span><span class=\"kvv\">") + kNone + "</span>";
      }
      out += "</div>\n";
    };
    bar("MLA latent (the plan's cache)", latent, "lat");
    bar("Standard multi-head attention", mha, "mha");
    if (latent && mha && *latent > 0)
      out += "<p>The latent cache needs <strong>" +
             format("%.1f×", double(*mha) / double(*latent)) +
             " fewer</strong> bytes per token than a multi-head K/V cache (" +
             percent(double(*latent) / double(*mha)) + " of its size).</p>\n";
  }
  out += "</section>\n";
}

//===----------------------------------------------------------------------===//
// The memory chart
//===----------------------------------------------------------------------===//

/// A round tick spacing giving about `target` ticks over `range`.
double niceStep(double range, int target) {
  if (!(range > 0))
    return 1;
  double raw = range / target;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag)
      return m * mag;
  return 10 * mag;
}

uint32_t fnv1a(const std::string &s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

struct Buffer {
  std::string name;
  std::optional<int64_t> index, offset, bytes;
  const json *live = nullptr;
};

/// [first, last] of `b` in entry point `entry`, if it is live there.
std::optional<std::pair<int64_t, int64_t>> liveRange(const Buffer &b, const std::string &entry) {
  const json *range = array(member(b.live, entry.c_str()));
  if (!range || range->size() != 2)
    return std::nullopt;
  auto first = integer(&(*range)[0]), last = integer(&(*range)[1]);
  if (!first || !last || *last < *first)
    return std::nullopt;
  return std::make_pair(*first, *last);
}

void renderChart(std::string &out, const std::string &entry, int64_t steps, double arena,
                 const std::vector<Buffer> &buffers) {
  const double width = 900, height = 420;
  const double left = 78, right = 16, top = 14, bottom = 50;
  const double pw = width - left - right, ph = height - top - bottom;
  const double x0 = -1, x1 = double(steps) + 1; // inputs at -1, outputs at `steps`
  auto X = [&](double step) { return left + (std::clamp(step, x0, x1) - x0) / (x1 - x0) * pw; };
  auto Y = [&](double offset) { return top + std::clamp(offset / arena, 0.0, 1.0) * ph; };

  out += format("<svg class=\"chart\" width=\"%.0f\" "
                "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"",
                width, height, width, height);
  out += "arena occupancy of " + entryName(entry) + "\">\n";
  // Inputs (step -1) and outputs (step `steps`) shaded.
  out += format("<path class=\"io\" d=\"M%.2f %.2fH%.2fV%.2fH%.2fZM%.2f %.2fH%.2fV%.2fH%.2fZ\"/>\n",
                X(-1), top, X(0), top + ph, X(-1), X(double(steps)), top, X(double(steps) + 1),
                top + ph, X(double(steps)));

  // Grid and ticks: steps across, arena offset down.
  double xs = std::max(1.0, niceStep(x1 - x0, 12));
  for (double s = 0; s <= double(steps) + 0.5; s += xs)
    out += format("<line class=\"grid\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>"
                  "<text class=\"tick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%.0f</text>\n",
                  X(s), top, X(s), top + ph + 4, X(s), top + ph + 16, s);
  double unit = arena >= 1024 * 1024 ? 1024.0 * 1024 : arena >= 1024 ? 1024.0 : 1.0;
  const char *unitName = unit > 1024 ? "MiB" : unit > 1 ? "KiB" : "B";
  double ys = niceStep(arena / unit, 8) * unit;
  for (double o = 0; o <= arena * (1 + 1e-9); o += ys) {
    double v = o / unit;
    std::string label = std::fabs(v - std::round(v)) < 1e-6 ? format("%.0f", v) : format("%.1f", v);
    out += format("<line class=\"grid\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>"
                  "<text class=\"tick\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s %s</text>\n",
                  left - 4, Y(o), left + pw, Y(o), left - 7, Y(o) + 4, label.c_str(), unitName);
  }

  // One rectangle per buffer live in this entry point.
  std::string labels;
  for (const Buffer &b : buffers) {
    auto range = liveRange(b, entry);
    if (!range || !b.offset || !b.bytes)
      continue;
    double rx = X(double(range->first)), rw = X(double(range->second) + 1) - rx;
    double ry = Y(double(*b.offset));
    double rh = std::max(1.0, Y(double(*b.offset) + double(*b.bytes)) - ry);
    uint32_t h = fnv1a(b.name);
    out += format("<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                  "fill=\"hsl(%u,%u%%,%u%%)\" stroke=\"hsl(%u,45%%,35%%)\">",
                  rx, ry, rw, rh, h % 360, 50 + (h >> 9) % 25, 58 + (h >> 17) % 14, h % 360);
    out += "<title>" + escape(b.name) + "\noffset " + grouped(*b.offset) + ", " +
           grouped(*b.bytes) + " bytes (" + binaryBytes(double(*b.bytes)) + ")\nlive steps " +
           std::to_string(range->first) + " … " + std::to_string(range->second) + " of " +
           entryName(entry) + "</title></rect>\n";
    if (rh >= 14 && rw >= 7.0 * double(b.name.size()) + 8)
      labels += format("<text class=\"lbl\" x=\"%.2f\" y=\"%.2f\">", rx + 4, ry + 12) +
                escape(b.name) + "</text>\n";
  }
  out += labels;

  // Axes and their labels.
  out +=
      format("<path class=\"axis\" d=\"M%.2f %.2fV%.2fH%.2f\"/>\n", left, top, top + ph, left + pw);
  out += format("<text class=\"axlabel\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">step of ",
                left + pw / 2, height - 10);
  out += entryName(entry) + " (shaded: inputs before step 0, outputs after the last step)</text>\n";
  out += format("<text class=\"axlabel\" transform=\"translate(16 %.2f) rotate(-90)\" "
                "text-anchor=\"middle\">arena offset</text>\n",
                top + ph / 2);
  out += "</svg>\n";
}

void renderMemory(std::string &out, const json &facts) {
  openSection(out, "memory", "Memory plan");
  const json *memory = member(&facts, "memory_plan");
  if (!memory || !memory->is_object()) {
    notApplicable(out, "Not applicable: no memory plan recorded.");
    out += "</section>\n";
    return;
  }
  std::vector<Buffer> buffers;
  if (const json *list = array(member(memory, "buffers")))
    for (const json &b : *list) {
      if (!b.is_object())
        continue;
      const json *live = member(&b, "live");
      buffers.push_back({text(member(&b, "name")), integer(member(&b, "index")),
                         integer(member(&b, "offset")), integer(member(&b, "bytes")),
                         live && live->is_object() ? live : nullptr});
    }

  // Entry points as listed; those only named by the buffers' live ranges after them.
  std::vector<std::pair<std::string, std::optional<int64_t>>> entries;
  if (const json *list = array(member(memory, "entry_points")))
    for (const json &e : *list)
      if (member(&e, "name"))
        entries.emplace_back(text(member(&e, "name")), integer(member(&e, "steps")));
  for (const Buffer &b : buffers)
    if (b.live)
      for (auto it = b.live->begin(); it != b.live->end(); ++it)
        if (std::none_of(entries.begin(), entries.end(),
                         [&](auto &e) { return e.first == it.key(); }))
          entries.emplace_back(it.key(), std::nullopt);

  double arena = double(integer(member(memory, "arena_bytes")).value_or(0));
  for (const Buffer &b : buffers)
    if (b.offset && b.bytes)
      arena = std::max(arena, double(*b.offset) + double(*b.bytes));

  auto maxTokens = integer(member(memory, "max_tokens"));
  if (maxTokens)
    out +=
        "<p>Planned for up to <strong>" + grouped(*maxTokens) +
        "</strong> tokens per call. Each rectangle is one buffer: its steps across, its place in "
        "the arena down; hover for details.</p>\n";
  for (const auto &[name, declaredSteps] : entries) {
    int64_t steps = std::max<int64_t>(0, declaredSteps.value_or(0));
    int live = 0;
    for (const Buffer &b : buffers)
      if (auto r = liveRange(b, name)) {
        ++live;
        if (!declaredSteps)
          steps = std::max(steps, r->second);
      }
    out += "<h3><code>" + entryName(name) + "</code> <span class=\"muted small\">" +
           grouped(steps) + " steps, " + std::to_string(live) + " live buffers</span></h3>\n";
    if (live == 0 || arena <= 0) {
      notApplicable(out, "No buffer is live in this entry point: none.");
      continue;
    }
    out += "<div class=\"chartbox\">\n";
    renderChart(out, name, steps, arena, buffers);
    out += "</div>\n";
  }
  if (entries.empty())
    notApplicable(out, "No entry points recorded: none.");

  out += "<div class=\"tiles\">\n";
  auto arenaBytes = integer(member(memory, "arena_bytes"));
  auto separate = integer(member(memory, "separate_bytes"));
  auto saved = integer(member(memory, "saved_bytes"));
  tile(out, "Arena", arenaBytes ? mib(double(*arenaBytes)) : "",
       arenaBytes ? grouped(*arenaBytes) + " B" : "");
  tile(out, "Separate buffers", separate ? mib(double(*separate)) : "",
       separate ? grouped(*separate) + " B, one allocation each" : "");
  tile(out, "Saved", saved ? mib(double(*saved)) : "",
       saved && separate && *separate > 0
           ? percent(double(*saved) / double(*separate)) + " of separate"
           : "");
  out += "</div>\n";

  if (buffers.empty()) {
    notApplicable(out, "No buffers recorded: none.");
  } else {
    out += "<details><summary>Buffer table (" + std::to_string(buffers.size()) +
           " buffers)</summary>\n<table class=\"data\">\n<thead><tr><th class=\"num\">#</th>"
           "<th>Buffer</th><th class=\"num\">Offset</th><th class=\"num\">Bytes</th>"
           "<th class=\"num\">Size</th>";
    for (const auto &e : entries)
      out += "<th class=\"num\">Live in <code>" + entryName(e.first) + "</code></th>";
    out += "</tr></thead>\n<tbody>\n";
    for (const Buffer &b : buffers) {
      out += "<tr><td class=\"num muted\">" +
             (b.index ? std::to_string(*b.index) : std::string(kNone)) + "</td><td><code>" +
             escape(b.name) + "</code></td><td class=\"num\">" +
             (b.offset ? grouped(*b.offset) : std::string(kNone)) + "</td><td class=\"num\">" +
             (b.bytes ? grouped(*b.bytes) : std::string(kNone)) + "</td><td class=\"num\">" +
             (b.bytes ? binaryBytes(double(*b.bytes)) : std::string(kNone)) + "</td>";
      for (const auto &e : entries) {
        auto r = liveRange(b, e.first);
        out += "<td class=\"num\">" +
               (r ? std::to_string(r->first) + " … " + std::to_string(r->second)
                  : std::string("<span class=\"muted\">not live</span>")) +
               "</td>";
      }
      out += "</tr>\n";
    }
    out += "</tbody></table>\n</details>\n";
  }
  out += "</section>\n";
}

const char *const kStyle = R"css(
:root{--fg:#1f2933;--muted:#66707a;--line:#e3e7eb;--head:#f2f4f7;--zebra:#f8f9fb;--accent:#2f5fb3;
--add:#e6f4ea;--addfg:#17602c;--del:#fce8e8;--delfg:#9b1c1c;--win:#e8f0fb}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#fff;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,"Noto Sans","DejaVu Sans",sans-serif}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
header.top{position:sticky;top:0;z-index:2;background:#17212b;color:#fff}
header.top .wrap{display:flex;align-items:center;gap:28px;padding-top:10px;padding-bottom:10px}
header.top .brand{font-weight:600;letter-spacing:.02em}
header.top nav a{color:#c9d6e6;text-decoration:none;margin-right:18px}
header.top nav a:hover{color:#fff}
.wrap{max-width:1180px;margin:0 auto;padding:0 24px}
.title h1{font-size:24px;margin:22px 0 2px}
.title p{margin:0 0 8px;color:var(--muted)}
section{border-top:1px solid var(--line);padding:8px 0 18px;scroll-margin-top:48px}
h2{font-size:19px;margin:14px 0 10px}
h3{font-size:15px;margin:18px 0 8px}
table{border-collapse:collapse;margin:6px 0 10px}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{vertical-align:bottom;background:var(--head);font-weight:600;font-size:13px;border-bottom:1px solid #cfd5dc}
th.grp{text-align:center;border-left:1px solid var(--line)}
tfoot th,tfoot td{font-weight:600;border-top:2px solid #cfd5dc}
table.data{width:100%}
table.data>tbody>tr:nth-child(even)>td{background:var(--zebra)}
table.passes>tbody:nth-of-type(even)>tr>td{background:var(--zebra)}
table.passes>tbody>tr:nth-child(even)>td{background:inherit}
table.passes>tbody:nth-of-type(even)>tr.diffrow>td{background:var(--zebra)}
table.narrow{width:auto;min-width:520px}
table.narrow td,table.narrow th{padding-left:16px;padding-right:16px}
table.kv{width:100%}
table.kv th{font-weight:500;color:var(--muted);white-space:nowrap;width:1%}
table.kv.narrow{width:auto}table.kv.narrow th{width:auto;padding-right:28px}
table.kv td{word-break:break-word}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.win{background:var(--win)!important;font-weight:600}
.muted{color:var(--muted)}.small{font-size:12px}.nw{white-space:nowrap}
.na{color:#9aa3ad}
.empty{color:var(--muted);font-style:italic}
.note{color:var(--muted);font-size:12.5px;margin:4px 0}
.badge{display:inline-block;padding:0 7px;border-radius:9px;background:#e7eef9;color:var(--accent);font-weight:600;font-size:12.5px}
.yes{color:var(--addfg);font-weight:600}
.pos{color:var(--addfg);font-weight:600}.neg{color:var(--delfg);font-weight:600}
.op{white-space:nowrap}
.remark{font-size:12.5px;max-width:520px}
.remark-more{font-size:11px;overflow-x:auto;max-width:520px;margin:2px 0}
.remark+.remark{margin-top:4px}
code.brk{word-break:break-all}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:28px}
.grid2>div{min-width:0}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0 6px}
.tile{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:130px;background:var(--zebra)}
.tl{font-size:12px;color:var(--muted)}.tv{font-size:18px;font-weight:600}.tn{font-size:11.5px;color:var(--muted)}
.bar{height:4px;background:var(--line);border-radius:2px;margin-top:3px;min-width:60px}
.bar i{display:block;height:4px;background:var(--accent);border-radius:2px}
td.barcell{width:160px;vertical-align:middle}
details{margin:4px 0}
summary{cursor:pointer;color:var(--accent);font-size:13px}
pre.diff{margin:6px 0;padding:8px 0;background:#fbfcfd;border:1px solid var(--line);border-radius:4px;
overflow:auto;max-height:480px;line-height:1.35}
pre.diff span{display:block;min-width:fit-content;padding:0 10px;white-space:pre}
.da{background:var(--add);color:var(--addfg)}.dd{background:var(--del);color:var(--delfg)}
.dh{color:#6f42c1;background:#f4f0fb}.dc{color:#3c4650}
.params span{margin-right:16px;color:var(--muted)}.params b{color:var(--fg)}
.kvbar{display:flex;align-items:center;gap:10px;margin:4px 0;max-width:820px}
.kl{width:230px;color:var(--muted)}.kb{flex:1;height:14px;background:var(--zebra);border-radius:3px}
.kb i{display:block;height:14px;border-radius:3px}.kb i.lat{background:var(--accent)}.kb i.mha{background:#b9c3cf}
.kvv{width:90px;text-align:right;font-variant-numeric:tabular-nums}
.chartbox{overflow-x:auto}
svg.chart{display:block;max-width:100%;height:auto;background:#fcfdfe;border:1px solid var(--line);border-radius:4px}
svg.chart .grid{stroke:#e9edf1;stroke-width:1}
svg.chart .axis{fill:none;stroke:#8a949e;stroke-width:1}
svg.chart .io{fill:#eef1f5}
svg.chart rect{stroke-width:.6;fill-opacity:.85}
svg.chart rect:hover{fill-opacity:1;stroke-width:1.5}
svg.chart .tick{font-size:11px;fill:#5c6670}
svg.chart .axlabel{font-size:12px;fill:#3c4650}
svg.chart .lbl{font-size:10.5px;fill:#1b232b;pointer-events:none}
footer{color:var(--muted);font-size:12px;padding:0 0 30px}
footer .wrap>div{border-top:1px solid var(--line);padding-top:14px}
@media (max-width:900px){.grid2{grid-template-columns:1fr}}
)css";

std::string render(const json &facts) {
  std::string out;
  out.reserve(64 * 1024);
  std::string checkpoint = text(member(&facts, "checkpoint"));
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>moec "
         "explain";
  if (!checkpoint.empty())
    out += " — " + escape(checkpoint);
  out += "</title>\n<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<header class=\"top\"><div class=\"wrap\">"
         "<span class=\"brand\">moec explain</span><nav>"
         "<a href=\"#summary\">Summary</a><a href=\"#pipeline\">Pipeline</a>"
         "<a href=\"#weights\">Weights</a><a href=\"#fusions\">Fusions</a><a href=\"#mla\">MLA</a>"
         "<a href=\"#memory\">Memory</a></nav></div></header>\n<main class=\"wrap\">\n"
         "<div class=\"title\"><h1>" +
         (checkpoint.empty() ? std::string("Compile report") : escape(checkpoint)) + "</h1>";
  std::string options = text(member(&facts, "options"));
  if (!options.empty())
    out += "<p><code>" + escape(options) + "</code></p>";
  out += "</div>\n";
  renderSummary(out, facts);
  renderPipeline(out, facts);
  renderWeights(out, facts);
  renderFusions(out, facts);
  renderMla(out, facts);
  renderMemory(out, facts);
  out +=
      "</main>\n<footer><div class=\"wrap\"><div>Written by <code>moec explain</code>; layout of "
      "the facts: docs/explain.md.</div></div></footer>\n</body>\n</html>\n";
  return out;
}

} // namespace

std::string renderExplainHtml(const json &facts) {
#if defined(__cpp_exceptions)
  try {
    return render(facts);
  } catch (const std::exception &e) {
    // Not expected (every read is checked); a report that says so beats none.
    return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>moec explain"
           "</title></head><body><p>moec explain: the report could not be rendered: " +
           escape(e.what()) + "</p></body></html>\n";
  }
#else
  return render(facts);
#endif
}

} // namespace moec::driver
