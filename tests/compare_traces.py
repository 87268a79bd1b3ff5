#!/usr/bin/env python3
"""compare_traces.py A.h5 B.h5 [--tol REL] [--min-tokens N]: two traces of the same model
and prompt (e.g. `raasbench decode --record` and traces/record_hf.py) agree: same shape,
scale and sliding windows; the same greedy tokens for at least the first N generated tokens
(default all of the shorter); and per layer and tensor the max relative error
||a - b|| / ||b|| over each position and head, over the positions both traces hold while
their tokens agree. Prints the figures and exits 1 past --tol."""
import argparse
import sys

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--min-tokens", type=int, default=-1)
    o = ap.parse_args()
    bad = []
    with h5py.File(o.a, "r") as a, h5py.File(o.b, "r") as b:
        for k in ("n_layers", "n_q_heads", "n_kv_heads", "head_dim", "n_prefill"):
            if int(a.attrs[k]) != int(b.attrs[k]):
                bad.append(f"{k}: {a.attrs[k]} vs {b.attrs[k]}")
        if abs(float(a.attrs["attn_scale"]) / float(b.attrs["attn_scale"]) - 1) > 1e-6:
            bad.append(f"attn_scale {a.attrs['attn_scale']} vs {b.attrs['attn_scale']}")
        if bad:
            sys.exit("compare_traces: " + "; ".join(bad))
        P = int(a.attrs["n_prefill"])
        ta, tb = a["tokens"][:], b["tokens"][:]
        n = min(len(ta), len(tb))
        same = int(np.argmax(ta[:n] != tb[:n])) if (ta[:n] != tb[:n]).any() else n
        want = n - P if o.min_tokens < 0 else o.min_tokens
        print(f"tokens: prompt {P} equal: {bool((ta[:P] == tb[:P]).all())}; generated equal for "
              f"{same - P} of {n - P} (required {want})")
        if same < P + want:
            bad.append(f"generated tokens differ at {same - P}")
        worst = {}
        for name in sorted(k for k in a if k.startswith("layer_")):
            ga, gb = a[name], b[name]
            wa, wb = int(ga.attrs.get("sliding_window", 0)), int(gb.attrs.get("sliding_window", 0))
            if wa != wb:
                bad.append(f"{name}: sliding_window {wa} vs {wb}")
            row = []
            for t in "qkv":
                x = ga[t][:same].astype(np.float64)
                y = gb[t][:same].astype(np.float64)
                rel = np.linalg.norm(x - y, axis=-1) / np.maximum(np.linalg.norm(y, axis=-1), 1e-30)
                r = float(rel.max())
                worst[t] = max(worst.get(t, 0.0), r)
                row.append(f"{t} {r:.2e} (median {float(np.median(rel)):.1e})")
            print(f"{name} w{wa:<4d} " + "  ".join(row))
        print("max relative error over layers, positions, heads: " +
              ", ".join(f"{t} {worst[t]:.3e}" for t in "qkv") + f" (tolerance {o.tol:g})")
        if max(worst.values()) > o.tol:
            bad.append("over tolerance")
    if bad:
        print("compare_traces: " + "; ".join(bad))
        sys.exit(1)


if __name__ == "__main__":
    main()
