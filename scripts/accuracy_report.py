#!/usr/bin/env python3
"""Accuracy of moec plans on the default model's held-out poems.

Compiles the bf16 default model (models/poems-v3) and its FP8 copy (models/poems-v3-fp8,
DeepSeek-V3's format) with `moec compile`, runs every held-out entry through each plan with
`moec-run --dump-logits` (teacher forcing: the logits at every position of the entry), and
reports, against the bf16 plan:
  - perplexity of each plan on the held-out tokens (next-token cross-entropy, exp),
  - top-1 agreement: the fraction of positions whose argmax equals the bf16 plan's,
  - logit cosine: mean over positions of cos(logits_plan, logits_bf16),
  - top-1 agreement on the positions where the bf16 plan's first choice leads its second by
    at least CLEAR_MARGIN logits (clear decisions, not near-ties).

The held-out entries are the ones scripts/train_default_model.py holds out (5% of the corpus,
by a hash of their text), tokenized with the model's own tokenizer.json.

Needs numpy and tokenizers (PyPI) and the fortunes-zh package, plus a build of moec.
Usage: python3 scripts/accuracy_report.py [--bin build/bin] [--plan NAME=CHECKPOINT ...] [-o report.json]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
# A reference top-1 this many logits above its top-2 is a clear decision (reported
# separately from near-ties, which any perturbation reorders).
CLEAR_MARGIN = 0.5
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from poems_corpus import load_corpus, split_heldout  # noqa: E402


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--plan", action="append", default=None,
                    help="NAME=CHECKPOINT_DIR [extra moec compile flags after a comma], "
                         "compared with the first one (default: bf16 and fp8 of models/poems-v3)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("-o", "--output", default=None, help="write the report as JSON here")
    args = ap.parse_args()
    plans = args.plan or [f"bf16={ROOT}/models/poems-v3", f"fp8={ROOT}/models/poems-v3-fp8"]

    tok = Tokenizer.from_file(os.path.join(ROOT, "models", "poems-v3", "tokenizer.json"))
    _, held = split_heldout(load_corpus())
    entries = [[0] + tok.encode(e).ids + [1] for _, e in held]
    entries = [ids[:args.max_tokens] for ids in entries]
    n_tokens = sum(len(ids) - 1 for ids in entries)

    with tempfile.TemporaryDirectory() as tmp:
        compiled = []
        for spec in plans:
            name, rest = spec.split("=", 1)
            ckpt, *flags = rest.split(",")
            path = os.path.join(tmp, name + ".plan")
            subprocess.run([os.path.join(args.bin, "moec"), "compile", ckpt, "-o", path,
                            "--max-tokens", str(args.max_tokens), "--quiet"] + flags, check=True)
            compiled.append((name, path))
        stats = {name: {"nll": 0.0, "agree": 0, "cos": 0.0, "clear": 0, "clear_agree": 0}
                 for name, _ in compiled}
        for k, ids in enumerate(entries):
            rows = {}
            for name, path in compiled:
                out = os.path.join(tmp, "logits.npy")
                subprocess.run([os.path.join(args.bin, "moec-run"), path, "--tokens",
                                ",".join(map(str, ids[:-1])), "--dump-logits", out],
                               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                rows[name] = np.load(out).astype(np.float64)
            ref = rows[compiled[0][0]]
            target = np.array(ids[1:])
            for name, logits in rows.items():
                s = stats[name]
                s["nll"] -= float(log_softmax(logits)[np.arange(len(target)), target].sum())
                same = logits.argmax(-1) == ref.argmax(-1)
                s["agree"] += int(same.sum())
                # Positions where the reference's first choice leads its second by at
                # least CLEAR_MARGIN logits: a clear decision, not a near-tie.
                top2 = np.sort(ref, axis=-1)[:, -2:]
                clear = (top2[:, 1] - top2[:, 0]) >= CLEAR_MARGIN
                s["clear"] += int(clear.sum())
                s["clear_agree"] += int((same & clear).sum())
                cos = (logits * ref).sum(-1) / (np.linalg.norm(logits, axis=-1) * np.linalg.norm(ref, axis=-1))
                s["cos"] += float(cos.sum())
            print(f"\r{k + 1}/{len(entries)} entries", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)

    base = compiled[0][0]
    report = {"entries": len(entries), "tokens": n_tokens, "reference": base, "plans": {}}
    ppl_base = math.exp(stats[base]["nll"] / n_tokens)
    print(f"held-out: {len(entries)} entries, {n_tokens} predicted tokens; reference plan: {base}\n")
    print("| plan | perplexity | vs reference | top-1 agreement | mean logit cosine | "
          f"top-1 where the reference leads by >= {CLEAR_MARGIN} |")
    print("|---|---|---|---|---|---|")
    for name, _ in compiled:
        s = stats[name]
        ppl = math.exp(s["nll"] / n_tokens)
        row = {"perplexity": ppl, "perplexity_change": ppl / ppl_base - 1,
               "top1_agreement": s["agree"] / n_tokens, "mean_cosine": s["cos"] / n_tokens,
               "clear_positions": s["clear"],
               "top1_agreement_clear": s["clear_agree"] / max(1, s["clear"])}
        report["plans"][name] = row
        print(f"| {name} | {ppl:.3f} | {100 * row['perplexity_change']:+.2f}% | "
              f"{100 * row['top1_agreement']:.2f}% | {row['mean_cosine']:.6f} | "
              f"{100 * row['top1_agreement_clear']:.2f}% of {s['clear']} |")
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
