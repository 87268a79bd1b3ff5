#!/usr/bin/env python3
"""check_hf_outputs.py TRACE.h5 [--tol REL]: the dense attention of a recorded trace,
computed from its q, k, v as the format defines it (logits attn_scale * q.k, query head h
on KV head h / (Hq/Hkv), causal, a local layer sees its last sliding_window positions),
in float64, against the outputs transformers computed in the same run (/check/layer_NNN/o,
written by record_hf.py --store-outputs). Prints the max relative error per layer
(||o_trace - o_hf|| / ||o_hf|| over each query head and position) and exits 1 above --tol.
This is what raasbench's dense reference (kernels/attn ref) computes from the same file."""
import argparse
import sys

import h5py
import numpy as np


def dense(q, k, v, scale, window, softcap=0.0):
    """q [n, Hq, d], k/v [n, Hkv, d] -> o [n, Hq, d], float64."""
    n, hq, d = q.shape
    g = hq // k.shape[1]
    kk = np.repeat(k, g, axis=1)                              # [n, Hq, d]
    vv = np.repeat(v, g, axis=1)
    logits = scale * np.einsum("thd,jhd->htj", q, kk)         # [Hq, n, n]
    if softcap:  # Gemma 2 (record_hf's attribute attn_logit_softcap; raasbench ignores it)
        logits = softcap * np.tanh(logits / softcap)
    t = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    mask = j <= t
    if window:
        mask &= j > t - window
    logits = np.where(mask[None], logits, -np.inf)
    logits -= logits.max(-1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(-1, keepdims=True)
    return np.einsum("htj,jhd->thd", p, vv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    worst = 0.0
    with h5py.File(a.trace, "r") as f:
        scale = float(f.attrs["attn_scale"])
        if "check" not in f:
            sys.exit(f"check_hf_outputs: {a.trace}: no /check (record with --store-outputs)")
        layers = sorted(k for k in f if k.startswith("layer_"))
        for name in layers:
            g = f[name]
            q, k, v = (g[x][...].astype(np.float64) for x in ("q", "k", "v"))
            o_hf = f["check"][name]["o"][...].astype(np.float64)
            win = int(g.attrs.get("sliding_window", 0))
            o = dense(q, k, v, scale, win, float(f.attrs.get("attn_logit_softcap", 0.0)))
            num = np.linalg.norm(o - o_hf, axis=-1)
            den = np.maximum(np.linalg.norm(o_hf, axis=-1), 1e-30)
            rel = float((num / den).max())
            worst = max(worst, rel)
            print(f"{name}: window {win:4d}  max rel err {rel:.3e}")
    print(f"max relative error {worst:.3e} (tolerance {a.tol:g})")
    sys.exit(0 if worst <= a.tol else 1)


if __name__ == "__main__":
    main()
