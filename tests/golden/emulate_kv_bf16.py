#!/usr/bin/env python3
"""A numpy emulation of a plan with a bf16 KV cache (`moec compile --kv-cache=bf16`, the
default since plan format 7).

The numerics (moec/cpu/kernels.h cacheStore, isa/Attention.h), written here from their
definitions on top of the plain reference ref_numpy.py: everything is the exact model,
except that each row MLA caches, the normalised latent c (kv_lora_rank values, after
kv_a_layernorm) and the roped shared key k_pe (rope values), is stored as bfloat16:
the float32 value rounded to nearest even. Attention reads every key and value,
the token's own included, from the cache, widening them exactly; the queries and
everything else stay as they were. So in ref_numpy.forward, c and k_pe are rounded
(float64 -> float32 -> bf16) right after they are computed; both MLA forms read the
same rounded rows (naive: kv_b_proj applied to them; absorbed: attention over them).

moec computes c and k_pe in float32 and the emulation in float64, so a value within
float32 rounding of a bf16 rounding boundary can round the other way (one bf16 ulp,
2^-8 relative, in one value); GoldenTest.cpp's bound allows for that.

Usage: python3 tests/golden/emulate_kv_bf16.py   writes data/<variant>/logits_kv_bf16.npy
for every variant (logits over the prompt and the reference's greedy continuation, the
rows of logits_full.npy). Needs numpy only.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ref_numpy as ref  # noqa: E402


def round_bf16(x):
    """float64 array -> float64 array of the bf16 values moec stores (float32 first,
    then round to nearest even on the top 16 bits)."""
    f = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    u = f.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return r.astype(np.uint32).view(np.float32).astype(np.float64)


def main():
    manifest = json.load(open(os.path.join(HERE, "manifest.json"), encoding="utf-8"))
    for v in manifest["variants"]:
        vdir = os.path.join(HERE, v["dir"])
        ckpt = os.path.join(HERE, v.get("checkpoint") or v["dir"])
        cfg, w = ref.load_checkpoint(ckpt)
        prompt = json.load(open(os.path.join(vdir, "prompt.json")))["tokens"]
        greedy = json.load(open(os.path.join(vdir, "greedy.json")))["tokens"]
        logits = ref.forward(cfg, w, list(prompt) + list(greedy[:-1]), cache=round_bf16)
        logits = logits.astype(np.float32)
        out = os.path.join(vdir, "logits_kv_bf16.npy")
        np.save(out + ".tmp.npy", logits)
        os.replace(out + ".tmp.npy", out)
        print(f"wrote {os.path.relpath(out, HERE)} {logits.shape}")


if __name__ == "__main__":
    main()
