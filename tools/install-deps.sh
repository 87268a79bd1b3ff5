#!/usr/bin/env bash
# install-deps.sh: the one dependency installer. Installs whatever is missing of raasbench's
# Debian packages (apt-get, as root) and Python packages for the tools and tests (pip).
# Not root and something missing: print exactly what to install and exit 1.
#   tools/install-deps.sh                  check, install what is missing
#   tools/install-deps.sh --check-or-install  same, quiet when everything is there
set -euo pipefail
quiet=0
[ "${1:-}" = "--check-or-install" ] && quiet=1

missing_deb=()
have_header() { [ -e "$1" ]; }
have_header /usr/include/hdf5/serial/hdf5.h || missing_deb+=(libhdf5-dev)
have_header /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h || [ -e /usr/include/openblas/cblas.h ] || missing_deb+=(libopenblas-dev)
have_header /usr/include/cjson/cJSON.h || missing_deb+=(libcjson-dev)
command -v gnuplot >/dev/null || missing_deb+=(gnuplot-nox)
command -v pkg-config >/dev/null || missing_deb+=(pkg-config)
command -v h5dump >/dev/null || missing_deb+=(hdf5-tools)
command -v cc >/dev/null || missing_deb+=(build-essential)
command -v python3 >/dev/null || missing_deb+=(python3 python3-pip)

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
[ $quiet = 1 ] || echo "✓ all dependencies present"
exit 0
