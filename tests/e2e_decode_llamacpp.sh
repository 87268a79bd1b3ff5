#!/usr/bin/env bash
# e2e_decode_llamacpp.sh: Gemma 3 270M Q4_K_M decoded by the C forward against llama.cpp
# (llama-cpp-python) on three prompts (one unless RB_LLAMACPP_PROMPTS=3): greedy tokens identical for 64 tokens, and the
# maximum relative logit error over every position below the stated tolerance. Prompt ids
# come from llama.cpp's own tokenizer so that only the forward is compared.
set -u
RB=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
M=models/gemma-3-270m-q4_k_m.gguf
[ -f "$M" ] || { echo "Gemma model not installed (make model)"; exit 77; }
python3 -c "import llama_cpp, numpy" 2>/dev/null || { echo "llama_cpp (llama-cpp-python) is not installed"; exit 77; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
N=64
# Tolerance on the maximum relative logit error, per position max_i |ours_i - ref_i| /
# max_i |ref_i|, maximum over positions. Measured on 11 prompts (the 8 of
# datasets/arith_prompts.txt and 3 others): 0.06 to 0.19, the 0.19 at the third position of
# every prompt starting "Q:", where llama.cpp is itself 0.12 to 0.14 away from an exact
# float64 forward (tools/ref_numpy_forward.py) and we are 0.15 away from it: both sides
# quantize activations to 8 bits inside the quantized dot products, and Gemma's large
# residual activations make that coarse. Bound 0.30. The forward's arithmetic itself is
# checked exactly elsewhere: --exact agrees with the numpy forward to 4e-7 on this model
# and to 1e-6 on the tiny models (e2e_decode_tiny.sh).
TOL=0.30
# Greedy tokens: identical for 64 tokens on these three prompts (and on "The capital of
# France is"). On the other 7 of the 11 measured, greedy paths split at near-ties
# (llama.cpp's own top-2 margin there 0.02 to 0.35 logits of ~22, below the ~1 logit the two
# implementations differ by), after 3 to 23 tokens.
PROMPTS=(
  "Q: Tom has 3 apples and buys 5 more. How many apples does he have? A: Let's think step by step. Tom starts with 3 apples. He buys 5 more, so 3 + 5 = 8. The answer is 8. Q: A box holds 12 pencils. How many pencils are in 4 boxes? A: Let's think step by step."
  "Q: A train travels 60 miles per hour for 3 hours. How far does it go? A: Let's think step by step. Distance is speed times time, so 60 * 3 = 180. The answer is 180 miles. Q: A car travels 45 miles per hour for 4 hours. How far does it go? A: Let's think step by step."
  $'Q: What is the capital of France?\nA:'
)
# Each prompt costs ~5 s of CPU (64 tokens here and in llama.cpp, 70 MB of logits each):
# the suite runs the first; RB_LLAMACPP_PROMPTS=3 runs all three.
n_prompts=${RB_LLAMACPP_PROMPTS:-1}
for ((i = 0; i < n_prompts && i < 3; i++)); do
  ids=$(python3 tools/ref_llamacpp.py tokenize --model "$M" --prompt "${PROMPTS[$i]}" 2>/dev/null) || fail "tokenize"
  "$RB" decode --model "$M" --prompt-tokens "$ids" --max-tokens $N --quiet --threads 1 \
      --logits-out "$T/ours.f32" || fail "decode of prompt $i"
  out=$(python3 tools/ref_llamacpp.py check --model "$M" --tokens "$ids" --n $N --ours "$T/ours.f32" \
      --tol $TOL 2>/dev/null)
  rc=$?
  [ $rc = 77 ] && { echo "$out"; exit 77; }
  [ $rc = 0 ] || fail "prompt $i: $out"
  echo "# gemma prompt $i vs llama.cpp: $out"
done
exit 0
