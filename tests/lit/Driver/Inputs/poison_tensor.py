"""Overwrites element `index` of tensor NAME in a safetensors file with a NaN (bf16,
f16 or f32), in place: a checkpoint whose weight cannot be quantized.

Usage: python3 poison_tensor.py FILE NAME INDEX
"""
import json
import struct
import sys

path, name, index = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "r+b") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    t = header[name]
    size = {"BF16": 2, "F16": 2, "F32": 4}[t["dtype"]]
    nan = {"BF16": b"\xc0\x7f", "F16": b"\x00\x7e", "F32": b"\x00\x00\xc0\x7f"}[t["dtype"]]
    f.seek(8 + n + t["data_offsets"][0] + index * size)
    f.write(nan)
