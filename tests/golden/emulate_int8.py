#!/usr/bin/env python3
"""A numpy emulation of `moec compile --quantize=int8` (W8A8 on the CPU) with naive MLA.

The numerics (moec/cpu/quantize.h, moec/cpu/kernels.h), written here from their
definitions, on top of the plain reference ref_numpy.py:

  * weights: every 2-D weight a matrix product reads (the MLA projections, the dense,
    shared and routed experts' gate/up/down; not the embedding, norms, router or
    lm_head) becomes int8 codes with one float32 scale per 128 x 128 block (an FP8
    checkpoint's weights from their dequantized values, float32(e4m3 * scale_inv)):
    s = float32(max(amax, 1e-12) / 127) (the division in double), code = w / s in
    double rounded to nearest-even, clamped to [-127, 127];
  * activations, at every product with such a weight: each token row, per 128
    columns, amax = max |x| (float32); a block with amax below 2^-100 is zero;
    else scale = amax / 127 and inverse = 127 / amax (float32 divisions) and
    q = round-half-even(x * inverse) with the product in float32;
  * y[t, r] = sum over blocks b of xs[t, b] * ws[r / 128, b] * (the exact integer dot
    product of the block), here in float64;
  * everything else is ref_numpy.py's forward pass (float64), which takes these
    products as its `mm`. Its MLA is the naive form, as moec's with --mla-form=naive:
    kv_b_proj applied to the latent rows (quantized per 128 of kv_lora_rank), o_proj to
    the heads' outputs side by side (quantized per 128 of heads x v_head_dim).

moec computes in float32 between the products, so a value that lands within float32
rounding of a code's rounding boundary can round the other way, and which ones do
depends on each SIMD level's order of float sums. The golden test checks the AVX2 level
to 1e-4 of the largest logit (one row to 1e-3), and the detected level to 1e-2 with the
same argmax in every row (GoldenTest.cpp, Int8PlanMatchesTheNumpyEmulation).

Usage: python3 tests/golden/emulate_int8.py        writes data/<variant>/logits_int8_naive.npy
for every variant (logits over the prompt and the reference's greedy
continuation, the rows of logits_full.npy). Needs numpy only.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ref_numpy as ref  # noqa: E402

B = 128


def quantize_weight(w):
    """float64 [out, in] -> (codes float64 [out, in], scales float32 [ceil(out/B), ceil(in/B)]).

    The values are taken as float32 first: exact for bf16, f16 and f32 weights, and for
    an FP8 checkpoint's (dequantized exactly in float64 by ref_numpy) the float32 product
    e4m3 * scale_inv that moec requantizes from."""
    w = np.asarray(w, dtype=np.float32).astype(np.float64)
    o, i = w.shape
    gr, gc = -(-o // B), -(-i // B)
    codes = np.empty_like(w)
    scales = np.empty((gr, gc), dtype=np.float32)
    for br in range(gr):
        for bc in range(gc):
            blk = w[br * B:(br + 1) * B, bc * B:(bc + 1) * B]
            amax = np.float32(np.max(np.abs(blk)))
            s = np.float32(max(float(amax), float(np.float32(1e-12))) / 127.0)
            scales[br, bc] = s
            codes[br * B:(br + 1) * B, bc * B:(bc + 1) * B] = np.clip(np.rint(blk / float(s)), -127, 127)
    return codes, scales


def quantize_acts(x):
    """float64 [T, K] -> (codes float64 [T, K], scales float32 [T, ceil(K/B)])."""
    x32 = np.asarray(x, dtype=np.float32)
    T, K = x32.shape
    nb = -(-K // B)
    q = np.zeros((T, K))
    s = np.zeros((T, nb), dtype=np.float32)
    for b in range(nb):
        blk = x32[:, b * B:(b + 1) * B]
        amax = np.max(np.abs(blk), axis=1)
        ok = amax >= np.float32(2.0 ** -100)
        safe = np.where(ok, amax, np.float32(1))
        s[:, b] = np.where(ok, safe / np.float32(127), np.float32(0))
        inv = (np.float32(127) / safe).astype(np.float32)
        prod = (blk * inv[:, None]).astype(np.float32)
        q[:, b * B:(b + 1) * B] = np.where(ok[:, None], np.rint(prod), 0)
    return q, s


def w8a8(x, wq):
    """x [T, K] times an int8 weight (codes, scales) transposed: [T, out]."""
    codes, ws = wq
    q, xs = quantize_acts(x)
    o, K = codes.shape
    y = np.zeros((x.shape[0], o))
    rows = np.arange(o) // B
    for b in range(-(-K // B)):
        dot = q[:, b * B:(b + 1) * B] @ codes[:, b * B:(b + 1) * B].T     # exact integers
        scale = xs[:, b].astype(np.float64)[:, None] * ws[rows, b].astype(np.float64)[None, :]
        y += scale * dot
    return y


def is_product_weight(name):
    return name.endswith((
        "q_a_proj.weight", "q_b_proj.weight", "q_proj.weight", "kv_a_proj_with_mqa.weight",
        "kv_b_proj.weight", "o_proj.weight", "gate_proj.weight", "up_proj.weight",
        "down_proj.weight"))


class Int8Products:
    """The `mm(x, name)` of ref_numpy.forward for a plan compiled with --quantize=int8:
    W8A8 for the quantized weights, float64 for the rest (router, lm_head)."""

    def __init__(self, w):
        self.w = w
        self.q = {n: quantize_weight(a) for n, a in w.items() if a.ndim == 2 and is_product_weight(n)}

    def __call__(self, x, name):
        return w8a8(x, self.q[name]) if name in self.q else x @ self.w[name].T


def main():
    ref.write_emulated_logits(HERE, lambda w: [("logits_int8_naive.npy", {"mm": Int8Products(w)})])

if __name__ == "__main__":
    main()
