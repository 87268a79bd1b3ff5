#!/usr/bin/env bash
# e2e_export_lifecycle.sh: `raasbench lifecycle` on a small synthetic trace and the export
# of its tables: the file holds what lifecycle.h promises (shapes, types, attributes, the
# truth copy and its scores), the TSV tables agree with the file (read here with h5py), and
# bad input exits 2 with a clear message and leaves no file behind.
set -u
B=${RAASBENCH:-build/raasbench}
python3 -c "import h5py, numpy" 2>/dev/null || { echo "h5py/numpy missing"; exit 77; }
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$B" synth --out "$D/t.h5" --layers 2 --decode 400 --prefill 64 --quiet || fail "synth"
"$B" lifecycle "$D/t.h5" --layer 1 --kv-head 1 --heat-size 64x48 --out "$D/lc.h5" > "$D/log" \
  || fail "lifecycle exited $?"
grep -q "F1" "$D/log" || fail "no scores printed for a trace with truth: $(cat "$D/log")"
for t in heatmap milestones phoenix lifespan stats; do
  "$B" export "$D/lc.h5" --table $t --out "$D/$t.tsv" || fail "export $t exited $?"
done
python3 - "$D" <<'PY' || fail "lifecycle file or its tables"
import sys, h5py, numpy as np
d = sys.argv[1]
f = h5py.File(f"{d}/lc.h5", "r")
a = f.attrs
assert a["format"] == "raasbench-lifecycle" and a["format_version"] == 1, dict(a)
assert a["layer"] == 1 and a["kv_head"] == 1 and a["head"] == -1 and a["reduce"] == "median"
assert a["n_prefill"] == 64 and a["n_tokens"] == 464 and a["trace"].endswith("t.h5")
for k in ("k_sigma", "min_ratio", "max_gap", "min_span", "dormant_steps", "recency", "smooth"):
    assert k in a, k
ms, ph = f["milestones"][:], f["phoenix"][:]
assert ms.dtype == np.int32 and ms.ndim == 2 and ms.shape[1] == 3 and len(ms) > 0, ms.shape
assert ph.dtype == np.int32 and ph.shape[1:] == (3,)
assert (ms[:, 0] >= 64).all() and (ms[:, 1] <= ms[:, 2]).all() and (ms[:, 2] < 464).all()
assert (ms[:, 1] >= ms[:, 0]).all(), "a milestone is active before it exists"
h = f["heatmap"]
assert h.dtype == np.float32 and h.shape[0] <= 64 and h.shape[1] <= 48, h.shape
sb, tb = h.attrs["step_bin"], h.attrs["token_bin"]
assert h.shape[0] * sb >= 400 and h.shape[1] * tb >= 464 and h.attrs["step0"] == 64
hv = h[:]
# future cells are NaN: the first row covers steps 64..64+sb-1, so tokens past them are empty
assert np.isnan(hv[0, (64 + sb) // tb + 1:]).all() and not np.isnan(hv[0, 0])
e, c = f["lifespan_hist/edges"][:], f["lifespan_hist/counts"][:]
assert len(e) == len(c) + 1 and c.sum() == len(ms) and (np.diff(e) > 0).all()
tc = f["truth/lifespan_hist/counts"][:]
assert tc.sum() == len(f["truth/milestones"]) and len(tc) == len(c)
assert 0 <= a["milestone_f1"] <= 1

rows = [l.split("\t") for l in open(f"{d}/heatmap.tsv").read().split("\n")[1:] if l]
assert len(rows) == hv.size, (len(rows), hv.size)
v = np.array([float(r[2]) for r in rows], dtype=np.float32).reshape(hv.shape)
assert np.array_equal(np.isnan(v), np.isnan(hv)) and np.allclose(v[~np.isnan(v)], hv[~np.isnan(hv)], rtol=1e-6)
assert float(rows[0][0]) == 64 + (sb - 1) / 2 and float(rows[0][1]) == (tb - 1) / 2  # cell centres

text = open(f"{d}/milestones.tsv").read()
head, body = text.split("\n", 1)
assert head.split("\t") == ["set", "position", "first", "last", "lifespan"], head
det, planted = body.rstrip("\n").split("\n\n\n")
got = np.array([[int(x) for x in l.split("\t")[1:4]] for l in det.split("\n")])
assert np.array_equal(got, ms), "detected block differs from /milestones"
pl = np.array([[int(x) for x in l.split("\t")[1:4]] for l in planted.split("\n")])
assert np.array_equal(pl, f["truth/milestones"][:]) and planted.startswith("planted\t")

st = [l.split("\t") for l in open(f"{d}/stats.tsv").read().split("\n") if l]
assert st[0][:6] == ["set", "layer", "n_prompt", "n_decode", "milestones", "milestones_per_1k"], st[0]
assert [r[0] for r in st[1:]] == ["detected", "planted"], st
row = dict(zip(st[0], st[1]))
life = np.sort(ms[:, 2] - ms[:, 1] + 1)
assert int(row["layer"]) == 1 and int(row["n_prompt"]) == 64 and int(row["n_decode"]) == 400
assert int(row["milestones"]) == len(ms) and abs(float(row["milestones_per_1k"]) - 1000 * len(ms) / 400) < 1e-6
assert float(row["lifespan_p50"]) == life[int(np.ceil(0.5 * len(life))) - 1] and float(row["lifespan_max"]) == life[-1]
assert abs(float(row["lifespan_mean"]) - life.mean()) < 1e-4 * life.mean()
assert int(row["phoenix_tokens"]) == len(set(ph[:, 0].tolist()))
assert int(dict(zip(st[0], st[2]))["milestones"]) == len(f["truth/milestones"])

lines = open(f"{d}/lifespan.tsv").read().split("\n")
assert lines[0] == "bin_lo\tbin_hi\tdetected\tplanted" and len([l for l in lines[1:] if l]) == len(c)
PY

expect_err() {  # expect_err PATTERN CMD ARGS...: exit 2 and `raasbench: ...PATTERN` on stderr
  local pat=$1; shift
  "$B" "$@" >"$D/out" 2>"$D/err"; local rc=$?
  [ $rc = 2 ] || fail "$* exited $rc, want 2 ($(cat "$D/err"))"
  grep -q "^raasbench: .*$pat" "$D/err" || fail "$*: message '$(cat "$D/err")' lacks '$pat'"
}
echo "not hdf5" > "$D/x.txt"
expect_err "not an HDF5\|HDF5" lifecycle "$D/x.txt" --layer 0 --out "$D/o.h5"
expect_err "layer 7 is not stored" lifecycle "$D/t.h5" --layer 7 --out "$D/o.h5"
expect_err "required" lifecycle "$D/t.h5" --layer 0
expect_err "not both" lifecycle "$D/t.h5" --layer 0 --head 1 --kv-head 0 --out "$D/o.h5"
expect_err "out of range" lifecycle "$D/t.h5" --layer 0 --head 8 --out "$D/o.h5"
expect_err "mean, max or median" lifecycle "$D/t.h5" --layer 0 --reduce mode --out "$D/o.h5"
expect_err "must exceed --max-gap" lifecycle "$D/t.h5" --layer 0 --dormant 8 --out "$D/o.h5"
expect_err "ROWSxCOLS" lifecycle "$D/t.h5" --layer 0 --heat-size 64 --out "$D/o.h5"
expect_err "cannot create" lifecycle "$D/t.h5" --layer 0 --out "$D/no/dir/o.h5"
[ ! -e "$D/o.h5" ] || fail "a refused run left an output file"
expect_err "is a lifecycle file" export "$D/lc.h5" --table summary
expect_err "applies to summary and steps" export "$D/lc.h5" --table heatmap --run x
expect_err "not a raasbench results or lifecycle" export "$D/t.h5" --table heatmap
cp "$D/lc.h5" "$D/bad.h5"
python3 -c "import h5py; f = h5py.File('$D/bad.h5', 'a'); del f['heatmap'].attrs['step_bin']"
expect_err "heatmap lacks valid step_bin" export "$D/bad.h5" --table heatmap
cp "$D/lc.h5" "$D/bad.h5"
python3 -c "
import h5py, numpy as np
f = h5py.File('$D/bad.h5', 'a'); del f['phoenix']; f['phoenix'] = np.zeros((2, 4), np.int32)"
expect_err "phoenix is not \[n, 3\]" export "$D/bad.h5" --table phoenix
[ -z "$(ls "$D" | grep tmp-)" ] || fail "a temporary file was left behind"
echo "# lifecycle file, 5 exported tables and 14 refusals checked"
