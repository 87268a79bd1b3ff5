#!/usr/bin/env bash
# e2e_disk_full.sh: every writer on a full disk (a 64 KiB tmpfs) exits 2 naming the cause
# ("No space left on device"), does not crash (HDF5 1.10 used to segfault at exit, closing
# again a file whose close had failed), leaves nothing at the final name and no temporary.
# Writers: the results writer (replay, decode --out, sweep), the trace writer (synth,
# decode --record), the lifecycle writer, decode --logits-out and export's text output.
# Needs to mount a tmpfs (root, outside a restricted container): skips otherwise.
set -u
RB=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
T=$(mktemp -d)
FULL=$T/full
mkdir -p "$FULL"
cleanup() { umount "$FULL" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
mount -t tmpfs -o size=64k tmpfs "$FULL" 2>/dev/null || { echo "cannot mount a tmpfs here (not root, or no mount permission)"; exit 77; }
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# full NAME FINAL CMD...: exit 2, the message, nothing at FINAL, no temporary anywhere
full() {
  local name=$1 final=$2; shift 2
  local out rc
  out=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc != 2 ] || ! grep -q "No space left on device" <<<"$out"; then
    fail "$name: rc=$rc '$out' (wanted 2 and 'No space left on device')"
  elif [ -e "$final" ]; then
    fail "$name: $final exists"
  elif [ -n "$(find "$FULL" -name '*.tmp-*')" ]; then
    fail "$name: left $(find "$FULL" -name '*.tmp-*')"
  else
    echo "ok   $name -> 2: $out"
  fi
  rm -rf "${FULL:?}"/*
}
"$RB" synth --out "$T/t.h5" --layers 2 --prefill 64 --decode 600 --seed 1 --quiet 2>/dev/null || { echo "synth failed"; exit 1; }
"$RB" replay "$T/t.h5" --policies h2o,quest --budgets 64 --dense-layers 0 --out "$T/r.h5" --quiet || { echo "replay failed"; exit 1; }

full "replay (results writer)" "$FULL/r.h5" \
  "$RB" replay "$T/t.h5" --policies dense,h2o,quest --budgets 64,128 --per-head --dense-layers 0 --out "$FULL/r.h5" --quiet
full "synth (trace writer)" "$FULL/s.h5" "$RB" synth --out "$FULL/s.h5" --layers 2 --prefill 64 --decode 600 --quiet
full "lifecycle" "$FULL/lc.h5" "$RB" lifecycle "$T/t.h5" --layer 0 --out "$FULL/lc.h5" --quiet
full "export --out" "$FULL/steps.tsv" "$RB" export "$T/r.h5" --table steps --out "$FULL/steps.tsv"
cat > "$T/sweep.json" <<JSON
{"traces": ["$T/t.h5"], "policies": ["h2o", "quest", "streamingllm"], "budgets": [64, 128], "dense_layers": 0, "out": "$FULL/sw.h5"}
JSON
full "sweep" "$FULL/sw.h5" "$RB" sweep "$T/sweep.json" --quiet
if python3 -c "import gguf, numpy" 2>/dev/null; then
  python3 tools/make_tiny_models.py "$T" >/dev/null || { echo "make_tiny_models.py failed"; exit 1; }
  M=$T/tiny-gemma3.gguf
  P=1,272,87,280,273,272,102,275,115,108,274,33,201,7,90
  full "decode --record (trace writer)" "$FULL/rec.h5" \
    "$RB" decode --model "$M" --prompt-tokens $P --max-tokens 200 --quiet --record "$FULL/rec.h5" --record-dtype f32
  full "decode --logits-out" "$FULL/l.f32" "$RB" decode --model "$M" --prompt-tokens $P --max-tokens 200 --quiet --logits-out "$FULL/l.f32"
  full "decode --out (results writer)" "$FULL/o.h5" \
    "$RB" decode --model "$M" --prompt-tokens $P --max-tokens 300 --quiet --teacher-forced --policies dense,h2o,streamingllm --budgets 8,16 --out "$FULL/o.h5"
else
  echo "# decode writers not checked: python3 with gguf and numpy is not installed"
fi
[ $fails = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "every writer refused a full disk cleanly"
