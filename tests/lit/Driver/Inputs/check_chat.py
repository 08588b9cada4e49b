"""Checks a two-turn moec-run --chat against a fresh run of the same conversation.

usage: check_chat.py MOEC_RUN PLAN LOG STDERR MAX_NEW
The chat's second reply must equal what `moec-run --prompt` generates (greedy) from the
whole conversation rendered by the default model's template (BOS, then
<｜User｜>q<｜Assistant｜>a<｜end▁of▁sentence｜> turns, then the generation prompt): the
kept KV cache gives what a fresh prefill gives. And the chat must have prefilled fewer
tokens than the two renderings hold: the second turn reused the cache.
"""
import json
import re
import subprocess
import sys

run, plan, log, stderr, max_new = sys.argv[1:6]
m = json.load(open(log, encoding="utf-8"))["messages"]
assert [x["role"] for x in m] == ["user", "assistant", "user", "assistant"], m
BOS, EOS, U, A = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"
first = BOS + U + m[0]["content"] + A
whole = BOS + U + m[0]["content"] + A + m[1]["content"] + EOS + U + m[2]["content"] + A
fresh = subprocess.run([run, plan, "--prompt", whole, "--no-bos", "--max-new-tokens", max_new],
                       capture_output=True, text=True, check=True).stdout
assert fresh.endswith("\n")
assert fresh[:-1] == m[3]["content"], (fresh, m[3]["content"])


def count(text):
    out = subprocess.run([run, plan, "--tokenize", text], capture_output=True, text=True,
                         check=True).stdout
    return len(out.split())


stats = open(stderr, encoding="utf-8").read()
prefilled = int(re.search(r"chat: 2 turn\(s\); prefill (\d+) tokens", stats).group(1))
full = count(first) + count(whole)
assert prefilled < full - count(first) + 2, (prefilled, full)
print(f"ok: second reply equals a fresh run; prefilled {prefilled} of {full} rendered tokens")
