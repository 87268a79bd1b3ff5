#!/usr/bin/env bash
# e2e_synth_h5py.sh: `raasbench synth --out t.h5` writes a trace that h5py (an independent
# reader) reads with the attributes and shapes of docs/DESIGN.md §2 and non-empty planted truth
# whose rows are consistent; bad synth options are refused with exit 2 and no file.
set -u
RB=${RAASBENCH:-build/raasbench}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$RB" synth --out "$dir/t.h5" --quiet || { echo "synth failed"; exit 1; }
python3 - "$dir/t.h5" <<'PY' || exit 1
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
a = f.attrs
assert a["format"] == "raasbench-trace" and a["format_version"] == 1, dict(a)
L, Hq, Hkv, d, P, N = (int(a[k]) for k in ("n_layers", "n_q_heads", "n_kv_heads", "head_dim", "n_prefill", "n_tokens"))
assert (L, Hq, Hkv, d, P, N) == (4, 8, 2, 64, 128, 128 + 2048), (L, Hq, Hkv, d, P, N)
assert abs(a["attn_scale"] - d ** -0.5) < 1e-6
for l in range(L):
    g = f[f"layer_{l:03d}"]
    assert g.attrs["sliding_window"] == 0
    assert g["q"].shape == (N, Hq, d) and g["k"].shape == (N, Hkv, d) and g["v"].shape == (N, Hkv, d)
    assert g["q"].dtype == np.float16 and g["q"].chunks is not None and g["q"].compression == "gzip" and g["q"].shuffle
    assert np.isfinite(g["k"][:].astype(np.float32)).all()
ms, ph = f["truth/milestones"][:], f["truth/phoenix"][:]
assert ms.shape[1] == 3 and len(ms) > 0 and ph.shape[1] == 3 and len(ph) > 0, (ms.shape, ph.shape)
assert ((ms[:, 0] >= P) & (ms[:, 1] > ms[:, 0]) & (ms[:, 2] >= ms[:, 1]) & (ms[:, 2] < N)).all()
assert ((ph[:, 0] < P) & (ph[:, 2] - ph[:, 1] >= 128)).all()
print(f"# h5py reads the synth trace: {L} layers [{N}, heads, {d}] float16, {len(ms)} milestones, {len(ph)} phoenix")
PY
fail=0
for args in "--kv-heads 3" "--decode 0" "--head-dim 63" "--layers -1" "--dtype f8"; do
  out=$("$RB" synth --out "$dir/bad.h5" $args 2>&1); rc=$?
  if [ $rc = 2 ] && grep -q '^raasbench: ' <<<"$out" && ! ls "$dir"/bad.h5* >/dev/null 2>&1; then echo "ok   $args -> $out"
  else echo "FAIL $args: rc=$rc $out"; fail=1; fi
done
exit $fail
