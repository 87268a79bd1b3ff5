#!/usr/bin/env bash
# e2e_hardening.sh: the faults of issue 15, each reproduced and refused as a class:
#  - declared HDF5 sizes the file cannot hold (trace truth [2^40, 3], n_tokens 1e9 with
#    unwritten datasets, results datasets [2^33, 2], /summary of 2^34 rows): exit 2,
#    `<file>: <dataset>: declares ... but ...`, no huge allocation;
#  - an output that is an input (same name, hard link, symbolic link) for replay, sweep,
#    lifecycle, export and decode (--record, --out, --logits-out onto the model): exit 2,
#    the input untouched; an output that is a directory or a device is refused before work;
#  - ranged integer options; decode's unknown policy named before a missing budget;
#  - damaged inputs: a vocabulary smaller than the embedding, NaN/Inf in the embedding or a
#    norm, /tokens of the wrong length, a non-string /text, a rank-2 q (its real shape is
#    named), duplicate JSON keys, JSON nested too deep, a directory as a config;
#  - no HDF5 diagnostics from worker threads when a damaged chunk is read;
#  - temporaries: a stale one of a dead process is removed, SIGTERM removes the live one, a
#    damaged sweep cell is run again.
set -u
RB=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
python3 -c "import gguf, numpy, h5py" 2>/dev/null || { echo "python3 with gguf, numpy and h5py is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect2 PATTERN CMD...: exit 2 with a message matching PATTERN, and no crash
expect2() {
  local pat=$1; shift
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc != 2 ] || ! grep -qE -- "$pat" <<<"$out"; then
    fail "$* -> rc=$rc '$out' (wanted 2, /$pat/)"
  else
    echo "ok   $(basename "$2" 2>/dev/null) ${*:2:3} -> 2: $(head -1 <<<"$out" | cut -c1-150)"
  fi
}
sum() { sha256sum "$1" | cut -d' ' -f1; }

"$RB" synth --out "$T/t.h5" --layers 2 --prefill 16 --decode 40 --seed 1 --quiet 2>/dev/null || { echo "synth failed"; exit 1; }
python3 tools/make_tiny_models.py "$T" >/dev/null || { echo "make_tiny_models.py failed"; exit 1; }
M=$T/tiny-gemma3.gguf

# ---- 1. declared sizes the file cannot hold
python3 - "$T" <<'PY'
import h5py, numpy as np, shutil, sys
T = sys.argv[1]
def copy(name):
    shutil.copy(f"{T}/t.h5", f"{T}/{name}")
    return h5py.File(f"{T}/{name}", "a")
f = copy("big_truth.h5"); del f["truth"]
f.create_group("truth").create_dataset("milestones", shape=(2**40, 3), dtype="i4", chunks=(1, 3)); f.close()
f = copy("big_tokens.h5"); f.attrs["n_tokens"] = 10**9
for l in ("layer_000", "layer_001"):
    for n in "qkv":
        h = 8 if n == "q" else 2
        del f[l][n]; f[l].create_dataset(n, shape=(10**9, h, 64), dtype="f2", chunks=(64, h, 64))
f.close()
f = copy("rank2.h5"); del f["layer_000/q"]; f["layer_000/q"] = np.zeros((56, 4), "f2"); f.close()
f = copy("short_tokens.h5"); del f["tokens"]; f["tokens"] = np.arange(3, dtype="i4"); f.close()  # synth writes /tokens
f = copy("text_int.h5"); f["text"] = np.arange(3); f.close()
PY
expect2 "truth/milestones: declares \[1099511627776, 3\].* but only 0 of" "$RB" lifecycle "$T/big_truth.h5" --layer 0 --out "$T/lc.h5"
expect2 "/layer_000/q: declares \[1000000000, 8, 64\].*but only 0 of" "$RB" replay "$T/big_tokens.h5" --policies h2o --budgets 16 --dense-layers 0 --out "$T/x.h5"
expect2 "/layer_000/q has shape \[56, 4\], expected \[56, 8, 64\]" "$RB" info "$T/rank2.h5"
expect2 "/tokens has 3 entries, expected n_tokens=56" "$RB" info "$T/short_tokens.h5"
expect2 "/text must be one variable-length string" "$RB" info "$T/text_int.h5"
"$RB" replay "$T/t.h5" --policies h2o,dense --budgets 16 --dense-layers 0 --out "$T/r.h5" --quiet || fail "replay of a good trace"
python3 - "$T" <<'PY'
import h5py, shutil, sys
T = sys.argv[1]
shutil.copy(f"{T}/r.h5", f"{T}/big_series.h5")
f = h5py.File(f"{T}/big_series.h5", "a"); g = f["runs/h2o_L16"]
del g["recall"]; g.create_dataset("recall", shape=(2**33, 2), dtype="f4", chunks=(1024, 2)); f.close()
shutil.copy(f"{T}/r.h5", f"{T}/big_summary.h5")
f = h5py.File(f"{T}/big_summary.h5", "a"); dt = f["summary"].dtype
del f["summary"]; f.create_dataset("summary", shape=(2**34,), dtype=dt, chunks=(1024,)); f.close()
PY
expect2 "recall: declares \[8589934592, 2\].*but only 0 of" "$RB" export "$T/big_series.h5" --table steps
expect2 "summary: declares \[17179869184\].*but only 0 of" "$RB" info "$T/big_summary.h5"

# ---- 2. an output that is an input; directories and devices
before=$(sum "$T/t.h5")
ln -f "$T/t.h5" "$T/t_hard.h5"; ln -sf "$T/t.h5" "$T/t_sym.h5"
expect2 "is the input" "$RB" replay "$T/t.h5" --policies h2o --budgets 16 --dense-layers 0 --out "$T/t.h5"
expect2 "is the input .*the same file" "$RB" replay "$T/t.h5" --policies h2o --budgets 16 --dense-layers 0 --out "$T/t_hard.h5"
expect2 "is a symbolic link" "$RB" replay "$T/t.h5" --policies h2o --budgets 16 --dense-layers 0 --out "$T/t_sym.h5"
expect2 "is the input" "$RB" lifecycle "$T/t.h5" --layer 0 --out "$T/t_hard.h5"
echo "{\"traces\": [\"$T/t.h5\"], \"policies\": [\"h2o\"], \"budgets\": [16], \"dense_layers\": 0, \"out\": \"$T/t_hard.h5\"}" > "$T/sw.json"
expect2 "is the input" "$RB" sweep "$T/sw.json"
[ -e "$T/t_hard.h5.cells" ] && fail "sweep made its cells directory before refusing"
[ "$(sum "$T/t.h5")" = "$before" ] || fail "the trace was changed"
rsum=$(sum "$T/r.h5")
expect2 "is the input" "$RB" export "$T/r.h5" --table summary --out "$T/r.h5"
[ "$(sum "$T/r.h5")" = "$rsum" ] || fail "export changed its input"
msum=$(sum "$M"); ln -f "$M" "$T/m_hard.gguf"
for opt in --record --out --logits-out; do
  expect2 "is the input" "$RB" decode --model "$M" --prompt-tokens 1,2 --max-tokens 2 --quiet $opt "$T/m_hard.gguf"
done
expect2 "given as two outputs" "$RB" decode --model "$M" --prompt-tokens 1,2 --max-tokens 2 --quiet --record "$T/o.h5" --out "$T/o.h5"
[ "$(sum "$M")" = "$msum" ] || fail "decode changed the model"
mkdir -p "$T/dir"
# a private device node (never /dev/null: a writer without the check would replace it)
mknod "$T/null" c 1 3 2>/dev/null || mkfifo "$T/null"
# a directory output is refused at once: on a trace too long to replay in the time allowed
"$RB" synth --out "$T/long.h5" --layers 2 --prefill 64 --decode 20000 --seed 1 --quiet 2>/dev/null
expect2 "is a directory" timeout 5 "$RB" replay "$T/long.h5" --policies oracle --budgets 16 --dense-layers 0 --out "$T/dir"
expect2 "is a device|not a regular file" "$RB" replay "$T/t.h5" --policies h2o --budgets 16 --dense-layers 0 --out "$T/null"
expect2 "is a directory" "$RB" lifecycle "$T/t.h5" --layer 0 --out "$T/dir"
expect2 "is a device|not a regular file" "$RB" decode --model "$M" --prompt-tokens 1,2 --max-tokens 2 --quiet --logits-out "$T/null"
[ -c "$T/null" ] || [ -p "$T/null" ] || fail "the device node was replaced"

# ---- 6. arguments
expect2 "^raasbench: --threads: must be in 0\.\.1024, got -5" "$RB" replay "$T/t.h5" --policies h2o --budgets 16 --threads -5 --out "$T/x.h5"
expect2 "^raasbench: --dense-layers: must be in 0\.\.256" "$RB" replay "$T/t.h5" --policies h2o --budgets 16 --dense-layers 1000000 --out "$T/x.h5"
expect2 "^raasbench: --dense-layers: 2 leaves no layer" "$RB" replay "$T/t.h5" --policies h2o --budgets 16 --dense-layers 2 --out "$T/x.h5"
expect2 "^raasbench: --layer: must be in 0\.\." "$RB" lifecycle "$T/t.h5" --layer -1 --out "$T/x.h5"
expect2 "^raasbench: lifecycle: --layer is required" "$RB" lifecycle "$T/t.h5" --out "$T/x.h5"
expect2 "^raasbench: lru: unknown policy" "$RB" decode --model "$M" --prompt-tokens 1,2 --policy lru
expect2 "^raasbench: lru: unknown policy" "$RB" decode --model "$M" --prompt-tokens 1,2 --policy lru --budget 8
expect2 "^raasbench: --budget: required with --policy h2o" "$RB" decode --model "$M" --prompt-tokens 1,2 --policy h2o
expect2 "^raasbench: --threads: must be in 0\.\.256, got 999" "$RB" decode --model "$M" --prompt-tokens 1,2 --threads 999
expect2 "^raasbench: --seed: must be in 0\.\." "$RB" synth --out "$T/x.h5" --seed -1
"$RB" replay --help | grep -q "threads N .*\[0\.\.1024\]" || fail "replay --help does not show the range of --threads"
[ -e "$T/x.h5" ] && fail "a refused command left $T/x.h5"

# ---- 7. damaged models, traces and configs
python3 - "$T" <<'PY'
import gguf, numpy as np, shutil, sys
sys.path.insert(0, "tools")
import make_tiny_models as mk
T = sys.argv[1]
# a vocabulary 20 tokens short of the embedding's rows
orig = gguf.GGUFWriter.add_token_list, gguf.GGUFWriter.add_token_scores, gguf.GGUFWriter.add_token_types
gguf.GGUFWriter.add_token_list = lambda w, v: orig[0](w, v[:-20])
gguf.GGUFWriter.add_token_scores = lambda w, v: orig[1](w, v[:-20])
gguf.GGUFWriter.add_token_types = lambda w, v: orig[2](w, v[:-20])
mk.make("gemma3", f"{T}/short_vocab.gguf", 1234)
for name, tensor in (("nan_emb", "token_embd.weight"), ("inf_norm", "blk.0.attn_norm.weight")):
    shutil.copy(f"{T}/tiny-gemma3.gguf", f"{T}/{name}.gguf")
    r = gguf.GGUFReader(f"{T}/{name}.gguf", "r+")
    t = [t for t in r.tensors if t.name == tensor][0]
    d = t.data.reshape(-1)
    if d.dtype == np.uint8:  # q8_0: each block of 34 bytes starts with its float16 scale
        d[34 * 5:34 * 5 + 2] = np.frombuffer(np.float16(np.nan).tobytes(), np.uint8)
    else:
        d[3] = np.inf
PY
expect2 "tokenizer.ggml.tokens has 300 entries but token_embd.weight has 320 rows" "$RB" decode --model "$T/short_vocab.gguf" --prompt-tokens 1,2 --max-tokens 2
expect2 "token_embd.weight: NaN at row 2" "$RB" decode --model "$T/nan_emb.gguf" --prompt-tokens 1,2 --max-tokens 2
expect2 "blk.0.attn_norm.weight: Inf at element 3" "$RB" decode --model "$T/inf_norm.gguf" --prompt-tokens 1,2 --max-tokens 2
printf '{"traces": ["%s"], "policies": ["h2o"], "budgets": [16], "out": "%s", "budgets": [32]}' "$T/t.h5" "$T/s.h5" > "$T/dup.json"
expect2 "duplicate key 'budgets' in \\$" "$RB" sweep "$T/dup.json"
printf '{"traces": ["%s"], "policies": [{"name": "raas", "label": "a", "params": {"r": 0.1, "r": 0.2}}], "budgets": [16], "out": "%s"}' "$T/t.h5" "$T/s.h5" > "$T/dup2.json"
expect2 "duplicate key 'r' in \\$\.policies\[0\]\.params" "$RB" sweep "$T/dup2.json"
python3 -c "print('{\"a\": ' + '[' * 1200 + ']' * 1200 + '}')" > "$T/deep.json"
expect2 "nested deeper than 1000 levels" "$RB" sweep "$T/deep.json"
printf '{"traces": [1,\n  2 x]}' > "$T/broken.json"
expect2 "broken JSON at line 2, column 5" "$RB" sweep "$T/broken.json"
expect2 "is a directory, not a file" "$RB" sweep "$T/dir"
[ -e "$T/s.h5" ] && fail "a refused sweep wrote its output"

# HDF5 prints nothing of its own, from any thread: a damaged chunk read by a worker
"$RB" synth --out "$T/t4.h5" --layers 4 --prefill 64 --decode 400 --seed 2 --quiet 2>/dev/null
python3 - "$T/t4.h5" <<'PY'
import h5py, sys
f = h5py.File(sys.argv[1], "r"); d = f["layer_003/k"]
ci = d.id.get_chunk_info(d.id.get_num_chunks() - 1); f.close()
with open(sys.argv[1], "r+b") as g:
    g.seek(ci.byte_offset); g.write(b"\xff" * ci.size)
PY
out=$("$RB" replay "$T/t4.h5" --policies h2o --budgets 64 --dense-layers 0 --threads 2 --out "$T/x.h5" --quiet 2>&1); rc=$?
[ $rc = 2 ] && grep -q "cannot read /layer_003/k" <<<"$out" || fail "damaged chunk: rc=$rc $out"
grep -q "HDF5-DIAG" <<<"$out" && fail "HDF5 printed its own diagnostics: $(head -2 <<<"$out")"
[ $rc = 2 ] && echo "ok   damaged chunk in a worker thread -> 2, $(wc -l <<<"$out") line(s) on stderr"

# ---- 4. temporaries
f0=$fails
touch "$T/st.h5.tmp-999999999"  # no such process
"$RB" replay "$T/t.h5" --policies h2o --budgets 16 --dense-layers 0 --out "$T/st.h5" --quiet || fail "replay next to a stale temporary"
[ -e "$T/st.h5.tmp-999999999" ] && fail "the stale temporary of a dead writer was left"
"$RB" replay "$T/long.h5" --policies oracle,h2o,quest --budgets 32,64 --dense-layers 0 --threads 1 --out "$T/sig.h5" --quiet & pid=$!
for i in $(seq 1 500); do ls "$T"/sig.h5.tmp-* >/dev/null 2>&1 && break; sleep 0.01; done
ls "$T"/sig.h5.tmp-* >/dev/null 2>&1 || fail "no temporary appeared while replaying"
kill -TERM $pid; wait $pid; rc=$?
[ $rc = 143 ] || fail "replay killed by SIGTERM exited $rc, not 143"
ls "$T"/sig.h5* >/dev/null 2>&1 && fail "SIGTERM left $(ls "$T"/sig.h5*)"
[ $fails = $f0 ] && echo "ok   stale temporary removed; SIGTERM mid-replay: exit $rc, no temporary left"
f0=$fails
cat > "$T/cells.json" <<JSON
{"traces": ["$T/t.h5"], "policies": ["h2o", "quest"], "budgets": [32, 64], "dense_layers": 0, "threads": 1, "out": "$T/cs.h5"}
JSON
"$RB" sweep "$T/cells.json" --quiet || fail "sweep"
cell=$(ls "$T"/cs.h5.cells/*_L*.h5 | head -1)
truncate -s 1000 "$cell"
out=$("$RB" sweep "$T/cells.json" 2>&1) || fail "sweep with a truncated cell: $out"
grep -q "(1 run now, 3 already done)" <<<"$out" || fail "the truncated cell was not run again: $out"
"$RB" info "$cell" >/dev/null 2>&1 || fail "the redone cell is not whole"
[ $fails = $f0 ] && echo "ok   a truncated sweep cell is run again"

[ $fails = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all hardening checks passed"
