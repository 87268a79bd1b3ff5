#!/usr/bin/env bash
# e2e_eval.sh: `raasbench eval` on tiny random-weight models (tools/make_tiny_models.py).
#  - sharing one prompt capture among cells changes nothing: every cell's generated text
#    equals `raasbench decode` of the same prompt, policy and budget (tiny gemma3's window of
#    8 is shorter than the prompts, so the windowed layers' prompt path is exercised)
#  - kill -9 in the middle and rerun: the same results file as an uninterrupted run (wall
#    times and creation time aside), and only the missing tasks run again
#  - bad task files and outputs are refused with exit 2, naming file:line
set -u
RB=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
python3 -c "import gguf, numpy, h5py" 2>/dev/null || { echo "python3 with gguf, numpy and h5py is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
python3 tools/make_tiny_models.py "$T" >/dev/null || fail "make_tiny_models.py"
M=$T/tiny-gemma3.gguf

python3 - "$T/tasks.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(6):
        f.write(json.dumps({"id": f"t{i}", "prompt": f"Problem {i}: the numbers are {i} and {i + 3}. " * 2,
                            "answer": i}) + "\n")
PY
"$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies dense,h2o,streamingllm,s1=streamingllm:sinks=1 --budgets 8,16 \
  --max-tokens 12 --threads 2 --out "$T/a.h5" --quiet || fail "eval exited $?"
python3 - "$T" "$RB" "$M" <<'PY' || fail "eval text differs from decode"
import h5py, json, subprocess, sys
d, rb, m = sys.argv[1:4]
tasks = [json.loads(l) for l in open(f"{d}/tasks.jsonl")]
f = h5py.File(f"{d}/a.h5", "r")
checked = 0
for run in f["runs"]:
    g = f["runs"][run]["tasks"]
    pol, L = f["runs"][run].attrs["policy"], int(f["runs"][run].attrs["budget"])
    params = json.loads(f["runs"][run].attrs["params"])
    extra = [a for k, v in params.items() for a in ("--param", f"{pol}.{k}={v}")]
    ids = [x.decode() if isinstance(x, bytes) else x for x in g["id"][:]]
    assert ids == [t["id"] for t in tasks], (run, ids)
    for i, t in enumerate(tasks):
        n = int(g["n_generated"][i])
        gen = g["generated"][i].decode("utf-8", "replace") if isinstance(g["generated"][i], bytes) else g["generated"][i]
        if n == 0:
            continue
        out = subprocess.run([rb, "decode", "--model", m, "--prompt", t["prompt"], "--max-tokens", str(n),
                              "--policy", pol, "--budget", str(L)] + extra, capture_output=True).stdout
        out = out.decode("utf-8", "replace")
        assert out == gen + "\n", (run, i, repr(out[:60]), repr(gen[:60]))
        checked += 1
assert checked >= 20, checked
print(f"# eval: {checked} (task, cell) texts equal decode's")
PY

# stop sequences: a string an earlier decode produced ends the decode there, the text cut
# before it: each new text is the old one up to the stop's first occurrence (or all of it)
stop=$(python3 - "$T/a.h5" <<'PY'
import h5py, sys
g = h5py.File(sys.argv[1], "r")["runs/dense_L8/tasks/generated"]
texts = [x.decode() if isinstance(x, bytes) else x for x in g[:]]
t = max(texts, key=len)
print(t[len(t) // 2:len(t) // 2 + 3])
PY
)
[ -n "$stop" ] || fail "no text to take a stop sequence from"
"$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies dense --budgets 8 --max-tokens 12 \
  --threads 2 --stop "$stop" --out "$T/stop.h5" --quiet || fail "eval --stop exited $?"
python3 - "$T" "$stop" <<'PY' || fail "stop sequences"
import h5py, sys
d, stop = sys.argv[1], sys.argv[2]
dec = lambda ds: [x.decode() if isinstance(x, bytes) else x for x in ds[:]]
a = dec(h5py.File(f"{d}/a.h5", "r")["runs/dense_L8/tasks/generated"])
g = h5py.File(f"{d}/stop.h5", "r")["runs/dense_L8/tasks"]
b, stops = dec(g["generated"]), list(g["stop"][:])
cut = 0
for old, new, why in zip(a, b, stops):
    assert stop not in new, (stop, new)
    if stop in old:
        assert new == old[:old.index(stop)] and why == 3, (old, new, why)
        cut += 1
    else:
        assert new == old and why != 3, (old, new, why)
assert cut >= 1, "the stop sequence cut nothing"
print(f"# eval: --stop cut {cut} texts where the sequence began")
PY
"$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies dense --stop "" --out "$T/x.h5" 2>/dev/null; [ $? = 2 ] || fail "an empty stop sequence accepted"

# info and export read the file
"$RB" info "$T/a.h5" | grep -q "^h2o_L8 " || fail "info lacks the h2o_L8 row"
"$RB" export "$T/a.h5" --table summary --out "$T/s.tsv" || fail "export summary"
[ "$(wc -l <"$T/s.tsv")" = 9 ] || fail "summary: $(wc -l <"$T/s.tsv") lines, want a header and 8 cells"
grep -q "^streamingllm-s1_L8	streamingllm	s1	streamingllm-s1	8	" "$T/s.tsv" || fail "the labelled variant's summary row"
# accuracy by generated length: every run's bins hold every task once
"$RB" export "$T/a.h5" --table length --out "$T/len.tsv" || fail "export length"
awk -F'\t' 'NR > 1 {n[$1] += $7} END {for (r in n) if (n[r] != 6) exit 1; exit length(n) != 8}' "$T/len.tsv" \
  || fail "length table: a run's bins do not hold the 6 tasks once: $(cat "$T/len.tsv")"
"$RB" export "$T/a.h5" --table tasks --run h2o_L8 | awk -F'\t' 'NR > 1 {n++} END {exit n != 6}' || fail "tasks of one run"
"$RB" export "$T/a.h5" --table steps >/dev/null 2>&1 && fail "an eval file has no steps table"
if command -v gnuplot >/dev/null; then
  gnuplot -e "in='$T/s.tsv'; out='$T/eval.png'" plots/eval_budget.gp 2>"$T/gp.err" || fail "eval_budget.gp: $(cat "$T/gp.err")"
  [ -s "$T/eval.png" ] || fail "eval_budget.gp drew nothing"
  gnuplot -e "in='$T/len.tsv'; out='$T/len.png'; budget=8" plots/eval_length.gp 2>"$T/gp.err" || fail "eval_length.gp: $(cat "$T/gp.err")"
  [ -s "$T/len.png" ] || fail "eval_length.gp drew nothing"
fi

# kill -9 mid-run, rerun: the same file as an uninterrupted run
"$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies h2o,raas --budgets 32 --max-tokens 40 \
  --threads 1 --out "$T/b.h5" --quiet || fail "uninterrupted eval"
"$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies h2o,raas --budgets 32 --max-tokens 40 \
  --threads 1 --out "$T/c.h5" --quiet & pid=$!
for _ in $(seq 200); do
  [ "$(ls "$T/c.h5.parts" 2>/dev/null | grep -c '^task-')" -ge 2 ] && break; sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
done_before=$(ls "$T/c.h5.parts" | grep -c '^task-')
[ -e "$T/c.h5" ] && [ "$done_before" -lt 6 ] && fail "a results file exists after the kill"
"$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies h2o,raas --budgets 32 --max-tokens 40 \
  --threads 1 --out "$T/c.h5" >"$T/rerun.txt" || fail "rerun after kill -9"
grep -q "($done_before tasks already done)" "$T/rerun.txt" || fail "rerun did not reuse the $done_before finished tasks: $(head -1 "$T/rerun.txt")"
python3 - "$T/b.h5" "$T/c.h5" <<'PY' || fail "resumed eval differs"
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
def walk(x, y, p):
    assert set(x.keys()) == set(y.keys()), p
    for k in x:
        if isinstance(x[k], h5py.Group):
            walk(x[k], y[k], f"{p}/{k}")
        elif k != "wall_s" and k != "summary":
            assert np.array_equal(x[k][()], y[k][()]), f"{p}/{k}"
walk(a, b, "")
for col in a["summary"].dtype.names:
    assert np.array_equal(a["summary"][col], b["summary"][col], equal_nan=a["summary"][col].dtype.kind == "f"), col
print("# eval: killed and resumed, results equal an uninterrupted run")
PY
[ -z "$(ls "$T" "$T/c.h5.parts" | grep tmp-)" ] || fail "temporary files left"

# refusals
refuse() {  # refuse PATTERN FILE-CONTENT-COMMAND
  local pat=$1; shift
  "$@" >"$T/bad.jsonl"
  "$RB" eval --model "$M" --tasks "$T/bad.jsonl" --policies dense --budgets 1 --out "$T/x.h5" --quiet \
    2>"$T/err"; local rc=$?
  [ $rc = 2 ] || fail "$pat: exit $rc, want 2"
  grep -q "^raasbench: .*$pat" "$T/err" || fail "message '$(cat "$T/err")' lacks '$pat'"
}
refuse "bad.jsonl:2: not JSON" printf '{"prompt": "a", "answer": 1}\n{oops\n'
refuse "bad.jsonl:1: answer: missing" printf '{"prompt": "a"}\n'
refuse "no tasks" printf ''
refuse "bad.jsonl:1: not valid UTF-8" printf '{"prompt": "\xff", "answer": 1}\n'
refuse "bad.jsonl:1: line longer than 1 MiB" python3 -c "print('{\"prompt\": \"' + 'a' * (10 << 20) + '\", \"answer\": 1}')"
"$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies dense --budgets 1 --out /dev/null --quiet 2>"$T/err"
[ $? = 2 ] && grep -q "is a device" "$T/err" || fail "--out /dev/null: $(cat "$T/err")"
[ -c /dev/null ] || fail "/dev/null is no longer a device"
echo "# eval: 5 bad task files and a device output refused"
