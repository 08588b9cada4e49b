"""Checks `moec bench -o json` against the plan it measured (moec-run --dump-plan).

The bytes one decode token reads are recomputed here from the plan's JSON: every
weight of the decode entry point's steps once, with its block scales; one row of
the embedding table; of each routed-experts step, top_k of its experts.
usage: check_bench_json.py BENCH.json PLAN.json REPS BANDWIDTH(0|1)
"""
import json
import sys

bench = json.load(open(sys.argv[1]))
plan = json.load(open(sys.argv[2]))
reps = int(sys.argv[3])
bandwidth = sys.argv[4] == "1"


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)


weights = plan["weights"]


def size(w):
    s = weights[w]["size"]
    scale = weights[w].get("block_scale", -1)
    return s + (weights[scale]["size"] if scale >= 0 else 0)


decode = next(e for e in plan["entry_points"] if e["name"] == "decode")
steps = plan["steps"][decode["first_step"]:decode["first_step"] + decode["num_steps"]]
expected, seen = 0, set()
for step in steps:
    ws = step.get("weights", [])
    if step["kind"] == "Embedding":
        expected += weights[ws[0]]["size"] // weights[ws[0]]["shape"][0]
    elif step["kind"] in ("MoeExperts", "FusedMoeExperts"):
        a = step["attrs"]
        expected += sum(size(w) for w in ws) // a["experts"] * a["top_k"]
    else:
        for w in ws:
            if w not in seen:
                seen.add(w)
                expected += size(w)
kv = sum((2 if s["dtype"] == "BF16" else 4) * s["shape"][0] for s in plan["states"])

b = bench["decode_bytes_per_token"]
check(b["weights"] == expected, "decode weight bytes %d, expected %d" % (b["weights"], expected))
check(b["kv_cache_per_context_token"] == kv, "KV bytes per context token %d, expected %d"
      % (b["kv_cache_per_context_token"], kv))
P, N = bench["prompt_tokens"], bench["generate_tokens"]
check(b["mean_context"] == P + (N - 1) / 2, "mean context")
check(abs(b["total"] - (expected + kv * (P + (N - 1) / 2))) < 1e-6, "total bytes")
for key in ("prefill_tokens_per_second", "decode_tokens_per_second"):
    s = bench[key]
    check(len(s["runs"]) == reps and all(v > 0 for v in s["runs"]), key + ": one rate per repetition")
    check(s["min"] <= s["median"] <= s["max"], key + ": min <= median <= max")
check(bench["repetitions"] == reps and bench["threads"] >= 1, "repetitions and threads")
check(bench["warmup"]["prefaulted_weight_bytes"] == sum(w["size"] for w in weights),
      "every weight byte touched before timing")
# The numerics summary, recounted from the plan: matrix weights (2-D, not a block-scale
# tensor) by dtype, the steps that multiply by weights and those with bf16 activations,
# the KV cache's dtype.
scales = {w["block_scale"] for w in weights if w.get("block_scale", -1) >= 0}
matrix = {}
for i, w in enumerate(weights):
    if i not in scales and len(w["shape"]) == 2:
        matrix[w["dtype"]] = matrix.get(w["dtype"], 0) + 1
products = ("Linear", "HeadLinear", "ExpandedAttention", "SwigluMlp", "FusedSwigluMlp",
            "MoeExperts", "FusedMoeExperts")
num = bench["numerics"]
check(num["matrix_weights"] == matrix, "matrix weights by dtype %s, expected %s"
      % (num["matrix_weights"], matrix))
check(num["product_steps"] == sum(s["kind"] in products for s in plan["steps"]), "product steps")
check(num["bf16_activation_steps"] == sum(s.get("activations", "F32") == "BF16"
                                          for s in plan["steps"]), "bf16 activation steps")
check(num["kv_cache"] == plan["states"][0]["dtype"], "KV cache dtype")
if bandwidth:
    bw = bench["read_bandwidth"]
    check(len(bw["bytes_per_second"]["runs"]) == reps and bw["bytes_per_second"]["min"] > 1e8,
          "read bandwidth measured before each repetition")
    frac = bench["decode_bandwidth_fraction"]
    check(frac is not None and abs(frac - bench["decode_tokens_per_second"]["median"] * b["total"]
                                   / bw["bytes_per_second"]["median"]) < 1e-9,
          "fraction = decode tokens/s x bytes / bandwidth")
else:
    check(bench["read_bandwidth"] is None and bench["decode_bandwidth_fraction"] is None,
          "--no-bandwidth: none measured")
print("PASS")
