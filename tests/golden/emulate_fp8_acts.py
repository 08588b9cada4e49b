#!/usr/bin/env python3
"""A numpy emulation of `moec compile --quantize=fp8 --activations=fp8` (with
--kv-cache=f32) and naive MLA: DeepSeek's FP8 GEMM, activations quantized 1x128.

The numerics (spec section 3; moec/cpu/kernels.h Weight::fp8Activations, plan
Step.activations = F8E4M3), written here from their definitions on top of the plain
reference ref_numpy.py:

  * weights: the variant's FP8 twin (its manifest's "quantized_twin", made by
    make_quantized.py with the recipe `--quantize=fp8` is tested against), or the
    variant itself when its checkpoint is FP8 already, dequantized exactly;
  * activations, at every product with an FP8 weight that a `linear` step, an MLP or
    the experts multiply by (the MLA projections, o_proj, gate/up/down; not kv_b_proj,
    which the MLA core multiplies by dequantized, nor the router's gate or an
    unquantized lm_head): each token row taken as float32, per 128 columns
    amax = max |x|, s = max(amax, 1e-4) / 448 (float32 division),
    q = e4m3(x / s) (float32 division, nearest even, saturating at 448), and the
    product multiplies q * s (a float32 product) by the weight, sums in float64 here
    (float32 in moec);
  * everything else is ref_numpy.py's forward pass (float64).

moec computes the activations in float32 and this emulation in float64, so a value
within float32 rounding of a code boundary can round to the neighbouring e4m3 code
(1/16 of its size); GoldenTest.cpp's bound allows for that.

Usage: python3 tests/golden/emulate_fp8_acts.py   writes data/<variant>/logits_fp8_acts.npy
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
from emulate_kv_cache import round_e4m3  # noqa: E402

BLOCK = 128


def quantize_acts(x):
    """float64 [T, K] -> the float32 values q * s of the 1x128 quantization, as float64."""
    x = np.asarray(x, dtype=np.float32)
    out = np.empty_like(x)
    for b0 in range(0, x.shape[1], BLOCK):
        blk = x[:, b0:b0 + BLOCK]
        amax = np.max(np.abs(blk), axis=1, keepdims=True)
        s = (np.maximum(amax, np.float32(1e-4)) / np.float32(448.0)).astype(np.float32)
        q = (blk / s).astype(np.float32)
        out[:, b0:b0 + BLOCK] = (round_e4m3(q.astype(np.float64)).astype(np.float32) * s)
    return out.astype(np.float64)


class Fp8ActProducts:
    """The `mm(x, name)` of ref_numpy.forward for a plan compiled with
    --quantize=fp8 --activations=fp8."""

    def __init__(self, w, fp8_names):
        self.w = w
        self.fp8 = fp8_names

    def __call__(self, x, name):
        if name in self.fp8 and "kv_b_proj" not in name:
            x = quantize_acts(x)
        return x @ self.w[name].T


def fp8_names(ckpt_dir):
    raw = ref.read_safetensors(os.path.join(ckpt_dir, "model.safetensors"))
    return {n for n, (dt, _) in raw.items() if dt == "F8_E4M3"}


def main():
    manifest = json.load(open(os.path.join(HERE, "manifest.json"), encoding="utf-8"))
    for v in manifest["variants"]:
        vdir = os.path.join(HERE, v["dir"])
        ckpt = os.path.join(HERE, v.get("quantized_twin") or v.get("checkpoint") or v["dir"])
        cfg, w = ref.load_checkpoint(ckpt)
        prompt = json.load(open(os.path.join(vdir, "prompt.json")))["tokens"]
        greedy_tokens = json.load(open(os.path.join(vdir, "greedy.json")))["tokens"]
        logits = ref.forward(cfg, w, list(prompt) + list(greedy_tokens[:-1]),
                             mm=Fp8ActProducts(w, fp8_names(ckpt))).astype(np.float32)
        out = os.path.join(vdir, "logits_fp8_acts.npy")
        np.save(out + ".tmp.npy", logits)
        os.replace(out + ".tmp.npy", out)
        print(f"wrote {os.path.relpath(out, HERE)} {logits.shape}")


if __name__ == "__main__":
    main()
