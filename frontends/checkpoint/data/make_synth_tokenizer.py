#!/usr/bin/env python3
"""Trains the small tokenizer `moec synth` writes into every synthetic checkpoint.

A byte-level BPE in DeepSeek-V3's format (its pre-tokenizer regexes, special tokens and a
chat template of its form; scripts/deepseek_tokenizer_format.py), at most 1024 tokens so
that it fits every preset's vocabulary, trained with Hugging Face `tokenizers` on the
committed text corpus of the tokenizer tests (tests/tokenizer/corpus.json: Chinese,
English, code, numbers, emoji, mixed scripts). Deterministic for a given tokenizers
version. The build embeds synth-tokenizer.json and synth-tokenizer_config.json in
moec_checkpoint (frontends/checkpoint/CMakeLists.txt).

  /tmp/venv-tok/bin/python frontends/checkpoint/data/make_synth_tokenizer.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from deepseek_tokenizer_format import tokenizer_config, train_tokenizer  # noqa: E402

VOCAB = 1024


def main():
    with open(os.path.join(ROOT, "tests", "tokenizer", "corpus.json"), encoding="utf-8") as f:
        texts = [c["text"] for c in json.load(f) if "text" in c and c["text"]]
    tok = train_tokenizer(texts, VOCAB)
    out = os.path.join(HERE, "synth-tokenizer.json")
    tok.save(out + ".tmp")
    os.replace(out + ".tmp", out)
    config = tokenizer_config(1024)
    with open(os.path.join(HERE, "synth-tokenizer_config.json.tmp"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write("\n")
    os.replace(os.path.join(HERE, "synth-tokenizer_config.json.tmp"),
               os.path.join(HERE, "synth-tokenizer_config.json"))
    print(f"{out}: {tok.get_vocab_size()} tokens from {len(texts)} texts")


if __name__ == "__main__":
    main()
