#!/usr/bin/env bash
# e2e_trace_validation.sh: every malformed trace docs/DESIGN.md §2 names is refused by
# `raasbench info` with `raasbench: <file>: <why>` on stderr and exit code 2, never a crash.
# Files are crafted with h5py so the C writer's own checks are not what is tested.
set -u
RB=${RAASBENCH:-build/raasbench}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY' || exit 1
import sys, h5py, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(0)
def make(name, L=2, Hq=4, Hkv=2, hd=8, P=4, N=10, fmt="raasbench-trace", ver=1,
         shape_fix=None, skip_layer=None, poison=None, dtype=np.float32, attrs_drop=()):
    with h5py.File(f"{d}/{name}.h5", "w") as f:
        a = dict(format=fmt, format_version=ver, source="t", model="m", n_layers=L,
                 n_q_heads=Hq, n_kv_heads=Hkv, head_dim=hd, n_prefill=P, n_tokens=N,
                 attn_scale=hd ** -0.5)
        for k in attrs_drop: a.pop(k)
        f.attrs.update(a)
        for l in range(L):
            if l == skip_layer: continue
            g = f.create_group(f"layer_{l:03d}")
            g.attrs["sliding_window"] = 0
            for t, h in (("q", Hq), ("k", max(Hkv, 1)), ("v", max(Hkv, 1))):
                shape = (N, h, hd)
                if shape_fix and shape_fix[0] == (l, t): shape = shape_fix[1]
                x = rng.standard_normal(shape).astype(dtype)
                if poison and poison[0] == (l, t): x[poison[1]] = poison[2]
                g.create_dataset(t, data=x)
make("good")
make("good16", dtype=np.float16)
make("wrong_format", fmt="something-else")
make("wrong_version", ver=2)
make("missing_layer", skip_layer=1)
make("bad_shape", shape_fix=((1, "k"), (10, 2, 7)))
make("bad_heads", Hq=3, Hkv=2)
make("no_decode", P=10, N=10)
make("missing_attr", attrs_drop=("head_dim",))
make("nan_q", poison=((1, "q"), (7, 2, 3), np.nan))
make("inf_v", poison=((0, "v"), (5, 1, 0), np.inf))
make("bad_dtype", dtype=np.int32)
open(f"{d}/not_hdf5.h5", "w").write("plain text, not HDF5\n")
open(f"{d}/empty.h5", "w").close()
PY
fail=0
expect() { # file rc pattern
  local f=$1 want=$2 pat=$3 out rc
  out=$("$RB" info "$dir/$f" 2>&1 >/dev/null); rc=$?
  if [ "$rc" != "$want" ]; then echo "FAIL $f: exit $rc, want $want ($out)"; fail=1; return; fi
  if [ -n "$pat" ] && ! grep -qE "$pat" <<<"$out"; then echo "FAIL $f: message '$out' lacks /$pat/"; fail=1; return; fi
  echo "ok   $f -> $rc ${out:+($out)}"
}
expect good.h5 0 ""
expect good16.h5 0 ""
expect not_hdf5.h5 2 "^raasbench: .*not_hdf5.h5: not an HDF5 file"
expect empty.h5 2 "^raasbench: .*: not an HDF5 file"
expect missing.h5 2 "^raasbench: .*: no such file"
expect wrong_format.h5 2 "^raasbench: .*: not a raasbench trace"
expect wrong_version.h5 2 "format_version 2 is not supported"
expect missing_layer.h5 2 "missing layer group /layer_001"
expect bad_shape.h5 2 "layer_001/k has shape \[10, 2, 7\], expected \[10, 2, 8\]"
expect bad_heads.h5 2 "n_q_heads \(3\) is not a multiple of n_kv_heads \(2\)"
expect no_decode.h5 2 "n_prefill \(10\) >= n_tokens \(10\)"
expect missing_attr.h5 2 "attribute 'head_dim'"
expect bad_dtype.h5 2 "expected float16 or float32"
# NaN/Inf are found when the data is read: replay, under any policy (the first registered),
# reads everything.
policy=$("$RB" policies --names | head -1)
replay_expect() {
  local f=$1 pat=$2 out rc
  out=$("$RB" replay "$dir/$f" --policies "$policy" --budgets 64 --dense-layers 0 --out "$dir/r.h5" --quiet 2>&1 >/dev/null); rc=$?
  if [ $rc != 2 ] || ! grep -qE "$pat" <<<"$out"; then echo "FAIL replay $f: rc=$rc '$out'"; fail=1; else echo "ok   replay $f -> 2 ($out)"; fi
  if ls "$dir"/r.h5* >/dev/null 2>&1; then echo "FAIL replay $f left a results file behind"; fail=1; fi
}
replay_expect nan_q.h5 "NaN in /layer_001/q at position 7, head 2"
replay_expect inf_v.h5 "Inf in /layer_000/v at position 5, head 1"
exit $fail
