#!/usr/bin/env bash
# e2e_shard.sh: `--shard I/N` and `raasbench merge`, without Slurm (tools/slurm/ runs the
# same commands as a job array; tests/e2e_slurm.sh runs them on a real Slurm).
#  - a sweep run as shards 3/3, 1/3, 2/3 and merged equals the same sweep on one machine
#    (every dataset, attribute and summary column; latency and creation time aside), and so
#    does an eval on the tiny random-weight model; the shards are disjoint and cover the
#    cells; the last shard to finish writes the final file; merging again changes nothing
#  - a shard rerun runs nothing; a lost cell is run again by its shard alone
#  - merge refuses a missing cell (naming it) and a cell of another configuration
#  - bad shard specs are refused with exit 2: raasbench: --shard: ...
set -u
RB=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
RB=$(realpath "$RB")
SAME=$PWD/tools/slurm/same_results.py
python3 -c "import h5py, numpy" 2>/dev/null || { echo "python3 with h5py and numpy is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Two traces of different lengths, so the split by cost has something to balance.
"$RB" synth --out "$T/a.h5" --layers 2 --prefill 32 --decode 300 --seed 3 >/dev/null 2>&1 || fail synth
"$RB" synth --out "$T/b.h5" --layers 2 --prefill 16 --decode 600 --seed 4 >/dev/null 2>&1 || fail synth
mkdir "$T/one" "$T/sh"
cat >"$T/one/c.json" <<JSON
{"traces": ["$T/a.h5", "$T/b.h5"],
 "policies": ["dense", "streamingllm", "h2o", "quest", "oracle", {"name": "raas", "params": {"r": 0.25}, "label": "r25"}],
 "budgets": [32, 64, 128], "dense_layers": 1, "threads": 1, "out": "r.h5"}
JSON
cp "$T/one/c.json" "$T/sh/c.json" # the same config ("out" relative): the same identity
(cd "$T/one" && "$RB" sweep c.json --quiet) || fail "one-machine sweep"
cd "$T/sh"
ran=0
for i in 3 1 2; do
  out=$("$RB" sweep c.json --shard $i/3) || fail "shard $i/3 exited $?"
  n=$(sed -n 's/.*(\([0-9]*\) run now.*/\1/p' <<<"$out" | head -1)
  [ -n "$n" ] && [ "$n" -ge 8 ] && [ "$n" -le 16 ] || fail "shard $i/3 ran '$n' of 36 cells: $out"
  ran=$((ran + n))
  if [ $i != 2 ]; then
    grep -q "still missing, so no r.h5 yet" <<<"$out" || fail "shard $i/3 of 3 done: $out"
    [ -e r.h5 ] && fail "a results file before the last shard finished"
  fi
done
[ $ran = 36 ] || fail "the shards ran $ran cells, want 36 (disjoint and covering)"
[ -e r.h5 ] || fail "the last shard did not assemble r.h5"
python3 "$SAME" ../one/r.h5 r.h5 || fail "sharded sweep differs from the one-machine sweep"
# the comparison can fail: one recall value changed is seen
cp r.h5 "$T/bad.h5"
python3 -c "
import h5py, sys
f = h5py.File(sys.argv[1], 'r+'); d = f['runs']['h2o_L64@a']['recall']; d[3, 1] = d[3, 1] + 1e-3" "$T/bad.h5"
python3 "$SAME" ../one/r.h5 "$T/bad.h5" >/dev/null && fail "same_results.py missed a changed recall"
out=$("$RB" merge c.json --shard 1/3 2>&1) && fail "merge took a shard"
grep -q "^raasbench: --shard: a merge takes no shard" <<<"$out" || fail "merge --shard: $out"
out=$("$RB" merge 2>&1); [ $? = 2 ] && grep -q "^raasbench: merge: expected CONFIG.json" <<<"$out" || fail "bare merge: $out"
"$RB" merge c.json >/dev/null || fail "merge exited $?"
python3 "$SAME" ../one/r.h5 r.h5 || fail "merged again: differs"
echo "# sweep: shards 3/3, 1/3, 2/3 (36 cells, $ran run) merged equal the one-machine sweep"

# rerun: nothing runs; a lost cell runs again in its own shard alone
again=0
for i in 1 2 3; do
  out=$("$RB" sweep c.json --shard $i/3) || fail "rerun of shard $i/3"
  again=$((again + $(sed -n 's/.*(\([0-9]*\) run now.*/\1/p' <<<"$out" | head -1)))
done
[ $again = 0 ] || fail "rerunning finished shards ran $again cells"
rm r.h5.cells/quest_L64@b.h5
out=$("$RB" merge c.json 2>&1); rc=$?
[ $rc = 2 ] || fail "merge with a missing cell exited $rc"
grep -q "^raasbench: r.h5.cells: 1 of 36 cells missing (r.h5.cells/quest_L64@b.h5, ...): run their shards again" <<<"$out" || fail "missing-cell message: $out"
echo "# refused: $out"
for i in 1 2 3; do
  out=$("$RB" sweep c.json --shard $i/3) || fail "rerun of shard $i/3"
  again=$((again + $(sed -n 's/.*(\([0-9]*\) run now.*/\1/p' <<<"$out" | head -1)))
done
[ $again = 1 ] || fail "after losing one cell the shards ran $again cells, want 1"
python3 "$SAME" ../one/r.h5 r.h5 || fail "after rerunning the lost cell: differs"

# a cell of another configuration, under the right name, is refused
sed 's/"budgets"/"seed": 7, "budgets"/' c.json >"$T/other.json"
mkdir "$T/other" && cp "$T/other.json" "$T/other/c.json"
(cd "$T/other" && "$RB" sweep c.json --quiet) || fail "other sweep"
cp "$T/other/r.h5.cells/h2o_L32@a.h5" r.h5.cells/h2o_L32@a.h5
out=$("$RB" merge c.json 2>&1); rc=$?
[ $rc = 2 ] && grep -q "h2o_L32@a.h5: this cell was made by a different sweep" <<<"$out" || fail "foreign cell: rc=$rc $out"
echo "# refused: $out"
out=$("$RB" merge ../other.json 2>&1); rc=$? # its "out" is r.h5 too, but its identity differs
[ $rc = 2 ] && grep -q "holds the cells of a different sweep" <<<"$out" || fail "foreign config: rc=$rc $out"
mkdir "$T/empty" && cp c.json "$T/empty/" && out=$(cd "$T/empty" && "$RB" merge c.json 2>&1); rc=$?
[ $rc = 2 ] && grep -q "no cells to merge" <<<"$out" || fail "merge without cells: rc=$rc $out"
[ -e "$T/empty/r.h5.cells" ] && fail "merge created a cells directory"
cd - >/dev/null

# bad shard specs
for s in 0/3 4/3 1/0 text 1/3x 3 1/ /3 -1/3 " 1/3" 1/99999999999; do
  out=$("$RB" sweep "$T/sh/c.json" --shard "$s" 2>&1); rc=$?
  [ $rc = 2 ] && grep -q "^raasbench: --shard: " <<<"$out" || fail "--shard '$s': rc=$rc $out"
done
out=$("$RB" sweep "$T/sh/c.json" --shard 1/2 --merge 2>&1); rc=$?
[ $rc = 2 ] && grep -q "^raasbench: --shard: a merge takes no shard" <<<"$out" || fail "--shard with --merge: $out"
echo "# 11 bad shard specs refused: raasbench: --shard: ..."

# eval: shards over tasks, merged, equal one machine
python3 -c "import gguf" 2>/dev/null || { echo "python3 gguf is not installed: eval part skipped"; exit 0; }
python3 tools/make_tiny_models.py "$T" >/dev/null || fail "make_tiny_models.py"
python3 - "$T/tasks.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(7):
        f.write(json.dumps({"id": f"t{i}", "prompt": f"Problem {i}: the numbers are {i} and {i + 3}. " * (1 + i % 3),
                            "answer": i}) + "\n")
PY
E=(--model "$T/tiny-gemma3.gguf" --tasks "$T/tasks.jsonl" --policies dense,h2o,streamingllm --budgets 8,16
   --max-tokens 12 --threads 1)
"$RB" eval "${E[@]}" --out "$T/e1.h5" --quiet || fail "one-machine eval"
for i in 2 1; do
  out=$("$RB" eval "${E[@]}" --out "$T/e2.h5" --shard $i/3) || fail "eval shard $i/3"
  grep -q "still missing, so no" <<<"$out" || fail "eval shard $i/3: $out"
done
[ -e "$T/e2.h5" ] && fail "an eval results file before every shard finished"
out=$("$RB" merge --eval "${E[@]}" --out "$T/e2.h5" 2>&1); rc=$?
[ $rc = 2 ] && grep -q "e2.h5.parts: [0-9] of 7 tasks missing (task t" <<<"$out" || fail "eval merge with missing tasks: rc=$rc $out"
echo "# refused: $out"
"$RB" eval "${E[@]}" --out "$T/e2.h5" --shard 3/3 --quiet || fail "eval shard 3/3"
n=$(ls "$T/e2.h5.parts" | grep -c '^task-')
[ "$n" = 7 ] || fail "$n parts, want 7"
python3 "$SAME" "$T/e1.h5" "$T/e2.h5" || fail "sharded eval differs from one machine"
rm "$T/e2.h5"
"$RB" merge --eval "${E[@]}" --out "$T/e2.h5" >/dev/null || fail "merge --eval"
python3 "$SAME" "$T/e1.h5" "$T/e2.h5" || fail "merged eval differs from one machine"
"$RB" eval "${E[@]}" --out "$T/e2.h5" --merge --quiet || fail "eval --merge (idempotent)"
python3 "$SAME" "$T/e1.h5" "$T/e2.h5" || fail "merged again: differs"
out=$("$RB" eval "${E[@]}" --out "$T/e2.h5" --shard 0/3 2>&1); rc=$?
[ $rc = 2 ] && grep -q "^raasbench: --shard: " <<<"$out" || fail "eval --shard 0/3: $out"
echo "# eval: shards 2/3, 1/3, 3/3 of 7 tasks merged equal one machine"
