#!/usr/bin/env bash
# run_all.sh: the main job, from a fresh machine to the paper's figures.
#   ./run_all.sh           full run (about 10 minutes on 2 cores)
#   ./run_all.sh --quick   a one-minute version (smaller traces, fewer cells)
# Installs what is missing, builds, makes the synthetic traces (one rich in milestones, one
# long), runs the budget sweep, the long-decode replay and the lifecycle analysis, draws the
# figures, and, when the real model can be installed, records and replays Gemma 3 270M
# decodes. Writes HDF5 under results/ and PNGs under results/figures/.
set -euo pipefail
cd "$(dirname "$0")"
quick=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "raasbench: run_all.sh: unknown option '$a' (--quick or nothing)" >&2; exit 2 ;;
  esac
done
t_start=$(date +%s)
step() { printf '\n== %s  (%ds)\n' "$1" $(( $(date +%s) - t_start )); }

step "dependencies and build"
tools/install-deps.sh
make -j2 all >/dev/null
RB=build/raasbench
R=results
F=$R/figures
mkdir -p "$F"
threads=$(nproc)

# Policies come from the registry: `raasbench policies --names` lists every policy a run may
# choose (internal ones such as window are not listed); a run that leaves some out names
# them with --except (which refuses a name that is not registered) and says why.
policy_names() { $RB policies --names "$@" | paste -sd, -; }
# The sweep's JSON list of policies (comma-separated names in $1); with --exact-raas, RaaS
# also runs with its exact attention-mass score, labelled "exact", right after RaaS.
sweep_list() {
  local p out=
  for p in ${1//,/ }; do
    out+="${out:+, }\"$p\""
    [ "$p" = raas ] && [ "${2:-}" = --exact-raas ] &&
      out+=', {"name": "raas", "params": {"score": "exact"}, "label": "exact"}'
  done
  echo "$out"
}

if [ $quick = 1 ]; then
  ms_args=(--layers 4 --prefill 128 --decode 1024)
  long_args=(--layers 2 --prefill 128 --decode 2048)
  budgets="64, 128, 256, 512"
  policies=$(sweep_list "$(policy_names --except random)")   # quick: the random floor left out
  long_budget=256
else
  ms_args=(--layers 4 --prefill 128 --decode 2048)
  long_args=(--layers 2 --prefill 256 --decode 8192)
  budgets="64, 128, 256, 512, 1024"
  policies=$(sweep_list "$(policy_names)" --exact-raas)
  long_budget=512
fi
# The long decode measures latency and memory of what a system could run: the oracle (it
# reads the dense attention) and the random floor frame accuracy only.
long_policies=$(policy_names --except oracle,random)

step "synthetic traces"
$RB synth --out $R/milestones.h5 --seed 1 "${ms_args[@]}"
$RB synth --out $R/long.h5 --seed 2 "${long_args[@]}"

step "budget sweep on the milestone trace (latency timed on every 4th step, metrics on every step)"
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
rm -rf $R/sweep.h5 $R/sweep.h5.cells   # a fresh trace: cells of an earlier run do not apply
$RB sweep $R/sweep.json
$RB info $R/sweep.h5 | tail -n +9

step "long decode: latency and memory against decode length (L=$long_budget, every layer sparse)"
$RB replay $R/long.h5 --policies $long_policies --budgets $long_budget \
  --dense-layers 0 --threads 1 --out $R/long_results.h5 --quiet   # one thread: latency without a neighbour in the cache
$RB info $R/long_results.h5 | tail -n +9

step "milestone lifecycles"
$RB lifecycle $R/milestones.h5 --layer 2 --out $R/lifecycle.h5

if [ $quick = 0 ]; then
  step "H2O stress: recall along a long decode where stale accumulated scores crowd out new milestones"
  $RB synth --preset h2o-stress --out $R/h2o_stress.h5
  $RB replay $R/h2o_stress.h5 --policies "$(policy_names --except dense | paste -sd, -)" --budgets 256 \
    --dense-layers 0 --latency-every 64 --threads $threads --out $R/h2o_stress_results.h5 --quiet
  $RB info $R/h2o_stress_results.h5 | tail -n +9
fi

step "figures"
$RB export $R/sweep.h5 --table summary --out $F/sweep_summary.tsv
$RB export $R/long_results.h5 --table steps --out $F/long_steps.tsv
$RB export $R/lifecycle.h5 --table heatmap --out $F/lifecycle_heatmap.tsv
$RB export $R/lifecycle.h5 --table milestones --out $F/lifecycle_milestones.tsv
$RB export $R/lifecycle.h5 --table lifespan --out $F/lifecycle_lifespan.tsv
plot() { gnuplot -e "$1" "$2" 2>&1 | { grep -v '^$' || true; }; }
plot "in='$F/sweep_summary.tsv'; out='$F/budget_accuracy.png'" plots/budget.gp
plot "in='$F/sweep_summary.tsv'; out='$F/tradeoff_accuracy_memory.png'" plots/tradeoff.gp
plot "in='$F/long_steps.tsv'; out='$F/latency_vs_step.png'; budget=$long_budget" plots/latency.gp
plot "in='$F/long_steps.tsv'; out='$F/memory_vs_step.png'; budget=$long_budget" plots/memory.gp
plot "in='$F/lifecycle_heatmap.tsv'; ms='$F/lifecycle_milestones.tsv'; out='$F/lifecycle_waterfall.png'" plots/lifecycle.gp
plot "in='$F/lifecycle_lifespan.tsv'; out='$F/lifecycle_lifespan.png'" plots/lifespan.gp
if [ -f $R/h2o_stress_results.h5 ] && [ $quick = 0 ]; then
  $RB export $R/h2o_stress_results.h5 --table steps --out $F/h2o_stress_steps.tsv
  plot "in='$F/h2o_stress_steps.tsv'; out='$F/h2o_stress_recall_step.png'; budget=256" plots/recall_step.gp
fi

step "real model (Gemma 3 270M, Q4_K_M)"
if [ -x tools/run-model-job.sh ]; then
  tools/run-model-job.sh $([ $quick = 1 ] && echo --quick) || echo "real model job failed: see above (the synthetic results stand)"
else
  echo "no model job in this checkout"
fi

step "done"
echo "results:"
ls -1 $R/*.h5 | sed 's/^/  /'
echo "figures:"
ls -1 $F/*.png | sed 's/^/  /'
echo
$RB info $R/sweep.h5 | tail -n +9 | awk 'NR==1 || /_L256/'
echo "total: $(( $(date +%s) - t_start )) s"
