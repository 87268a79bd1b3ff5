#!/usr/bin/env bash
# e2e_device.sh: --device on the command line. Everywhere: a bad --device value, and --device
# cuda where this build or machine has no usable GPU, exit 2 with one `raasbench: <what>:
# <why>` line and write nothing (decode, eval, bench decode); --exact is refused with cuda.
# With a GPU: the tiny models (tools/make_tiny_models.py) decode on the device with the same
# greedy tokens as on the CPU's exact path under dense, quest and raas, a --record'ed device
# decode replays, and a policy the device does not run is refused by name.
set -u
RB=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
M=models/gemma-3-270m-q4_k_m.gguf
[ -f "$M" ] || M=""
gpu=0
nvidia-smi -L >/dev/null 2>&1 && gpu=1

refused() { # expected-pattern command...
  local pat=$1; shift
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  [ $rc = 2 ] || fail "exit $rc (want 2): $*: $(cat "$T/err")"
  grep -Eq "^raasbench: .*$pat" "$T/err" || fail "message: $*: $(cat "$T/err")"
  [ "$(wc -l <"$T/err")" = 1 ] || fail "one line wanted: $(cat "$T/err")"
}

MODEL_ARG=${M:-/nonexistent.gguf}
refused "--device: 'tpu': expected cpu or cuda" "$RB" decode --model "$MODEL_ARG" --prompt hi --device tpu
refused "--exact: runs on the CPU only" "$RB" decode --model "$MODEL_ARG" --prompt hi --device cuda --exact
refused "--device: 'gpu': expected cpu or cuda" "$RB" bench decode --device gpu --no-ref
if [ $gpu = 0 ] && [ -n "$M" ]; then
  # no GPU here: every command that would need one says so and writes nothing
  refused "--device cuda: no (usable CUDA device|CUDA in this build)" \
      "$RB" decode --model "$M" --prompt hi --device cuda --out "$T/r.h5" --record "$T/t.h5"
  [ ! -e "$T/r.h5" ] && [ ! -e "$T/t.h5" ] || fail "a refused decode left files"
  printf '{"id":"a","prompt":"1+1=","answer":"2"}\n' >"$T/tasks.jsonl"
  refused "--device cuda: no (usable CUDA device|CUDA in this build)" \
      "$RB" eval --model "$M" --tasks "$T/tasks.jsonl" --policies dense --out "$T/e.h5" --device cuda --quiet
  [ ! -e "$T/e.h5" ] && [ ! -e "$T/e.h5.parts" ] || fail "a refused eval left files"
  refused "--device cuda: no (usable CUDA device|CUDA in this build)" \
      "$RB" bench decode --device cuda --model "$M" --lengths 128,256 --out "$T/b.h5"
  [ ! -e "$T/b.h5" ] || fail "a refused bench left its results file"
  echo "no GPU: refusals checked (the device decode itself runs where nvidia-smi finds one)"
  exit 0
fi
[ $gpu = 1 ] || { echo "no GPU and no model: refusals of bad values checked only"; exit 0; }

python3 -c "import gguf, numpy" 2>/dev/null || { echo "python3 with gguf and numpy is not installed"; exit 77; }
python3 tools/make_tiny_models.py "$T" >/dev/null || fail "make_tiny_models.py"
PROMPT=1,272,87,280,273,272,102,275,115,108,274,33,201,7,90
for arch in qwen2 llama gemma3; do
  for pol in "dense" "quest --budget 32 --page-size 8" "raas --budget 32 --page-size 8"; do
    "$RB" decode --model "$T/tiny-$arch.gguf" --prompt-tokens $PROMPT --max-tokens 16 --quiet \
        --exact --policy $pol --record "$T/cpu.h5" || fail "$arch $pol: cpu decode"
    "$RB" decode --model "$T/tiny-$arch.gguf" --prompt-tokens $PROMPT --max-tokens 16 --quiet \
        --device cuda --policy $pol --record "$T/gpu.h5" || fail "$arch $pol: cuda decode"
    python3 - "$T/cpu.h5" "$T/gpu.h5" <<'PY' || fail "$arch $pol: tokens differ"
import sys, h5py
a, b = (h5py.File(p, "r")["tokens"][:] for p in sys.argv[1:3])
assert (a == b).all(), (a.tolist(), b.tolist())
PY
    "$RB" replay "$T/gpu.h5" --policies dense --out "$T/r.h5" --quiet >/dev/null || fail "$arch: replay of a device trace"
  done
done
refused "h2o: no device implementation" "$RB" decode --model "$T/tiny-llama.gguf" --prompt-tokens 1,2,3 \
    --device cuda --policy h2o --budget 16
echo "device decodes equal the CPU's exact path on 3 architectures x 3 policies"
