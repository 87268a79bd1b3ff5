#!/usr/bin/env python3
"""make_tiny_models.py: random-weight tiny GGUF models (qwen2, llama) for the forward checks.

Writes <outdir>/tiny-qwen2.gguf, tiny-llama.gguf and tiny-gemma3.gguf with the `gguf` PyPI
package: a few layers, grouped-query attention, float (F32, F16, BF16) and quantized (Q8_0,
Q4_0, Q4_1, Q5_0, Q5_1) weights, and a small byte-fallback SentencePiece vocabulary so that
llama.cpp accepts the files. The gemma3 model has six layers (five sliding-window layers with
a window of 8 tokens, then one global layer, as Gemma 3 alternates them), key_length 32 with
n_embd 64 and 4 query heads (so heads x key_length != n_embd, as in Gemma 3 270M), one KV
head, QK norms, post-norms, a tied output and linear RoPE scaling (factor 4) on the global
layer; the llama model carries Llama 3.1-style RoPE
frequency factors (rope_freqs.weight). Deterministic for a given --seed.

usage: make_tiny_models.py OUTDIR [--seed N]
"""
import argparse
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
HEAD_DIM = N_EMBD // N_HEAD
N_FF = 128
N_LAYER = 2
N_CTX = 512

# Per weight role, the storage type: every supported float and legacy-quant format appears
# in at least one of the two models so both code paths get exercised.
TYPES = {
    "qwen2": {"attn_q": QT.Q8_0, "attn_k": QT.F16, "attn_v": QT.Q4_0, "attn_output": QT.Q5_0,
              "ffn_gate": QT.Q4_1, "ffn_up": QT.Q5_1, "ffn_down": QT.BF16,
              "token_embd": QT.Q8_0, "output": QT.F32},
    "gemma3": {"attn_q": QT.Q5_0, "attn_k": QT.Q8_0, "attn_v": QT.F16, "attn_output": QT.Q4_1,
               "ffn_gate": QT.Q5_1, "ffn_up": QT.Q4_0, "ffn_down": QT.Q8_0,
               "token_embd": QT.Q8_0, "output": None},
    "llama": {"attn_q": QT.F32, "attn_k": QT.Q5_1, "attn_v": QT.BF16, "attn_output": QT.Q4_0,
              "ffn_gate": QT.Q8_0, "ffn_up": QT.F16, "ffn_down": QT.Q5_0,
              "token_embd": QT.F16, "output": QT.Q4_1},
}


def vocab():
    """A byte-fallback SentencePiece vocabulary: <unk> <s> </s>, the 256 byte tokens, then
    a few whole words so that encoding is not all bytes."""
    toks = ["<unk>", "<s>", "</s>"]
    types = [2, 3, 3]  # UNKNOWN, CONTROL, CONTROL
    for b in range(256):
        toks.append("<0x%02X>" % b)
        types.append(6)  # BYTE
    words = ["\u2581the", "\u2581of", "\u2581and", "\u2581is", "\u2581a", "\u2581to", "\u2581in",
             "\u2581capital", "\u2581France", "\u2581Paris", "\u2581step", "\u2581=", "\u2581+",
             "\u2581", "e", "t", "a", "o", "n", "s", "r", "h", "l", "d"]
    for w in words:
        toks.append(w)
        types.append(1)  # NORMAL
    while len(toks) < 320:
        toks.append("\u2581w%d" % len(toks))
        types.append(1)
    scores = [0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(len(toks) - 259)]
    return toks, scores, types


def add(w, rng, name, shape_rows_cols, qtype, scale):
    rows, cols = shape_rows_cols
    x = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
    if qtype == QT.F32:
        w.add_tensor(name, x)
    elif qtype == QT.F16:
        w.add_tensor(name, x.astype(np.float16))
    else:
        q = gguf.quants.quantize(x, qtype)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qtype)


def make(arch, path, seed):
    rng = np.random.default_rng(seed + {"qwen2": 0, "llama": 1, "gemma3": 2}[arch])
    types = TYPES[arch]
    gemma = arch == "gemma3"
    n_layer = 6 if gemma else N_LAYER
    n_head_kv = 1 if gemma else N_HEAD_KV
    head_dim = 32 if gemma else HEAD_DIM
    w = gguf.GGUFWriter(path, arch)
    w.add_name("tiny-" + arch)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(n_head_kv)
    w.add_layer_norm_rms_eps(1e-6 if arch != "llama" else 1e-5)
    w.add_rope_freq_base(10000.0 if arch == "llama" else 1000000.0)
    if gemma:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        w.add_sliding_window(8)
        # linear RoPE scaling as Gemma 3 4B+ have it: llama.cpp applies it to the global
        # layers only (local layers keep scale 1)
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(4.0)
    w.add_file_type(1)
    toks, scores, ttypes = vocab()
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(ttypes)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    n_vocab = len(toks)

    s_in = 1.0 / np.sqrt(N_EMBD)
    add(w, rng, "token_embd.weight", (n_vocab, N_EMBD), types["token_embd"], 1.0)
    def norm(name, n):
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32))

    for il in range(n_layer):
        p = "blk.%d." % il
        norm(p + "attn_norm.weight", N_EMBD)
        add(w, rng, p + "attn_q.weight", (N_HEAD * head_dim, N_EMBD), types["attn_q"], s_in * 2)
        add(w, rng, p + "attn_k.weight", (n_head_kv * head_dim, N_EMBD), types["attn_k"], s_in * 2)
        add(w, rng, p + "attn_v.weight", (n_head_kv * head_dim, N_EMBD), types["attn_v"], s_in)
        if gemma:
            norm(p + "attn_q_norm.weight", head_dim)
            norm(p + "attn_k_norm.weight", head_dim)
            norm(p + "post_attention_norm.weight", N_EMBD)
            norm(p + "post_ffw_norm.weight", N_EMBD)
        if arch == "qwen2":
            for nm, n in (("attn_q", N_HEAD * HEAD_DIM), ("attn_k", N_HEAD_KV * HEAD_DIM),
                          ("attn_v", N_HEAD_KV * HEAD_DIM)):
                w.add_tensor(p + nm + ".bias", (0.2 * rng.standard_normal(n)).astype(np.float32))
        add(w, rng, p + "attn_output.weight", (N_EMBD, N_HEAD * head_dim), types["attn_output"], s_in)
        norm(p + "ffn_norm.weight", N_EMBD)
        add(w, rng, p + "ffn_gate.weight", (N_FF, N_EMBD), types["ffn_gate"], s_in)
        add(w, rng, p + "ffn_up.weight", (N_FF, N_EMBD), types["ffn_up"], s_in)
        add(w, rng, p + "ffn_down.weight", (N_EMBD, N_FF), types["ffn_down"], 1.0 / np.sqrt(N_FF))
    if arch == "llama":
        # Llama 3.1-style RoPE frequency factors (llama.cpp divides each angle by its factor)
        w.add_tensor("rope_freqs.weight", np.linspace(1.0, 8.0, head_dim // 2).astype(np.float32))
    norm("output_norm.weight", N_EMBD)
    if types["output"] is not None:  # gemma3: tied to token_embd
        add(w, rng, "output.weight", (n_vocab, N_EMBD), types["output"], s_in * 4)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    for arch in ("qwen2", "llama", "gemma3"):
        path = os.path.join(a.outdir, "tiny-%s.gguf" % arch)
        make(arch, path, a.seed)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
