#!/usr/bin/env bash
# gpu_decode_check.sh: the GPU decode tests (issue 12) on a machine with a GPU. Builds
# nothing: it runs the test binaries a CUDA build made (`make build-tests` on a machine with
# nvcc; the binaries link libcudart from the CUDA they were built with) from build/tests/ (or
# $BUILD/tests/), prints one PASS/FAIL/SKIP line per test with its wall time, and exits 1 if
# any failed. Run from the repository root: `bash kernels/cuda/gpu_decode_check.sh`.
# Each test keeps its full output in $OUT (default: a temporary folder), named <test>.log.
set -u
B=${BUILD:-build}/tests
LOG=${OUT:-$(mktemp -d)}
mkdir -p "$LOG"
fail=0
run() { # name [args...]
    local t=$1; shift
    if [ ! -x "$B/$t" ]; then echo "FAIL $t: $B/$t not built"; fail=1; return; fi
    local t0=$(date +%s.%N)
    "$B/$t" "$@" >"$LOG/$t.log" 2>&1
    local rc=$? t1=$(date +%s.%N)
    local s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    case $rc in
    0) echo "PASS $t (${s} s)" ;;
    77) echo "SKIP $t (${s} s): $(tail -1 "$LOG/$t.log")" ;;
    *) echo "FAIL $t (${s} s, exit $rc):"; tail -20 "$LOG/$t.log" | sed 's/^/    /'; fail=1 ;;
    esac
    grep -E '^  timing|^# device|runs equal' "$LOG/$t.log" | sed 's/^/    /'
}

# kvgpu: the device KV cache and policies (kernels/cuda/kv_cuda.cu)
run test_kv_logic   # the decisions on the CPU (also in `make test`)
run test_kv_cuda    # the device against the CPU stepper, then the per-step timing

# fwdgpu: the forward on the device (kernels/cuda/fwd_cuda.cu, harness/model/model_cuda.c)
run test_fwd_dequant   # the block dequantizers on the CPU, bit for bit (also in `make test`)
run test_fwd_cuda      # every kernel against its CPU reference; the output product's bandwidth
grep -E '^matvec|^device' "$LOG/test_fwd_cuda.log" 2>/dev/null | sed 's/^/    /'
run test_model_cuda    # tiny models and Gemma 3 270M against the CPU model; speed at 1k context
grep -E '^tiny|^gemma|^speed|^  a token|^  graphs|^  divergence|^device|^profile|^  flips' "$LOG/test_model_cuda.log" \
    2>/dev/null | sed 's/^/    /'

exit $fail
