#!/usr/bin/env bash
# figures-gemma-policies.sh: every registered policy on a recorded Gemma 3 270M decode: the
# budget figure and the trade-off figure (docs/figures/gemma_policies_*.png), and each
# policy's per-cell cost at L = 256 and 1024 from `raasbench bench replay --per-cell`
# (docs/measurements/per-cell-cost-cpu-DATE.txt). Usage, from the repository root:
#
#   tools/figures-gemma-policies.sh [TRACE.h5]
#
# TRACE defaults to results/gemma_600.h5, recorded here when missing: 600 greedy tokens of
# the first prompt of datasets/arith_prompts.txt, dense, one thread, niced (~1 min on the
# 2-core dev VM). The sweep gives sepllm the model's vocabulary ("model"); every layer left
# to the policies is a global one (Gemma's sliding-window layers keep their window).
set -euo pipefail
RB=${RAASBENCH:-build/raasbench}
M=models/gemma-3-270m-q4_k_m.gguf
T=${1:-results/gemma_600.h5}
R=results/gemma_policies
F=docs/figures
mkdir -p "$R" "$F" docs/measurements
[ -e "$M" ] || { echo "no model at $M (make model)"; exit 1; }
if [ ! -e "$T" ]; then
  nice -n 10 "$RB" decode --model "$M" --prompt "$(head -1 datasets/arith_prompts.txt)" \
    --max-tokens 600 --threads 1 --quiet --record "$T"
fi
"$RB" info "$T" | sed -n '4,8p'
pols=$("$RB" policies --names | sed 's/.*/"&"/' | paste -sd, - | sed 's/,/, /g')
cat > "$R/sweep.json" <<JSON
{
  "comment": "written by tools/figures-gemma-policies.sh",
  "traces": ["$T"],
  "policies": [$pols],
  "budgets": [32, 64, 128, 256],
  "page_size": 16,
  "dense_layers": 2,
  "threads": 2,
  "model": "$M",
  "out": "$R/sweep.h5"
}
JSON
rm -rf "$R/sweep.h5" "$R/sweep.h5.cells"
nice -n 10 "$RB" sweep "$R/sweep.json" --quiet
"$RB" export "$R/sweep.h5" --table summary --out "$R/summary.tsv"
n=$("$RB" info "$T" | awk '/^tokens/ {print $2 " tokens (" $4 " prompt + " $7 " decode)"}')
gnuplot -e "in='$R/summary.tsv'; out='$F/gemma_policies_budget.png'; title='Gemma 3 270M, a recorded decode of $n: every policy'" plots/budget.gp
gnuplot -e "in='$R/summary.tsv'; out='$F/gemma_policies_tradeoff.png'; keyx=0.99; title='Gemma 3 270M, $n: recall against peak memory (point area: step latency)'" plots/tradeoff.gp
echo "figures: $F/gemma_policies_budget.png $F/gemma_policies_tradeoff.png"

# Per-cell cost on the default synthetic trace (4 layers, 128 + 3000 tokens: L = 1024 is
# full for the second half), every policy, one thread, median of 3.
{
  echo "# raasbench bench replay --per-cell --policies $("$RB" policies --names | paste -sd, -) --budgets 256,1024"
  echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores, $(date -u +%Y-%m-%d)"
  nice -n 10 "$RB" bench replay --per-cell --policies "$("$RB" policies --names | paste -sd, -)" \
    --budgets 256,1024 --reps 3
} | tee docs/measurements/per-cell-cost-cpu-$(date -u +%Y-%m-%d).txt
