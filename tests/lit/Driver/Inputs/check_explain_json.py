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
expected = ["canonicalize", "moe-kv-cache-type"] + (["moe-quantize-fp8"] if quantized else []) + [
    "moe-split-phases", "moe-decompose-mla", "moe-decompose-moe", "moe-absorb-mla",
    "moe-absorb-mla", "moe-fuse-mla-input-proj", "moe-fuse-gate-up", "moe-fuse-residual-norm",
    "canonicalize"]
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

fusions = {f["pass"]: f for f in facts["fusions"]}
layers = facts["model"]["num_hidden_layers"]
norm = fusions.get("moe-fuse-residual-norm")
check(norm and norm["op"] == "moe.add_rms_norm" and norm["count"] == 2 * 2 * layers
      and norm["replaced"] == {"moe.add": 4 * layers, "moe.rms_norm": 4 * layers},
      "residual-norm fusions: 2 per layer and entry point, each replacing an add and an rms_norm")
# Gate and up as one product: the dense MLP and, per MoE layer, the shared
# experts (one SwiGLU) and the routed experts (one step, a stacked weight per
# expert), in both entry points.
cfg = facts["model"]
dense = cfg["first_k_dense_replace"]
moe_layers = layers - dense
swiglus = dense + moe_layers * (1 if cfg["n_shared_experts"] else 0)
stacked_per_entry = swiglus + moe_layers * cfg["n_routed_experts"]
gate_up = fusions.get("moe-fuse-gate-up")
check(gate_up and gate_up["op"] == "moe.fused_swiglu, moe.fused_routed_experts"
      and gate_up["count"] == 2 * (swiglus + moe_layers)
      and gate_up["replaced"] == {"moe.swiglu": 2 * swiglus, "moe.routed_experts": 2 * moe_layers}
      and gate_up["added"] == {"moe.fused_swiglu": 2 * swiglus,
                               "moe.fused_routed_experts": 2 * moe_layers,
                               "moe.concat_weights": 2 * stacked_per_entry},
      "gate-up fusions: every SwiGLU of both entry points, one stacked weight per SwiGLU")
if quantized:
    # tiny-v3's q_lora rank, 96, is not whole 128-row scale blocks: not fused.
    check("moe-fuse-mla-input-proj" not in fusions,
          "FP8 with q_lora 96: the input projections stay apart")
    check(any("not whole 128-row scale blocks" in r
              for r in by["moe-fuse-mla-input-proj"][0]["remarks"]), "and a remark says why")
else:
    proj = fusions.get("moe-fuse-mla-input-proj")
    # Two linears become one (and a slice of the query part; the latent part's
    # slice folds into the slices after it).
    check(proj and proj["op"] == "moe.concat_weights" and proj["count"] == 2 * layers
          and proj["replaced"] == {"moe.linear": 2 * layers}
          and proj["added"] == {"moe.concat_weights": 2 * layers,
                                "moe.slice_columns": 2 * layers},
          "input projections: one linear over stacked weights per layer and entry point")

mla = facts["mla"]
entries = {e["name"]: e for e in plan["entry_points"]}
check(mla["chosen"] == {"prefill": "naive", "decode": "absorbed"}, "MLA forms chosen")
check(mla["prefill_min_tokens"] == entries["prefill"]["min_tokens"] > 1,
      "the threshold is the plan's prefill min_tokens (%d)" % mla["prefill_min_tokens"])
check(len(mla["cost_model"]["points"]) >= 6, "cost model points")
kv = sum(s["shape"][0] * (2 if s["dtype"] == "BF16" else 4) for s in plan["states"])
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
    # The stacked input projections replace their parts: the same bytes, fewer tensors.
    check(facts["accuracy"] is None and before.keys() == after.keys()
          and all(before[d]["bytes"] == after[d]["bytes"] for d in before)
          and after["bf16"]["count"]
              == before["bf16"]["count"] - layers - stacked_per_entry,
          "unquantized: the same bytes per dtype, the input projections and gate/up stacked")
print("PASS")
