#!/usr/bin/env python3
"""Independent plain-numpy reference of the DeepSeek-V2/V3 forward pass.

Follows /work/shared/spec/deepseek-semantics.md (sections 3-6) literally and
nothing else: it does not import torch, transformers or safetensors. It reads a
checkpoint directory (config.json + model.safetensors) with its own safetensors
parser, decodes bf16 / f16 / f32 / F8_E4M3 (+ weight_scale_inv) itself, and
computes in float64:

  * RoPE in the checkpoint's INTERLEAVED pair order: pairs (x[2i], x[2i+1])
    rotated as complex numbers by exp(i * pos * f'_i);
  * YaRN frequencies exactly as spec section 4, softmax scale * m^2 with
    m = 0.1 * mscale_all_dim * ln(factor) + 1;
  * naive MLA (kv_b_proj expanded per head), causal mask, softmax;
  * the MoE router of spec section 5 (sigmoid/softmax, correction bias for
    selection only, group score top-2 sum (noaux_tc) or max
    (group_limited_greedy), dropped groups masked with -inf, weights from the
    unbiased scores, optional renormalisation, routed_scaling_factor ALWAYS
    applied).

Usage as a script:
  python3 ref_numpy.py --verify      recompute every committed fixture (numpy only) and compare
  python3 ref_numpy.py CHECKPOINT_DIR TOKEN [TOKEN ...]   print the argmax at every position

`traps` (a set of strings) deliberately switches on known wrong-answer
semantics; make_golden.py uses it to show that each trap changes the fixture's
numbers (so the fixtures can catch it). Names: see TRAPS below.
"""
import json
import math
import os
import struct
import sys

import numpy as np

TRAPS = {
    "no_mscale_sq": "softmax scale without the YaRN m^2 factor",
    "mscale_key": "m computed from rope_scaling.mscale instead of mscale_all_dim",
    "no_yarn_freq": "plain RoPE frequencies (YaRN ramp ignored)",
    "rope_half_no_permute": "half-split rotate_half RoPE applied to interleaved checkpoint rows",
    "group_max": "V3 group score = max instead of top-2 sum",
    "group_top2": "V2 group score = top-2 sum instead of max",
    "mask_zero": "dropped groups masked with 0 instead of -inf",
    "biased_weights": "expert weights taken from the biased scores",
    "no_bias": "correction bias ignored for selection",
    "no_routed_scale": "routed_scaling_factor not applied",
    "no_norm_topk": "norm_topk_prob ignored",
}

# ---------------------------------------------------------------- safetensors


def _fp8_e4m3_table():
    t = np.zeros(256, dtype=np.float64)
    for b in range(256):
        s = -1.0 if (b >> 7) else 1.0
        e = (b >> 3) & 0xF
        m = b & 0x7
        if e == 0xF and m == 0x7:
            t[b] = np.nan
        elif e == 0:
            t[b] = s * (2.0 ** -6) * (m / 8.0)
        else:
            t[b] = s * (2.0 ** (e - 7)) * (1.0 + m / 8.0)
    return t


FP8_E4M3 = _fp8_e4m3_table()


def read_safetensors(path):
    """Return {name: (dtype_string, float64 ndarray)} read with plain file I/O."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        shape = tuple(info["shape"])
        a, b = info["data_offsets"]
        raw = data[base + a: base + b]
        if dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32).astype(np.float64)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dt == "F64":
            arr = np.frombuffer(raw, dtype="<f8").astype(np.float64)
        elif dt == "F8_E4M3":
            arr = FP8_E4M3[np.frombuffer(raw, dtype=np.uint8)]
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        out[name] = (dt, arr.reshape(shape))
    return out


def load_checkpoint(ckpt_dir):
    """Return (config dict, {name: float64 weight}) with FP8 weights dequantised."""
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        cfg = json.load(f)
    raw = read_safetensors(os.path.join(ckpt_dir, "model.safetensors"))
    w = {}
    for name, (dt, arr) in raw.items():
        if name.endswith(".weight_scale_inv"):
            continue
        if dt == "F8_E4M3":
            s = raw[name + "_scale_inv"][1]
            bo, bi = (cfg.get("quantization_config") or {}).get("weight_block_size", [128, 128])
            o, i = arr.shape
            assert s.shape == (-(-o // bo), -(-i // bi)), (name, s.shape)
            # W[i,j] = W8[i,j] * S[i/128, j/128]  (multiplies, despite the name)
            full = np.repeat(np.repeat(s, bo, axis=0), bi, axis=1)[:o, :i]
            arr = arr * full
            assert np.all(np.isfinite(arr)), name
        w[name] = arr
    return cfg, w


# ---------------------------------------------------------------- model pieces


def rmsnorm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def silu(x):
    return x / (1.0 + np.exp(-x))


def matmul(w):
    """The products of the exact model: x @ W^T in float64. (emulate_int8.py passes
    forward() another `mm(x, weight_name)`, the W8A8 one.)"""
    return lambda x, name: x @ w[name].T


def swiglu(x, w, prefix, mm=None):
    mm = mm or matmul(w)
    g = mm(x, prefix + "gate_proj.weight")
    u = mm(x, prefix + "up_proj.weight")
    return mm(silu(g) * u, prefix + "down_proj.weight")


def yarn_mscale(factor, mscale):
    if factor <= 1:
        return 1.0
    return 0.1 * mscale * math.log(factor) + 1.0


def rope_freqs(cfg, traps=frozenset()):
    d = cfg["qk_rope_head_dim"]
    theta = float(cfg.get("rope_theta", 10000.0))
    j = np.arange(d // 2, dtype=np.float64)
    # spec: f_j = theta^(-2j/d) in fp32
    f = (1.0 / (np.float32(theta) ** (np.arange(0, d, 2, dtype=np.float32) / np.float32(d)))).astype(np.float64)
    rs = cfg.get("rope_scaling")
    if rs and rs.get("type", rs.get("rope_type")) == "yarn" and "no_yarn_freq" not in traps:
        factor = float(rs["factor"])
        orig = float(rs["original_max_position_embeddings"])
        beta_fast = float(rs.get("beta_fast", 32))
        beta_slow = float(rs.get("beta_slow", 1))

        def cd(r):
            return d * math.log(orig / (2 * math.pi * r)) / (2 * math.log(theta))

        low = max(math.floor(cd(beta_fast)), 0)
        high = min(math.ceil(cd(beta_slow)), d - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((j - low) / (high - low), 0.0, 1.0)
        f = f * (1.0 - ramp) + (f / factor) * ramp
    return f


def softmax_scale(cfg, traps=frozenset()):
    scale = (cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]) ** -0.5
    rs = cfg.get("rope_scaling")
    if rs and rs.get("type", rs.get("rope_type")) == "yarn" and "no_mscale_sq" not in traps:
        key = "mscale" if "mscale_key" in traps else "mscale_all_dim"
        m = yarn_mscale(float(rs["factor"]), float(rs.get(key, 1.0)))
        scale = scale * m * m
    return scale


def apply_rope(x, pos, f, traps=frozenset()):
    """x: [..., T, d] in interleaved pair order; pos: [T]."""
    ang = pos[:, None].astype(np.float64) * f[None, :]            # [T, d/2]
    cos, sin = np.cos(ang), np.sin(ang)
    if "rope_half_no_permute" in traps:
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    xr, xi = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = xr * cos - xi * sin
    out[..., 1::2] = xr * sin + xi * cos
    return out


def mla(x, pos, w, p, cfg, traps=frozenset(), mm=None, cache=None):
    """cache, if given, maps each cached row (c after kv_a_layernorm, k_pe after rope)
    to the values attention reads back: moec's KV cache storage (emulate_kv_cache.py)."""
    mm = mm or matmul(w)
    T = x.shape[0]
    H = cfg["num_attention_heads"]
    nope, rope, vd = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    C = cfg["kv_lora_rank"]
    eps = cfg["rms_norm_eps"]
    if cfg.get("q_lora_rank"):
        qa = mm(x, p + "q_a_proj.weight")
        q = mm(rmsnorm(qa, w[p + "q_a_layernorm.weight"], eps), p + "q_b_proj.weight")
    else:
        q = mm(x, p + "q_proj.weight")
    q = q.reshape(T, H, nope + rope).transpose(1, 0, 2)           # [H, T, nope+rope]
    q_nope, q_pe = q[..., :nope], q[..., nope:]
    kv = mm(x, p + "kv_a_proj_with_mqa.weight")                    # [T, C+rope]
    c = rmsnorm(kv[:, :C], w[p + "kv_a_layernorm.weight"], eps)
    k_pe = kv[:, C:]
    f = rope_freqs(cfg, traps)
    q_pe = apply_rope(q_pe, pos, f, traps)
    k_pe = apply_rope(k_pe, pos, f, traps)                         # [T, rope], shared by heads
    if cache is not None:
        c, k_pe = cache(c), cache(k_pe)
    kvb = mm(c, p + "kv_b_proj.weight").reshape(T, H, nope + vd).transpose(1, 0, 2)
    k_nope, v = kvb[..., :nope], kvb[..., nope:]
    score = (q_nope @ k_nope.transpose(0, 2, 1) + q_pe @ k_pe.T[None]) * softmax_scale(cfg, traps)
    mask = pos[None, :] > pos[:, None]                              # key after query
    score = np.where(mask[None], -np.inf, score)
    score = score - score.max(axis=-1, keepdims=True)
    prob = np.exp(score)
    prob /= prob.sum(axis=-1, keepdims=True)
    o = prob @ v                                                   # [H, T, v]
    o = o.transpose(1, 0, 2).reshape(T, H * vd)
    return mm(o, p + "o_proj.weight")


def route(x, w, p, cfg, traps=frozenset(), stats=None):
    """Return (idx [T,K], weights [T,K]) per spec section 5."""
    E = cfg["n_routed_experts"]
    K = cfg["num_experts_per_tok"]
    G = cfg.get("n_group") or 1
    TG = cfg.get("topk_group") or 1
    logits = x @ w[p + "gate.weight"].T                            # [T, E]
    if cfg.get("scoring_func", "softmax") == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-logits))
    else:
        z = logits - logits.max(axis=-1, keepdims=True)
        s = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    method = cfg.get("topk_method", "greedy")
    sel = s.copy()
    bias_name = p + "gate.e_score_correction_bias"
    if method == "noaux_tc" and "no_bias" not in traps:
        sel = s + w[bias_name][None, :]
    T = x.shape[0]
    if G > 1:
        gs = sel.reshape(T, G, E // G)
        use_top2 = (method == "noaux_tc") != ("group_max" in traps or "group_top2" in traps)
        if use_top2:
            srt = np.sort(gs, axis=-1)[..., ::-1]
            gscore = srt[..., 0] + srt[..., 1]
        else:
            gscore = gs.max(axis=-1)
        gorder = np.argsort(-gscore, axis=-1, kind="stable")
        keep = np.zeros((T, G), dtype=bool)
        np.put_along_axis(keep, gorder[:, :TG], True, axis=-1)
        if stats is not None:
            gsorted = np.take_along_axis(gscore, gorder, axis=-1)
            stats["group_margin"] = min(stats.get("group_margin", np.inf),
                                        float(np.min(gsorted[:, TG - 1] - gsorted[:, TG])))
        fill = 0.0 if "mask_zero" in traps else -np.inf
        sel = np.where(np.repeat(keep, E // G, axis=1), sel, fill)
    order = np.argsort(-sel, axis=-1, kind="stable")              # ties -> lower index
    idx = order[:, :K]
    if stats is not None:
        ssorted = np.take_along_axis(sel, order, axis=-1)
        m = ssorted[:, K - 1] - ssorted[:, K]
        stats["expert_margin"] = min(stats.get("expert_margin", np.inf), float(np.min(m)))
        stats.setdefault("min_selected_sel", [])
        stats["min_selected_sel"].append(float(np.min(ssorted[:, K - 1])))
    src = sel if "biased_weights" in traps else s
    wts = np.take_along_axis(src, idx, axis=-1)
    if cfg.get("norm_topk_prob") and "no_norm_topk" not in traps:
        wts = wts / wts.sum(axis=-1, keepdims=True)
    if "no_routed_scale" not in traps:
        wts = wts * float(cfg.get("routed_scaling_factor", 1.0))
    return idx, wts


def moe(x, w, p, cfg, traps=frozenset(), stats=None, mm=None):
    idx, wts = route(x, w, p, cfg, traps, stats)
    out = np.zeros_like(x)
    for e in range(cfg["n_routed_experts"]):
        rows, slots = np.nonzero(idx == e)
        if rows.size == 0:
            continue
        y = swiglu(x[rows], w, f"{p}experts.{e}.", mm)
        out[rows] += wts[rows, slots][:, None] * y
    if cfg.get("n_shared_experts"):
        out += swiglu(x, w, p + "shared_experts.", mm)
    return out


def forward(cfg, w, tokens, traps=frozenset(), stats=None, positions=None, mm=None, cache=None):
    """Return float64 logits [T, vocab]."""
    tokens = np.asarray(tokens, dtype=np.int64)
    pos = np.arange(len(tokens)) if positions is None else np.asarray(positions)
    eps = cfg["rms_norm_eps"]
    h = w["model.embed_tokens.weight"][tokens].copy()
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = h + mla(rmsnorm(h, w[p + "input_layernorm.weight"], eps), pos, w, p + "self_attn.", cfg, traps,
                    mm, cache)
        f = rmsnorm(h, w[p + "post_attention_layernorm.weight"], eps)
        if l < cfg.get("first_k_dense_replace", 0):
            h = h + swiglu(f, w, p + "mlp.", mm)
        else:
            h = h + moe(f, w, p + "mlp.", cfg, traps, stats, mm)
    return (mm or matmul(w))(rmsnorm(h, w["model.norm.weight"], eps), "lm_head.weight")


def write_emulated_logits(golden_dir, emulations):
    """For every variant of golden_dir's manifest, runs forward() over the prompt and
    the reference's greedy continuation (the rows of logits_full.npy) once per entry
    of `emulations`, a function (w) -> [(file name, forward() keyword arguments)],
    and writes each result as float32 into the variant's directory (temporary file,
    then rename). The emulate_*.py scripts' main."""
    manifest = json.load(open(os.path.join(golden_dir, "manifest.json"), encoding="utf-8"))
    for v in manifest["variants"]:
        vdir = os.path.join(golden_dir, v["dir"])
        cfg, w = load_checkpoint(os.path.join(golden_dir, v.get("checkpoint") or v["dir"]))
        prompt = json.load(open(os.path.join(vdir, "prompt.json")))["tokens"]
        greedy_tokens = json.load(open(os.path.join(vdir, "greedy.json")))["tokens"]
        for name, kwargs in emulations(w):
            logits = forward(cfg, w, list(prompt) + list(greedy_tokens[:-1]), **kwargs)
            logits = logits.astype(np.float32)
            out = os.path.join(vdir, name)
            np.save(out + ".tmp.npy", logits)
            os.replace(out + ".tmp.npy", out)
            print(f"wrote {os.path.relpath(out, golden_dir)} {logits.shape}")


def greedy(cfg, w, prompt, n, traps=frozenset()):
    seq = list(prompt)
    for _ in range(n):
        seq.append(int(np.argmax(forward(cfg, w, seq, traps)[-1])))
    return seq[len(prompt):]


def verify(golden_dir):
    """Recompute every committed fixture with this reference (numpy only) and compare.
    Returns the number of failures."""
    with open(os.path.join(golden_dir, "manifest.json")) as f:
        man = json.load(f)
    fails = 0
    for v in man["variants"]:
        d = os.path.join(golden_dir, v["dir"])
        # Variants of a committed model (models/) keep only their data files here.
        cfg, w = load_checkpoint(os.path.join(golden_dir, v.get("checkpoint", v["dir"])))
        with open(os.path.join(d, "prompt.json")) as f:
            prompt = json.load(f)["tokens"]
        with open(os.path.join(d, "greedy.json")) as f:
            gtok = json.load(f)["tokens"]
        tol = v["tolerance"]["logits_max_abs_over_max_ref"]
        ref = np.load(os.path.join(d, "logits.npy"))
        ours = forward(cfg, w, prompt)
        r1 = float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))
        full_ref = np.load(os.path.join(d, "logits_full.npy"))
        full = forward(cfg, w, prompt + gtok[:-1])
        r2 = float(np.max(np.abs(full - full_ref)) / np.max(np.abs(full_ref)))
        g_ok = [int(t) for t in full[len(prompt) - 1:].argmax(-1)] == gtok
        ok = r1 <= tol and r2 <= tol and g_ok
        fails += 0 if ok else 1
        print(f"{v['name']:10s} logits rel {r1:.2e}  full rel {r2:.2e}  greedy {'ok' if g_ok else 'MISMATCH'}"
              f"  {'PASS' if ok else 'FAIL'}")
    print(f"{len(man['variants']) - fails} passed, {fails} failed")
    return fails


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--verify":
        sys.exit(1 if verify(os.path.dirname(os.path.abspath(__file__))) else 0)
    if len(sys.argv) < 3:
        sys.exit("usage: ref_numpy.py --verify | ref_numpy.py CHECKPOINT_DIR TOKEN [TOKEN ...]")
    c, ww = load_checkpoint(sys.argv[1])
    lg = forward(c, ww, [int(t) for t in sys.argv[2:]])
    print(" ".join(str(int(i)) for i in lg.argmax(-1)))
