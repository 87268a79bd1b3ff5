#!/usr/bin/env bash
# e2e_replay_cli.sh: replay refuses bad requests cleanly (exit 2, `raasbench: <what>: <why>`,
# no results file left behind) and a good request writes a results file h5py can read with
# the layout of docs/DESIGN.md §5.
set -u
RB=${RAASBENCH:-build/raasbench}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$RB" synth --out "$dir/t.h5" --layers 3 --prefill 64 --decode 200 --seed 3 >/dev/null || { echo "synth failed"; exit 1; }
fail=0
refuse() { # pattern, args...
  local pat=$1; shift
  local out rc
  out=$("$RB" replay "$dir/t.h5" --out "$dir/bad.h5" --quiet "$@" 2>&1 >/dev/null); rc=$?
  if [ $rc != 2 ] || ! grep -qE "^raasbench: .*$pat" <<<"$out"; then
    echo "FAIL $*: rc=$rc '$out' (want /$pat/)"; fail=1
  else echo "ok   $* -> ($out)"; fi
  if ls "$dir"/bad.h5* >/dev/null 2>&1; then echo "FAIL $*: left a file"; fail=1; rm -f "$dir"/bad.h5*; fi
}
refuse "unknown policy" --policies nosuch --budgets 64
refuse "budget|page" --policies quest --budgets 16          # L < 2P
refuse "budget|page" --policies raas --budgets 31           # L < 2P
refuse "sinks|budget" --policies streamingllm --budgets 4   # L <= sinks
refuse "raas.nosuch" --policies raas --budgets 64 --param raas.nosuch=1
refuse "raas.r" --policies raas --budgets 64 --param raas.r=abc
refuse "nosuch" --policies raas --budgets 64 --param nosuch.r=0.5
refuse "budgets" --policies dense --budgets 64,x
refuse "unknown option" --policies dense --budgets 64 --bogus
refuse "--full-sets: must be reference or attend" --policies dense --budgets 64 --full-sets bogus
out=$("$RB" replay "$dir/t.h5" --policies dense --budgets 64 --out /nonexistent/dir/r.h5 --quiet 2>&1); rc=$?
[ $rc = 2 ] && grep -q "^raasbench: /nonexistent/dir/r.h5" <<<"$out" && echo "ok   unwritable output -> 2" || { echo "FAIL unwritable output: rc=$rc $out"; fail=1; }

"$RB" replay "$dir/t.h5" --policies dense,streamingllm,raas --budgets 64,128 --out "$dir/r.h5" --per-head --quiet || { echo "FAIL good replay"; exit 1; }
python3 - "$dir/r.h5" <<'PY' || fail=1
import sys, h5py, json, numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["format"] == "raasbench-results" and f.attrs["format_version"] == 1
for k in ("raasbench_version", "git_commit", "created", "host", "trace", "trace_sha256", "config"):
    assert k in f.attrs, k
json.loads(f.attrs["config"])
runs = sorted(f["runs"])
assert runs == sorted(["dense_L64", "dense_L128", "streamingllm_L64", "streamingllm_L128", "raas_L64", "raas_L128"]), runs
T = 200
for r in runs:
    g = f["runs"][r]
    assert g["step"].shape == (T,) and g["step"][0] == 64 and g["step"][-1] == 263
    for k in ("recall", "out_err", "attended"): assert g[k].shape == (T, 3), (r, k, g[k].shape)
    for k in ("kv_bytes", "meta_bytes", "latency_ns"): assert g[k].shape == (T,) and g[k].dtype == np.int64
    assert g["recall_head"].shape == (T, 3, 8)
    json.loads(g.attrs["params"])
    assert g.attrs["page_size"] == 16 and g.attrs["dense_layers"] == 2
s = f["summary"][:]
assert len(s) == 6
d = {row["run_id"].decode(): row for row in s}
assert abs(d["dense_L64"]["mean_recall"] - 1) < 1e-5 and d["dense_L64"]["mean_out_err"] < 1e-5
# streamingllm at L=64 attends 64 tokens per head on its sparse layer, dense elsewhere
sl = f["runs"]["streamingllm_L64"]
assert np.all(sl["attended"][:, 2] <= 64) and sl["recall"][:, 2].min() < 1
print("ok   results layout as docs/DESIGN.md §5")
PY

# Latency sampling: the steps between timed ones take exact metrics from the shared
# reference; every metric but latency must agree with attending every step for real
# (--full-sets attend: a.h5 times every step). With --full-sets reference (the default) a
# step whose set is every position (the dense layers here, the dense cell) takes the
# reference's output, and such steps are attended and timed on the timed steps whose index
# k the engine's hash picks, one in 16 (engine.c full_sampled): every 5th step's k = t / 5.
"$RB" replay "$dir/t.h5" --policies dense,h2o,quest,raas,oracle --budgets 64 --out "$dir/a.h5" --quiet --full-sets attend || fail=1
"$RB" replay "$dir/t.h5" --policies dense,h2o,quest,raas,oracle --budgets 64 --out "$dir/b.h5" --quiet --latency-every 5 --full-sets attend || fail=1
"$RB" replay "$dir/t.h5" --policies dense,h2o,quest,raas,oracle --budgets 64 --out "$dir/c.h5" --quiet || fail=1
"$RB" replay "$dir/t.h5" --policies dense,h2o,quest,raas,oracle --budgets 64 --out "$dir/d.h5" --quiet --latency-every 5 || fail=1
python3 - "$dir/a.h5" "$dir/b.h5" "$dir/c.h5" "$dir/d.h5" <<'PY' || fail=1
import sys, json, h5py, numpy as np
a, b, c, d = (h5py.File(p, "r") for p in sys.argv[1:])
def sampled(k):  # one in 16 by Knuth's multiplicative hash, as engine.c
    return ((k * 2654435761) & 0xFFFFFFFF) * 16 < 1 << 32
for r in a["runs"]:
    ga = a["runs"][r]
    assert ga.attrs["latency_every"] == 1 and (ga["latency_ns"][:] > 0).all(), r
    for f, every in ((b, 5), (c, 1), (d, 5)):
        g = f["runs"][r]
        assert g.attrs["latency_every"] == every
        # float32 attention vs float32 probabilities from the reference: rounding only
        for k in ("recall", "out_err"):
            diff = np.abs(ga[k][:] - g[k][:]).max()
            assert diff < 2e-5, (r, k, diff)
        assert (ga["attended"][:] == g["attended"][:]).all(), r     # same decisions
        assert (ga["kv_bytes"][:] == g["kv_bytes"][:]).all(), r     # same memory
    lb = b["runs"][r]["latency_ns"][:]
    assert (lb[::5] > 0).all() and (np.delete(lb, np.s_[::5]) == -1).all(), r
    for f, every in ((c, 1), (d, 5)):
        lat = f["runs"][r]["latency_ns"][:]
        want = np.array([t % every == 0 and sampled(t // every) for t in range(len(lat))])
        assert want.any() and (lat[want] > 0).all() and (lat[~want] == -1).all(), (r, every)
        # the dense layers' steps not attended for real are o* itself
        assert (f["runs"][r]["out_err"][:, :2][~want] == 0).all(), r
for f, full in ((a, "attend"), (c, None)):
    assert json.loads(f.attrs["config"]).get("full_sets") == full
for f in (b, c, d):
    s = {row["run_id"].decode(): row for row in f["summary"][:]}
    assert all(v["p50_latency_ns"] > 0 for v in s.values())
print("ok   --latency-every 5 and --full-sets: same decisions, memory and metrics (to 2e-5), latency on the steps they say")
PY
# Every step's recall and out_err recomputed in float64 by numpy from the trace and the
# dumped selection: an independent check of the engine (its shared reference, the chunks of
# steps it runs cells over, sets shared by a KV group) for an evicting, a paged and a
# per-head policy, over 200 steps (several chunks) and the 3 layers.
"$RB" replay "$dir/t.h5" --policies h2o,quest,oracle --budgets 64 --out "$dir/c.h5" --quiet \
    --per-head --dump-selection || fail=1
python3 - "$dir/t.h5" "$dir/c.h5" <<'PY' || fail=1
import sys, h5py, numpy as np
t, r = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
H, Hkv, P0 = t.attrs["n_q_heads"], t.attrs["n_kv_heads"], t.attrs["n_prefill"]
G, scale = H // Hkv, float(t.attrs["attn_scale"])
worst = 0.0
for run in r["runs"]:
    g = r["runs"][run]
    for li, layer in enumerate(g.attrs["layers"]):
        L = t["layer_%03d" % layer]
        q, k, v = (L[x][:].astype(np.float64) for x in ("q", "k", "v"))
        sel = g["selection"]["layer_%03d" % layer][:]
        rec_h, err_h = g["recall_head"][:, li, :], g["out_err_head"][:, li, :]
        for ti in range(0, sel.shape[0], 7):
            pos = P0 + ti
            for h in range(H):
                kh, vh = k[:pos + 1, h // G], v[:pos + 1, h // G]
                s = scale * kh @ q[pos, h]
                p = np.exp(s - s.max()); p /= p.sum()
                S = sel[ti, h, :pos + 1].astype(bool)
                o = p @ vh
                pS = p[S] / p[S].sum()
                oS = pS @ vh[S]
                rec, err = p[S].sum(), np.linalg.norm(oS - o) / np.linalg.norm(o)
                # float32 kernels against float64: recall to 1e-5 absolute; out_err to 1e-5
                # absolute (dense layers: 0 against ~1e-6) plus 1e-3 relative
                worst = max(worst, abs(rec - rec_h[ti, h]) / 1e-5,
                            abs(err - err_h[ti, h]) / (1e-5 + 1e-3 * err))
assert worst <= 1, worst
print("ok   recall and out_err of every 7th step equal numpy's from the trace and the selection (worst at %.2f of the tolerance)" % worst)
PY
"$RB" export "$dir/b.h5" --table steps --run raas_L64 | awk -F'\t' 'NR==3 && $8 != "NaN" {exit 1}' || { echo "FAIL export of an untimed step"; fail=1; }
exit $fail
