#!/usr/bin/env bash
# install-cuda-build.sh [--wheels]: an nvcc that compiles and links raasbench's CUDA code
# (-arch=sm_90) on a machine without a GPU, for `make CUDA=1 NVCC=...` (CI: issue 12). Prints
# that nvcc's path as its last line on stdout; everything else goes to stderr.
#
# The machine's own toolkit when it has one that works ($NVCC, nvcc on PATH, or
# /usr/local/cuda: nothing installed, no time spent). Otherwise, or with --wheels, NVIDIA's
# pip wheels of CUDA 13.0 (the version of this machine kind's toolkit), pinned, in a venv
# under $RB_CUDA_PREFIX (default ~/.cache/raasbench/cuda-13.0.88): nvcc with cudafe++,
# ptxas, fatbinary and nvlink (nvidia-cuda-nvcc), cicc (nvidia-nvvm), the crt headers
# (nvidia-cuda-crt), cuda_runtime.h and libcudart.so.13 (nvidia-cuda-runtime) and the CCCL
# headers (nvidia-cuda-cccl): ~270 MB on disk, ~15 s to install here. The wheels lay out a
# toolkit under nvidia/cu13/ whose nvcc.profile finds the rest beside it; the Makefile links
# its libcudart by path (lib/, only the versioned name). Not used: nvidia-cuda-nvcc-cu12
# (12.x wheels ship ptxas and libnvvm but no nvcc driver, cudafe++ or cicc), and Debian's
# nvidia-cuda-toolkit (non-free, CUDA 11.8, ~2 GB with its dependencies).
# Idempotent: an existing working install is reused. PYTHON=... picks the interpreter.
set -euo pipefail
VER=13.0.88
PKGS=("nvidia-cuda-nvcc==$VER" "nvidia-cuda-runtime==$VER" "nvidia-cuda-crt==$VER"
      "nvidia-nvvm==$VER" "nvidia-cuda-cccl==13.0.85")
PREFIX=${RB_CUDA_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/raasbench/cuda-$VER}
PY=${PYTHON:-python3}
wheels=0
[ "${1:-}" = --wheels ] && wheels=1
say() { echo "install-cuda-build: $*" >&2; }

# works NVCC: compiles a kernel for sm_90 and links it against the libcudart beside NVCC.
works() {
  local nvcc=$1 d lib rt
  [ -x "$nvcc" ] || return 1
  d=$(mktemp -d)
  lib=$(dirname "$(readlink -f "$nvcc")")/..
  rt=$(ls "$lib"/lib64/libcudart.so "$lib"/lib/libcudart.so.[0-9]* 2>/dev/null | head -1 || true)
  printf '#include <cuda_runtime.h>\n__global__ void k(float *x) { x[threadIdx.x] *= 2.f; }\n%s\n' \
    'int main(void) { float *x; if (cudaMalloc(&x, 64)) return 0; k<<<1, 16>>>(x); return cudaFree(x) != 0; }' \
    > "$d/t.cu"
  if [ -n "$rt" ] && "$nvcc" -std=c++17 -arch=sm_90 -c "$d/t.cu" -o "$d/t.o" >"$d/log" 2>&1 &&
     g++ "$d/t.o" "$rt" -o "$d/t" >>"$d/log" 2>&1; then
    rm -rf "$d"
    return 0
  fi
  say "$nvcc does not compile and link a kernel for sm_90:"
  sed 's/^/    /' "$d/log" | tail -5 >&2
  rm -rf "$d"
  return 1
}

if [ $wheels = 0 ]; then
  for c in "${NVCC:-}" "$(command -v nvcc || true)" /usr/local/cuda/bin/nvcc; do
    [ -n "$c" ] || continue
    if works "$c"; then
      say "✓ using the machine's toolkit: $("$c" --version | tail -1)"
      echo "$c"
      exit 0
    fi
  done
fi
nvcc_w() { ls "$PREFIX"/venv/lib/python3*/site-packages/nvidia/cu13/bin/nvcc 2>/dev/null | head -1; }
NVCC_W=$(nvcc_w || true)
if [ -n "$NVCC_W" ] && [ -e "$PREFIX/.installed-$VER" ] && works "$NVCC_W"; then
  say "✓ CUDA $VER wheels already installed in $PREFIX"
  echo "$NVCC_W"
  exit 0
fi
t0=$(date +%s)
say "installing CUDA $VER's compiler from pip wheels into $PREFIX"
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
"$PY" -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --disable-pip-version-check -q "${PKGS[@]}" >&2
NVCC_W=$(nvcc_w || true)
[ -n "$NVCC_W" ] && works "$NVCC_W" || { say "✗ the wheels' nvcc does not work"; exit 1; }
touch "$PREFIX/.installed-$VER"
say "✓ CUDA $VER wheels installed in $(( $(date +%s) - t0 )) s ($(du -sh "$PREFIX" | cut -f1))"
echo "$NVCC_W"
