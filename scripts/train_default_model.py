#!/usr/bin/env python3
"""Train moec's default model: a small DeepSeek-V3-architecture model that writes Chinese verse.

What it makes (see scripts/train_default_model.md for the sources, their licences and the
report):
  models/poems-v3/       Hugging Face checkpoint: config.json, model.safetensors (bf16, the
                         correction bias in fp32), tokenizer.json, tokenizer_config.json,
                         generation_config.json, train.log, loss.svg, report.json
  models/poems-v3-fp8/   the same weights in DeepSeek-V3's FP8 format (e4m3 codes with 128x128
                         block scales, made with the recipe of spec section 3)

The architecture is DeepSeek-V3's, exactly: MLA with a q LoRA, DeepSeekMoE with a shared expert
and routed experts, a sigmoid router with the noaux_tc correction bias and expert groups, a
first dense layer, YaRN rope. It is trained with transformers' DeepseekV3ForCausalLM on the CPU.
The correction bias is trained as DeepSeek-V3 trains it (auxiliary-loss-free balancing): after
every step, each MoE layer's bias moves by +gamma for experts that got fewer tokens than the
mean and by -gamma for those that got more.

Deterministic: every random draw is seeded, the thread count is fixed (--threads), and torch runs
with deterministic algorithms. Same machine + same seed + same package versions gives the same
weights bit for bit. Across CPUs (AVX2 vs AVX-512) torch's kernels may sum in another order; see
scripts/train_default_model.md for what was measured.

Needs (PyPI): torch, transformers, tokenizers, safetensors, numpy. The corpus comes from Debian's
fortunes-zh package (apt-get install fortunes-zh).

Usage:  python3 scripts/train_default_model.py [--steps N] [--out models] [--threads 2]
"""
import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer

from deepseek_tokenizer_format import SPECIALS, tokenizer_config, train_tokenizer
from quantize_fp8_checkpoint import as_float32, quantize_checkpoint, read_safetensors
from poems_corpus import FORTUNES, SOURCES, is_cjk_text, load_corpus, split_heldout  # noqa: F401

SEED = 20261201
SEQ_LEN = 256
BATCH = 16
VOCAB = 4096
# Held-out prompts for the samples: first lines of Tang poems and a Song ci.
SAMPLE_PROMPTS = ["床前明月光，", "春眠不觉晓，", "白日依山尽，", "《春望》\n作者：杜甫\n", "明月几时有？"]
BIAS_GAMMA = 1e-3  # DeepSeek-V3's bias update speed for most of its training

# DeepSeek-V3's pre-tokenizer (tokenizer.json of deepseek-ai/DeepSeek-V3): digits in groups of
# 1-3, runs of CJK / kana, then a GPT-style word regex; then------------------------ corpus


# ------------------------------------------------------------------ tokenizer


# ------------------------------------------------------------------ model


def model_config(vocab):
    return {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "vocab_size": vocab,
        "hidden_size": 256,
        "intermediate_size": 768,
        "moe_intermediate_size": 128,
        "num_hidden_layers": 4,
        "num_nextn_predict_layers": 0,
        "first_k_dense_replace": 1,
        "moe_layer_freq": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "n_routed_experts": 16,
        "n_shared_experts": 1,
        "num_experts_per_tok": 4,
        "n_group": 4,
        "topk_group": 2,
        "scoring_func": "sigmoid",
        "topk_method": "noaux_tc",
        "routed_scaling_factor": 2.5,
        "norm_topk_prob": True,
        "seq_aux": True,
        "ep_size": 1,
        "q_lora_rank": 128,
        "kv_lora_rank": 64,
        "qk_nope_head_dim": 32,
        "qk_rope_head_dim": 16,
        "v_head_dim": 32,
        "hidden_act": "silu",
        "max_position_embeddings": 1024,
        "rope_theta": 10000.0,
        # Trained at 256 positions with YaRN x4 (DeepSeek-V3 uses x40 over 4096): the long
        # wavelengths are stretched, so 1024 positions stay in range.
        "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": SEQ_LEN,
                         "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
        "rms_norm_eps": 1e-6,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
        "bos_token_id": 0,
        "eos_token_id": 1,
        "use_cache": True,
        "torch_dtype": "bfloat16",
    }


def build_model(cfg):
    kw = {k: v for k, v in cfg.items() if k not in ("architectures", "quantization_config", "torch_dtype")}
    hcfg = transformers.DeepseekV3Config(**kw)
    hcfg._attn_implementation = "eager"
    hcfg._experts_implementation = "eager"
    return transformers.DeepseekV3ForCausalLM(hcfg).float()


def hf_state_to_checkpoint(model, cfg):
    """transformers keeps the routed experts fused (gate_up_proj [E, 2I, D], down_proj [E, D, I]);
    a DeepSeek checkpoint stores them one by one under DeepSeek's names (spec section 2)."""
    out = {}
    E, I = cfg["n_routed_experts"], cfg["moe_intermediate_size"]
    for name, t in model.state_dict().items():
        t = t.detach().float()
        if name.endswith("mlp.experts.gate_up_proj"):
            p = name[: -len("gate_up_proj")]
            for e in range(E):
                out[f"{p}{e}.gate_proj.weight"] = t[e, :I].clone()
                out[f"{p}{e}.up_proj.weight"] = t[e, I:].clone()
        elif name.endswith("mlp.experts.down_proj"):
            p = name[: -len("down_proj")]
            for e in range(E):
                out[f"{p}{e}.down_proj.weight"] = t[e].clone()
        else:
            out[name] = t.clone()
    return out


def checkpoint_to_hf_state(tensors, cfg):
    sd = {k: v.float() for k, v in tensors.items() if ".mlp.experts." not in k}
    E = cfg["n_routed_experts"]
    for l in range(cfg["first_k_dense_replace"], cfg["num_hidden_layers"]):
        p = f"model.layers.{l}.mlp.experts."
        sd[p + "gate_up_proj"] = torch.stack([torch.cat([tensors[f"{p}{e}.gate_proj.weight"].float(),
                                                         tensors[f"{p}{e}.up_proj.weight"].float()], 0)
                                              for e in range(E)])
        sd[p + "down_proj"] = torch.stack([tensors[f"{p}{e}.down_proj.weight"].float() for e in range(E)])
    return sd


# ------------------------------------------------------------------ FP8 (spec section 3)


def write_fp8_copy(out, model, cfg, held_stream, held_bf16, report, fh):
    """models/poems-v3-fp8 from models/poems-v3 by scripts/quantize_fp8_checkpoint.py (the
    reference `moec compile --quantize=fp8` is tested against), and its held-out perplexity
    with the weights dequantised (fp32 activations)."""
    quantize_checkpoint(os.path.join(out, "poems-v3"), os.path.join(out, "poems-v3-fp8"),
                        other_files=("generation_config.json", "tokenizer.json", "tokenizer_config.json"))
    _, tensors = read_safetensors(os.path.join(out, "poems-v3-fp8", "model.safetensors"))
    raw = {name: (dtype, shape, data) for name, dtype, shape, data in tensors}
    deq = {}
    for name, (dtype, shape, data) in raw.items():
        if name.endswith("_scale_inv"):
            continue
        if dtype == "F8_E4M3":
            codes = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(torch.float8_e4m3fn)
            _, sshape, sdata = raw[name + "_scale_inv"]
            s = torch.frombuffer(bytearray(sdata), dtype=torch.float32).reshape(sshape)
            full = s.repeat_interleave(128, 0).repeat_interleave(128, 1)[:shape[0], :shape[1]]
            deq[name] = codes.reshape(shape).float() * full
        else:
            deq[name] = torch.from_numpy(as_float32(dtype, data, shape).copy())
    model.load_state_dict(checkpoint_to_hf_state(deq, cfg), strict=True)
    held_fp8 = evaluate(model, held_stream)
    log(f"FP8 weights (dequantised, fp32 activations): held-out loss {held_fp8:.4f}, perplexity "
        f"{math.exp(held_fp8):.2f} ({100 * (math.exp(held_fp8) / math.exp(held_bf16) - 1):+.2f}% vs bf16)", fh)
    report["heldout_loss_fp8_weights"] = held_fp8
    report["heldout_perplexity_fp8_weights"] = math.exp(held_fp8)


# ------------------------------------------------------------------ writing


def atomic_dir(final):
    tmp = tempfile.mkdtemp(prefix=os.path.basename(final) + ".tmp-", dir=os.path.dirname(final))
    return tmp


def publish_dir(tmp, final):
    os.chmod(tmp, 0o755)  # mkdtemp made it 0700
    for f in os.listdir(tmp):
        os.chmod(os.path.join(tmp, f), 0o644)
    if os.path.isdir(final):
        old = final + ".old-" + str(os.getpid())
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old)
    else:
        os.rename(tmp, final)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def svg_loss_curve(path, train_pts, held_pts):
    """A small hand-written SVG: training loss (per step, smoothed) and held-out loss."""
    W, H, L, R, T, B = 640, 360, 60, 20, 20, 40
    xs = [p[0] for p in train_pts] + [p[0] for p in held_pts]
    ys = [p[1] for p in train_pts] + [p[1] for p in held_pts]
    x0, x1 = 0, max(xs)
    y0, y1 = 0.0, math.ceil(max(ys))
    sx = lambda x: L + (W - L - R) * (x - x0) / max(1, x1 - x0)
    sy = lambda y: T + (H - T - B) * (1 - (y - y0) / (y1 - y0))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for k in range(int(y1) + 1):
        out.append(f'<line x1="{L}" y1="{sy(k):.1f}" x2="{W - R}" y2="{sy(k):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 8}" y="{sy(k) + 4:.1f}" text-anchor="end">{k}</text>')
    for k in range(0, x1 + 1, max(1, (x1 // 5) // 100 * 100 or 1)):
        out.append(f'<text x="{sx(k):.1f}" y="{H - B + 16}" text-anchor="middle">{k}</text>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 6}" text-anchor="middle">step</text>')
    out.append(f'<text x="14" y="{(T + H - B) / 2}" transform="rotate(-90 14 {(T + H - B) / 2})" '
               'text-anchor="middle">cross-entropy (nats/token)</text>')

    def poly(pts, colour):
        d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{d}"/>'
    out.append(poly(train_pts, "#1f77b4"))
    out.append(poly(held_pts, "#d62728"))
    out.append(f'<text x="{W - R - 8}" y="{T + 16}" text-anchor="end" fill="#1f77b4">training (mean of 20 steps)</text>')
    out.append(f'<text x="{W - R - 8}" y="{T + 32}" text-anchor="end" fill="#d62728">held-out</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# ------------------------------------------------------------------ training


def pack(docs, tok, rng):
    """BOS + text + EOS per entry, entries shuffled and concatenated into one stream."""
    ids = []
    order = rng.permutation(len(docs))
    for j in order:
        ids += [0] + tok.encode(docs[j][1]).ids + [1]
    return np.array(ids, dtype=np.int64)


@torch.no_grad()
def evaluate(model, stream):
    model.eval()
    n = (len(stream) - 1) // SEQ_LEN
    total, count = 0.0, 0
    for b in range(0, n, BATCH):
        rows = [stream[k * SEQ_LEN:(k + 1) * SEQ_LEN + 1] for k in range(b, min(n, b + BATCH))]
        x = torch.from_numpy(np.stack(rows))
        logits = model(input_ids=x[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                                 reduction="sum")
        total += float(loss)
        count += x[:, 1:].numel()
    model.train()
    return total / count


@torch.no_grad()
def sample(model, tok, prompt, n, temperature, gen):
    model.eval()
    ids = [0] + tok.encode(prompt).ids
    for _ in range(n):
        logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].float()
        if temperature == 0:
            nxt = int(torch.argmax(logits))
        else:
            p = torch.softmax(logits / temperature, -1)
            nxt = int(torch.multinomial(p, 1, generator=gen))
        if nxt == 1:
            break
        ids.append(nxt)
    model.train()
    return tok.decode(ids[1:], skip_special_tokens=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=640, help="optimizer steps (default 640)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
    ap.add_argument("--threads", type=int, default=2, help="torch threads (part of the determinism)")
    ap.add_argument("--eval-every", type=int, default=80)
    ap.add_argument("--requantize", action="store_true",
                    help="only remake poems-v3-fp8 (and its report figures) from the committed poems-v3")
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    if args.requantize:
        torch.set_num_threads(args.threads)
        return requantize(out)

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)

    stage = atomic_dir(os.path.join(out, "poems-v3"))
    fh = open(os.path.join(stage, "train.log"), "w", encoding="utf-8")
    log(f"# train_default_model.py: seed {SEED}, {args.threads} threads, torch {torch.__version__}, "
        f"transformers {transformers.__version__}", fh)

    docs = load_corpus()
    train_docs, held_docs = split_heldout(docs)
    log(f"corpus: {len(docs)} entries ({sum(len(e) for _, e in docs)} characters) from "
        f"{', '.join(SOURCES)}; {len(train_docs)} for training, {len(held_docs)} held out", fh)

    tok = train_tokenizer([e for _, e in train_docs], VOCAB)
    V = tok.get_vocab_size()
    log(f"tokenizer: byte-level BPE, {V} tokens ({len(SPECIALS)} special)", fh)
    train_stream = pack(train_docs, tok, rng)
    held_stream = pack(held_docs, tok, np.random.default_rng(SEED + 1))
    log(f"tokens: {len(train_stream)} training, {len(held_stream)} held out "
        f"({sum(len(e) for _, e in train_docs) / len(train_stream):.2f} characters per token)", fh)

    cfg = model_config(V)
    model = build_model(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    E, K = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
    per_expert = 3 * cfg["hidden_size"] * cfg["moe_intermediate_size"]
    active = n_params - (cfg["num_hidden_layers"] - 1) * (E - K) * per_expert
    log(f"model: DeepseekV3ForCausalLM, {n_params / 1e6:.2f} M parameters, "
        f"{active / 1e6:.2f} M active per token", fh)

    loads = {}

    def hook(mod, _inp, outp):
        loads[id(mod)] = torch.bincount(outp[2].reshape(-1), minlength=E)
    routers = [layer.mlp.gate for layer in model.model.layers if hasattr(layer.mlp, "gate")]
    for r in routers:
        r.register_forward_hook(hook)

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    warm = 50

    def lr_at(step):
        if step < warm:
            return (step + 1) / warm
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, args.steps - warm)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)

    n_windows = (len(train_stream) - 1) // SEQ_LEN
    train_pts, held_pts, window = [], [], []
    t0 = time.time()
    held = evaluate(model, held_stream)
    held_pts.append((0, held))
    log(f"step 0: held-out loss {held:.4f} (perplexity {math.exp(held):.1f})", fh)
    epoch_order = []
    for step in range(args.steps):
        if not epoch_order:
            # a new pass over the windows, each at a random offset into the stream
            shift = int(rng.integers(0, SEQ_LEN))
            epoch_order = list(rng.permutation(n_windows - 1) * SEQ_LEN + shift)
        starts = [epoch_order.pop() for _ in range(min(BATCH, len(epoch_order)))]
        x = torch.from_numpy(np.stack([train_stream[s:s + SEQ_LEN + 1] for s in starts]))
        logits = model(input_ids=x[:, :-1], use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            for r in routers:
                c = loads[id(r)].float()
                r.e_score_correction_bias += BIAS_GAMMA * torch.sign(c.mean() - c)
        window.append(loss.item())
        if (step + 1) % 20 == 0:
            train_pts.append((step + 1, sum(window) / len(window)))
            imb = max(float(loads[id(r)].max()) / float(loads[id(r)].float().mean()) for r in routers)
            log(f"step {step + 1}: loss {train_pts[-1][1]:.4f}  lr {sched.get_last_lr()[0]:.2e}  "
                f"max expert load / mean {imb:.2f}  {time.time() - t0:.0f} s", fh)
            window = []
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            held = evaluate(model, held_stream)
            held_pts.append((step + 1, held))
            log(f"step {step + 1}: held-out loss {held:.4f} (perplexity {math.exp(held):.2f})", fh)
    train_s = time.time() - t0

    # Save bf16 (the correction bias stays fp32, as DeepSeek ships it).
    tensors = hf_state_to_checkpoint(model, cfg)
    stored = {k: (v if k.endswith("e_score_correction_bias") else v.to(torch.bfloat16)).contiguous()
              for k, v in tensors.items()}
    # The report is made with the stored (bf16-rounded) weights, the model a user gets.
    model.load_state_dict(checkpoint_to_hf_state(stored, cfg), strict=True)
    held_bf16 = evaluate(model, held_stream)
    log(f"stored bf16 weights: held-out loss {held_bf16:.4f}, perplexity {math.exp(held_bf16):.2f} "
        f"({len(held_stream)} tokens of {len(held_docs)} held-out entries)", fh)
    gen = torch.Generator().manual_seed(SEED)
    samples = []
    for p in SAMPLE_PROMPTS:
        greedy = sample(model, tok, p, 48, 0.0, gen)
        hot = sample(model, tok, p, 48, 0.8, gen)
        samples.append({"prompt": p, "greedy": greedy, "temperature_0.8": hot})
        log(f"sample {p!r}\n  greedy: {greedy!r}\n  t=0.8:  {hot!r}", fh)

    save_file(stored, os.path.join(stage, "model.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(stage, "config.json"), cfg)
    write_json(os.path.join(stage, "generation_config.json"),
               {"bos_token_id": 0, "eos_token_id": 1, "do_sample": True, "temperature": 0.8})
    tok.save(os.path.join(stage, "tokenizer.json"))
    write_json(os.path.join(stage, "tokenizer_config.json"), tokenizer_config(1024))
    svg_loss_curve(os.path.join(stage, "loss.svg"), train_pts, held_pts)
    report = {
        "seed": SEED, "threads": args.threads, "steps": args.steps, "batch": BATCH, "seq_len": SEQ_LEN,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "parameters": n_params, "active_parameters": active,
        "train_tokens": int(len(train_stream)), "heldout_tokens": int(len(held_stream)),
        "train_seconds": round(train_s, 1),
        "final_train_loss": train_pts[-1][1] if train_pts else None,
        "heldout_loss_bf16": held_bf16, "heldout_perplexity_bf16": math.exp(held_bf16),
        "loss_curve": {"train": train_pts, "heldout": held_pts},
        "samples": samples,
        "weights_sha256": hashlib.sha256(open(os.path.join(stage, "model.safetensors"), "rb").read()).hexdigest(),
    }
    write_json(os.path.join(stage, "report.json"), report)

    log(f"training took {train_s:.0f} s; wrote {out}/poems-v3", fh)
    fh.close()
    publish_dir(stage, os.path.join(out, "poems-v3"))
    # The FP8 copy, made from the published bf16 checkpoint as a user would make it.
    with open(os.path.join(out, "poems-v3", "train.log"), "a", encoding="utf-8") as fh:
        write_fp8_copy(out, model, cfg, held_stream, held_bf16, report, fh)
        log(f"wrote {out}/poems-v3-fp8", fh)
    write_json(os.path.join(out, "poems-v3", "report.json"), report)


def requantize(out):
    """Remakes models/poems-v3-fp8 and its report figures from the committed bf16 model,
    without training (the corpus split and tokenizer are the committed ones)."""
    src = os.path.join(out, "poems-v3")
    cfg = json.load(open(os.path.join(src, "config.json")))
    tok = Tokenizer.from_file(os.path.join(src, "tokenizer.json"))
    _, held_docs = split_heldout(load_corpus())
    held_stream = pack(held_docs, tok, np.random.default_rng(SEED + 1))
    report = json.load(open(os.path.join(src, "report.json")))
    model = build_model(cfg)
    _, tensors = read_safetensors(os.path.join(src, "model.safetensors"))
    state = {n: torch.from_numpy(as_float32(d, raw, shape).copy()) for n, d, shape, raw in tensors}
    model.load_state_dict(checkpoint_to_hf_state(state, cfg), strict=True)
    held_bf16 = report["heldout_loss_bf16"]
    with open(os.path.join(src, "train.log"), "a", encoding="utf-8") as fh:
        log(f"# --requantize: FP8 copy remade from the committed bf16 weights "
            f"(torch {torch.__version__}, transformers {transformers.__version__})", fh)
        write_fp8_copy(out, model, cfg, held_stream, held_bf16, report, fh)
    write_json(os.path.join(src, "report.json"), report)


if __name__ == "__main__":
    main()
