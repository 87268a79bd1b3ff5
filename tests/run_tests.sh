#!/usr/bin/env bash
# run_tests.sh: runs every test program under $BUILD/tests and every tests/e2e_*.sh,
# each with a time limit, and ends with the line `N passed, M failed, K skipped`.
# A test exits 0 to pass, 77 to skip (with its reason on stdout), anything else fails.
set -u
BUILD=${BUILD:-build}
export BUILD RAASBENCH="$BUILD/raasbench"
pass=0 fail=0 skip=0 failed=()
run_one() {
  local name=$1; shift
  local log; log=$(mktemp)
  local t0; t0=$(date +%s%N)
  timeout 600 "$@" >"$log" 2>&1
  local rc=$? dt; dt=$(( ($(date +%s%N) - t0) / 100000000 )); dt="$((dt/10)).$((dt%10))"
  if [ $rc = 0 ]; then pass=$((pass+1)); echo "PASS $name (${dt}s)"; grep -E '^(#|figure)' "$log" | sed 's/^/     /'
  elif [ $rc = 77 ]; then skip=$((skip+1)); echo "SKIP $name: $(tail -1 "$log")"
  else fail=$((fail+1)); failed+=("$name"); echo "FAIL $name (rc=$rc)"; tail -30 "$log" | sed 's/^/     /'; fi
  rm -f "$log"
}
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] && [ "${t%.d}" = "$t" ] && [ "${t%.o}" = "$t" ] || continue
  run_one "$(basename "$t")" "$t"
done
for t in tests/e2e_*.sh; do
  [ -e "$t" ] || continue
  run_one "$(basename "$t")" bash "$t"
done
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
