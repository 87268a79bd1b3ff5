#!/usr/bin/env bash
# e2e_sweep_resume.sh: a 20-cell sweep killed with kill -9 mid-way and rerun holds exactly
# 20 runs, each once; cells finished before the kill are not run again; no half-written
# file is left that looks whole. Also: bad configs are refused naming the field.
set -u
RB=${RAASBENCH:-build/raasbench}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$RB" synth --out "$dir/t.h5" --layers 3 --prefill 64 --decode 1200 --seed 5 >/dev/null || exit 1
cat > "$dir/sweep.json" <<JSON
{"traces": ["$dir/t.h5"],
 "policies": ["streamingllm", "h2o", "quest", {"name": "raas", "params": {"r": 0.25}, "label": "r25"}, "oracle"],
 "budgets": [64, 128, 256, 512], "page_size": 16, "dense_layers": 1, "threads": 1,
 "batch": 1, "out": "$dir/sweep.h5"}
JSON
fail=0
"$RB" sweep "$dir/sweep.json" --quiet & pid=$!
# Kill as soon as a few cells have landed (but before all have).
for i in $(seq 1 600); do
  n=$(ls "$dir/sweep.h5.cells"/*_L*.h5 2>/dev/null | grep -v tmp | wc -l)
  [ "$n" -ge 3 ] && break
  sleep 0.02
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
before=$(ls "$dir/sweep.h5.cells"/*_L*.h5 2>/dev/null | grep -v '\.tmp-' | wc -l)
echo "# cells finished before kill -9: $before of 20"
[ "$before" -ge 1 ] && [ "$before" -lt 20 ] || { echo "FAIL: kill did not land mid-sweep ($before cells)"; fail=1; }
[ -e "$dir/sweep.h5" ] && { echo "FAIL: final file exists after a killed sweep"; fail=1; }
# Every finished cell file must be a complete, readable results file.
for f in "$dir/sweep.h5.cells"/*_L*.h5; do
  case "$f" in *.tmp-*) continue;; esac
  "$RB" info "$f" >/dev/null 2>&1 || { echo "FAIL: $f is not whole"; fail=1; }
done
stamp=$(stat -c %Y "$dir/sweep.h5.cells"/*_L*.h5 | sort | head -1)
out=$("$RB" sweep "$dir/sweep.json" 2>&1) || { echo "FAIL rerun: $out"; exit 1; }
echo "# rerun: $out" | head -1
grep -q "($((20 - before)) run now, $before already done)" <<<"$out" || { echo "FAIL: rerun did not skip the $before finished cells: $out"; fail=1; }
python3 - "$dir/sweep.h5" <<'PY' || fail=1
import sys, h5py, collections
f = h5py.File(sys.argv[1], "r")
runs = list(f["runs"])
ids = [r["run_id"].decode() for r in f["summary"][:]]
assert len(runs) == 20, len(runs)
assert len(ids) == 20 and len(set(ids)) == 20, collections.Counter(ids).most_common(3)
assert set(ids) == set(runs)
assert "raas-r25_L64" in runs
import json
assert json.loads(f["runs"]["raas-r25_L64"].attrs["params"])["r"] == 0.25
print("ok   20 runs, each exactly once")
PY
# Bad configs: the field is named, exit 2.
bad() { # json, pattern
  printf '%s' "$1" > "$dir/bad.json"
  local o rc; o=$("$RB" sweep "$dir/bad.json" 2>&1); rc=$?
  if [ $rc = 2 ] && grep -qE "^raasbench: .*$2" <<<"$o"; then echo "ok   refused: $o"; else echo "FAIL rc=$rc '$o' want /$2/"; fail=1; fi
}
bad '{"traces": ["x"], "policies": ["raas"], "budgets": [64], "out": "o.h5",' "broken JSON"
bad "{\"traces\": [\"$dir/t.h5\"], \"policies\": [\"raas\"], \"budgets\": [64], \"out\": \"$dir/o.h5\", \"pagesize\": 8}" "pagesize: unknown key"
bad "{\"traces\": [\"$dir/t.h5\"], \"policies\": [\"raas\"], \"budgets\": [64], \"out\": \"$dir/o.h5\", \"page_size\": -1}" "page_size: must be"
bad "{\"traces\": [\"$dir/t.h5\"], \"policies\": [\"nosuch\"], \"budgets\": [64], \"out\": \"$dir/o.h5\"}" "unknown policy|nosuch"
bad "{\"traces\": [\"$dir/t.h5\"], \"policies\": [{\"name\": \"raas\", \"params\": {\"q\": 1}, \"label\": \"x\"}], \"budgets\": [64], \"out\": \"$dir/o.h5\"}" "policies\[0\].*q"
bad "{\"traces\": [\"$dir/t.h5\"], \"policies\": [\"raas\"], \"budgets\": [\"64\"], \"out\": \"$dir/o.h5\"}" "budgets"
bad "{\"traces\": [\"$dir/none.h5\"], \"policies\": [\"raas\"], \"budgets\": [64], \"out\": \"$dir/o.h5\"}" "none.h5: no such file"
exit $fail
