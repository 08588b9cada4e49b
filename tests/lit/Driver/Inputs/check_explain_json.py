"""Checks `moec explain --format=json` facts against the plan the same compile wrote.

usage: check_explain_json.py FACTS.json PLAN.json MEMORY.json [--quantized]
PLAN.json is `moec-run PLAN --dump-plan`, MEMORY.json `moec-run PLAN --memory-plan=json`.
"""
import json
import sys

facts = json.load(open(sys.argv[1]))
plan = json.load(open(sys.argv[2]))
memory = json.load(open(sys.argv[3]))
quantized = "--quantized" in sys.argv[4:]


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("ok:", what)


names = [p["name"] for p in facts["passes"]]
expected = ["canonicalize"] + (["moe-quantize-fp8"] if quantized else []) + [
    "moe-split-phases", "moe-decompose-mla", "moe-decompose-moe", "moe-absorb-mla",
    "moe-absorb-mla", "moe-fuse-residual-norm", "canonicalize"]
check(names == expected, "passes in pipeline order: %s" % names)
by = {}
for p in facts["passes"]:
    by.setdefault(p["name"], []).append(p)
split = by["moe-split-phases"][0]
check(split["ops_before"]["func.func"] == 1 and split["ops_after"]["func.func"] == 2,
      "moe-split-phases: one function before, two after")
dmla = by["moe-decompose-mla"][0]
check(dmla["runs"] == 2 and dmla["anchor"] == "func.func", "decompose-mla ran on both functions")
check(dmla["ops_before"]["moe.mla_attention"] == 2 * facts["model"]["num_hidden_layers"]
      and "moe.mla_attention" not in dmla["ops_after"], "decompose-mla removed every mla_attention")
check(dmla["diff"].startswith("@@ ") and dmla["diff_lines"] > 10 and "+" in dmla["diff"],
      "decompose-mla has a unified diff")
check(all(p["seconds"] >= 0 for p in facts["passes"]), "times recorded")
check(not by["canonicalize"][0]["changed"] or by["canonicalize"][0]["diff_lines"] > 0,
      "a pass that changed nothing has no diff")
absorb = by["moe-absorb-mla"]
check(any("form=auto chose naive for @prefill" in r for r in absorb[0]["remarks"]),
      "moe-absorb-mla's cost-model remark for @prefill")
check(any("form=auto chose absorbed for @decode" in r for r in absorb[1]["remarks"]),
      "moe-absorb-mla's cost-model remark for @decode")

fusion = facts["fusions"]
layers = facts["model"]["num_hidden_layers"]
check(len(fusion) == 1 and fusion[0]["op"] == "moe.add_rms_norm"
      and fusion[0]["count"] == 2 * 2 * layers
      and fusion[0]["replaced"] == {"moe.add": 4 * layers, "moe.rms_norm": 4 * layers},
      "fusions: 2 per layer and entry point, each replacing an add and an rms_norm")

mla = facts["mla"]
entries = {e["name"]: e for e in plan["entry_points"]}
check(mla["chosen"] == {"prefill": "naive", "decode": "absorbed"}, "MLA forms chosen")
check(mla["prefill_min_tokens"] == entries["prefill"]["min_tokens"] > 1,
      "the threshold is the plan's prefill min_tokens (%d)" % mla["prefill_min_tokens"])
check(len(mla["cost_model"]["points"]) >= 6, "cost model points")
kv = sum(s["shape"][0] * 4 for s in plan["states"])
check(mla["kv_cache"]["latent_bytes_per_token"] == kv == facts["plan"]["kv_bytes_per_token"],
      "latent KV bytes per token match the plan's states (%d)" % kv)
check(mla["kv_cache"]["mha_bytes_per_token"] > kv, "standard MHA would cache more")

check(facts["memory_plan"] == memory, "memory plan equals moec-run --memory-plan=json")
check(facts["plan"]["arena_bytes"] == plan["arena_size"], "plan summary: arena")
check(facts["plan"]["steps"] == len(plan["steps"]), "plan summary: steps")
check(facts["plan"]["provenance"]["pipeline"] == plan["provenance"]["pipeline"]
      == facts["pipeline"], "plan summary: provenance pipeline")

before = {w["dtype"]: w for w in facts["weights"]["before"]}
after = {w["dtype"]: w for w in facts["weights"]["after"]}
check(sum(w["bytes"] for w in facts["weights"]["after"]) == facts["plan"]["weight_bytes"],
      "weights after sum to the plan's weight bytes")
if quantized:
    check(facts["weights"]["quantize"] == "fp8" and "f8E4M3FN" in after
          and after["bf16"]["bytes"] < before["bf16"]["bytes"], "fp8: bf16 bytes moved to f8")
    acc = facts["accuracy"]
    check(acc is not None and acc["positions"] == 64 and 0.9 < acc["mean_cosine"] <= 1
          and len(acc["layers"]) == layers, "fp8: the accuracy table")
else:
    check(facts["accuracy"] is None and before == after, "unquantized: weights unchanged")
print("PASS")
