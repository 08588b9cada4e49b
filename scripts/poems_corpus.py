"""The default model's corpus: classical Chinese poetry from Debian's fortunes-zh package.

Shared by scripts/train_default_model.py (which trains on it) and scripts/accuracy_report.py
(which measures plans on its held-out entries); needs only the standard library, so the
report runs without torch.
"""
import hashlib
import os
import re
import sys

FORTUNES = "/usr/share/games/fortunes"
SOURCES = ("tang300", "song100", "chinese")


def is_cjk_text(ch):
    return ("\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"
            or ch in "—…·“”‘’《》")


def load_corpus():
    """Entries of the fortune files, ANSI colour codes and '%' separators stripped. The poem
    collections are kept whole; from the mixed `chinese` collection only entries written in
    Chinese characters (>= 90% CJK, no Latin letters) are kept: classical poems, the Analects,
    proverbs. That drops its Debian manual excerpts and code."""
    docs = []
    for name in SOURCES:
        path = os.path.join(FORTUNES, name)
        if not os.path.exists(path):
            sys.exit(f"train_default_model: {path} not found: apt-get install fortunes-zh")
        text = open(path, encoding="utf-8").read()
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
        for entry in re.split(r"^%$", text, flags=re.M):
            lines = [ln.rstrip() for ln in entry.strip("\n").split("\n")]
            lines = [ln.strip() if ln.lstrip().startswith("--") else ln for ln in lines]
            entry = "\n".join(lines).strip()
            if not entry:
                continue
            chars = [c for c in entry if not c.isspace()]
            if name == "chinese":
                if re.search("[A-Za-z]", entry):
                    continue
                if sum(is_cjk_text(c) for c in chars) < 0.9 * len(chars):
                    continue
            docs.append((name, entry))
    seen, out = set(), []
    for name, e in docs:
        if e not in seen:
            seen.add(e)
            out.append((name, e))
    return out


def split_heldout(docs):
    """5% of the entries, chosen by a hash of their text (stable across runs and machines)."""
    train, held = [], []
    for name, e in docs:
        h = int(hashlib.sha256(e.encode()).hexdigest()[:8], 16)
        (held if h % 20 == 0 else train).append((name, e))
    return train, held
