#!/usr/bin/env bash
# h200-record-hf.sh: issue 13's GPU run. Gemma 3 270M (the GGUF, converted by
# tools/gguf_to_hf.py, computed in float32) recorded by traces/record_hf.py on CUDA for
# 4096 greedy tokens past an arithmetic prompt, then replayed under every policy at four
# budgets; writes the trace, results, summary TSV, the budget figure and a log with the
# recorder's tokens/s under OUT (default results/h200-record-hf).
# Needs: build/raasbench (make), models/gemma-3-270m-q4_k_m.gguf, python3 with torch (CUDA),
# transformers 5.x, gguf, h5py (tools/install-python-ml.sh on a machine with PyPI), gnuplot
# for the figure. Usage: [RB=raasbench] [GGUF=model.gguf] bash tools/h200-record-hf.sh [N_TOKENS]
set -eu
N=${1:-4096}
OUT=${OUT:-results/h200-record-hf}
RB=${RB:-build/raasbench}
GGUF=${GGUF:-models/gemma-3-270m-q4_k_m.gguf}
mkdir -p "$OUT"
log="$OUT/log.txt"; : >"$log"
say() { echo "$*" | tee -a "$log"; }
python3 -c "import torch, transformers, gguf, h5py; assert torch.cuda.is_available()" ||
  { echo "h200-record-hf: needs torch with CUDA, transformers, gguf and h5py" >&2; exit 2; }
[ -x "$RB" ] && [ -f "$GGUF" ] || { echo "h200-record-hf: needs $RB and $GGUF" >&2; exit 2; }
say "# $(date -u) $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); torch $(python3 -c 'import torch; print(torch.__version__)'); git $(git rev-parse --short HEAD)"
python3 tools/gguf_to_hf.py "$GGUF" "$OUT/g3hf" 2>>"$log"
# the prompt's ids from raasbench's own tokenizer (the converter does not carry one)
head -1 datasets/arith_prompts.txt >"$OUT/prompt.txt"
"$RB" decode --model "$GGUF" --prompt-file "$OUT/prompt.txt" --max-tokens 1 --quiet --record "$OUT/ids.h5"
ids=$(python3 -c "import h5py, sys; f = h5py.File(sys.argv[1]); print(','.join(map(str, f['tokens'][:int(f.attrs['n_prefill'])])))" "$OUT/ids.h5")
rm -f "$OUT/ids.h5"
python3 traces/record_hf.py --model "$OUT/g3hf" --model-name gemma-3-270m --prompt-tokens "$ids" \
  --max-new-tokens "$N" --ignore-eos --device cuda --model-dtype f32 --dtype f16 \
  --out "$OUT/gemma3-270m-hf-cuda.h5" 2>&1 | grep -v "^Loading" | tee -a "$log"
"$RB" info "$OUT/gemma3-270m-hf-cuda.h5" | tee -a "$log"
pols=$("$RB" policies --names | paste -sd,)
"$RB" replay "$OUT/gemma3-270m-hf-cuda.h5" --policies "$pols" --budgets 64,128,256,512 \
  --model "$GGUF" --out "$OUT/replay.h5" | tee -a "$log"
"$RB" export "$OUT/replay.h5" --table summary --out "$OUT/summary.tsv"
if command -v gnuplot >/dev/null; then
  gnuplot -e "in='$OUT/summary.tsv'; out='$OUT/hf_budget_accuracy.png'; title='Gemma 3 270M recorded by record_hf.py on CUDA ($N tokens)'" plots/budget.gp
fi
say "# done: $OUT"
