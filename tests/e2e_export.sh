#!/usr/bin/env bash
# e2e_export.sh: `raasbench export` on a small results file written here with h5py in the
# layout of results/FORMAT.md (as another program would write one), and on one the replay
# engine writes: the summary table echoes /summary (variable- and fixed-length strings), the
# steps table gives the means over the sparse layers (computed here independently with
# numpy), one block per run, --run selects, live-decode columns appear when present, and bad
# input (a run missing an attribute or with inconsistent shapes) exits 2 with a clear message.
set -u
B=${RAASBENCH:-build/raasbench}
python3 -c "import h5py, numpy" 2>/dev/null || { echo "h5py/numpy missing"; exit 77; }
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

python3 - "$D" <<'PY' || fail "writing the test results file"
import sys, json, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(1)
for name, vlen in (("res.h5", True), ("res_fixed.h5", False)):
    with h5py.File(f"{d}/{name}", "w") as f:
        f.attrs["format"] = "raasbench-results"; f.attrs["format_version"] = 1
        f.attrs["trace"] = "t.h5"
        rows = []
        for rid, pol, L, live in (("dense", "dense", 0, False), ("raas_L64", "raas", 64, True),
                                  ("quest_L64", "quest", 64, False)):
            g = f.create_group(f"runs/{rid}")
            g.attrs["policy"] = pol; g.attrs["budget"] = L; g.attrs["params"] = json.dumps({})
            g.attrs["page_size"] = 16; g.attrs["dense_layers"] = 1; g.attrs["trace"] = "t.h5"
            g.attrs["layers"] = np.arange(4, dtype=np.int32)
            g.attrs["sparse_layers"] = np.array([0, 1, 0, 1], dtype=np.int32)  # layer 2 windowed
            T = 5
            g["step"] = np.arange(100, 100 + T, dtype=np.int32)
            for k in ("recall", "out_err", "attended"):
                x = rng.random((T, 4)).astype(np.float32)
                x[1, 0] = np.nan  # a dense layer's NaN must not matter
                g[k] = x
            g["latency_ns"] = rng.integers(1000, 9000, T).astype(np.int64)
            g["kv_bytes"] = (np.arange(T) * 4096 + 65536).astype(np.int64)
            g["meta_bytes"] = np.full(T, 128, np.int64)
            if live:
                g["token_match"] = np.array([1, 1, 0, 1, 1], np.float32)
                g["kl"] = rng.random(T).astype(np.float32)
                g["token_latency_ns"] = np.arange(T, dtype=np.int64) + 7
            rows.append((rid, "t.h5", pol, L, 0.5 + L / 1000, 0.25, 33.5, 1000, 2000, 70000,
                         65536, 128))
        s = h5py.string_dtype() if vlen else "S16"
        dt = np.dtype([("run_id", s), ("trace", s), ("policy", s), ("budget", np.int32),
                       ("mean_recall", np.float64), ("mean_out_err", np.float64),
                       ("mean_attended", np.float64), ("p50_latency_ns", np.int64),
                       ("p99_latency_ns", np.int64), ("peak_kv_bytes", np.int64),
                       ("final_kv_bytes", np.int64), ("peak_meta_bytes", np.int64)])
        f["summary"] = np.array(rows, dtype=dt)
PY

for r in res res_fixed; do
  "$B" export "$D/$r.h5" --table summary --out "$D/$r.sum.tsv" || fail "summary of $r exited $?"
  python3 - "$D/$r.sum.tsv" <<'PY' || fail "summary table of $r"
import sys
lines = open(sys.argv[1]).read().splitlines()
head = lines[0].split("\t")
assert head[:4] == ["run_id", "trace", "policy", "budget"], head
assert len(lines) == 4, lines
row = dict(zip(head, lines[2].split("\t")))
assert row["run_id"] == "raas_L64" and row["policy"] == "raas" and row["budget"] == "64", row
assert abs(float(row["mean_recall"]) - 0.564) < 1e-12 and row["peak_kv_bytes"] == "70000", row
PY
done

"$B" export "$D/res.h5" --table steps --out "$D/steps.tsv" || fail "steps exited $?"
python3 - "$D" <<'PY' || fail "steps table"
import sys, h5py, numpy as np
d = sys.argv[1]
text = open(f"{d}/steps.tsv").read()
head, body = text.split("\n", 1)
cols = head.split("\t")
assert cols == ["run_id", "policy", "budget", "step", "recall", "out_err", "attended",
                "latency_ns", "kv_bytes", "meta_bytes", "token_match", "kl",
                "token_latency_ns"], cols
blocks = body.rstrip("\n").split("\n\n\n")
assert len(blocks) == 3, f"{len(blocks)} blocks, want one per run"
f = h5py.File(f"{d}/res.h5", "r")
for blk, rid in zip(blocks, sorted(f["runs"])):  # runs in name order
    g = f["runs"][rid]
    m = g.attrs["sparse_layers"].astype(bool)
    rows = [dict(zip(cols, l.split("\t"))) for l in blk.split("\n")]
    assert len(rows) == 5 and all(r["run_id"] == rid for r in rows), (rid, rows)
    for t, r in enumerate(rows):
        for k in ("recall", "out_err", "attended"):
            want = float(np.mean(g[k][t][m].astype(np.float64)))
            assert abs(float(r[k]) - want) < 1e-6, (rid, t, k, r[k], want)
        assert int(r["step"]) == 100 + t and int(r["kv_bytes"]) == int(g["kv_bytes"][t])
        if "token_match" in g:
            assert np.float32(r["kl"]) == g["kl"][t] and int(r["token_latency_ns"]) == t + 7
        else:
            assert r["kl"] == "NaN" and r["token_match"] == "NaN", r
PY
command -v gnuplot >/dev/null && {
  n=$(gnuplot -e "stats '$D/steps.tsv' using 4 nooutput; print STATS_blocks" 2>&1 | tail -1)
  [ "$n" = 3 ] || fail "gnuplot sees $n blocks, want 3"
}

"$B" export "$D/res.h5" --table steps --run quest_L64 > "$D/one.tsv" || fail "--run exited $?"
[ "$(grep -c quest_L64 "$D/one.tsv")" = 5 ] && [ "$(wc -l < "$D/one.tsv")" = 6 ] \
  || fail "--run quest_L64 should give a header and 5 rows"
"$B" export "$D/res.h5" --table summary --run dense | grep -q "^dense	" || fail "summary --run"

# a results file written by the replay engine itself, when it is built
if "$B" synth --out "$D/t.h5" --layers 3 --decode 200 --prefill 64 --phoenix 0 --quiet 2>/dev/null &&
   "$B" replay "$D/t.h5" --policies dense,quest,raas --budgets 64 --dense-layers 1 --threads 1 \
     --quiet --out "$D/real.h5" 2>"$D/replay.err"; then
  "$B" export "$D/real.h5" --table steps --out "$D/real_steps.tsv" || fail "steps of a replay file"
  "$B" export "$D/real.h5" --table summary --out "$D/real_sum.tsv" || fail "summary of a replay file"
  python3 - "$D" <<'PY' || fail "export of a replay results file"
import sys, h5py, numpy as np
d = sys.argv[1]
f = h5py.File(f"{d}/real.h5", "r")
text = open(f"{d}/real_steps.tsv").read()
head, body = text.split("\n", 1)
cols = head.split("\t")
blocks = body.rstrip("\n").split("\n\n\n")
ids = sorted(f["runs"])
assert len(blocks) == len(ids) == 3, (len(blocks), ids)
for blk, rid in zip(blocks, ids):
    g = f["runs"][rid]
    m = g.attrs["sparse_layers"].astype(bool)
    assert m.any() and not m.all(), m  # dense_layers 1: layer 0 is excluded
    rows = [dict(zip(cols, l.split("\t"))) for l in blk.split("\n")]
    assert len(rows) == len(g["step"])
    for t, r in enumerate(rows):
        assert r["run_id"] == rid and int(r["step"]) == int(g["step"][t])
        want = float(np.mean(g["recall"][t][m].astype(np.float64)))
        assert abs(float(r["recall"]) - want) < 1e-6, (rid, t, r["recall"], want)
        lat = int(g["latency_ns"][t])  # -1 (NaN) where not timed: whole-range steps, 15 in 16
        assert (r["latency_ns"] == "NaN") if lat < 0 else int(r["latency_ns"]) == lat, (rid, t)
    assert (g["latency_ns"][:] > 0).any(), rid
sl = open(f"{d}/real_sum.tsv").read().rstrip("\n").split("\n")
h = sl[0].split("\t")
s = f["summary"][:]
assert len(sl) == 1 + len(s)
for line, row in zip(sl[1:], s):
    r = dict(zip(h, line.split("\t")))
    rid = row["run_id"].decode() if isinstance(row["run_id"], bytes) else row["run_id"]
    assert r["run_id"] == rid and abs(float(r["mean_recall"]) - row["mean_recall"]) <= 1e-8 * max(1, abs(row["mean_recall"]))
PY
  echo "# export of a replay-written results file checked"
else
  echo "# replay not available here: $(tail -1 "$D/replay.err" 2>/dev/null)"
fi

expect_err() {  # expect_err PATTERN ARGS...: exit 2, message on stderr, nothing half-written
  local pat=$1; shift
  "$B" export "$@" >"$D/out" 2>"$D/err"; local rc=$?
  [ $rc = 2 ] || fail "export $* exited $rc, want 2"
  grep -q "^raasbench: .*$pat" "$D/err" || fail "export $*: message '$(cat "$D/err")' lacks '$pat'"
}
echo "not hdf5" > "$D/text.txt"
expect_err "not an HDF5" "$D/text.txt" --table summary
expect_err "no such file" "$D/missing.h5" --table summary
python3 -c "import h5py; f=h5py.File('$D/other.h5','w'); f.attrs['format']='raasbench-trace'; f.attrs['format_version']=1"
expect_err "not a raasbench results" "$D/other.h5" --table steps
expect_err "no such run" "$D/res.h5" --table steps --run nope
expect_err "no such run" "$D/res.h5" --table summary --run nope
expect_err "unknown table" "$D/res.h5" --table bogus
expect_err "needs a lifecycle file" "$D/res.h5" --table heatmap
expect_err "cannot create" "$D/res.h5" --table steps --out "$D/no/such/dir/x.tsv"
python3 -c "
import h5py, numpy as np
f = h5py.File('$D/bad.h5', 'w'); f.attrs['format'] = 'raasbench-results'; f.attrs['format_version'] = 1
g = f.create_group('runs/r'); g['step'] = np.arange(3, dtype=np.int32)
g.attrs['policy'] = 'raas'; g.attrs['budget'] = 64; g.attrs['page_size'] = 16; g.attrs['dense_layers'] = 0
g.attrs['layers'] = np.arange(2, dtype=np.int32); g.attrs['sparse_layers'] = np.ones(2, np.int32)
for k in ('recall', 'out_err'): g[k] = np.zeros((3, 2), np.float32)
g['attended'] = np.zeros((4, 2), np.float32)
for k in ('latency_ns', 'kv_bytes', 'meta_bytes'): g[k] = np.zeros(3, np.int64)"
expect_err "run r: attended is \[4, 2\], expected \[T, n_layers\] = \[3, 2\]" "$D/bad.h5" --table steps
python3 -c "
import h5py
f = h5py.File('$D/bad.h5', 'a'); g = f['runs/r']; del g['attended']; g['attended'] = g['recall'][:]
del g.attrs['sparse_layers']"
expect_err "run r: missing attribute sparse_layers" "$D/bad.h5" --table steps
[ -z "$(ls "$D" | grep tmp-)" ] || fail "a temporary file was left behind"
echo "# export: summary, steps (3 runs, sparse-layer means), --run and 10 refusals checked"
