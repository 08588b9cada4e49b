"""DeepSeek-V3's tokenizer format, for the tokenizers moec trains.

A byte-level BPE with DeepSeek-V3's pre-tokenizer and special tokens, and a chat template
in its format. Used by scripts/train_default_model.py (the default model's tokenizer)
and frontends/checkpoint/data/make_synth_tokenizer.py (the one `moec synth` writes).
Needs the PyPI package tokenizers.
"""
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

BOS, EOS, PAD = "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"
SPECIALS = [BOS, EOS, PAD, "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"]

# DeepSeek-V3's pre-tokenizer (tokenizer.json of deepseek-ai/DeepSeek-V3): digits in groups of
# 1-3, runs of CJK / kana, then a GPT-style word regex; then byte-level without its own regex.
PRE_TOKENIZER_SPLITS = [
    r"\p{N}{1,3}",
    "[一-龥\u3040-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
]


def train_tokenizer(texts, vocab_size):
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), behavior="isolated", invert=False) for p in PRE_TOKENIZER_SPLITS]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.normalizer = None
    tok.post_processor = processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def chat_template():
    """A chat template in DeepSeek-V3's format (written for this model): BOS, the system prompt,
    then <｜User｜>question<｜Assistant｜>answer<｜end▁of▁sentence｜> turns."""
    return ("{{ bos_token }}{% for m in messages %}"
            "{% if m['role'] == 'system' %}{{ m['content'] }}"
            "{% elif m['role'] == 'user' %}{{ '<｜User｜>' + m['content'] }}"
            "{% elif m['role'] == 'assistant' %}{{ '<｜Assistant｜>' + m['content'] + eos_token }}"
            "{% endif %}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<｜Assistant｜>' }}{% endif %}")


def tokenizer_config(model_max_length):
    added = {}
    for i, s in enumerate(SPECIALS):
        added[str(i)] = {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                         "single_word": False, "special": i < 3}
    return {
        "add_bos_token": False, "add_eos_token": False,
        "bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": None,
        "clean_up_tokenization_spaces": False, "legacy": True, "model_max_length": model_max_length,
        "tokenizer_class": "LlamaTokenizerFast", "added_tokens_decoder": added,
        "chat_template": chat_template(),
    }
