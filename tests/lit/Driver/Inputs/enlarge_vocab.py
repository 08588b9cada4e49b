"""Rewrites a checkpoint with a huge vocabulary whose embedding and lm_head are
sparse (all-zero holes in the file), so a multi-GiB checkpoint costs no disk.

usage: enlarge_vocab.py SRC_DIR DST_DIR VOCAB
"""
import json
import os
import struct
import sys

src, dst, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(dst, exist_ok=True)
with open(os.path.join(src, "model.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    base = 8 + n
    tensors = sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                     key=lambda kv: kv[1]["data_offsets"][0])
    out, chunks, offset = {}, [], 0
    for name, info in tensors:
        begin, end = info["data_offsets"]
        shape = list(info["shape"])
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            shape[0] = vocab
            size, data = vocab * shape[1] * 2, None
        else:
            f.seek(base + begin)
            data, size = f.read(end - begin), end - begin
        out[name] = {"dtype": info["dtype"], "shape": shape,
                     "data_offsets": [offset, offset + size]}
        chunks.append((data, size))
        offset += size
out["__metadata__"] = {"format": "pt"}
text = json.dumps(out).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open(os.path.join(dst, "model.safetensors"), "wb") as o:
    o.write(struct.pack("<Q", len(text)))
    o.write(text)
    for data, size in chunks:
        if data is None:
            o.seek(size, 1)
        else:
            o.write(data)
    o.truncate()
with open(os.path.join(src, "config.json")) as f:
    config = json.load(f)
config["vocab_size"] = vocab
with open(os.path.join(dst, "config.json"), "w") as f:
    json.dump(config, f)
