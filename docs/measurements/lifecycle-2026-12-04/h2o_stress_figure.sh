#!/usr/bin/env bash
# run_all.sh's H2O-stress piece (full mode) and its figure
set -euo pipefail
RB=build/raasbench R=results F=results/figures
threads=$(nproc)
policy_names() { $RB policies --names "$@" | paste -sd, -; }
date -u +"%T h2o stress"
$RB synth --preset h2o-stress --out $R/h2o_stress.h5
$RB replay $R/h2o_stress.h5 --policies "$(policy_names --except dense | paste -sd, -)" --budgets 256 \
  --dense-layers 0 --latency-every 64 --threads $threads --out $R/h2o_stress_results.h5 --quiet
$RB info $R/h2o_stress_results.h5 | tail -n +9
$RB export $R/h2o_stress_results.h5 --table steps --out $F/h2o_stress_steps.tsv
gnuplot -e "in='$F/h2o_stress_steps.tsv'; out='$F/h2o_stress_recall_step.png'; budget=256" plots/recall_step.gp
date -u +"%T done"
