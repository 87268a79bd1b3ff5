#!/usr/bin/env bash
# before_after_results.sh OLD NEW: the results and lifecycle readers and writers of two
# raasbench binaries agree. Not part of `make test` (it needs a second binary, built from the
# commit to compare with, e.g. `git archive REV | tar -x -C /tmp/old && make -C /tmp/old`).
#
# Files are written once by OLD: a replay (4 policies x 2 budgets, --latency-every 3 so some
# latencies are NaN in the steps table), a replay with --per-head and --dump-selection, a
# sweep with a labelled variant over two traces, decodes of the tiny gemma3 model (teacher-
# forced with cells, and plain) and of Gemma 3 270M (teacher-forced, when models/ has it),
# and a lifecycle file with planted truth. Then
#  1. every export table (summary and steps, whole and --run) and `info` of every file, by
#     OLD and NEW: byte-identical stdout, stderr and exit code;
#  2. the same commands run by NEW write results files whose datasets and attributes equal
#     OLD's (h5py, exactly), except what differs from run to run: latency_ns,
#     token_latency_ns, the summary's p50/p99_latency_ns, and the root's created and
#     git_commit;
#  3. refusals (bad files, unknown runs and tables) give the same message and exit code.
set -u
OLD=$(realpath "$1") NEW=$(realpath "$2")
cd "$(dirname "$0")/.."
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
n_cmp=0 n_diff=0

# write BIN DIR: every file of the comparison, written by BIN into DIR
write() {
  local B=$1 W=$2; mkdir -p "$W"
  [ -e "$D/t.h5" ] || "$B" synth --out "$D/t.h5" --layers 3 --decode 300 --prefill 64 --quiet \
    || fail synth
  [ -e "$D/t2.h5" ] || "$B" synth --out "$D/t2.h5" --seed 2 --layers 2 --decode 300 \
    --prefill 32 --phoenix 0 --quiet || fail synth
  "$B" replay "$D/t.h5" --policies dense,quest,raas,h2o --budgets 64,128 --dense-layers 1 \
    --threads 1 --latency-every 3 --quiet --out "$W/replay.h5" || fail "replay by $B"
  "$B" replay "$D/t2.h5" --policies dense,raas --budgets 32 --dense-layers 0 --threads 1 \
    --per-head --dump-selection --quiet --out "$W/perhead.h5" || fail "replay --per-head by $B"
  cat > "$W/sweep.json" <<EOF
{"traces": ["$D/t.h5", "$D/t2.h5"],
 "policies": ["streamingllm", {"name": "raas", "params": {"r": 0.25}, "label": "r25"}, "raas"],
 "budgets": [32, 64], "page_size": 16, "dense_layers": 1, "threads": 1, "out": "$W/sweep.h5"}
EOF
  "$B" sweep "$W/sweep.json" --quiet || fail "sweep by $B"
  "$B" decode --model "$D/tiny/tiny-gemma3.gguf" --prompt-tokens 1,272,87,280,273,272,102,275,115,108,274,33 \
    --max-tokens 20 --threads 1 --dense-layers 0 --page-size 4 --teacher-forced --policies dense,streamingllm,raas \
    --budgets 8,16 --quiet --out "$W/tf_tiny.h5" || fail "teacher-forced tiny decode by $B"
  "$B" decode --model "$D/tiny/tiny-gemma3.gguf" --prompt-tokens 1,272,87,280 --max-tokens 12 \
    --threads 1 --dense-layers 0 --policy streamingllm --budget 8 --quiet --out "$W/plain_tiny.h5" \
    || fail "plain tiny decode by $B"
  if [ -e models/gemma-3-270m-q4_k_m.gguf ]; then
    "$B" decode --model models/gemma-3-270m-q4_k_m.gguf --prompt "Two plus three is" --max-tokens 12 \
      --threads 2 --page-size 4 --teacher-forced --policies dense,raas,quest --budgets 8 --quiet \
      --out "$W/tf_gemma.h5" || fail "teacher-forced Gemma decode by $B"
  fi
  "$B" lifecycle "$D/t.h5" --layer 1 --kv-head 1 --heat-size 40x30 --out "$W/lc.h5" >/dev/null \
    || fail "lifecycle by $B"
}

python3 tools/make_tiny_models.py "$D/tiny" >/dev/null || fail "make_tiny_models.py"
write "$OLD" "$D/old"
write "$NEW" "$D/new"

# 1 and 3: run CMD... with both binaries on OLD's files, compare stdout, stderr and rc
same() {
  n_cmp=$((n_cmp + 1))
  "$OLD" "$@" >"$D/o.out" 2>"$D/o.err"; local ro=$?
  "$NEW" "$@" >"$D/n.out" 2>"$D/n.err"; local rn=$?
  if [ $ro != $rn ] || ! cmp -s "$D/o.out" "$D/n.out" || ! cmp -s "$D/o.err" "$D/n.err"; then
    n_diff=$((n_diff + 1))
    echo "DIFF: raasbench $* (rc $ro vs $rn)"
    diff "$D/o.out" "$D/n.out" | head -5; diff "$D/o.err" "$D/n.err" | head -5
  fi
}
for f in "$D"/old/*.h5; do
  case $f in
  */lc.h5)
    for t in heatmap milestones phoenix lifespan; do same export "$f" --table $t; done ;;
  *)
    same info "$f"
    for t in summary steps; do
      same export "$f" --table $t
      for id in $(python3 -c "import h5py,sys; print(' '.join(sorted(h5py.File(sys.argv[1])['runs'])))" "$f" | cut -d' ' -f1,3); do
        same export "$f" --table $t --run "$id"
      done
    done ;;
  esac
done
same info "$D/t.h5"
same info "$D/tiny/tiny-gemma3.gguf"
same export "$D/old/replay.h5" --table steps --run nosuch
same export "$D/old/replay.h5" --table summary --run nosuch
same export "$D/old/replay.h5" --table heatmap
same export "$D/old/lc.h5" --table summary
same export "$D/old/lc.h5" --table milestones --run x
same export "$D/t.h5" --table steps
same export "$D/nosuch.h5" --table steps
same export "$D/old/sweep.json" --table steps
same export "$D/old/replay.h5" --table bogus
same info "$D/old/sweep.json"
echo "# $n_cmp commands compared, $n_diff differ"

# 2: files written by NEW equal OLD's
python3 - "$D/old" "$D/new" <<'PY' || n_diff=$((n_diff + 1))
import sys, os, h5py, numpy as np
old, new = sys.argv[1:3]
VARIES = {"latency_ns", "token_latency_ns", "p50_latency_ns", "p99_latency_ns"}
ROOT_VARIES = {"created", "git_commit"}
bad = 0
def cmp_attrs(a, b, where, skip=()):
    global bad
    if set(a.keys()) != set(b.keys()):
        print(f"DIFF attrs {where}: {sorted(set(a.keys()) ^ set(b.keys()))}"); bad += 1
    for k in a.keys():
        if k in skip or k not in b: continue
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            same = np.array_equal(np.asarray(x), np.asarray(y))
        else:
            same = x == y or (isinstance(x, float) and np.isnan(x) and np.isnan(y))
        if not same: print(f"DIFF attr {where}@{k}: {x!r} vs {y!r}"); bad += 1
def visit(a, b, where):
    global bad
    if set(a.keys()) != set(b.keys()):
        print(f"DIFF members {where}: {sorted(set(a.keys()) ^ set(b.keys()))}"); bad += 1
    for k in a.keys():
        if k not in b: continue
        x, y = a[k], b[k]
        cmp_attrs(x.attrs, y.attrs, f"{where}/{k}")
        if isinstance(x, h5py.Group): visit(x, y, f"{where}/{k}"); continue
        if x.dtype != y.dtype or x.shape != y.shape or x.compression != y.compression or x.chunks != y.chunks:
            print(f"DIFF dataset {where}/{k}: {x.dtype}{x.shape}{x.chunks} vs {y.dtype}{y.shape}{y.chunks}"); bad += 1; continue
        if k in VARIES: continue
        u, v = x[()], y[()]
        if x.dtype.names:
            for n in x.dtype.names:
                if n in VARIES: continue
                if not np.array_equal(u[n], v[n], equal_nan=u[n].dtype.kind == "f"):
                    print(f"DIFF {where}/{k}.{n}"); bad += 1
        elif not np.array_equal(u, v, equal_nan=u.dtype.kind == "f"):
            print(f"DIFF data {where}/{k}"); bad += 1
n = 0
for name in sorted(os.listdir(old)):
    if not name.endswith(".h5"): continue
    a, b = h5py.File(f"{old}/{name}"), h5py.File(f"{new}/{name}")
    cmp_attrs(a.attrs, b.attrs, f"{name}:/", ROOT_VARIES | {"config"} if name == "sweep.h5" else ROOT_VARIES)
    visit(a, b, f"{name}:")
    n += 1
print(f"# {n} files written by both compared, {bad} differences")
sys.exit(1 if bad else 0)
PY
[ $n_diff = 0 ] || fail "$n_diff differences"
echo "# before/after: identical"
