#!/usr/bin/env python3
"""Compares two float32 .npy arrays as the GPU check does (standard library only).

usage: compare_npy.py REFERENCE.npy OTHER.npy
prints: max|other - reference| / max|reference|, then the shapes
exit 0 when the shapes agree, 2 on unreadable input.
"""
import array
import ast
import struct
import sys


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file")
    major = data[6]
    if major == 1:
        (hlen,) = struct.unpack("<H", data[8:10])
        start = 10
    else:
        (hlen,) = struct.unpack("<I", data[8:12])
        start = 12
    header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        raise ValueError(f"{path}: expected little-endian float32 in C order, got {header}")
    values = array.array("f")
    values.frombytes(data[start + hlen:])
    return tuple(header["shape"]), values


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        ref_shape, ref = read_npy(sys.argv[1])
        got_shape, got = read_npy(sys.argv[2])
    except (OSError, ValueError, KeyError, SyntaxError) as err:
        print(f"compare_npy: {err}", file=sys.stderr)
        return 2
    if ref_shape != got_shape:
        print(f"inf shapes {ref_shape} {got_shape}")
        return 0
    scale = max((abs(v) for v in ref), default=0.0) or 1.0
    worst = max((abs(a - b) for a, b in zip(ref, got)), default=0.0)
    print(f"{worst / scale:.3e} shapes {ref_shape} {got_shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
