#!/usr/bin/env bash
# submit.sh: a raasbench sweep or eval as a Slurm job array plus the merge job after it.
#
#   tools/slurm/submit.sh N sweep CONFIG.json
#   tools/slurm/submit.sh N eval --model M.gguf --tasks F.jsonl --policies ... --out R.h5
#
# Submits shard.sbatch as --array=1-N (task I runs `raasbench ... --shard I/N`) and
# merge.sbatch with --dependency=afterany on the array; prints the two job ids on stdout
# ("ARRAY_ID MERGE_ID"). Logs: $RB_SLURM_LOGS/<job name>-<array id>_<task>.out and
# <job name>-<merge id>.out (default ./slurm-logs).
#
# Environment:
#   RB             the raasbench binary (default: build/raasbench of this checkout,
#                  absolute, so the nodes must see this checkout's filesystem)
#   RB_SLURM_ARRAY the array indices (default 1-N): "3" or "2,4" reruns those shards alone;
#                  resubmitting 1-N is also cheap: finished shards run nothing
#   RB_SLURM_LOGS  the log directory (default slurm-logs)
#   SBATCH_*       sbatch's own input variables (SBATCH_PARTITION, SBATCH_TIMELIMIT,
#                  SBATCH_ACCOUNT, ...) apply to both jobs; give --cpus-per-task through
#                  SBATCH_CPUS_PER_TASK and set the sweep's "threads" (eval: --threads) to it
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: $0 N sweep CONFIG.json | N eval EVAL-ARGS..." >&2; exit 2; }
[ $# -ge 3 ] || usage
n=$1; shift
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "submit.sh: N must be a positive integer, got '$n'" >&2; exit 2; }
kind=$1; shift
case $kind in
  sweep) [ $# = 1 ] || usage; merge_args=("$@") ;;
  eval) merge_args=(--eval "$@") ;;
  *) usage ;;
esac
export RB=${RB:-$(cd "$here/../.." && pwd)/build/raasbench}
[ -x "$RB" ] || { echo "submit.sh: $RB: not an executable (build it, or set RB)" >&2; exit 2; }
logs=${RB_SLURM_LOGS:-slurm-logs}
mkdir -p "$logs"
array=$(sbatch --parsable --array="${RB_SLURM_ARRAY:-1-$n}" --job-name="raasbench-$kind" \
  --output="$logs/%x-%A_%a.out" --export=ALL "$here/shard.sbatch" "$n" "$kind" "$@")
array=${array%%;*} # "id;cluster" on federated clusters
merge=$(sbatch --parsable --dependency="afterany:$array" --job-name="raasbench-merge" \
  --output="$logs/%x-%j.out" --export=ALL "$here/merge.sbatch" "${merge_args[@]}")
merge=${merge%%;*}
echo "submit.sh: array job $array (shards ${RB_SLURM_ARRAY:-1-$n} of $n), merge job $merge after it; logs in $logs/" >&2
echo "$array $merge"
