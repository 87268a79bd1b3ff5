#!/usr/bin/env bash
# e2e_quant_vs_gguf.sh: the C reference dequantizers (and the fast ones) give the same
# floats as the gguf Python package's numpy dequantizers, on random blocks of every
# supported format and on rows of the Gemma 3 270M model when it is installed.
# Skips (77) when the gguf package cannot be imported.
set -u
BUILD=${BUILD:-build}
prog="$BUILD/tests/test_quant"
[ -x "$prog" ] || { echo "no $prog: build it first (make BUILD=$BUILD test)"; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 "$(dirname "$0")/../tools/quant_fixture.py" "$dir"
rc=$?
if [ $rc = 77 ]; then exit 77; fi
[ $rc = 0 ] || { echo "quant_fixture.py failed (rc=$rc)"; exit 1; }
"$prog" --fixture "$dir"
