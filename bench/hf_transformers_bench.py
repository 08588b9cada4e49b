#!/usr/bin/env python3
"""Prefill and decode speed of Hugging Face transformers on a moec checkpoint.

The reference most users know, measured like `moec bench`: the checkpoint's own
model class (DeepseekV2ForCausalLM / DeepseekV3ForCausalLM) in torch on the CPU,
bf16 weights, a warm-up generation, then R repetitions of a P-token prefill of
random ids and N greedy decode steps with the KV cache (DynamicCache). Prints
one JSON object (tokens/s per repetition, medians) on stdout.

  /tmp/venv-hf/bin/python bench/hf_transformers_bench.py /tmp/v2lite8l/ckpt \\
      -p 128 -n 64 -r 3 --threads 2

Needs torch, transformers, safetensors (a venv: see tests/golden/README.md for the
versions the project pins). The weights are memory-mapped from the safetensors
files and assigned to a model built on the meta device, so memory holds one copy
(the routed experts are stacked into transformers' fused per-layer tensors).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import transformers
from safetensors import safe_open


def load(ckpt, dtype):
    cfg = json.load(open(os.path.join(ckpt, "config.json")))
    if cfg.get("quantization_config"):
        sys.exit("hf_transformers_bench: FP8 checkpoints are not supported; use the bf16 one")
    if cfg["model_type"] == "deepseek_v3":
        Cfg, Model = transformers.DeepseekV3Config, transformers.DeepseekV3ForCausalLM
    else:
        Cfg, Model = transformers.DeepseekV2Config, transformers.DeepseekV2ForCausalLM
    hcfg = Cfg(**{k: v for k, v in cfg.items() if k not in ("architectures", "torch_dtype")})
    with torch.device("meta"):
        model = Model(hcfg)
    files = [f for f in sorted(os.listdir(ckpt)) if f.endswith(".safetensors")]
    tensors = {}
    for f in files:
        with safe_open(os.path.join(ckpt, f), framework="pt") as st:
            for name in st.keys():
                tensors[name] = st.get_tensor(name)
    L = cfg["num_hidden_layers"]
    sd = {}
    for name, t in tensors.items():
        parts = name.split(".")
        if len(parts) > 2 and parts[1] == "layers" and int(parts[2]) >= L:
            continue  # an MTP layer: not part of plain inference
        if ".mlp.experts." not in name:
            sd[name] = t.to(dtype)
    for l in range(cfg["first_k_dense_replace"], L):
        p = f"model.layers.{l}.mlp.experts."
        E = cfg["n_routed_experts"]
        sd[p + "gate_up_proj"] = torch.stack([
            torch.cat([tensors.pop(f"{p}{e}.gate_proj.weight"),
                       tensors.pop(f"{p}{e}.up_proj.weight")], 0)
            for e in range(E)]).to(dtype)
        sd[p + "down_proj"] = torch.stack(
            [tensors.pop(f"{p}{e}.down_proj.weight") for e in range(E)]).to(dtype)
        # Each layer's experts are freed once stacked: one copy of the weights in memory.
    del tensors
    missing, unexpected = model.load_state_dict(sd, strict=False, assign=True)
    if unexpected or missing:
        sys.exit(f"hf_transformers_bench: unexpected {unexpected[:5]}, missing {missing[:5]}")
    # Modules whose buffers were made on the meta device (the rotary embedding's
    # frequencies) are built again on the CPU from the config.
    for name, module in list(model.named_modules()):
        if any(b is not None and b.is_meta for b in module._buffers.values()):
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            setattr(parent, name.rsplit(".", 1)[-1], type(module)(config=hcfg))
    if any(b.is_meta for b in model.buffers()) or any(p.is_meta for p in model.parameters()):
        sys.exit("hf_transformers_bench: tensors left on the meta device")
    return model.eval(), cfg


@torch.no_grad()
def run(model, prompt, new):
    ids = torch.tensor([prompt], dtype=torch.long)
    t0 = time.perf_counter()
    out = model(input_ids=ids, use_cache=True)
    prefill = time.perf_counter() - t0
    past = out.past_key_values
    token = out.logits[0, -1].argmax().view(1, 1)
    t0 = time.perf_counter()
    for _ in range(new):
        out = model(input_ids=token, past_key_values=past, use_cache=True)
        past = out.past_key_values
        token = out.logits[0, -1].argmax().view(1, 1)
    decode = time.perf_counter() - t0
    return len(prompt) / prefill, (new / decode if new else 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("-p", type=int, default=128, help="prompt tokens")
    ap.add_argument("-n", type=int, default=64, help="decode steps")
    ap.add_argument("-r", type=int, default=3, help="repetitions")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model, cfg = load(args.checkpoint, torch.bfloat16)
    load_seconds = time.perf_counter() - t0
    g = torch.Generator().manual_seed(args.seed)
    prompt = lambda: torch.randint(0, cfg["vocab_size"], (args.p,), generator=g).tolist()
    run(model, prompt(), min(args.n, 2))  # warm-up: first-touch faults, allocator, kernels
    pre, dec = [], []
    for rep in range(args.r):
        a, b = run(model, prompt(), args.n)
        pre.append(a)
        dec.append(b)
        print(f"hf_transformers_bench: repetition {rep + 1}/{args.r}: prefill {a:.1f} tokens/s, "
              f"decode {b:.1f} tokens/s", file=sys.stderr)
    span = lambda v: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
    print(json.dumps({
        "checkpoint": args.checkpoint, "torch": torch.__version__,
        "transformers": transformers.__version__, "threads": torch.get_num_threads(),
        "dtype": "bfloat16", "prompt_tokens": args.p, "generate_tokens": args.n,
        "repetitions": args.r, "load_seconds": load_seconds,
        "prefill_tokens_per_second": span(pre), "decode_tokens_per_second": span(dec)}, indent=2))


if __name__ == "__main__":
    main()
