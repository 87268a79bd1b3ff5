#!/usr/bin/env bash
# e2e_kill.sh: kill -9 at random points of replay, sweep, eval and `decode --record`
# (RB_KILLS each, default 20), each kill on the state the previous ones left; after every
# kill the final file is absent or whole; then one more run, which must equal an
# uninterrupted run (timings aside) and leave no temporary file anywhere. Tiny inputs (a
# synthetic trace, the random-weight tiny gemma3 of tools/make_tiny_models.py) keep the whole
# test near 20 s; RB_KILLS=200 for a longer hunt.
set -u
RB=${RAASBENCH:-build/raasbench}
KILLS=${RB_KILLS:-20}
cd "$(dirname "$0")/.."
python3 -c "import gguf, numpy, h5py" 2>/dev/null || { echo "python3 with gguf, numpy and h5py is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# same A B: the two files hold the same data; timings (names with lat, _ns, wall) and
# attributes (creation time, host, the output path inside the configuration) aside
same() {
  python3 - "$1" "$2" <<'PY'
import h5py, numpy as np, re, sys
timing = re.compile(r"lat|_ns$|wall")
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
def walk(x, y, p):
    assert set(x.keys()) == set(y.keys()), (p, sorted(x.keys()), sorted(y.keys()))
    for k in x:
        if isinstance(x[k], h5py.Group):
            walk(x[k], y[k], f"{p}/{k}")
            continue
        u, v = x[k][()], y[k][()]
        if x[k].dtype.names:
            for c in x[k].dtype.names:
                if not timing.search(c):
                    eq = np.array_equal(u[c], v[c], equal_nan=u[c].dtype.kind == "f")
                    assert eq, f"{p}/{k}.{c}"
        elif not timing.search(k):
            eq = np.array_equal(u, v, equal_nan=getattr(u, "dtype", np.dtype("O")).kind == "f")
            assert eq, f"{p}/{k}"
walk(a, b, "")
PY
}

# hunt NAME FINAL WHOLE-CHECK-CMD -- CMD...: runs of CMD killed at random points until
# KILLS kills have landed mid-run, each run resuming what the killed ones left; a run that
# finished before its kill must have left a whole file, and then starts the next ones
# afresh (its resumable state removed) so that the kills keep landing mid-run.
hunt() {
  local name=$1 final=$2 check=$3; shift 4
  local t0 dur n_mid=0 n=0
  t0=$(now_ms); "$@" >/dev/null 2>&1; dur=$(( $(now_ms) - t0 + 5 ))
  rm -rf "$final" "$final".*
  while [ $n_mid -lt "$KILLS" ] && [ $n -lt $((5 * KILLS)) ]; do
    n=$((n + 1))
    local d=$(( RANDOM % dur ))
    "$@" >/dev/null 2>&1 & local pid=$!
    sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ $? = 137 ] && n_mid=$((n_mid + 1))  # killed, not finished before the signal
    if [ -e "$final" ]; then
      $check "$final" >/dev/null 2>&1 || { fail "$name: after run $n (killed at $d ms) $final is not whole"; return; }
      rm -rf "$final" "$final".*
    fi
  done
  [ $n_mid -ge "$KILLS" ] || fail "$name: only $n_mid of $n kills landed mid-run"
  "$@" >/dev/null 2>&1 || { fail "$name: the run after the kills failed"; return; }
  echo "# $name: $n_mid kills -9 mid-run (of $n runs of at most ${dur} ms), then a rerun"
}

"$RB" synth --out "$T/t.h5" --layers 2 --prefill 32 --decode 500 --seed 3 --quiet 2>/dev/null || { echo "synth failed"; exit 1; }
python3 tools/make_tiny_models.py "$T" >/dev/null || { echo "make_tiny_models.py failed"; exit 1; }
M=$T/tiny-gemma3.gguf
P=1,272,87,280,273,272,102,275,115,108,274,33,201,7,90
python3 - "$T/tasks.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(12):
        f.write(json.dumps({"id": f"t{i}", "prompt": f"Problem {i}: add {i} and {i + 3}. " * 2, "answer": 2 * i + 3}) + "\n")
PY
sweep_cfg() {
  cat > "$T/$1.json" <<JSON
{"traces": ["$T/t.h5"], "policies": ["h2o", "quest", "streamingllm"], "budgets": [32, 64],
 "dense_layers": 0, "threads": 1, "batch": 1, "out": "$T/$1.h5"}
JSON
}
sweep_cfg sweep_ref; sweep_cfg sweep_k
replay() { "$RB" replay "$T/t.h5" --policies h2o,quest,streamingllm --budgets 32,64 --dense-layers 0 --threads 1 --quiet --out "$@"; }
evalr() { "$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies h2o,streamingllm --budgets 16 --max-tokens 40 --threads 1 --quiet --out "$@"; }
decode() { "$RB" decode --model "$M" --prompt-tokens $P --max-tokens 400 --quiet --record "$@"; }
info() { "$RB" info "$1"; }

replay "$T/replay_ref.h5" || fail "replay"
"$RB" sweep "$T/sweep_ref.json" --quiet || fail "sweep"
evalr "$T/eval_ref.h5" || fail "eval"
decode "$T/decode_ref.h5" || fail "decode --record"

hunt replay "$T/replay_k.h5" info -- replay "$T/replay_k.h5"
hunt sweep "$T/sweep_k.h5" info -- "$RB" sweep "$T/sweep_k.json" --quiet
hunt eval "$T/eval_k.h5" info -- evalr "$T/eval_k.h5"
hunt "decode --record" "$T/decode_k.h5" info -- decode "$T/decode_k.h5"
for w in replay sweep eval decode; do
  out=$(same "$T/${w}_ref.h5" "$T/${w}_k.h5" 2>&1) || fail "$w: the rerun after the kills differs from an uninterrupted run: $(tail -1 <<<"$out")"
done
left=$(find "$T" -name '*.tmp-*')
[ -z "$left" ] || fail "temporaries left: $left"
[ $fails = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "# every rerun equals its uninterrupted run; no temporary left"
