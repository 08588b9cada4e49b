#!/usr/bin/env python3
"""Decode tokens/s of moec-run with the CPUs idle and with every CPU taken by busy loops.

The busy-CPU benchmark of issue 13, item 9: other processes that keep every core busy
must not make decode collapse (OpenMP workers spinning at each join used to take the
time slices the working threads needed). For each load (idle, then one
`sh -c 'while :; do :; done'` per CPU this process may use) it runs moec-run with
`--threads 1` and with the default thread count, in a shuffled order each repetition so
that every configuration sees the same machine state, and prints the median decode
tokens/s. The goal: under load, the default thread count decodes at least half as fast
as `--threads 1` under the same load (`--check` makes the script exit 1 when it does
not).

A baseline (another build's bin directory, and/or extra environment such as
GOMP_SPINCOUNT=300000, libgomp's own default spin) is measured the same way, interleaved
with the build under test; each build compiles the checkpoint with its own moec.

  bench/busy_cpu.py --bin build/bin --preset tiny-v3 --new 128 --reps 15 \\
      [--checkpoint DIR] [--baseline-bin /tmp/before/build/bin] \\
      [--baseline-env GOMP_SPINCOUNT=300000]
"""
import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd, env=None, timeout=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"busy_cpu: {' '.join(cmd)} failed:\n{p.stderr}")
    return p


def decode_rate(stderr):
    m = re.search(r"decode: \d+ tokens in [\d.]+ s \(([\d.]+) tokens/s\)", stderr)
    if not m:
        sys.exit(f"busy_cpu: no decode tokens/s in moec-run's output:\n{stderr}")
    return float(m.group(1))


class BusyLoops:
    """`count` shell busy loops, started on entry and killed (by their pids) on exit."""

    def __init__(self, count):
        self.count, self.procs = count, []

    def __enter__(self):
        for _ in range(self.count):
            self.procs.append(subprocess.Popen(["sh", "-c", "while :; do :; done"]))
        time.sleep(0.5)  # let the scheduler see them as CPU hogs
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.send_signal(signal.SIGKILL)
        for p in self.procs:
            p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="bin directory of the build under test")
    ap.add_argument("--baseline-bin", help="bin directory of a baseline build")
    ap.add_argument("--baseline-env", action="append", default=[], metavar="VAR=VALUE",
                    help="environment of the baseline runs (repeatable); without "
                         "--baseline-bin the baseline is --bin with this environment")
    ap.add_argument("--plan", help="use this plan for every build instead of compiling")
    ap.add_argument("--preset", default="tiny-v3", help="moec synth preset")
    ap.add_argument("--checkpoint", help="compile this checkpoint instead of a preset")
    ap.add_argument("--prompt", type=int, default=16, help="prompt tokens")
    ap.add_argument("--new", type=int, default=128, help="generated tokens")
    ap.add_argument("--reps", type=int, default=15, help="runs of each configuration")
    ap.add_argument("--busy", type=int, default=len(os.sched_getaffinity(0)),
                    help="busy loops under load (default: one per CPU this process may use)")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 unless, under load, default threads >= 0.5 x --threads 1")
    args = ap.parse_args()

    builds = [("this build", args.bin, {})]
    if args.baseline_bin or args.baseline_env:
        extra = dict(kv.split("=", 1) for kv in args.baseline_env)
        label = "baseline" + ("".join(f" {k}={v}" for k, v in extra.items()))
        builds.append((label, args.baseline_bin or args.bin, extra))

    with tempfile.TemporaryDirectory(prefix="moec-busy-") as tmp:
        # Each build compiles the checkpoint with its own moec (plan formats may differ).
        plans = [args.plan] * len(builds)
        if not args.plan:
            ckpt = args.checkpoint
            if not ckpt:
                ckpt = os.path.join(tmp, "ckpt")
                run([os.path.join(args.bin, "moec"), "synth", "--preset", args.preset,
                     "-o", ckpt])
            compiled = {}
            for b, (_, bindir, _) in enumerate(builds):
                if bindir not in compiled:
                    compiled[bindir] = os.path.join(tmp, f"model-{len(compiled)}.plan")
                    run([os.path.join(bindir, "moec"), "compile", ckpt, "-o", compiled[bindir],
                         "--quiet"])
                plans[b] = compiled[bindir]
        tokens = ",".join(str(3 + (7 * i) % 97) for i in range(args.prompt))
        configs = [(b, t) for b in range(len(builds)) for t in (1, 0)]
        rng = random.Random(1)  # a fixed shuffled order per repetition
        results = {}
        for load in ("idle", "busy"):
            with BusyLoops(args.busy if load == "busy" else 0):
                samples = {c: [] for c in configs}
                for rep in range(args.reps):
                    order = list(configs)
                    rng.shuffle(order)
                    for build, threads in order:
                        _, bindir, extra = builds[build]
                        cmd = [os.path.join(bindir, "moec-run"), plans[build], "--tokens", tokens,
                               "--max-new-tokens", str(args.new)]
                        if threads:
                            cmd += ["--threads", str(threads)]
                        env = dict(os.environ, **extra)
                        samples[(build, threads)].append(
                            decode_rate(run(cmd, env=env, timeout=600).stderr))
                for c in configs:
                    results[(load, c)] = samples[c]

    cpus = len(os.sched_getaffinity(0))
    print(f"decode tokens/s, median of {args.reps} interleaved runs; prompt {args.prompt}, "
          f"{args.new} new tokens; {cpus} CPUs; load: {args.busy} busy loops")
    print(f"{'':40}{'idle':>10}{'busy':>10}   busy range")
    met = True
    for b, (label, _, _) in enumerate(builds):
        med = {}
        for threads in (1, 0):
            name = f"{label}, " + ("--threads 1" if threads else "default threads")
            for load in ("idle", "busy"):
                med[(load, threads)] = statistics.median(results[(load, (b, threads))])
            busy = results[("busy", (b, threads))]
            print(f"{name:40}{med[('idle', threads)]:10.1f}{med[('busy', threads)]:10.1f}"
                  f"   {min(busy):.1f}-{max(busy):.1f}")
        ratio = med[("busy", 0)] / med[("busy", 1)] if med[("busy", 1)] else 0.0
        print(f"{label}: busy, default / --threads 1 = {ratio:.2f} (goal >= 0.5)")
        if b == 0:
            met = ratio >= 0.5
    if args.check and not met:
        sys.exit("busy_cpu: goal not met")


if __name__ == "__main__":
    main()
