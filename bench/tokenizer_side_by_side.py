#!/usr/bin/env python3
"""moec's tokenizer against Hugging Face `tokenizers`, side by side, one core each.

Both encode the same documents (bench/tokenizer_corpus.py) with DeepSeek-V3's
tokenizer.json; the runs alternate (moec, HF, moec, HF, ...) so that both see the
same minute of the machine. moec: moec_tokenizer_bench's BM_TokenizerEncode/deepseek_v3
row (one thread; documents one at a time). HF: `tokenizers` in this process with
RAYON_NUM_THREADS=1, two ways, both warm (one untimed pass first, as moec's benchmark
iterations are): `encode_batch` over all documents (the Rust loop, no Python per
document) and `encode` per document. Every document's ids are checked equal first.

  python3 bench/tokenizer_side_by_side.py --bench build/bin/moec_tokenizer_bench \
      --tokenizer build/tests/tokenizer/deepseek-v3/tokenizer.json \
      --corpus /tmp/tokenizer-corpus.txt -r 5
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tokenizers  # noqa: E402


def documents(path):
    docs, cur = [], []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line (as std::getline reads it)
    for line in lines:
        if line == "%":
            if cur:
                docs.append("".join(cur))
            cur = []
        else:
            cur.append(line + "\n")
    if cur:
        docs.append("".join(cur))
    return docs


def moec_run(bench, corpus, dump=None):
    env = dict(os.environ, MOEC_BENCH_CORPUS=corpus)
    if dump:
        env["MOEC_BENCH_DUMP_IDS"] = dump
    out = subprocess.run(["taskset", "-c", "0", bench,
                          "--benchmark_filter=BM_TokenizerEncode/deepseek_v3",
                          "--benchmark_format=json"],
                         env=env, check=True, capture_output=True, text=True).stdout
    row = json.loads(out)["benchmarks"][0]
    return row["bytes_per_second"] / 1e6, int(row["tokens"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("-r", type=int, default=5)
    args = ap.parse_args()
    os.sched_setaffinity(0, {0})
    docs = documents(args.corpus)
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    tok = tokenizers.Tokenizer.from_file(args.tokenizer)
    hf_ids = [e.ids for e in tok.encode_batch(docs, add_special_tokens=False)]
    hf_tokens = sum(len(i) for i in hf_ids)
    # Every document's ids equal, before any timing.
    dump = args.corpus + ".moec-ids"
    moec_run(args.bench, args.corpus, dump)
    with open(dump) as f:
        moec_ids = [[int(x) for x in line.split()] for line in f.read().split("\n")[:-1]]
    os.remove(dump)
    differ = [i for i, (a, b) in enumerate(zip(moec_ids, hf_ids)) if a != b]
    if len(moec_ids) != len(hf_ids) or differ:
        sys.exit(f"ids differ: {len(moec_ids)} vs {len(hf_ids)} documents; first differing "
                 f"documents {differ[:5]}")
    moec, hf_batch, hf_loop = [], [], []
    moec_tokens = None
    for _ in range(args.r):
        mbs, moec_tokens = moec_run(args.bench, args.corpus)
        moec.append(mbs)
        t = time.perf_counter()
        tok.encode_batch(docs, add_special_tokens=False)
        hf_batch.append(nbytes / (time.perf_counter() - t) / 1e6)
        t = time.perf_counter()
        for d in docs:
            tok.encode(d, add_special_tokens=False)
        hf_loop.append(nbytes / (time.perf_counter() - t) / 1e6)
    if moec_tokens != hf_tokens:
        sys.exit(f"token counts differ: moec {moec_tokens}, HF {hf_tokens}")
    m, b, l = (statistics.median(x) for x in (moec, hf_batch, hf_loop))
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), "?")
    print(f"| corpus | {len(docs)} documents, {nbytes / 1e6:.2f} MB, {hf_tokens} tokens (every document's ids equal) |")
    print("|---|---|")
    print(f"| moec (1 thread) | {m:.1f} MB/s (range {min(moec):.1f}-{max(moec):.1f}) |")
    print(f"| HF tokenizers {tokenizers.__version__} encode_batch, 1 thread | {b:.1f} MB/s "
          f"(range {min(hf_batch):.1f}-{max(hf_batch):.1f}) |")
    print(f"| HF tokenizers encode per document | {l:.1f} MB/s "
          f"(range {min(hf_loop):.1f}-{max(hf_loop):.1f}) |")
    print(f"| moec / HF (best of the two) | {m / max(b, l):.2f}x |")
    print(f"\n{args.r} alternating runs, medians; cpu: {cpu}")


if __name__ == "__main__":
    main()
