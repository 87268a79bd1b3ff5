#!/usr/bin/env bash
# eval-experiments.sh: the graded-eval experiments of docs/DESIGN.md §9 (issue 10's acceptance)
# on one model, each a resumable `raasbench eval` (rerun the script after a kill or a time
# limit and only the missing tasks run). Meant for a many-core machine: THREADS workers.
#
#   tools/eval-experiments.sh OUTDIR [STAGE ...]
#   stages (default all, in this order): calibrate sweep gsm8k length long
#
# Environment: RB (raasbench binary, default build/raasbench), MODEL (default
# models/gemma-3-270m-q4_k_m.gguf), THREADS (default: all cores), N_CAL (100), N_SWEEP (100),
# N_GSM8K (200), N_LENGTH (16 per chain length), N_LONG (8), BUDGETS ("32,64,128"), CHAIN
# (chain knobs for the sweep and length stages; default: raasbench tasks' defaults),
# EXTRA_POLICIES (more policies for the sweep stage, e.g. tova,snapkv,rkv,lazyeviction,adakv).
#
#   calibrate  dense accuracy on N_CAL chains: the defaults and two harder settings (cal_*.h5)
#   sweep      N_SWEEP chains: dense, streamingllm, h2o, quest, raas (budget total and
#              decode) and raas with the prompt evictable, at BUDGETS (sweep.h5)
#   gsm8k      dense on the first N_GSM8K GSM8K problems, few-shot template (gsm8k.h5)
#   length     chains of 2, 4, 8 and 16 steps mixed: dense, raas pinned and unpinned at
#              L=64 (length.h5; export --table length draws plots/eval_length.gp)
#   long       chains whose decodes pass 1000 tokens, dense (long.h5)
set -euo pipefail
out=${1:?usage: tools/eval-experiments.sh OUTDIR [STAGE ...]}
shift
stages=${*:-calibrate sweep gsm8k length long}
RB=${RB:-build/raasbench}
MODEL=${MODEL:-models/gemma-3-270m-q4_k_m.gguf}
THREADS=${THREADS:-$(nproc)}
N_SWEEP=${N_SWEEP:-100}
N_GSM8K=${N_GSM8K:-200}
N_CAL=${N_CAL:-100}
N_LENGTH=${N_LENGTH:-16}
N_LONG=${N_LONG:-8}
BUDGETS=${BUDGETS:-32,64,128}
mkdir -p "$out"
read -r -a CHAIN <<<"${CHAIN:-}"
log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$out/log.txt"; }
ev() { # ev NAME TASKS [eval options...]
  local name=$1 tasks=$2
  shift 2
  log "eval $name: $*"
  "$RB" eval --model "$MODEL" --tasks "$tasks" --threads "$THREADS" --quiet --out "$out/$name.h5" "$@"
  "$RB" export "$out/$name.h5" --table summary --out "$out/$name.summary.tsv"
  "$RB" info "$out/$name.h5" | tee -a "$out/log.txt" | tail -n +9
}
chains() { # chains FILE SEED N [knobs...]
  local f=$1 seed=$2 n=$3
  shift 3
  [ -s "$f" ] || "$RB" tasks --kind chain --n "$n" --seed "$seed" "$@" --out "$f"
}
for stage in $stages; do
  case $stage in
  calibrate)
    # the defaults, then two harder settings: look-back 2, and look-back 2 with 3 shots
    for v in "default:" "lookback2:--lookback 2" "lookback2_shots3:--lookback 2 --shots 3"; do
      name=${v%%:*}
      read -r -a knobs <<<"${v#*:}"
      chains "$out/cal_$name.jsonl" 11 "$N_CAL" ${knobs[@]+"${knobs[@]}"}
      ev "cal_$name" "$out/cal_$name.jsonl" --policies dense --max-tokens 64
    done ;;
  sweep)
    chains "$out/sweep.jsonl" 21 "$N_SWEEP" ${CHAIN[@]+"${CHAIN[@]}"}
    ev sweep "$out/sweep.jsonl" --max-tokens 64 --budgets "$BUDGETS" \
      --policies dense,streamingllm,h2o,quest,raas,decode=raas:budget=decode,unpinned=raas:pin_prefill=0${EXTRA_POLICIES:+,$EXTRA_POLICIES} ;;
  gsm8k)
    ev gsm8k datasets/gsm8k/test.jsonl --template datasets/gsm8k/fewshot.txt --stop Question: --policies dense \
      --limit "$N_GSM8K" --max-tokens 256 ;;
  length)
    f="$out/length.jsonl"
    if [ ! -s "$f" ]; then
      for s in 2 4 8 16; do chains "$out/length_$s.jsonl" $((30 + s)) "$N_LENGTH" --steps $s ${CHAIN[@]+"${CHAIN[@]}"}; done
      cat "$out"/length_{2,4,8,16}.jsonl >"$f.tmp" && mv "$f.tmp" "$f"
    fi
    ev length "$f" --max-tokens 320 --budgets 64 \
      --policies dense,raas,unpinned=raas:pin_prefill=0,streamingllm
    "$RB" export "$out/length.h5" --table length --out "$out/length.bins.tsv" ;;
  long)
    chains "$out/long.jsonl" 41 "$N_LONG" --steps 180 --inits 4 --lookback 8 --shots 1
    ev long "$out/long.jsonl" --policies dense --max-tokens 2000 ;;
  *) echo "raasbench: eval-experiments: unknown stage '$stage'" >&2; exit 2 ;;
  esac
done
log "done: $stages"
