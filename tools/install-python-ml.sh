#!/usr/bin/env bash
# install-python-ml.sh: torch (CPU use) and transformers, pinned, for traces/record_hf.py,
# tools/gguf_to_hf.py and their tests. Idempotent: exits at once when the pinned versions
# import and multiply. PYTHON=... picks the interpreter (default python3).
#
# PyPI's only Linux x86-64 torch wheel is the CUDA build, whose dependencies pull ~3 GB of
# nvidia-* wheels. This machine kind (c-kernels) already has the CUDA 13 toolkit's libraries
# (cudart, cuBLAS, cuDNN, cuFFT, cuSPARSE, NVRTC...), so torch goes in with --no-deps plus
# its pure-Python dependencies and the four CUDA libraries the toolkit lacks or has too old
# (cuFile, cuSPARSELt, NVSHMEM, NCCL; ~525 MB of wheels). torch's RPATH finds those first.
# Where that still does not import (no toolkit), the full dependency set is installed.
# Measured here (2 shared cores): ~4 min from nothing, most of it unpacking torch.
set -eu
PY=${PYTHON:-python3}
TORCH=2.15.0
TRANSFORMERS=5.25.0
pip_() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }
works() {
  "$PY" - "$TORCH" "$TRANSFORMERS" 2>/dev/null <<'PY'
import sys, torch, transformers, safetensors
assert torch.__version__.split("+")[0] == sys.argv[1], torch.__version__
assert transformers.__version__ == sys.argv[2], transformers.__version__
assert float((torch.ones(3, 3) @ torch.ones(3, 3)).sum()) == 27.0
PY
}
if works; then echo "✓ torch $TORCH and transformers $TRANSFORMERS already installed"; exit 0; fi
t0=$(date +%s)
pip_ --no-deps "torch==$TORCH"
pip_ "filelock==4.3.2" "typing-extensions>=4.13.0" "sympy==1.14.0" "networkx==3.6.1" "jinja2==3.1.6" \
     "fsspec==2026.9.0" "numpy==2.4.6" "h5py==3.16.0" "gguf==0.19.0"
pip_ --no-deps "nvidia-cufile==1.17.1.22" "nvidia-cusparselt-cu13==0.8.1" \
     "nvidia-nvshmem-cu13==3.7.2" "nvidia-nccl-cu13==2.30.7"
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "torch does not import over the system CUDA libraries: installing its full dependencies"
  pip_ "torch==$TORCH"
fi
pip_ "transformers==$TRANSFORMERS" "tokenizers==0.23.3" "safetensors==0.8.0" "huggingface-hub==2.4.0"
works || { echo "install-python-ml: torch $TORCH / transformers $TRANSFORMERS do not import" >&2; exit 1; }
echo "✓ torch $TORCH (CPU) and transformers $TRANSFORMERS installed in $(( $(date +%s) - t0 )) s"
