#!/usr/bin/env python3
"""Interrupts `moec compile` while it writes, and races compiles of one destination.

  interrupt_compile.py signals CHECKPOINT PLAN
      For SIGINT, SIGTERM and SIGKILL: starts `moec compile CHECKPOINT -o PLAN`, waits
      until the compiler has an output file open in PLAN's directory (so the signal
      lands in the middle of writing), sends the signal, and checks the exit.
  interrupt_compile.py race CKPT_A CKPT_B PLAN PAIRS
      Compiles CKPT_A and CKPT_B alone (reference bytes), then PAIRS times both at once
      to PLAN: both must succeed, and PLAN must be byte-identical to one of the two.

Prints one line per check and exits non-zero on the first failure.
"""
import os
import signal
import subprocess
import sys
import time


def open_outputs(pid, directory):
    """Files the process has open for writing in `directory` (O_TMPFILE ones show as
    '<dir>/#<inode> (deleted)')."""
    found = []
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(directory + "/"):
                found.append(target)
    except OSError:
        pass
    return found


def signals(ckpt, plan):
    directory = os.path.dirname(os.path.abspath(plan))
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        # lit's workers ignore SIGINT, and children inherit that: restore the default,
        # as in a terminal.
        proc = subprocess.Popen(["moec", "compile", ckpt, "-o", plan, "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 120
        while not open_outputs(proc.pid, directory):
            if proc.poll() is not None or time.time() > deadline:
                sys.exit(f"{sig.name}: the compile ended before it opened its output")
            time.sleep(0.002)
        proc.send_signal(sig)  # the output is open: the compile is writing it
        rc = proc.wait()
        if rc != -sig:
            sys.exit(f"{sig.name}: exit status {rc}, expected death by {sig.name}")
        print(f"{sig.name}: killed while writing; left: {sorted(os.listdir(directory))}")


def race(a, b, plan, pairs):
    ref = {}
    for name, ckpt in (("A", a), ("B", b)):
        alone = plan + f".ref-{name}"
        subprocess.run(["moec", "compile", ckpt, "-o", alone, "--quiet"], check=True)
        with open(alone, "rb") as f:
            ref[name] = f.read()
        os.remove(alone)
    got = {"A": 0, "B": 0}
    for i in range(pairs):
        procs = [subprocess.Popen(["moec", "compile", c, "-o", plan, "--quiet"],
                                  stderr=subprocess.PIPE) for c in (a, b)]
        for p in procs:
            _, err = p.communicate()
            if p.returncode != 0:
                sys.exit(f"pair {i}: a compile failed: {err.decode().strip()}")
        with open(plan, "rb") as f:
            data = f.read()
        which = [n for n, r in ref.items() if r == data]
        if not which:
            sys.exit(f"pair {i}: the plan is neither checkpoint's plan")
        got[which[0]] += 1
    print(f"race: {pairs} pairs, every compile succeeded, the plan was always complete "
          f"(A last {got['A']} times, B last {got['B']} times)")


if __name__ == "__main__":
    if sys.argv[1] == "signals":
        signals(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "race":
        race(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit(__doc__)
