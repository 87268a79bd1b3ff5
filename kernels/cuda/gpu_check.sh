#!/usr/bin/env bash
# gpu_check.sh: builds and runs the GPU attention tests on a machine with a GPU, without the
# rest of raasbench (no HDF5, cJSON or OpenBLAS needed): test_cuda_attn (the kernels against
# double references), test_cuda_chunk (replay's chunk reference on the GPU against the CPU
# reference), test_attn_backends (every backend table, cuda included, against "ref") and
# test_attn_backend_cuda (the cuda table on an emulated device); then the timing of replay's
# whole dense reference of a 32-layer, 32 q / 8 kv, d 128, 16k-token trace beside cuBLAS
# sgemm (bench_cuda_chunk; acceptance: under 10 s of device time). When the full build works
# here (HDF5, cJSON, OpenBLAS present), also `replay --device cuda` against `--device cpu` on
# a synthetic trace (summary numbers to 1e-4 relative). Run from the repository root:
# `bash kernels/cuda/gpu_check.sh`. Exits 0 when all pass, 1 when one fails, 77 when there is
# no usable GPU (the tests then skip).
set -u
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
CUDA_LIB=$(dirname "$NVCC")/../lib64
B=$(mktemp -d)
trap 'rm -rf "$B"' EXIT
die() { echo "gpu_check: $*"; exit 1; }

"$NVCC" -O3 -std=c++17 -arch=sm_90 -Ibase -Ikernels -Xcompiler -Wall,-Werror \
    -c kernels/cuda/attn_cuda.cu -o "$B/attn_cuda.o" || die "nvcc failed"
# OpenBLAS when its header is here (the CPU chunk reference's sgemm), plain loops otherwise
BLAS_C=(-DRB_NO_BLAS) BLAS_L=()
if echo '#include <cblas.h>' | cc -E $(pkg-config --cflags openblas 2>/dev/null) -x c - >/dev/null 2>&1; then
    BLAS_C=($(pkg-config --cflags openblas 2>/dev/null)) BLAS_L=($(pkg-config --libs openblas 2>/dev/null || echo -lopenblas))
fi
LIB=()
for f in base/rb.c kernels/attn.c kernels/attn_ref.c kernels/attn_stream.c kernels/attn_block.c \
         kernels/attn_causal_block.c \
         kernels/attn_backends.c kernels/attn_backend_cuda.c kernels/attn_cuda_stub.c \
         tests/test_cuda_attn.c tests/test_cuda_chunk.c tests/test_attn_backends.c \
         tests/test_attn_backend_cuda.c kernels/bench_cuda_chunk.c; do
    o="$B/$(basename "$f" .c).o"
    cc -std=c11 -O2 -march=x86-64-v3 -pthread -Wall -Wextra -Werror -DRB_HAVE_CUDA=1 \
        "${BLAS_C[@]}" -Ibase -Ikernels -Itests -c "$f" -o "$o" || die "cc $f failed"
    case $f in tests/*|kernels/bench_*) ;; *) LIB+=("$o") ;; esac
done
L=("${BLAS_L[@]}" -L"$CUDA_LIB" -Wl,-rpath,"$CUDA_LIB" -lcudart -lstdc++ -lm -lpthread -ldl)
# test_attn_backend_cuda defines the attn_cuda API itself (the emulated device): no attn_cuda.o
for t in test_cuda_attn test_cuda_chunk test_attn_backends bench_cuda_chunk; do
    cc "$B/$t.o" "${LIB[@]}" "$B/attn_cuda.o" "${L[@]}" -o "$B/$t" || die "link $t failed"
done
cc "$B/test_attn_backend_cuda.o" "${LIB[@]}" "${L[@]}" -o "$B/test_attn_backend_cuda" \
    || die "link test_attn_backend_cuda failed"

command -v nvidia-smi >/dev/null && nvidia-smi -L
status=0
for t in test_attn_backend_cuda test_attn_backends test_cuda_attn test_cuda_chunk; do
    "$B/$t" | tee "$B/$t.log"
    rc=${PIPESTATUS[0]}
    echo "gpu_check: $t exit $rc"
    if [ $rc = 77 ]; then [ $status = 0 ] && status=77; elif [ $rc != 0 ]; then status=1; fi
done
# With a usable GPU (test_cuda_attn ran), the cuda table must have run every shape, not
# skipped them: test_attn_backends passes either way.
if [ $status = 0 ] && ! grep -q '^# cuda: 12 shapes checked' "$B/test_attn_backends.log"; then
    echo "gpu_check: a GPU is usable but the cuda backend table did not run on it"
    status=1
fi
# Replay's whole dense reference on the device: 32 layers x 16k tokens, 32 q / 8 kv, d 128.
if [ $status = 0 ]; then
    "$B/bench_cuda_chunk" 32 16384 512 | tee "$B/bench.log"
    rc=${PIPESTATUS[0]}
    echo "gpu_check: bench_cuda_chunk exit $rc"
    [ $rc = 0 ] || status=1
    grep -q 'NOT met' "$B/bench.log" && { echo "gpu_check: the reference took 10 s or more"; status=1; }
fi
# With the full build: replay on the GPU against the CPU engine (summary numbers to 1e-4
# relative; the engine's own test, test_engine_reference, already ran every backend).
if [ $status = 0 ] && [ "${GPU_CHECK_REPLAY:-1}" = 1 ] && make -j"$(nproc)" all build/tests/test_engine_reference >"$B/make.log" 2>&1; then
    R=build/raasbench
    "$R" synth --out "$B/t.h5" --layers 4 --decode 2000 --quiet || die "synth failed"
    for dev in cpu cuda; do
        /usr/bin/time -f "gpu_check: replay --device $dev: %e s wall" "$R" replay "$B/t.h5" \
            --policies dense,streamingllm,h2o,quest,raas,oracle --budgets 128,512 \
            --out "$B/r_$dev.h5" --quiet --device $dev || die "replay --device $dev failed"
        "$R" export "$B/r_$dev.h5" --table summary --out "$B/s_$dev.tsv" || die "export failed"
    done
    build/tests/test_engine_reference || status=1
    python3 - "$B/s_cpu.tsv" "$B/s_cuda.tsv" <<'PY' || status=1
import csv, sys
a, b = ([r for r in csv.DictReader(open(p), delimiter="\t")] for p in sys.argv[1:3])
assert len(a) == len(b) and a, "same runs"
worst = 0
for x, y in zip(a, b):
    for k in ("mean_recall", "mean_out_err", "mean_attended"):
        u, v = float(x[k]), float(y[k])
        rel = abs(u - v) / max(abs(u), 1e-12)
        worst = max(worst, rel)
        assert rel <= 1e-4 or abs(u - v) <= 1e-7, (x["run_id"], k, u, v)
print("gpu_check: replay --device cuda equals --device cpu: summary numbers within %.2g relative" % worst)
PY
elif [ $status = 0 ]; then
    echo "gpu_check: full build not possible here (see make.log): replay --device cuda not run"
fi
exit $status
