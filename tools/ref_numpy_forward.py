#!/usr/bin/env python3
"""ref_numpy_forward.py: an independent, plain numpy forward of gemma3, qwen2 and llama GGUF
models, for checking the C forward (harness/model/model.c) without llama.cpp.

It shares no code with the C side: weights are dequantized by the `gguf` PyPI package, the
whole sequence is run at once in float64 with an explicit causal (and sliding-window)
mask, and each architecture is written out the way llama.cpp builds its graph.

usage:
  ref_numpy_forward.py logits --model M --tokens 1,2,3 --out F.f32   logits [n, vocab] float32
  ref_numpy_forward.py greedy --model M --tokens 1,2,3 --n N         N greedy token ids
"""
import argparse
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


class Model:
    def __init__(self, path):
        r = GGUFReader(path)
        self.fields = {k: f for k, f in r.fields.items()}
        self.arch = self.meta("general.architecture")
        a = self.arch
        if a not in ("gemma3", "qwen2", "llama"):
            raise SystemExit("ref_numpy_forward: unsupported architecture %s" % a)
        self.n_layer = int(self.meta(a + ".block_count"))
        self.n_embd = int(self.meta(a + ".embedding_length"))
        self.n_head = int(self.meta(a + ".attention.head_count"))
        self.n_head_kv = int(self.meta(a + ".attention.head_count_kv", self.n_head))
        self.head_dim = int(self.meta(a + ".attention.key_length", self.n_embd // self.n_head))
        self.eps = float(self.meta(a + ".attention.layer_norm_rms_epsilon"))
        self.rope_base = float(self.meta(a + ".rope.freq_base", 10000.0))
        self.swa = int(self.meta(a + ".attention.sliding_window", 0)) if a == "gemma3" else 0
        self.softcap = float(self.meta(a + ".final_logit_softcapping", 0.0))
        # linear RoPE scaling: positions times 1/factor (gemma3: global layers only)
        self.pos_scale = 1.0
        if str(self.meta(a + ".rope.scaling.type", "none")) == "linear":
            self.pos_scale = 1.0 / float(self.meta(a + ".rope.scaling.factor"))
        self.t = {}
        for t in r.tensors:
            self.t[t.name] = t

    def meta(self, key, default=None):
        f = self.fields.get(key)
        if f is None:
            if default is None:
                raise SystemExit("ref_numpy_forward: missing metadata %s" % key)
            return default
        return f.contents()

    def w(self, name):
        """Weight as float64 [rows, cols] (ggml ne[1], ne[0]) or a vector."""
        t = self.t[name]
        x = dequantize(t.data, t.tensor_type)
        n0 = int(t.shape[0])
        rows = int(np.prod(t.shape)) // n0
        return np.asarray(x, dtype=np.float64).reshape(rows, n0) if len(t.shape) > 1 else \
            np.asarray(x, dtype=np.float64).reshape(n0)

    def has(self, name):
        return name in self.t


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, base, neox, factors=None):
    """x [n, heads, d]; rotate pairs (i, i+d/2) for NEOX or (2i, 2i+1) for NORM; each
    frequency divided by its factor when the model has rope_freqs.weight (Llama 3.1)."""
    d = x.shape[-1]
    inv = base ** (-np.arange(0, d // 2, dtype=np.float64) * 2.0 / d)
    if factors is not None:
        inv = inv / factors
    ang = np.asarray(pos, dtype=np.float64)[:, None] * inv[None, :]  # [n, d/2]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    y = x.copy()
    if neox:
        a, b = x[..., : d // 2], x[..., d // 2:]
        y[..., : d // 2] = a * c - b * s
        y[..., d // 2:] = a * s + b * c
    else:
        a, b = x[..., 0::2], x[..., 1::2]
        y[..., 0::2] = a * c - b * s
        y[..., 1::2] = a * s + b * c
    return y


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def forward(m, tokens, last_only=False):
    """Logits [n, vocab] (or [1, vocab] with last_only) for the token sequence."""
    n = len(tokens)
    pos = np.arange(n)
    emb = m.w("token_embd.weight")
    x = emb[np.asarray(tokens)]
    gemma = m.arch == "gemma3"
    if gemma:
        x = x * np.sqrt(m.n_embd)
    H, Hkv, d = m.n_head, m.n_head_kv, m.head_dim
    for il in range(m.n_layer):
        p = "blk.%d." % il
        cur = rmsnorm(x, m.w(p + "attn_norm.weight"), m.eps)
        q = cur @ m.w(p + "attn_q.weight").T
        k = cur @ m.w(p + "attn_k.weight").T
        v = cur @ m.w(p + "attn_v.weight").T
        for nm, arr in (("attn_q", q), ("attn_k", k), ("attn_v", v)):
            if m.has(p + nm + ".bias"):
                arr += m.w(p + nm + ".bias")
        q = q.reshape(n, H, d)
        k = k.reshape(n, Hkv, d)
        v = v.reshape(n, Hkv, d)
        window = 0
        base = m.rope_base
        rpos = pos * m.pos_scale
        if gemma:
            q = rmsnorm(q, m.w(p + "attn_q_norm.weight"), m.eps)
            k = rmsnorm(k, m.w(p + "attn_k_norm.weight"), m.eps)
            # llama.cpp gemma3: every 6th layer (il % 6 == 5) is global, the rest use the
            # sliding window and the local RoPE base 10000.
            if il % 6 != 5:
                window = m.swa
                base = 10000.0
                rpos = pos
        neox = m.arch in ("gemma3", "qwen2")
        ff = m.w("rope_freqs.weight") if m.has("rope_freqs.weight") else None
        q = rope(q, rpos, base, neox, ff)
        k = rope(k, rpos, base, neox, ff)
        scale = 1.0 / np.sqrt(d)
        mask = pos[None, :] <= pos[:, None]  # [query, key]
        if window:
            mask &= (pos[:, None] - pos[None, :]) < window
        g = H // Hkv
        att = np.empty((n, H, d))
        for h in range(H):
            s = (q[:, h, :] @ k[:, h // g, :].T) * scale
            s = np.where(mask, s, -np.inf)
            s -= s.max(axis=1, keepdims=True)
            pr = np.exp(s)
            pr /= pr.sum(axis=1, keepdims=True)
            att[:, h, :] = pr @ v[:, h // g, :]
        o = att.reshape(n, H * d) @ m.w(p + "attn_output.weight").T
        if gemma:
            o = rmsnorm(o, m.w(p + "post_attention_norm.weight"), m.eps)
        x = x + o
        cur = rmsnorm(x, m.w(p + "ffn_norm.weight"), m.eps)
        gate = cur @ m.w(p + "ffn_gate.weight").T
        up = cur @ m.w(p + "ffn_up.weight").T
        act = gelu_tanh(gate) if gemma else silu(gate)
        f = (act * up) @ m.w(p + "ffn_down.weight").T
        if gemma:
            f = rmsnorm(f, m.w(p + "post_ffw_norm.weight"), m.eps)
        x = x + f
    x = rmsnorm(x, m.w("output_norm.weight"), m.eps)
    if last_only:
        x = x[-1:]
    out = m.w("output.weight") if m.has("output.weight") else emb
    logits = x @ out.T
    if m.softcap > 0:
        logits = np.tanh(logits / m.softcap) * m.softcap
    return logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["logits", "greedy"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True, help="comma-separated prompt token ids")
    ap.add_argument("--out", help="logits mode: raw float32 [n, vocab] file")
    ap.add_argument("--n", type=int, default=16, help="greedy mode: tokens to generate")
    a = ap.parse_args()
    m = Model(a.model)
    toks = [int(t) for t in a.tokens.split(",")]
    if a.mode == "logits":
        lg = forward(m, toks).astype(np.float32)
        lg.tofile(a.out)
        print("%d %d" % lg.shape)
    else:
        gen = []
        for _ in range(a.n):
            lg = forward(m, toks + gen, last_only=True)
            gen.append(int(np.argmax(lg[-1])))
        print(",".join(str(t) for t in gen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
