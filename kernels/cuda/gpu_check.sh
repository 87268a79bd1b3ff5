#!/usr/bin/env bash
# gpu_check.sh: builds and runs the GPU attention tests on a machine with a GPU, without the
# rest of raasbench (no HDF5, cJSON or OpenBLAS needed): test_cuda_attn (the kernels against
# double references), test_attn_backends (every backend table, cuda included, against "ref")
# and test_attn_backend_cuda (the cuda table on an emulated device). Run from the repository
# root: `bash kernels/cuda/gpu_check.sh`. Exits 0 when all three pass, 1 when one fails, 77
# when there is no usable GPU (the tests then skip).
set -u
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
CUDA_LIB=$(dirname "$NVCC")/../lib64
B=$(mktemp -d)
trap 'rm -rf "$B"' EXIT
die() { echo "gpu_check: $*"; exit 1; }

"$NVCC" -O3 -std=c++17 -arch=sm_90 -Ibase -Ikernels -Xcompiler -Wall,-Werror \
    -c kernels/cuda/attn_cuda.cu -o "$B/attn_cuda.o" || die "nvcc failed"
LIB=()
for f in base/rb.c kernels/attn.c kernels/attn_ref.c kernels/attn_stream.c kernels/attn_block.c \
         kernels/attn_backends.c kernels/attn_backend_cuda.c kernels/attn_cuda_stub.c \
         tests/test_cuda_attn.c tests/test_attn_backends.c tests/test_attn_backend_cuda.c; do
    o="$B/$(basename "$f" .c).o"
    cc -std=c11 -O2 -march=x86-64-v3 -pthread -Wall -Wextra -Werror -DRB_HAVE_CUDA=1 \
        -Ibase -Ikernels -Itests -c "$f" -o "$o" || die "cc $f failed"
    case $f in tests/*) ;; *) LIB+=("$o") ;; esac
done
L=(-L"$CUDA_LIB" -Wl,-rpath,"$CUDA_LIB" -lcudart -lstdc++ -lm -lpthread)
# test_attn_backend_cuda defines the attn_cuda API itself (the emulated device): no attn_cuda.o
for t in test_cuda_attn test_attn_backends; do
    cc "$B/$t.o" "${LIB[@]}" "$B/attn_cuda.o" "${L[@]}" -o "$B/$t" || die "link $t failed"
done
cc "$B/test_attn_backend_cuda.o" "${LIB[@]}" "${L[@]}" -o "$B/test_attn_backend_cuda" \
    || die "link test_attn_backend_cuda failed"

command -v nvidia-smi >/dev/null && nvidia-smi -L
status=0
for t in test_attn_backend_cuda test_attn_backends test_cuda_attn; do
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
exit $status
