#!/usr/bin/env bash
# e2e_sepllm.sh: SepLLM's separators end to end, on every path that runs a policy.
#  - synth plants separators in /tokens (its two-token vocabulary, about 1 in 16) and replay
#    runs sepllm on them with no model given;
#  - a trace without /tokens, and a recorded trace whose model is not given (--model), are
#    refused (exit 2, `raasbench: <what>: <why>`, no file left); other policies still run;
#  - live decode fills the mask as tokens come: a sampled decode of tiny llama (separators
#    among its tokens) under sepllm, recorded, replays under sepllm with --model to the same
#    recall at every step and layer (the sets depend on positions and separators alone, so
#    a mask that differed anywhere would change them: checked by breaking it once, 0.48);
#    the replayed sets equal tests/policy_refs.py's, whose mask comes from the GGUF's
#    vocabulary read by the gguf package, not by our tokenizer;
#  - eval (prompts loaded from a capture) writes the texts decode writes under sepllm;
#  - sweep takes the vocabulary as "model" and refuses a recorded trace without it;
#  - bench replay --per-cell runs sepllm on its synthetic trace.
set -u
RB=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
python3 -c "import gguf, numpy, h5py" 2>/dev/null || { echo "python3 with gguf, numpy and h5py is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
refused() {  # refused WHAT_PATTERN OUT CMD...: exit 2, the message, no output file
  local pat=$1 out=$2; shift 2
  local msg rc
  msg=$("$@" 2>&1 >/dev/null); rc=$?
  [ $rc = 2 ] || fail "$* exited $rc, want 2 ($msg)"
  grep -q "^raasbench: $pat" <<<"$msg" || fail "$*: message '$msg' lacks '$pat'"
  ! ls "$out"* >/dev/null 2>&1 || fail "$*: left $(ls "$out"*)"
  echo "# refused: $msg"
}

# ---- synth: planted separators, replay without a model
"$RB" synth --out "$T/s.h5" --layers 2 --prefill 64 --decode 400 --seed 3 --quiet 2>/dev/null || fail "synth"
python3 - "$T/s.h5" <<'PY' || fail "synth tokens"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
t = f["tokens"][:]
assert t.shape == (f.attrs["n_tokens"],) and set(np.unique(t)) <= {0, 1}, np.unique(t)
frac = (t == 1).mean()
assert 1 / 32 < frac < 1 / 8, frac
print(f"# synth: /tokens with {(t == 1).sum()} separators in {len(t)} positions ({frac:.3f})")
PY
"$RB" replay "$T/s.h5" --policies sepllm,streamingllm --budgets 48 --dense-layers 0 --quiet \
    --out "$T/s_res.h5" || fail "replay of sepllm on a synthetic trace"

# bench replay --per-cell gives sepllm the synthetic trace's separators: a row per cell and
# a growth row per policy
out=$("$RB" bench replay --per-cell --layers 1 --prefill 16 --decode 64 --policies sepllm,h2o \
      --budgets 8,16 --reps 1) || fail "bench replay --per-cell with sepllm"
for row in "sepllm_L8 " "sepllm_L16 " "h2o_L16 "; do
  grep -q "^$row" <<<"$out" || fail "bench --per-cell: no row $row in: $out"
done
grep -Eq "^sepllm +8 -> 16 +[0-9.]+x +2.00x" <<<"$out" || fail "bench --per-cell: no growth row: $out"

# ---- refusals: no /tokens; a recorded trace without its model
python3 - "$T/s.h5" "$T/notok.h5" <<'PY' || fail "making a trace without tokens"
import sys, shutil, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "a") as f:
    del f["tokens"]
PY
refused "$T/notok.h5: has no /tokens" "$T/x.h5" \
    "$RB" replay "$T/notok.h5" --policies sepllm --budgets 48 --dense-layers 0 --quiet --out "$T/x.h5"
"$RB" replay "$T/notok.h5" --policies h2o --budgets 48 --dense-layers 0 --quiet --out "$T/h.h5" \
    || fail "h2o refused a trace without tokens"
rm -f "$T/h.h5"

python3 tools/make_tiny_models.py "$T" >/dev/null || fail "make_tiny_models.py"
M=$T/tiny-llama.gguf
P=1,49,87,280,47,272,102,13,115,108,49,33,201,7,90,49,310
# sampled (seed 4 gives 5 separators among the 100 tokens, 5 in the prompt), every layer sparse
"$RB" decode --model "$M" --prompt-tokens $P --max-tokens 100 --temperature 1 --seed 4 --quiet \
    --policy sepllm --budget 12 --dense-layers 0 --record "$T/tr.h5" --record-dtype f32 \
    --out "$T/live.h5" >/dev/null || fail "decode under sepllm"
refused "--model: sepllm reads the tokens" "$T/x.h5" \
    "$RB" replay "$T/tr.h5" --policies sepllm --budgets 12 --dense-layers 0 --quiet --out "$T/x.h5"
python3 - "$T/tr.h5" "$T/badtok.h5" <<'PY' || fail "making a trace with a foreign token"
import sys, shutil, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "a") as f:
    f["tokens"][30] = 100000  # not in tiny llama's 320 tokens: another model's trace
PY
refused "$T/badtok.h5: token 100000 at position 30 is not in the vocabulary" "$T/x.h5" \
    "$RB" replay "$T/badtok.h5" --policies sepllm --budgets 12 --dense-layers 0 --quiet \
    --out "$T/x.h5" --model "$M"
cat >"$T/sw.json" <<JSON
{"traces": ["$T/tr.h5"], "policies": ["sepllm"], "budgets": [12], "dense_layers": 0, "out": "$T/sw.h5"}
JSON
refused "--model: sepllm reads the tokens" "$T/sw.h5" "$RB" sweep "$T/sw.json" --quiet
rm -rf "$T/sw.h5.cells"

# ---- live decode against replay of its own trace, and the float64 reference
"$RB" replay "$T/tr.h5" --policies sepllm,streamingllm --budgets 12 --dense-layers 0 --model "$M" \
    --per-head --dump-selection --quiet --out "$T/rp.h5" || fail "replay with --model"
python3 - "$T" <<'PY' || fail "live decode and replay differ"
import sys, h5py, numpy as np
d = sys.argv[1]
live = h5py.File(f"{d}/live.h5", "r")["runs/sepllm_L12"]
rp = h5py.File(f"{d}/rp.h5", "r")["runs"]
a, b = live["recall"][:], rp["sepllm_L12/recall"][:]
assert a.shape == b.shape and a.shape[0] == 100, (a.shape, b.shape)
assert (live["attended"][:] == rp["sepllm_L12/attended"][:]).all()
# the same sets over the same float32 q and k: sums in another order (e2e_decode_tiny.sh)
assert np.abs(a - b).max() <= 1e-5, np.abs(a - b).max()
other = np.abs(rp["streamingllm_L12/recall"][:] - a).max()
assert other > 0.05, other  # the separators change the sets: the check can see a wrong mask
print(f"# live sepllm decode = replay of its trace: recall within {np.abs(a - b).max():.1g} over "
      f"{a.shape[0]} steps x {a.shape[1]} layers (streamingllm differs by {other:.2f})")
PY
python3 tests/policy_refs.py "$T/tr.h5" "$T/rp.h5" sepllm_L12 sepllm "$M" || fail "reference"
sed "s|\"out\": \"[^\"]*\"|\"model\": \"$M\", \"out\": \"$T/sw.h5\"|" "$T/sw.json" >"$T/sw2.json"
"$RB" sweep "$T/sw2.json" --quiet || fail "sweep with model"
python3 - "$T" <<'PY' || fail "sweep and replay differ"
import sys, h5py, numpy as np
d = sys.argv[1]
a = h5py.File(f"{d}/sw.h5", "r")["runs/sepllm_L12/recall"][:]
b = h5py.File(f"{d}/rp.h5", "r")["runs/sepllm_L12/recall"][:]
assert (a == b).all(), np.abs(a - b).max()
print("# sweep with \"model\" = replay --model, bit for bit")
PY

# ---- eval: prompts captured once and loaded into each session
python3 - "$T/tasks.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(3):
        f.write(json.dumps({"id": f"t{i}", "prompt": f"Q: {i}, then {i + 3}. Next; go!\n" * 3,
                            "answer": i}) + "\n")
PY
"$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies sepllm --budgets 10 --max-tokens 24 \
    --dense-layers 0 --threads 2 --out "$T/ev.h5" --quiet || fail "eval under sepllm"
python3 - "$T" "$RB" "$M" <<'PY' || fail "eval and decode differ under sepllm"
import h5py, json, subprocess, sys
d, rb, m = sys.argv[1:4]
tasks = [json.loads(l) for l in open(f"{d}/tasks.jsonl")]
g = h5py.File(f"{d}/ev.h5", "r")["runs/sepllm_L10/tasks"]
checked = 0
for i, t in enumerate(tasks):
    n = int(g["n_generated"][i])
    gen = g["generated"][i]
    gen = gen.decode("utf-8", "replace") if isinstance(gen, bytes) else gen
    out = subprocess.run([rb, "decode", "--model", m, "--prompt", t["prompt"], "--max-tokens", str(n),
                          "--policy", "sepllm", "--budget", "10", "--dense-layers", "0"],
                         capture_output=True).stdout.decode("utf-8", "replace")
    assert out == gen + "\n", (i, repr(out[:60]), repr(gen[:60]))
    checked += n > 0
assert checked == len(tasks), checked
print(f"# eval under sepllm: {checked} texts equal decode's")
PY
echo "# sepllm: synth separators, refusals, live = replay = float64 reference, sweep, eval"
