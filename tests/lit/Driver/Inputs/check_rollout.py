"""Checks moec-rollout's output.

usage: check_rollout.py MOEC_RUN PLAN PROMPTS SHARED NOT_SHARED TEMPERATURE
- the shared-prefix run equals the run that prefills per sample, token for token
  (same seeds), with logprobs within 1e-4;
- every logprob is log_softmax(logits / T) of the sampled token, the logits dumped by
  moec-run for the same tokens (within 1e-3);
- each group's advantages are (r - mean) / (pstdev + 1e-4).
"""
import json
import math
import statistics
import struct
import subprocess
import sys

run, plan, prompts_path, shared_path, alone_path, temperature = sys.argv[1:7]
T = float(temperature)
shared = [json.loads(l) for l in open(shared_path, encoding="utf-8")]
alone = [json.loads(l) for l in open(alone_path, encoding="utf-8")]
assert len(shared) == len(alone) > 0
for a, b in zip(shared, alone):
    assert (a["prompt_id"], a["sample"]) == (b["prompt_id"], b["sample"])
    assert a["tokens"] == b["tokens"], (a, b)
    assert max(abs(x - y) for x, y in zip(a["logprobs"], b["logprobs"])) < 1e-4, (a, b)

prompts = {}
for i, line in enumerate(open(prompts_path, encoding="utf-8")):
    p = json.loads(line)
    prompts[p.get("id", str(i))] = p["prompt"]


def read_npy(path):
    data = open(path, "rb").read()
    n = struct.unpack("<H", data[8:10])[0]
    rows, cols = eval(data[10:10 + n].decode())["shape"]
    v = struct.unpack(f"<{rows * cols}f", data[10 + n:])
    return [v[r * cols:(r + 1) * cols] for r in range(rows)]


worst = 0.0
for s in shared:
    ids = [0] + [int(x) for x in subprocess.run([run, plan, "--tokenize", prompts[s["prompt_id"]]],
                                                capture_output=True, text=True,
                                                check=True).stdout.split()]
    seq = ids + s["tokens"][:-1]
    npy = shared_path + ".npy"
    subprocess.run([run, plan, "--tokens", ",".join(map(str, seq)), "--dump-logits", npy],
                   capture_output=True, check=True)
    rows = read_npy(npy)
    for k, tok in enumerate(s["tokens"]):
        row = [x / T for x in rows[len(ids) - 1 + k]]
        m = max(row)
        want = row[tok] - m - math.log(sum(math.exp(x - m) for x in row))
        worst = max(worst, abs(want - s["logprobs"][k]))
assert worst < 1e-3, worst

groups = {}
for s in shared:
    groups.setdefault(s["prompt_id"], []).append(s)
for g in groups.values():
    r = [s["reward"] for s in g]
    mean, sd = statistics.fmean(r), statistics.pstdev(r)
    for s in g:
        assert abs(s["advantage"] - (s["reward"] - mean) / (sd + 1e-4)) < 1e-9, s
print(f"ok: {len(shared)} samples; shared = per-sample prefill; logprobs within {worst:.1e}; "
      f"advantages")
