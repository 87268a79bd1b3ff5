#!/usr/bin/env bash
# e2e_tokenizer_bpe_llama_cpp.sh: our byte-level BPE against llama.cpp's (llama_cpp Python
# binding, vocab_only) on trained fixture vocabularies with the three pre-tokenizers we
# implement by hand (gpt-2, llama-bpe, qwen2): ids must be identical on every string.
# Skips when llama_cpp or the gguf package is missing.
set -u
BUILD=${BUILD:-build}
TOOL="$BUILD/tests/test_tokenizer"
[ -x "$TOOL" ] || { echo "FAIL: $TOOL not built"; exit 1; }
python3 -c "import llama_cpp" >/dev/null 2>&1 || { echo "skip: llama_cpp is not importable"; exit 77; }
python3 -c "import gguf" >/dev/null 2>&1 || { echo "skip: the gguf package is not installed"; exit 77; }
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
python3 tools/make_test_gguf.py "$DIR" || { echo "FAIL: fixtures"; exit 1; }

python3 - "$DIR" "$TOOL" <<'PY'
import subprocess, sys
import llama_cpp

d, tool = sys.argv[1], sys.argv[2]
texts = [
    "The capital of France is",
    "The capital of France is Paris. It's a city we've all heard of.",
    "IT'S WE'RE THEY'LL I'D YOU'VE I'M 'S 'x",
    "Numbers: 1234567, 3.14159, 2024-11-30, 100% sure! 12 123 1234 12345",
    "caf\u00e9 na\u00efve \u00fcber Stra\u00dfe \u00c5ngstr\u00f6m",
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3002\u4e2d\u6587\u5b57\u7b26",
    "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440! \u03b3\u03b5\u03b9\u03ac",
    "def main(argv):\n    return sum(x ** 2 for x in argv)  # squares\n",
    "if (a && b) { c = d[i] + 1; }\t// tabs\r\n\r\n  \n x",
    "trailing spaces   ",
    "   leading",
    "a  b   c    d\n\n\ne",
    "emoji \U0001F600\U0001F44D\U0001F3FD \u2764\ufe0f!!",
    "nbsp\u00a0here \u3000ideographic\u2003em",
    "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
    "\u00bd \u2167 \u0663\u0664 \u00b2",
    "",
    " ",
    "\n",
    "...!!!???",
]
blobs = [t.encode() for t in texts] + [b"bad \xff\xfe utf-8 \xe6\x97 here\xc3"]
# Plus seeded random strings from pieces that stress merges, specials and whitespace.
import random
rng = random.Random(7)
pieces = [" ", "  ", "\n", "\n\n", "\t", "\r\n", "a", "the", "The", " of", "hello", "World",
          "1", "23", "456", "'s", "'LL", "!", "...", "(", ")", "<start_of_turn>", "<end_of_turn>",
          "<start_of", "_turn>", "<|endoftext|>", "<|im_start|>", "<|im_", "\u00e9", "\u65e5\u672c",
          "\U0001F600", "\u00a0", "\u3000", "\u0416", "\u2167", "\u00bd"]
for _ in range(150):
    blobs.append("".join(rng.choice(pieces) for _ in range(rng.randrange(0, 20))).encode())
fails = n = 0
for name in ("gpt2", "llama3", "qwen2"):
    model = f"{d}/bpe_trained_{name}.gguf"
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    for special in (True, False):
        args = [tool, "--encode", model] + ([] if special else ["--no-special"])
        inp = "".join(b.hex() + "\n" for b in blobs)
        out = subprocess.run(args, input=inp, capture_output=True, text=True)
        if out.returncode != 0:
            print("FAIL: tool exited", out.returncode, out.stderr)
            sys.exit(1)
        for b, line in zip(blobs, out.stdout.split("\n")):
            n += 1
            mine = [int(x) for x in line.split()]
            ref = llm.tokenize(b, add_bos=False, special=special)
            if mine != ref:
                fails += 1
                print(f"FAIL {name} special={special} text={b!r}\n  ours      {mine}\n  llama.cpp {ref}")
if fails:
    print(f"{fails} of {n} tokenizations differ from llama.cpp")
    sys.exit(1)
print(f"# tokenizer: {n} byte-level BPE tokenizations (gpt-2, llama-bpe, qwen2) identical to llama.cpp")
PY
