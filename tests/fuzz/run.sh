#!/usr/bin/env bash
# run.sh SECONDS [TARGET...]: runs each libFuzzer target (default: all of build-fuzz/fuzz/)
# for SECONDS on one core, its corpus in build-fuzz/corpus/<target> (started from the seeds
# in build-fuzz/seeds/<target>, grown across runs), findings in build-fuzz/crashes/<target>/.
# The HDF5 targets run in libFuzzer's fork mode, which goes on after a finding. Each
# finding is replayed and blamed on the first frame of its stack that is neither the
# sanitizer, libFuzzer nor libc: libhdf5 (its own bugs on corrupt files, which raasbench
# cannot fix; reported, not failed) or raasbench (fails the run). Prints executions and
# exec/s per target; exits 1 when raasbench has a finding.
# Environment: FUZZ_RSS_MB (default 2048), FUZZ_ARGS (more libFuzzer flags), RB_FUZZ_H5_RAW=0
# (trace and results: h5tree programs only, without fork mode; tests/fuzz/README.md).
set -u
cd "$(dirname "$0")/../.."
secs=${1:-60}; shift || true
B=build-fuzz
targets=("$@")
if [ ${#targets[@]} = 0 ]; then
  for f in "$B"/fuzz/fuzz_*; do [ -x "$f" ] && targets+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "✗ no fuzz targets in $B/fuzz (make fuzz)"; exit 1; }
# The HDF5 targets rewrite a file per input: in memory where there is /dev/shm.
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
export RB_FUZZ_VOCAB=${RB_FUZZ_VOCAB:-$B/seeds/vocab}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rss=${FUZZ_RSS_MB:-2048}

# blame BIN FILE: "libhdf5", "raasbench" or "none" (no longer reproduces, or suppressed).
blame() {
  local rep frame
  rep=$(ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" timeout 120 "$1" -rss_limit_mb="$rss" \
        -timeout=20 "$2" 2>&1)
  grep -qE 'ERROR: |runtime error|out-of-memory|timeout after' <<<"$rep" || { echo none; return; }
  frame=$(grep -E '^ *#[0-9]+ 0x' <<<"$rep" | grep -vE \
    'sanitizer|__asan|__lsan|__ubsan|__interceptor|fuzzer::|in (malloc|calloc|realloc|free|mem(cpy|move|set|cmp)|str[a-z]*|operator new)\b|libc\.so|ld-linux|__libc|_start\b|in __(mem|str)[a-z_0-9]*|sysdeps/' \
    | head -1)
  if grep -q 'libhdf5' <<<"$frame"; then echo libhdf5; else echo raasbench; fi
}

bad=0
for t in "${targets[@]}"; do
  bin=$B/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "✗ $bin missing (make fuzz)"; bad=1; continue; }
  corpus=$B/corpus/$t crashes=$B/crashes/$t
  mkdir -p "$corpus" "$crashes"
  log=$B/fuzz-$t.log
  # Fork mode (goes on after a finding) for the HDF5 targets, whose findings inside libhdf5
  # are expected; the others stop at their first finding, and run faster without forking.
  # RB_FUZZ_H5_RAW=0 (fuzz_util.h): the HDF5 targets run h5tree programs only, in one process.
  case $t in trace|results) mode="-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1"
                            [ "${RB_FUZZ_H5_RAW:-1}" = 0 ] && mode="-print_final_stats=1";;
                            *) mode="-print_final_stats=1";; esac
  t0=$(date +%s)
  "$bin" $mode -max_total_time="$secs" -rss_limit_mb="$rss" -timeout=20 \
      -artifact_prefix="$crashes/" ${FUZZ_ARGS:-} "$corpus" "$B/seeds/$t" >"$log" 2>&1
  rc=$?
  el=$(( $(date +%s) - t0 ))
  last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1)
  if [ -n "$last" ]; then
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last")
  else
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  fi
  [ $el -gt 0 ] || el=1
  rate=$(( ${execs:-0} / el ))
  n_h5=0 n_rb=0 rb_files=()
  for f in "$crashes"/*; do
    [ -f "$f" ] || continue
    case $(blame "$bin" "$f") in
      libhdf5) n_h5=$((n_h5+1));;
      raasbench) n_rb=$((n_rb+1)); rb_files+=("$f");;
    esac
  done
  # Files of the HDF5 targets' processes that died on a finding, or replaying one (fuzz_util.h).
  for f in "${TMPDIR:-/tmp}"/rb-fuzz-*.h5; do
    [ -e "$f" ] || continue
    pid=${f##*rb-fuzz-}; pid=${pid%.h5}
    kill -0 "$pid" 2>/dev/null || rm -f "$f"
  done
  msg="fuzz_$t: ${execs:-?} executions in ${el:-?}s (${rate}/s), ${cov:-cov ?}, corpus $(ls "$corpus" | wc -l)"
  [ $n_h5 -gt 0 ] && msg+=", $n_h5 findings inside libhdf5 (not raasbench's)"
  if [ $n_rb -gt 0 ] || { [ $rc != 0 ] && [ -z "$last" ]; }; then
    [ $n_rb -gt 0 ] || msg+=", exit $rc"
    bad=1
    echo "✗ $msg, $n_rb findings in raasbench (log $log):"
    for f in "${rb_files[@]}"; do echo "    $bin $f"; done
  else
    echo "✓ $msg"
  fi
done
exit $bad
