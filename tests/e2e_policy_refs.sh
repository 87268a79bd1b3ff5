#!/usr/bin/env bash
# e2e_policy_refs.sh: the policies of issue 16 (tova, ..., sepllm on synth's separators)
# against float64 numpy references (tests/policy_refs.py): replay a synthetic trace with
# every layer sparse and the attended sets dumped, then each reference replays the policy's
# rule from the trace alone and must keep the same sets (near ties in float32 aside,
# counted) and give the same recall.
set -u
RB=${RAASBENCH:-build/raasbench}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
"$RB" synth --out "$dir/t.h5" --layers 2 --prefill 80 --decode 160 --seed 5 >/dev/null 2>&1 ||
  { echo "synth failed"; exit 1; }
fail=0
# name, budgets (one below the prompt, one above), extra replay arguments
check() {
  local pol=$1 budgets=$2; shift 2
  "$RB" replay "$dir/t.h5" --policies "$pol" --budgets "$budgets" --dense-layers 0 --per-head \
      --dump-selection --quiet --out "$dir/$pol.h5" "$@" || { echo "FAIL replay $pol"; fail=1; return; }
  for L in ${budgets//,/ }; do
    python3 tests/policy_refs.py "$dir/t.h5" "$dir/$pol.h5" "${pol}_L$L" "$pol" || fail=1
  done
}
check tova 48,120
check snapkv 48,120
check snapkv 64 --param snapkv.pool=avg --param snapkv.interval=5 --param snapkv.window=8 --param snapkv.kernel=3
check rkv 48,120
check rkv 80 --param rkv.interval=7 --param rkv.window=4 --param rkv.lambda=0.5 --param rkv.threshold=0.2
check lazyeviction 48,120
check lazyeviction 64 --param lazyeviction.window=5 --param lazyeviction.alpha=2.5
check adakv 48,120
check adakv 64 --param adakv.recent=0.25 --param adakv.safeguard=0.6
check sepllm 48,120
check sepllm 64 --param sepllm.initial=2 --param sepllm.separators=6
# Parameters the policies refuse at create: exit 2, `raasbench: <what>: <why>`, no file left.
for bad in snapkv.kernel=4 rkv.kernel=6; do
  pol=${bad%%.*}
  out=$("$RB" replay "$dir/t.h5" --policies "$pol" --budgets 64 --param "$bad" --dense-layers 0 --quiet \
        --out "$dir/bad.h5" 2>&1 >/dev/null); rc=$?
  if [ $rc = 2 ] && grep -q "^raasbench: ${bad%%=*}: must be odd" <<<"$out" && ! ls "$dir"/bad.h5* >/dev/null 2>&1
  then echo "# refused: --param $bad ($out)"
  else echo "FAIL --param $bad: rc=$rc '$out'"; fail=1; fi
done
exit $fail
