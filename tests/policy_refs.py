# policy_refs.py: float64 numpy references of the policies of issue 16, run against the
# attended sets raasbench replay dumps (--dump-selection) on a synthetic trace, by
# tests/e2e_policy_refs.sh.
#
# Each reference replays the policy's rule from the trace's q, k, v alone, in float64, and at
# every step compares the set it keeps with the engine's. The engine scores in float32 where
# the policy reads the attention it was given (observe), so a decision between two scores
# closer than the float32 rounding may go either way: where the two differ, the reference
# accepts the engine's choice only when it is such a near tie (every token the engine kept
# scores within `tol` of the boundary the reference drew, and every token it dropped too),
# counts it, and carries on from the engine's set. Any other difference fails. Then recall
# of every step and query head is recomputed in float64 from the reference's sets and
# compared with the engine's.
import sys
import json
import re
import h5py
import numpy as np


class Mismatch(Exception):
    pass


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def keep_top(cand, score, k, engine_keep, tol, older_first):
    """Keep the k best of cand (positions, ascending) by score; ties keep the higher position
    (older_first: the lower one goes) unless older_first is False. engine_keep: the set the
    engine kept among cand. Returns (kept positions as a set, 1 if a near tie was taken)."""
    cand = np.asarray(cand)
    if engine_keep is not None:
        engine_keep = engine_keep & set(cand.tolist())
    score = np.asarray(score, dtype=np.float64)
    k = max(0, min(k, len(cand)))
    # sort best first: score descending, then position (descending when the older goes)
    order = np.lexsort((-cand if older_first else cand, -score))
    mine = set(cand[order[:k]].tolist())
    if engine_keep is None or mine == engine_keep:
        return mine, 0
    if k == 0 or k == len(cand):
        raise Mismatch("kept %d of %d, engine %s" % (k, len(cand), sorted(engine_keep)))
    thr = score[order[k - 1]]
    s_of = dict(zip(cand.tolist(), score.tolist()))
    ok = len(engine_keep) == k and all(p in s_of for p in engine_keep)
    band = tol * max(abs(thr), 1e-300) + 1e-12
    ok = ok and all(s_of[p] >= thr - band for p in engine_keep)
    ok = ok and all(s_of[p] <= thr + band for p in s_of if p not in engine_keep)
    if not ok:
        diff = sorted(mine ^ engine_keep)
        raise Mismatch("kept sets differ beyond a near tie: %s (scores %s, boundary %.9g)"
                       % (diff, [s_of.get(p) for p in diff], thr))
    return set(engine_keep), 1


# ---- the policies: each returns, per decode step and KV group, the attended set ----

def tova(q, k, v, P0, L, G, scale, prm, engine):
    """engine(ti, g): the engine's attended set at step ti for group g (a set of positions)."""
    T, Hkv = q.shape[0] - P0, k.shape[1]
    sets = np.zeros((T, Hkv, q.shape[0]), dtype=bool)
    ties = 0
    for g in range(Hkv):
        hs = range(g * G, (g + 1) * G)
        res = list(range(P0))
        # scores: the last prompt query's attention over the prompt, mean over the group
        score = {}
        if P0 > 0:
            pr = np.mean([softmax(scale * k[:P0, g] @ q[P0 - 1, h]) for h in hs], axis=0)
            score = dict(zip(res, pr))
        for ti in range(T):
            t = P0 + ti
            eng = engine(ti, g)
            if len(res) >= L:
                kept, tie = keep_top(res, [score[p] for p in res], L - 1, eng - {t}, 1e-4, True)
                ties += tie
                res = sorted(kept)
            res.append(t)
            sets[ti, g, res] = True
            pr = np.mean([softmax(scale * k[res, g] @ q[t, h]) for h in hs], axis=0)
            score = dict(zip(res, pr))
    return sets, ties


def snapkv(q, k, v, P0, L, G, scale, prm, engine):
    T, Hkv = q.shape[0] - P0, k.shape[1]
    C = min(int(prm["interval"]), max(1, L // 4))
    W = min(int(prm["window"]), max(1, (L - C) // 2)) if L - C >= 1 else 0
    K, avg = int(prm["kernel"]), prm["pool"] == "avg"
    sets = np.zeros((T, Hkv, q.shape[0]), dtype=bool)
    ties = 0
    for g in range(Hkv):
        res = list(range(P0))
        for ti in range(T):
            t = P0 + ti
            if len(res) >= L:
                keep = L - C
                w_n = min(W, keep)
                m = len(res) - w_n
                votes = np.zeros(m)
                for w in range(w_n):
                    qp = res[m + w]
                    keys = res[:m + w + 1]
                    for h in range(g * G, (g + 1) * G):
                        votes += softmax(scale * k[keys, g] @ q[qp, h])[:m]
                r = K // 2
                pad = np.concatenate([np.full(r, 0.0 if avg else -np.inf), votes,
                                      np.full(r, 0.0 if avg else -np.inf)])
                win = np.lib.stride_tricks.sliding_window_view(pad, K)
                pooled = win.sum(axis=1) / K if avg else win.max(axis=1)
                kept, tie = keep_top(res[:m], pooled, keep - w_n, engine(ti, g), 1e-9, False)
                ties += tie
                res = sorted(kept) + res[m:]
            res.append(t)
            sets[ti, g, res] = True
    return sets, ties


def rkv(q, k, v, P0, L, G, scale, prm, engine):
    T, Hkv = q.shape[0] - P0, k.shape[1]
    C = min(int(prm["interval"]), max(1, L // 2))
    W = min(int(prm["window"]), max(1, (L - C) // 2)) if L - C >= 1 else 0
    K, lam, thr = int(prm["kernel"]), float(prm["lambda"]), float(prm["threshold"])
    sets = np.zeros((T, Hkv, q.shape[0]), dtype=bool)
    ties = 0
    for g in range(Hkv):
        res = list(range(P0))
        for ti in range(T):
            t = P0 + ti
            if len(res) >= L:
                keep = L - C
                w_n = min(W, keep)
                n = len(res)
                m = n - w_n
                cand = res[:m]
                imp = np.zeros(m)
                for w in range(w_n):
                    qp = res[m + w]
                    lg = (scale * (q[qp, g * G:(g + 1) * G] @ k[cand, g].T)).max(axis=0)
                    imp += softmax(lg) / w_n
                r = K // 2
                pad = np.concatenate([np.full(r, -np.inf), imp, np.full(r, -np.inf)])
                pooled = np.lib.stride_tricks.sliding_window_view(pad, K).max(axis=1)
                if w_n == 0:
                    pooled = np.zeros(m)
                kk = k[res, g]
                kn = kk / (np.linalg.norm(kk, axis=1, keepdims=True) + 1e-8)
                sim = kn @ kn.T
                np.fill_diagonal(sim, 0.0)
                idx = np.where(sim > thr, np.arange(n)[None, :], 0)
                sim[np.arange(n), idx.max(axis=1)] = 0
                red = softmax(sim.mean(axis=0))
                score = lam * pooled - (1 - lam) * red[:m]
                kept, tie = keep_top(cand, score, keep - w_n, engine(ti, g), 1e-9, False)
                ties += tie
                res = sorted(kept) + res[m:]
            res.append(t)
            sets[ti, g, res] = True
    return sets, ties


def lazyeviction(q, k, v, P0, L, G, scale, prm, engine):
    T, Hkv = q.shape[0] - P0, k.shape[1]
    W = min(int(prm["window"]), max(1, L // 4))
    alpha = float(prm["alpha"])
    sets = np.zeros((T, Hkv, q.shape[0]), dtype=bool)
    ties = 0
    for g in range(Hkv):
        res = list(range(P0))
        last = {p: p for p in res}
        mri = {p: 0 for p in res}

        def recur(t, S):
            pm = np.max([softmax(scale * k[S, g] @ q[t, h]) for h in range(g * G, (g + 1) * G)],
                        axis=0)
            for p, x in zip(S, pm):
                if x * len(S) > alpha:
                    mri[p] = max(mri[p], t - last[p])
                    last[p] = t
        for i in range(P0):  # the prompt is observed too, causally
            recur(i, list(range(i + 1)))
        for ti in range(T):
            t = P0 + ti
            if len(res) >= L:
                keep = max(0, L - W)
                prot = min(W, keep)
                m = len(res) - prot
                cand = res[:m]
                score = [-(t - last[p]) / (mri[p] + 1) for p in cand]
                kept, tie = keep_top(cand, score, keep - prot, engine(ti, g), 1e-12, True)
                ties += tie
                res = sorted(kept) + res[m:]
            res.append(t)
            last[t], mri[t] = t, 0
            sets[ti, g, res] = True
            recur(t, res)
    return sets, ties


def adakv(q, k, v, P0, L, G, scale, prm, engine):
    """One layer-wide pool: the loop runs over the KV heads together."""
    T, Hkv = q.shape[0] - P0, k.shape[1]
    R = int(np.floor(L * float(prm["recent"])))
    floor_n = int(np.ceil(L * float(prm["safeguard"]) - 1e-9))
    B = L * Hkv
    sets = np.zeros((T, Hkv, q.shape[0]), dtype=bool)
    ties = 0
    score = [dict() for _ in range(Hkv)]
    for g in range(Hkv):  # H2O's initial scores: causal column mass, summed over the group
        for j in range(P0):
            score[g][j] = 0.0
        for i in range(P0):
            for h in range(g * G, (g + 1) * G):
                p = softmax(scale * k[:i + 1, g] @ q[i, h])
                for j in range(i + 1):
                    score[g][j] += p[j]
    for ti in range(T):
        t = P0 + ti
        eng = [engine(ti, g) for g in range(Hkv)]
        while sum(len(sc) for sc in score) + Hkv > B:
            cand = [(sc[p], p, g) for g, sc in enumerate(score) if len(sc) + 1 > floor_n
                    for p in sc if p <= t - R]
            mine = min(cand)
            gone = [c for c in cand if c[1] not in eng[c[2]]]
            if (mine[1] not in eng[mine[2]]):
                pick = mine
            else:
                near = [c for c in gone if c[0] <= mine[0] + 1e-4 * abs(mine[0]) + 1e-12]
                if not near:
                    raise Mismatch("step %d: evicts head %d position %d (score %.9g), the engine "
                                   "kept it" % (t, mine[2], mine[1], mine[0]))
                pick = min(near)
                ties += 1
            del score[pick[2]][pick[1]]
        for g in range(Hkv):
            score[g][t] = 0.0
            S = sorted(score[g])
            sets[ti, g, S] = True
            for h in range(g * G, (g + 1) * G):
                p = softmax(scale * k[S, g] @ q[t, h])
                for j, x in zip(S, p):
                    score[g][j] += x
    return sets, ties


def sepllm(q, k, v, P0, L, G, scale, prm, engine):
    """Initial tokens, at most S separators past them (the oldest go first) and the recent
    window; positions only, so every KV group keeps the same set. prm["_separator"]: the
    mask [n_tokens] (separator_mask)."""
    sep = prm["_separator"]
    T, Hkv = q.shape[0] - P0, k.shape[1]
    a = min(int(prm["initial"]), L // 4)
    S = min(int(prm["separators"]), (L - a) // 2)
    sets = np.zeros((T, Hkv, q.shape[0]), dtype=bool)
    res = list(range(P0))
    n_sep = sum(1 for p in res if p >= a and sep[p])
    kept_old = 0  # steps where a separator older than the recent window stayed
    for ti in range(T):
        t = P0 + ti
        while len(res) >= L:
            want = n_sep > S
            i = next(i for i, p in enumerate(res) if p >= a and bool(sep[p]) == want)
            n_sep -= bool(sep[res[i]])
            del res[i]
        res.append(t)
        n_sep += t >= a and bool(sep[t])
        sets[ti, :, res] = True
        # a separator older than what initial tokens + window (StreamingLLM) would keep
        kept_old += any(sep[p] and a <= p <= t - (L - a) for p in res)
    if T > L and S > 0 and kept_old == 0:
        raise Mismatch("no separator outside the recent window was ever kept: the test cannot "
                       "tell the separators from any other token")
    return sets, 0


POLICIES = {"tova": tova, "snapkv": snapkv, "rkv": rkv, "lazyeviction": lazyeviction,
            "adakv": adakv, "sepllm": sepllm}


def separator_mask(t, vocab):
    """SepLLM's separators of a trace, independently of the C code: /tokens read through the
    synthetic vocabulary (model "synthetic": id 1 is ".") or through the GGUF `vocab`
    (tokenizer.ggml.tokens, SentencePiece's U+2581 and byte-level BPE's U+0120 as spaces,
    byte tokens <0xNN> as their byte; control tokens never)."""
    ids = t["tokens"][:]
    if t.attrs["model"] in ("synthetic", b"synthetic"):
        return ids == 1
    import gguf
    r = gguf.GGUFReader(vocab)
    fld = r.fields["tokenizer.ggml.tokens"]
    texts = [bytes(fld.parts[i]).decode("utf-8") for i in fld.data]
    types = r.fields.get("tokenizer.ggml.token_type")
    types = [int(types.parts[i][0]) for i in types.data] if types else [1] * len(texts)
    seps = set(".,?!;:")

    def is_sep(text, typ):
        if typ == 3:
            return False
        if typ == 6 and len(text) == 6 and text.startswith("<0x"):
            b = bytes([int(text[3:5], 16)])
        else:
            b = text.replace("\u2581", " ").replace("\u0120", " ").replace("\u010a", "\n").encode()
        if b[:1] == b" ":
            b = b[1:]
        return (len(b) == 1 and chr(b[0]) in seps) or re.fullmatch(rb"(\r\n|\n)+", b) is not None

    table = np.array([is_sep(x, y) for x, y in zip(texts, types)])
    return table[ids]


def main(trace, results, run, policy, vocab=None):
    t, r = h5py.File(trace, "r"), h5py.File(results, "r")
    H, Hkv, P0 = int(t.attrs["n_q_heads"]), int(t.attrs["n_kv_heads"]), int(t.attrs["n_prefill"])
    G, scale = H // Hkv, float(t.attrs["attn_scale"])
    g_run = r["runs"][run]
    L = int(g_run.attrs["budget"])
    prm = json.loads(g_run.attrs["params"])
    if policy == "sepllm":
        prm["_separator"] = separator_mask(t, vocab)
    assert g_run.attrs["dense_layers"] == 0, "run the policy on every layer (--dense-layers 0)"
    worst, ties, steps = 0.0, 0, 0
    n_layers = 0
    for li, layer in enumerate(g_run.attrs["layers"]):
        lay = t["layer_%03d" % layer]
        if lay.attrs["sliding_window"] != 0:
            continue  # the engine runs the window policy there, not the one under test
        n_layers += 1
        q, k, v = (lay[x][:].astype(np.float64) for x in ("q", "k", "v"))
        sel = g_run["selection"]["layer_%03d" % layer][:].astype(bool)
        T = sel.shape[0]
        q, k, v = q[:P0 + T], k[:P0 + T], v[:P0 + T]

        def engine(ti, g):
            return set(np.nonzero(sel[ti, g * G])[0].tolist())

        sets, n_ties = POLICIES[policy](q, k, v, P0, L, G, scale, prm, engine)
        ties += n_ties
        rec_h = g_run["recall_head"][:, li, :]
        for ti in range(T):
            pos = P0 + ti
            for h in range(H):
                S = sets[ti, h // G, :pos + 1]
                if not (S == sel[ti, h, :pos + 1]).all():
                    raise Mismatch("%s layer %d step %d head %d: attended sets differ at %s"
                                   % (run, layer, pos, h,
                                      np.nonzero(S != sel[ti, h, :pos + 1])[0].tolist()))
                p = softmax(scale * k[:pos + 1, h // G] @ q[pos, h])
                worst = max(worst, abs(p[S].sum() - rec_h[ti, h]) / 1e-5)
            steps += 1
    assert worst <= 1, (run, worst)
    print("# %s: attended sets of %d steps x %d layers equal the float64 reference's "
          "(%d near ties taken from the engine); recall within %.2f of 1e-5"
          % (run, T, n_layers, ties, worst))


if __name__ == "__main__":
    try:
        main(*sys.argv[1:6])
    except Mismatch as e:
        print("FAIL", e)
        sys.exit(1)
