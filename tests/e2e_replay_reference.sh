#!/usr/bin/env bash
# e2e_replay_reference.sh: replay's --reference, --chunk and --device options from the CLI.
# The same trace replayed with the reference as causal blocks (the default) in chunks of 1,
# 7 and 32 steps and step by step gives the same results within the tolerance stated in
# tests/test_engine_reference.c (recall 1e-5, out_err 1e-5 + 1e-3 relative; attended and
# kv_bytes equal); the per-step path is the default's config plus "reference": "steps";
# bad values are refused with exit 2 and the option named.
set -u
RB=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
python3 -c "import h5py, numpy" 2>/dev/null || { echo "python3 with h5py and numpy is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$RB" synth --out "$T/t.h5" --layers 3 --decode 200 --prefill 48 --quiet || fail synth
P=(--policies dense,streamingllm,h2o,quest,raas,oracle --budgets 32,96 --dense-layers 1 --quiet --threads 2)
"$RB" replay "$T/t.h5" "${P[@]}" --out "$T/steps.h5" --reference steps || fail "replay --reference steps"
for c in 1 7 32; do
  "$RB" replay "$T/t.h5" "${P[@]}" --out "$T/block$c.h5" --chunk $c || fail "replay --chunk $c"
done
"$RB" replay "$T/t.h5" "${P[@]}" --out "$T/default.h5" --device cpu || fail "replay --device cpu"
python3 - "$T" <<'PY' || fail "results differ"
import sys, json, h5py, numpy as np
d = sys.argv[1]
base = h5py.File(d + "/steps.h5", "r")
cfg = json.loads(base.attrs["config"])
assert cfg["reference"] == "steps", cfg
worst = 0
for name in ("block1", "block7", "block32", "default"):
    f = h5py.File("%s/%s.h5" % (d, name), "r")
    assert "reference" not in json.loads(f.attrs["config"]), name
    assert sorted(f["runs"]) == sorted(base["runs"])
    for run in base["runs"]:
        a, b = base["runs/" + run], f["runs/" + run]
        for k in ("attended", "kv_bytes"):
            assert (a[k][:] == b[k][:]).all(), (name, run, k)
        r = np.abs(a["recall"][:] - b["recall"][:]).max()
        oa, ob = a["out_err"][:], b["out_err"][:]
        o = (np.abs(oa - ob) / (1e-5 + 1e-3 * np.abs(oa))).max()
        assert r <= 1e-5 and o <= 1, (name, run, r, o)
        worst = max(worst, r / 1e-5, o)
print("# replay: blocks in chunks of 1, 7, 32 equal the per-step reference (worst %.2f of the tolerance)" % worst)
PY
[ $? = 0 ] || exit 1
# refusals
check() { # expected-message args...
  local want=$1; shift
  out=$("$RB" replay "$T/t.h5" "${P[@]}" --out "$T/x.h5" "$@" 2>&1); rc=$?
  [ $rc = 2 ] || fail "$* exited $rc, not 2"
  echo "$out" | grep -q "$want" || fail "$*: message '$out' lacks '$want'"
}
check "raasbench: --reference: must be block or steps" --reference fast
check "raasbench: --device: must be cpu or cuda" --device tpu
check "raasbench: --chunk: must be in 0..4096" --chunk -3
if ! "$RB" replay "$T/t.h5" "${P[@]}" --out "$T/cuda.h5" --device cuda 2>"$T/err"; then
  grep -q "raasbench: --device: cuda:" "$T/err" || fail "--device cuda refused without saying why: $(cat "$T/err")"
  echo "# --device cuda refused here: $(cat "$T/err")"
fi
echo "# replay --reference/--chunk/--device checked, 3 refusals"
