#!/usr/bin/env bash
# run_all.sh's synthetic pieces, full mode (not the whole job): traces, sweep, long replay,
# lifecycle, exports and figures. Run from the repository root, nice'd.
set -euo pipefail
RB=build/raasbench R=results F=results/figures
mkdir -p $F
threads=$(nproc)
policy_names() { $RB policies --names "$@" | paste -sd, -; }
sweep_list() {
  local p out=
  for p in ${1//,/ }; do
    out+="${out:+, }\"$p\""
    [ "$p" = raas ] && [ "${2:-}" = --exact-raas ] &&
      out+=', {"name": "raas", "params": {"score": "exact"}, "label": "exact"}'
  done
  echo "$out"
}
ms_args=(--layers 4 --prefill 128 --decode 2048)
long_args=(--layers 2 --prefill 256 --decode 8192)
budgets="64, 128, 256, 512, 1024"
policies=$(sweep_list "$(policy_names)" --exact-raas)
long_budget=512
long_policies=$(policy_names --except oracle,random)
date -u +"%T synthetic traces"
$RB synth --out $R/milestones.h5 --seed 1 "${ms_args[@]}"
$RB synth --out $R/long.h5 --seed 2 "${long_args[@]}"
date -u +"%T lifecycle"
$RB lifecycle $R/milestones.h5 --layer 2 --out $R/lifecycle.h5
$RB export $R/lifecycle.h5 --table heatmap --out $F/lifecycle_heatmap.tsv
$RB export $R/lifecycle.h5 --table milestones --out $F/lifecycle_milestones.tsv
$RB export $R/lifecycle.h5 --table lifespan --out $F/lifecycle_lifespan.tsv
date -u +"%T sweep"
cat > $R/sweep.json <<JSON
{
  "comment": "written by run_all.sh",
  "traces": ["$R/milestones.h5"],
  "policies": [$policies],
  "budgets": [$budgets],
  "page_size": 16,
  "dense_layers": 2,
  "threads": $threads,
  "latency_every": 4,
  "out": "$R/sweep.h5"
}
JSON
rm -rf $R/sweep.h5 $R/sweep.h5.cells
$RB sweep $R/sweep.json
$RB info $R/sweep.h5 | tail -n +9
date -u +"%T long replay"
$RB replay $R/long.h5 --policies $long_policies --budgets $long_budget \
  --dense-layers 0 --threads 1 --out $R/long_results.h5 --quiet
$RB info $R/long_results.h5 | tail -n +9
date -u +"%T exports"
$RB export $R/sweep.h5 --table summary --out $F/sweep_summary.tsv
$RB export $R/long_results.h5 --table steps --out $F/long_steps.tsv
date -u +"%T done"
