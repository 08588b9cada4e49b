#!/usr/bin/env python3
"""A numpy emulation of a plan's narrow KV cache: `moec compile --kv-cache=bf16` (the
default since plan format 7) and `--kv-cache=fp8`.

The numerics (moec/cpu/kernels.h cacheStore, isa/Attention.h), written here from their
definitions on top of the plain reference ref_numpy.py: everything is the exact model,
except that each row MLA caches, the normalised latent c (kv_lora_rank values, after
kv_a_layernorm) and the roped shared key k_pe (rope values), is stored narrow: the
float32 value rounded to nearest even, to bfloat16, or to float8 e4m3fn saturating at
+-448 with no scale. Attention reads every key and value, the token's own included, from
the cache, widening them exactly; the queries and everything else stay as they were. So
in ref_numpy.forward, c and k_pe are rounded (float64 -> float32 -> bf16 or e4m3) right
after they are computed; both MLA forms read the same rounded rows (naive: kv_b_proj
applied to them; absorbed: attention over them).

moec computes c and k_pe in float32 and the emulation in float64, so a value within
float32 rounding of a rounding boundary can round the other way (one ulp of the narrow
type in one value); GoldenTest.cpp's bound allows for that.

Usage: python3 tests/golden/emulate_kv_cache.py   writes data/<variant>/logits_kv_bf16.npy
and logits_kv_fp8.npy for every variant (logits over the prompt and the reference's
greedy continuation, the rows of logits_full.npy). Needs numpy only.
"""
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


def _e4m3_values():
    """The 127 non-negative finite e4m3fn values, by code 0x00..0x7E (increasing)."""
    table = ref._fp8_e4m3_table()
    return np.array([table[b] for b in range(0x7F)], dtype=np.float64)


E4M3 = _e4m3_values()


def round_e4m3(x):
    """float64 array -> float64 array of the e4m3fn values moec stores: float32 first,
    then round to nearest even (even code on a tie), saturating at +-448."""
    f = np.asarray(x, dtype=np.float32).astype(np.float64)
    a = np.minimum(np.abs(f), E4M3[-1])
    hi = np.clip(np.searchsorted(E4M3, a, side="left"), 0, len(E4M3) - 1)
    lo = np.maximum(hi - 1, 0)
    dlo, dhi = a - E4M3[lo], E4M3[hi] - a
    pick = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    return np.sign(f) * E4M3[pick]


def main():
    ref.write_emulated_logits(HERE, lambda w: [("logits_kv_bf16.npy", {"cache": round_bf16}),
                                               ("logits_kv_fp8.npy", {"cache": round_e4m3})])

if __name__ == "__main__":
    main()
