#!/usr/bin/env bash
# install-deps.sh: the one dependency installer. Installs whatever is missing of raasbench's
# Debian packages (apt-get, as root) and Python packages for the tools and tests (pip).
# Not root and something missing: print exactly what to install and exit 1.
#   tools/install-deps.sh                     check, install what is missing
#   tools/install-deps.sh --check-or-install  same, quiet when everything is there
#   tools/install-deps.sh --ci                also what CI needs: clang (the clang build and
#                                             make fuzz), cmake and g++ (to build
#                                             llama-cpp-python from source), llama-cpp-python
# Building needs only the compiler and the three libraries (make checks them itself and
# takes their paths from pkg-config or HDF5_CFLAGS=... etc.); gnuplot, h5dump and Python are
# for the tests and figures, which skip with the reason where they are missing.
set -euo pipefail
quiet=0 ci=0
for a in "$@"; do
  case $a in
    --check-or-install) quiet=1;;
    --ci) ci=1;;
    *) echo "install-deps.sh: unknown option $a" >&2; exit 2;;
  esac
done
# llama-cpp-python, pinned, for the llama.cpp comparison tests (e2e_decode_llamacpp.sh,
# e2e_tokenizer_llama_cpp.sh, e2e_tokenizer_bpe_llama_cpp.sh pass with it; 0.3.36 segfaults
# in Llama.eval on the tiny models of tools/make_tiny_models.py). It builds llama.cpp from
# source (CPU only): 191 s of CPU, ~3 min on 2 cores.
LLAMA_CPP_PYTHON=${LLAMA_CPP_PYTHON:-llama-cpp-python==0.3.16}

missing_deb=()
# A header is present when the compiler finds it with pkg-config's flags (or none).
have_inc() { # header pkg-config-names...
  local h=$1 flags="" p; shift
  for p in "$@"; do flags+=" $(pkg-config --cflags "$p" 2>/dev/null || true)"; done
  printf '#include <%s>\n' "$h" | ${CC:-cc} $flags -E -x c - >/dev/null 2>&1
}
command -v cc >/dev/null || missing_deb+=(build-essential)
command -v pkg-config >/dev/null || missing_deb+=(pkg-config)
if command -v cc >/dev/null; then
  have_inc hdf5.h hdf5 hdf5-serial || [ -e /usr/include/hdf5/serial/hdf5.h ] || missing_deb+=(libhdf5-dev)
  have_inc cblas.h openblas || [ -e /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h ] || missing_deb+=(libopenblas-dev)
  have_inc cjson/cJSON.h libcjson || missing_deb+=(libcjson-dev)
fi
command -v gnuplot >/dev/null || missing_deb+=(gnuplot-nox)
command -v h5dump >/dev/null || missing_deb+=(hdf5-tools)
command -v python3 >/dev/null || missing_deb+=(python3 python3-pip)
if [ $ci = 1 ]; then
  command -v clang >/dev/null || missing_deb+=(clang)
  # libFuzzer's runtime (Debian ships it apart from clang since clang 14).
  ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 ||
    missing_deb+=("libclang-rt-$(clang --version 2>/dev/null | grep -oE 'version [0-9]+' | grep -oE '[0-9]+' || echo 14)-dev")
  command -v cmake >/dev/null || missing_deb+=(cmake)
  command -v g++ >/dev/null || missing_deb+=(g++)
fi

if [ ${#missing_deb[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "• installing Debian packages: ${missing_deb[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing_deb[@]}" >/dev/null
  else
    echo "✗ missing Debian packages: ${missing_deb[*]}" >&2
    echo "  install them with: sudo apt-get install ${missing_deb[*]}" >&2
    exit 1
  fi
fi

missing_py=()
for mod in numpy h5py gguf; do
  python3 -c "import $mod" 2>/dev/null || missing_py+=("$mod")
done
if [ ${#missing_py[@]} -gt 0 ]; then
  echo "• installing Python packages: ${missing_py[*]}"
  python3 -m pip install -q "${missing_py[@]}" || {
    echo "✗ could not install Python packages: ${missing_py[*]} (pip install ${missing_py[*]})" >&2
    exit 1
  }
fi
if [ $ci = 1 ] && ! python3 -c "import llama_cpp" 2>/dev/null; then
  echo "• building $LLAMA_CPP_PYTHON from source (llama.cpp, CPU only; a few minutes)"
  t0=$(date +%s)
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    python3 -m pip install -q --no-cache-dir "$LLAMA_CPP_PYTHON" || {
    echo "✗ could not build $LLAMA_CPP_PYTHON (pip install $LLAMA_CPP_PYTHON)" >&2
    exit 1
  }
  echo "✓ $LLAMA_CPP_PYTHON built in $(( $(date +%s) - t0 ))s"
fi
[ $quiet = 1 ] || echo "✓ all dependencies present"
exit 0
