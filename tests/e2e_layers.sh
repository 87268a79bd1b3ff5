#!/usr/bin/env bash
# e2e_layers.sh: the layering of the source tree (docs/DESIGN.md, "Architecture"). Each
# layer may include its own headers and those of the layers below it, never one above:
#   base  <  kernels  <  policies  <  harness/io  <  harness/engine, harness/model,
#   harness/analysis  <  harness/eval  <  harness/cli
# Every quoted #include of a C or CUDA file is resolved against the tree; an include that
# lands in a higher layer (or in no known layer) fails the test with the file and line.
set -euo pipefail
cd "$(dirname "$0")/.."

rank() {
  case "$1" in
    base) echo 0 ;;
    kernels|kernels/cuda) echo 1 ;;
    policies) echo 2 ;;
    harness/io) echo 3 ;;
    harness/engine|harness/model|harness/analysis) echo 4 ;;
    harness/eval) echo 5 ;;
    harness/cli) echo 6 ;;
    *) echo -1 ;;
  esac
}
dirs=(base kernels kernels/cuda policies harness/io harness/engine harness/model harness/analysis harness/eval harness/cli)
# header name -> the layer that holds it
declare -A home
for d in "${dirs[@]}"; do
  for h in "$d"/*.h "$d"/*.cuh; do [ -e "$h" ] && home[$(basename "$h")]=$d; done
done
bad=0 checked=0
for d in "${dirs[@]}"; do
  r=$(rank "$d")
  for f in "$d"/*.c "$d"/*.h "$d"/*.cu "$d"/*.cuh; do
    [ -e "$f" ] || continue
    while IFS=: read -r line inc; do
      name=$(sed -E 's/^#include "([^"]+)".*/\1/' <<<"$inc")
      checked=$((checked + 1))
      if [ -e "$(dirname "$f")/$name" ]; then continue; fi   # relative to the file
      base_name=$(basename "$name")
      h=${home[$base_name]:-}
      if [ -z "$h" ]; then
        echo "$f:$line: includes \"$name\", which is in no layer"; bad=$((bad + 1)); continue
      fi
      if [ "$(rank "$h")" -gt "$r" ]; then
        echo "$f:$line: layer $d includes \"$name\" from $h, a layer above it"; bad=$((bad + 1))
      fi
    done < <(grep -n '^#include "' "$f" || true)
  done
done
echo "# $checked quoted includes checked over ${#dirs[@]} folders"
[ $bad = 0 ] || { echo "$bad includes break the layering"; exit 1; }
