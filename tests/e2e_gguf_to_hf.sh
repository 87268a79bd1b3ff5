#!/usr/bin/env bash
# e2e_gguf_to_hf.sh: the loader check. tools/gguf_to_hf.py turns the Gemma 3 270M GGUF
# into a transformers model; traces/record_hf.py records a prompt on it and
# `raasbench decode --exact --record` (dequantized weights, double sums) records the same
# prompt ids: q, k and v agree within 1e-4 relative (measured: 3.8e-6 over 18 layers, 29
# positions) and the 16 greedy tokens are equal. A wrong norm convention, RoPE base, window
# or head layout gives errors of order 1. Skips (77) without torch/transformers or the model.
set -u
RB=${RAASBENCH:-build/raasbench}
GGUF=models/gemma-3-270m-q4_k_m.gguf
python3 -c "import torch, transformers, gguf, safetensors" 2>/dev/null ||
  { echo "torch, transformers or gguf not installed (tools/install-python-ml.sh installs them)"; exit 77; }
[ -f "$GGUF" ] || { echo "no $GGUF (tools/get-model.sh fetches it)"; exit 77; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
python3 tools/gguf_to_hf.py "$GGUF" "$dir/hf" 2>"$dir/err" || { cat "$dir/err"; fail "gguf_to_hf.py"; }
"$RB" decode --model "$GGUF" --prompt "The capital of France is Paris. The capital of Italy is" \
  --max-tokens 16 --exact --record "$dir/c.h5" --record-dtype f32 --quiet || fail "raasbench decode"
ids=$(python3 -c "import h5py, sys; f = h5py.File(sys.argv[1]); print(','.join(map(str, f['tokens'][:int(f.attrs['n_prefill'])])))" "$dir/c.h5")
python3 traces/record_hf.py --model "$dir/hf" --prompt-tokens "$ids" --max-new-tokens 16 --ignore-eos \
  --dtype f32 --threads 1 --out "$dir/hf.h5" 2>"$dir/err" || { cat "$dir/err"; fail "record_hf.py"; }
python3 tests/compare_traces.py "$dir/hf.h5" "$dir/c.h5" --tol 1e-4 --min-tokens 16 >"$dir/cmp" ||
  { cat "$dir/cmp"; fail "traces differ"; }
echo "# Gemma 3 270M, record_hf on the converted model vs decode --exact: $(tail -1 "$dir/cmp")"
echo "# $(head -1 "$dir/cmp")"
# a file that is not a GGUF, and one that is not there, are refused with exit 2
echo "not a gguf" >"$dir/bad.gguf"
for f in "$dir/bad.gguf" "$dir/none.gguf"; do
  python3 tools/gguf_to_hf.py "$f" "$dir/x" 2>"$dir/err"; rc=$?
  [ $rc = 2 ] && grep -q "^raasbench: " "$dir/err" || { cat "$dir/err"; fail "$f: exit $rc, expected 2"; }
done
echo "gguf_to_hf: loader check passed"
