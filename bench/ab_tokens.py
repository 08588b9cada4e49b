#!/usr/bin/env python3
"""Side-by-side tokens/s of two moec builds on the same checkpoint (A/B).

Each build compiles the checkpoint with its own `moec`, then the two `moec-run`
binaries run alternately (A, B, A, B, ...) so both see the same machine state; the
script prints the median prefill and decode tokens/s of each and the ratio B/A.
Bandwidth and neighbours drift minute to minute on the development VMs: only a
ratio measured this way means something.

  bench/ab_tokens.py --a /work/before/build/bin --b build/bin \\
      --preset tiny-v3 --prompt 64 --new 64 --reps 15 [--threads 2]

The same build with two compile options (a pass's effect), e.g. a fusion:

  bench/ab_tokens.py --a build/bin --b build/bin --a-flags=--no-fuse-residual-norm
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"ab_tokens: {' '.join(cmd)} failed:\n{p.stderr}")
    return p


def rates(stderr):
    pre = re.search(r"prefill: \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\)", stderr)
    dec = re.search(r"decode: \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\)", stderr)
    if not pre or not dec:
        sys.exit(f"ab_tokens: no tokens/s in moec-run's output:\n{stderr}")
    return float(pre.group(1)), float(dec.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="bin directory of build A (the baseline)")
    ap.add_argument("--b", required=True, help="bin directory of build B")
    ap.add_argument("--preset", default="tiny-v3", help="moec synth preset")
    ap.add_argument("--checkpoint", help="use this checkpoint instead of a preset")
    ap.add_argument("--prompt", type=int, default=64, help="prompt tokens")
    ap.add_argument("--new", type=int, default=64, help="generated tokens")
    ap.add_argument("--reps", type=int, default=15, help="runs of each build")
    ap.add_argument("--threads", type=int, default=0, help="moec-run --threads (0: all)")
    ap.add_argument("--a-flags", default="", help="extra moec compile flags for A (space-separated)")
    ap.add_argument("--b-flags", default="", help="extra moec compile flags for B (space-separated)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="moec-ab-") as tmp:
        ckpt = args.checkpoint
        if not ckpt:
            ckpt = os.path.join(tmp, "ckpt")
            run([os.path.join(args.a, "moec"), "synth", "--preset", args.preset, "-o", ckpt])
        plans = {}
        for name, bindir, flags in (("A", args.a, args.a_flags), ("B", args.b, args.b_flags)):
            plans[name] = os.path.join(tmp, f"{name}.plan")
            run([os.path.join(bindir, "moec"), "compile", ckpt, "-o", plans[name], "--quiet"]
                + flags.split())
        tokens = ",".join(str(3 + (7 * i) % 97) for i in range(args.prompt))
        results = {"A": ([], []), "B": ([], [])}
        for rep in range(args.reps):
            order = ("A", "B") if rep % 2 == 0 else ("B", "A")
            for name in order:
                bindir = args.a if name == "A" else args.b
                cmd = [os.path.join(bindir, "moec-run"), plans[name], "--tokens", tokens,
                       "--max-new-tokens", str(args.new)]
                if args.threads:
                    cmd += ["--threads", str(args.threads)]
                pre, dec = rates(run(cmd).stderr)
                results[name][0].append(pre)
                results[name][1].append(dec)
        print(f"{args.reps} alternating runs each, prompt {args.prompt}, {args.new} new tokens")
        print(f"{'':8}{'prefill tok/s':>16}{'decode tok/s':>16}")
        med = {}
        for name in ("A", "B"):
            med[name] = [statistics.median(v) for v in results[name]]
            spread = [f"{min(v):.0f}-{max(v):.0f}" for v in results[name]]
            print(f"{name:8}{med[name][0]:16.1f}{med[name][1]:16.1f}   "
                  f"(ranges {spread[0]}, {spread[1]})")
        print(f"{'B / A':8}{med['B'][0] / med['A'][0]:16.3f}{med['B'][1] / med['A'][1]:16.3f}")


if __name__ == "__main__":
    main()
