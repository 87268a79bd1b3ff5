#!/usr/bin/env bash
# seeds.sh OUTDIR: seed corpora for the libFuzzer targets, made from the repository's own
# fixtures: OUTDIR/<target>/ for gguf, tokenizer, trace, results, sweep_config and tasks, and
# OUTDIR/vocab/ (the tokenizer target's vocabularies). Needs build/raasbench (make) and
# python3 with numpy and gguf (tools/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-build-fuzz/seeds}
RB=${RAASBENCH:-build/raasbench}
[ -x "$RB" ] || { echo "✗ $RB missing: run make first" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"/{gguf,tokenizer,trace,results,sweep_config,tasks,vocab}
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# GGUF: every fixture of the C tests and the tiny models (a few hundred KiB at most).
python3 tools/make_test_gguf.py "$T/g" >/dev/null
python3 tools/make_tiny_models.py "$T/g" >/dev/null
cp "$T"/g/*.gguf "$out/gguf/"
cp "$T"/g/spm.gguf "$T"/g/bpe.gguf "$T"/g/bpe_trained_*.gguf "$out/vocab/"

# Tokenizer: first byte chooses the vocabulary and flags, the rest is text.
i=0
while IFS= read -r line; do
  for sel in 0 1 2 3 4 5 49; do
    printf "\\$(printf %03o $sel)%s" "$line" >"$out/tokenizer/s$i"; i=$((i+1))
  done
done < <(head -4 datasets/arith_prompts.txt; printf '%s\n' "Hello world" \
  "naïve café — 東京 🙂" "<start_of_turn>user hi<end_of_turn>" "  spaces\tand\nnewlines  " \
  "don't 123456 x=y+1" "Привет, мир! 1+1=2")

# Traces: synthetic ones (f16 and f32, with truth) and a recorded decode (tokens and text).
"$RB" synth --out "$out/trace/synth16.h5" --layers 2 --q-heads 2 --kv-heads 1 --head-dim 32 \
    --prefill 8 --decode 24 --phoenix 0 --quiet
"$RB" synth --out "$out/trace/synth32.h5" --layers 1 --q-heads 2 --kv-heads 1 --head-dim 32 \
    --prefill 24 --decode 280 --dtype f32 --phoenix 1 --seed 2 --quiet
"$RB" decode --model "$T/g/tiny-gemma3.gguf" --prompt-tokens 1,272,87,280,273 --max-tokens 6 \
    --quiet --record "$out/trace/decode.h5" >/dev/null

# Results: a replay with two policies, per-head series and the selection dump; a live
# decode's results (token_match, kl).
"$RB" replay "$out/trace/synth16.h5" --policies dense,h2o --budgets 16 --per-head \
    --dump-selection --dense-layers 1 --out "$out/results/replay.h5" --quiet --threads 1
"$RB" decode --model "$T/g/tiny-gemma3.gguf" --prompt-tokens 1,272,87,280,273 --max-tokens 6 \
    --quiet --teacher-forced --policies streamingllm --budgets 8 --out "$out/results/decode.h5" >/dev/null
cp "$out/trace/synth16.h5" "$out/results/"   # a trace: refused as results, a different path

# The same files as h5tree programs (tests/fuzz/h5tree.h): the HDF5 targets then mostly
# fuzz files libhdf5 wrote itself, i.e. raasbench's checks rather than libhdf5's parser.
for d in trace results; do
  for f in "$out/$d"/*.h5; do python3 tests/fuzz/h5tree.py "$f" "${f%.h5}.tree"; done
done

# Sweep configurations: the README's example and variants touching every key.
cat >"$out/sweep_config/readme.json" <<'J'
{
  "traces":   ["results/milestones.h5"],
  "policies": ["dense", "streamingllm", "h2o", "quest",
               "raas", {"name": "raas", "params": {"score": "exact"}, "label": "exact"}],
  "budgets":  [64, 128, 256, 512, 1024],
  "page_size": 16,
  "dense_layers": 2,
  "out": "results/sweep.h5"
}
J
cat >"$out/sweep_config/all_keys.json" <<'J'
{"traces": ["a.h5", "b.h5"], "policies": [{"name": "raas", "params": {"r": 0.3, "budget": "decode"}, "label": "r3"}, "random"],
 "budgets": [16], "page_size": 8, "dense_layers": 0, "elem_bytes": 4, "steps": 10, "seed": 3,
 "threads": 2, "batch": 1, "latency_every": 4, "out": "x.h5", "comment": {"any": [1, null, true]}}
J
printf '{"traces":["t.h5"],"policies":["dense"],"budgets":[1],"out":"o.h5"}' >"$out/sweep_config/min.json"
printf '{"traces":["t.h5"],"policies":[{"name":"nope"}],"budgets":[1.5],"out":""}' >"$out/sweep_config/bad.json"

# Task files: generated chains, GSM8K lines, and hand-written edge cases.
"$RB" tasks --kind chain --n 3 --seed 1 --out "$out/tasks/chains.jsonl"
"$RB" tasks --kind chain --n 2 --steps 4 --max-add 9 --p-add 0.5 --seed 2 --out "$out/tasks/chains2.jsonl"
if [ -f datasets/gsm8k/test.jsonl ]; then head -3 datasets/gsm8k/test.jsonl >"$out/tasks/gsm8k.jsonl"; fi
cat >"$out/tasks/edge.jsonl" <<'J'
{"id": "a", "prompt": "1+1=", "answer": 2}
{"id": "b", "question": "half of 3?", "answer": "it is #### 3/2"}

{"prompt": "x", "answer": "-1.5e3"}
{"id": "c", "prompt": "y", "answer": "1,000", "extra": [1, {"k": null}]}
J
n=$(find "$out" -type f | wc -l)
echo "✓ $n seed files in $out"
