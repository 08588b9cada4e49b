#!/usr/bin/env python3
"""A numpy emulation of `moec compile --activations=bf16` (with --kv-cache=f32) and
naive MLA.

The numerics (moec/cpu/kernels.h Weight::bf16Activations, plan Step.activations),
written here from their definitions on top of the plain reference ref_numpy.py: every
product with a weight that a plan step multiplies by (the MLA projections, kv_b_proj
applied to the latent rows, o_proj, the dense, shared and routed experts' gate/up/down,
and lm_head; not the router's gate) rounds its input activations to bfloat16 first:
each value taken as float32, then rounded to nearest even on its top 16 bits. The
rounded values are multiplied by the weights with sums in float32 in moec (float64
here). Everything else (norms, rope, attention scores and softmax, the router, SiLU)
is the exact model.

moec computes the activations in float32 and the emulation in float64, so a value
within float32 rounding of a bf16 rounding boundary can round the other way (one bf16
ulp in one input); GoldenTest.cpp's bound allows for that.

Usage: python3 tests/golden/emulate_bf16_acts.py   writes data/<variant>/logits_bf16_acts.npy
for every variant (logits over the prompt and the reference's greedy continuation, the
rows of logits_full.npy). Needs numpy only.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ref_numpy as ref  # noqa: E402
from emulate_kv_cache import round_bf16  # noqa: E402


class Bf16ActProducts:
    """The `mm(x, name)` of ref_numpy.forward for a plan compiled with
    --activations=bf16: x rounded to bf16, then the float64 product."""

    def __init__(self, w):
        self.w = w

    def __call__(self, x, name):
        return round_bf16(x) @ self.w[name].T


def main():
    ref.write_emulated_logits(HERE, lambda w: [("logits_bf16_acts.npy", {"mm": Bf16ActProducts(w)})])

if __name__ == "__main__":
    main()
