#!/usr/bin/env python3
"""Writes the mixed Chinese/English corpus the tokenizer benchmarks encode.

Documents alternate between Chinese (Debian's fortunes-zh: the Three Hundred Tang Poems
`tang300`, Song ci `song100` and the `chinese` collection, ANSI colour codes stripped)
and English (Debian's fortunes: `fortunes`, `literature`, `science`, `wisdom`,
`computers`), until the output holds --mb megabytes of UTF-8, one document per entry,
separated by lines holding only "%" (the fortune format). Deterministic: the same
packages give the same file.

  apt-get install fortunes-zh fortunes
  python3 bench/tokenizer_corpus.py -o /tmp/tokenizer-corpus.txt
"""
import argparse
import os
import re
import sys

FORTUNES = "/usr/share/games/fortunes"
ZH = ["tang300", "song100", "chinese"]
EN = ["fortunes", "literature", "science", "wisdom", "computers"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def entries(names):
    out = []
    for name in names:
        path = os.path.join(FORTUNES, name)
        if not os.path.exists(path):
            sys.exit(f"tokenizer_corpus: {path} not found: apt-get install fortunes-zh fortunes")
        with open(path, encoding="utf-8", errors="replace") as f:
            text = ANSI.sub("", f.read())
        out += [e.strip("\n") for e in text.split("\n%\n") if e.strip()]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--mb", type=float, default=2.0)
    args = ap.parse_args()
    zh, en = entries(ZH), entries(EN)
    docs, size, i = [], 0, 0
    while size < args.mb * 1e6 and (i < len(zh) or i < len(en)):
        for pool in (zh, en):
            if i < len(pool):
                docs.append(pool[i])
                size += len(pool[i].encode("utf-8")) + 1
        i += 1
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n%\n".join(docs) + "\n")
    os.replace(tmp, args.output)
    zh_bytes = sum(len(d.encode()) for d in docs[0::2])
    print(f"{args.output}: {len(docs)} documents, {size / 1e6:.2f} MB "
          f"({zh_bytes / 1e6:.2f} MB from the Chinese collections)")


if __name__ == "__main__":
    main()
