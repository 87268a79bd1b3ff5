#!/usr/bin/env bash
# before_after_policies.sh OLD NEW: two raasbench binaries make the same policy decisions,
# bit for bit. Not part of `make test` (it needs a second binary, built from the commit to
# compare with: `git worktree add /tmp/old REV && make -C /tmp/old`). For refactors of
# policies/ that must change nothing.
#
# Both replay the same traces (synthetic GQA with a prompt shorter and one longer than the
# budgets, and the recorded Gemma 3 270M decode of results/gemma_600.h5 when it and the model
# are there) under the token-granular policies with their defaults and with other parameters,
# budgets from 1 up, every layer sparse, per head, with the attended sets dumped. Every
# dataset and attribute of the two results files must be equal (h5py, exactly): recall,
# out_err, attended, kv_bytes, meta_bytes, the per-head series and the selections; only
# latency_ns, the summary's latency percentiles and the root's created and git_commit may
# differ.
set -u
OLD=$(realpath "$1") NEW=$(realpath "$2")
cd "$(dirname "$0")/.."
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$OLD" synth --out "$D/a.h5" --layers 2 --prefill 80 --decode 300 --seed 5 --quiet 2>/dev/null || fail synth
"$OLD" synth --out "$D/b.h5" --layers 2 --prefill 200 --decode 150 --seed 6 --quiet 2>/dev/null || fail synth
pols="h2o,tova,adakv,snapkv,rkv,sepllm,lazyeviction,a=adakv:safeguard=0.6:recent=0.25"
pols+=",avg=snapkv:pool=avg:interval=5:window=8:kernel=3,r=rkv:interval=7:window=4:lambda=0.5"
pols+=",s=sepllm:initial=2:separators=6"
n=0
compare() {  # compare NAME TRACE BUDGETS [replay args]
  local name=$1 tr=$2 bud=$3; shift 3
  for B in "$OLD" "$NEW"; do
    "$B" replay "$tr" --policies "$pols" --budgets "$bud" --dense-layers 0 --threads 1 --per-head \
        --dump-selection --quiet --out "$D/$name.$([ "$B" = "$OLD" ] && echo old || echo new).h5" "$@" \
        || fail "replay $name by $B"
  done
  python3 - "$D/$name.old.h5" "$D/$name.new.h5" <<'PY' || fail "$name: results differ"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
skip_ds = {"latency_ns"}
skip_attr = {"created", "git_commit"}
n = 0
def attrs(x, y, where):
    assert set(x.attrs) == set(y.attrs), where
    for k in x.attrs:
        if k in skip_attr: continue
        assert np.array_equal(np.asarray(x.attrs[k]), np.asarray(y.attrs[k])), (where, k)
def walk(x, y, where):
    global n
    attrs(x, y, where)
    assert set(x.keys()) == set(y.keys()), (where, set(x.keys()) ^ set(y.keys()))
    for k in x:
        if isinstance(x[k], h5py.Group):
            walk(x[k], y[k], where + "/" + k)
        elif k not in skip_ds:
            u, v = x[k][()], y[k][()]
            if u.dtype.names:  # the summary: every column but the latency percentiles
                for c in u.dtype.names:
                    if "lat" not in c:
                        assert np.array_equal(u[c], v[c], equal_nan=u[c].dtype.kind == "f"), (where, k, c)
            else:
                assert np.array_equal(u, v, equal_nan=u.dtype.kind == "f"), (where, k)
            n += 1
walk(a, b, "")
print(f"# {sys.argv[1].split('/')[-1].split('.')[0]}: {len(a['runs'])} runs, {n} datasets equal")
PY
  n=$((n + 1))
}
compare short "$D/a.h5" 1,16,48,120,256
compare long_prompt "$D/b.h5" 32,100
M=models/gemma-3-270m-q4_k_m.gguf
if [ -e results/gemma_600.h5 ] && [ -e $M ]; then
  compare gemma results/gemma_600.h5 32,128 --steps 300 --model $M
fi
echo "# before/after: $n replays, the same decisions bit for bit"
