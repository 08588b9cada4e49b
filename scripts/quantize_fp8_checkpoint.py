#!/usr/bin/env python3
"""Quantize a Hugging Face DeepSeek checkpoint to DeepSeek-V3's FP8 format, in numpy.

The reference for `moec compile --quantize=fp8` (issue 9): the same recipe written
independently, so a test can check that moec's quantized plan equals the plan of the
checkpoint this script writes, byte for byte. The recipe (shared/spec/deepseek-semantics.md
section 3), per 128x128 block of a weight (partial at the edges):

    amax = max|w| over the block (float32)
    s    = float32(float64(max(amax, float32(1e-12))) / 448.0)
           (--scale-fmt ue8m0: s rounded up to a power of two)
    code = e4m3fn(w / s), the quotient in float64, rounded to nearest (ties to the
           even code), saturating at +-448, the sign kept

and `X.weight_scale_inv = s`. Quantized: every 2-D weight of the decoder layers that a
matrix product reads, which is what DeepSeek ships in FP8; kept as they are: embed_tokens,
lm_head, norms, the router (mlp.gate.weight) and its correction bias. FP8 tensors pass
through unchanged, so quantizing twice changes nothing.

Needs numpy only. Writes SRC's shards under the same names (and the index, with the
scales added), config.json with a quantization_config, and copies every other file; the
output directory appears whole or not at all.

Usage: python3 scripts/quantize_fp8_checkpoint.py SRC_DIR DST_DIR [--scale-fmt float|ue8m0]
"""
import argparse
import json
import os
import shutil
import struct
import sys
import tempfile

import numpy as np

BLOCK = 128
DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16, "F8_E4M3": np.uint8,
          "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """Returns (metadata, [(name, dtype string, shape, raw bytes)]) in file order."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", None)
    base = 8 + n
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return meta, [(k, v["dtype"], v["shape"], blob[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
                  for k, v in items]


def write_safetensors(path, tensors, meta):
    """tensors: [(name, dtype string, shape, raw bytes)], written in this order."""
    header, offset = {}, 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)


def as_float32(dtype, raw, shape):
    a = np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape)
    if dtype == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


def e4m3_magnitudes():
    """The 127 finite non-negative e4m3fn values (codes 0x00..0x7E), ascending."""
    codes = np.arange(0x7F)
    exp, man = codes >> 3, codes & 7
    return np.where(exp == 0, man / 8.0 * 2.0 ** -6, (1 + man / 8.0) * 2.0 ** (exp - 7))


def e4m3_encode(q):
    """float64 quotients -> e4m3fn codes: nearest, ties to the even code, saturating at 448."""
    vals = e4m3_magnitudes()
    a = np.minimum(np.abs(q), 448.0)
    hi = np.clip(np.searchsorted(vals, a, side="left"), 1, len(vals) - 1)
    lo = hi - 1
    dlo, dhi = a - vals[lo], vals[hi] - a
    pick_hi = (dhi < dlo) | ((dhi == dlo) & (hi % 2 == 0))
    idx = np.where(a == vals[hi], hi, np.where(pick_hi, hi, lo))
    idx = np.where(a == 0, 0, idx)
    return (idx.astype(np.uint8) | np.where(np.signbit(q), 0x80, 0).astype(np.uint8)).astype(np.uint8)


def block_scale(amax, scale_fmt):
    s = np.float32(float(max(np.float32(amax), np.float32(1e-12))) / 448.0)
    if scale_fmt == "ue8m0":
        s = np.float32(2.0 ** np.ceil(np.log2(np.float64(s))))
    return s


def quantize(w, scale_fmt="float"):
    """w: float32 [out, in] -> (uint8 codes [out, in], float32 scales [ceil(out/128), ceil(in/128)])."""
    if not np.all(np.isfinite(w)):
        raise ValueError("a value is not finite (NaN or infinity)")
    rows, cols = w.shape
    gr, gc = -(-rows // BLOCK), -(-cols // BLOCK)
    codes = np.zeros((rows, cols), dtype=np.uint8)
    scales = np.zeros((gr, gc), dtype=np.float32)
    for br in range(gr):
        for bc in range(gc):
            blk = w[br * BLOCK:(br + 1) * BLOCK, bc * BLOCK:(bc + 1) * BLOCK]
            s = block_scale(np.abs(blk).max(), scale_fmt)
            scales[br, bc] = s
            codes[br * BLOCK:(br + 1) * BLOCK, bc * BLOCK:(bc + 1) * BLOCK] = \
                e4m3_encode(blk.astype(np.float64) / np.float64(s))
    return codes, scales


def quantized_in_fp8(name, dtype, shape):
    """The tensors DeepSeek-V3 ships in FP8: 2-D weights of the decoder layers that a
    matrix product reads (not norms, the router, embeddings or lm_head)."""
    return (dtype in ("BF16", "F16", "F32") and len(shape) == 2 and name.startswith("model.layers.")
            and name.endswith(".weight") and ".mlp.gate." not in name and "norm" not in name
            and "embed_tokens" not in name and "shared_head" not in name)


def quantize_tensors(tensors, scale_fmt="float"):
    out = []
    for name, dtype, shape, raw in tensors:
        if quantized_in_fp8(name, dtype, shape):
            try:
                codes, scales = quantize(as_float32(dtype, raw, shape), scale_fmt)
            except ValueError as e:
                raise SystemExit(f"{name}: {e}; it cannot be quantized")
            out.append((name, "F8_E4M3", shape, codes.tobytes()))
            out.append((name + "_scale_inv", "F32", list(scales.shape), scales.tobytes()))
        else:
            out.append((name, dtype, shape, raw))
    return out


def quantize_checkpoint(src, dst, scale_fmt="float", other_files=None):
    """Writes the FP8 copy of checkpoint directory `src` to `dst` (replaced whole). Files
    that are not weights or config.json are copied: all of them, or those named in
    `other_files`."""
    src, dst = os.path.abspath(src), os.path.abspath(dst)
    config_path = os.path.join(src, "config.json")
    if not os.path.isfile(config_path):
        raise SystemExit(f"{config_path}: missing (not a Hugging Face checkpoint directory)")
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    stage = tempfile.mkdtemp(prefix=os.path.basename(dst) + ".tmp-", dir=os.path.dirname(dst))
    try:
        index = None
        for f in sorted(os.listdir(src)):
            p = os.path.join(src, f)
            if f.endswith(".safetensors"):
                meta, tensors = read_safetensors(p)
                write_safetensors(os.path.join(stage, f), quantize_tensors(tensors, scale_fmt), meta)
            elif f == "model.safetensors.index.json":
                index = json.load(open(p))
            elif f == "config.json":
                cfg = json.load(open(p))
                q = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                     "weight_block_size": [BLOCK, BLOCK]}
                if scale_fmt == "ue8m0":
                    q["scale_fmt"] = "ue8m0"
                cfg["quantization_config"] = q
                with open(os.path.join(stage, f), "w", encoding="utf-8") as out:
                    json.dump(cfg, out, indent=2, ensure_ascii=False)
                    out.write("\n")
            elif os.path.isfile(p) and (other_files is None or f in other_files):
                shutil.copy(p, os.path.join(stage, f))
        if index is not None:
            wm = index["weight_map"]
            for f in sorted(os.listdir(stage)):
                if f.endswith(".safetensors"):
                    for name, _, _, _ in read_safetensors(os.path.join(stage, f))[1]:
                        wm[name] = f
            with open(os.path.join(stage, "model.safetensors.index.json"), "w") as out:
                json.dump(index, out, indent=2)
                out.write("\n")
        os.chmod(stage, 0o755)  # mkdtemp made it 0700
        for f in os.listdir(stage):
            os.chmod(os.path.join(stage, f), 0o644)
        old = dst + ".old-" + str(os.getpid())
        if os.path.exists(dst):
            os.rename(dst, old)
        os.rename(stage, dst)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="Hugging Face checkpoint directory (bf16, f16 or f32)")
    ap.add_argument("dst", help="output directory (replaced)")
    ap.add_argument("--scale-fmt", choices=("float", "ue8m0"), default="float")
    args = ap.parse_args()
    quantize_checkpoint(args.src, args.dst, args.scale_fmt)
    print(f"wrote {os.path.abspath(args.dst)}")


if __name__ == "__main__":
    main()
