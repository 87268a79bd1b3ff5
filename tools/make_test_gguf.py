#!/usr/bin/env python3
"""make_test_gguf.py: writes the small GGUF fixtures the C tests read back, into the
directory given as the only argument (tests call it into a mktemp directory):

  basic.gguf  metadata of every value type (nested arrays included) and tensors of several
              ggml types whose bytes follow a formula the test recomputes
  spm.gguf    a tiny SentencePiece ("llama") vocabulary with hand-computable merges
  spm_bad_scores.gguf  the same with one score missing (must be refused)
  bpe.gguf    a tiny byte-level BPE ("gpt2") vocabulary with hand-computable merges
  bpe_trained_{gpt2,llama3,qwen2}.gguf
              a byte-level BPE of ~600 merges trained here on a small multilingual text, with
              the pre-tokenizers "gpt-2", "llama-bpe" and "qwen2" (compared with llama.cpp by
              tests/e2e_tokenizer_bpe_llama_cpp.sh)

The values written here are restated in tests/test_gguf.c and tests/test_tokenizer.c:
change one, change the other. Uses the `gguf` PyPI package's writer, an implementation
independent of the C reader."""
import os
import re
import sys

import numpy as np
from gguf import GGUFWriter, GGUFValueType as VT, GGMLQuantizationType as QT, GGML_QUANT_SIZES


def tensor_bytes(index, nbytes):
    """Byte j of tensor `index` is (index*31 + j*7) mod 256 (the test checks this)."""
    j = np.arange(nbytes, dtype=np.int64)
    return ((index * 31 + j * 7) % 256).astype(np.uint8)


def write(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def basic(path):
    w = GGUFWriter(path, "testarch")  # adds general.architecture = "testarch"
    w.add_custom_alignment(64)  # general.alignment, and the writer pads to it
    w.add_key_value("t.u8", 200, VT.UINT8)
    w.add_key_value("t.i8", -100, VT.INT8)
    w.add_key_value("t.u16", 60000, VT.UINT16)
    w.add_key_value("t.i16", -30000, VT.INT16)
    w.add_key_value("t.u32", 4000000000, VT.UINT32)
    w.add_key_value("t.i32", -2000000000, VT.INT32)
    w.add_key_value("t.f32", 1.5, VT.FLOAT32)
    w.add_key_value("t.bool", True, VT.BOOL)
    w.add_key_value("t.str", "h\u00e9llo \u65e5\u672c", VT.STRING)
    w.add_key_value("t.empty", "", VT.STRING)
    w.add_key_value("t.u64", 2**63 + 5, VT.UINT64)  # does not fit an int64
    w.add_key_value("t.i64", -(2**40), VT.INT64)
    w.add_key_value("t.f64", -2.25, VT.FLOAT64)
    w.add_key_value("t.arr_i32", [1, -2, 3], VT.ARRAY, VT.INT32)
    w.add_key_value("t.arr_f32", [0.5, -1.0], VT.ARRAY, VT.FLOAT32)
    w.add_key_value("t.arr_u8", [7, 8, 9, 10], VT.ARRAY, VT.UINT8)
    w.add_key_value("t.arr_bool", [True, False], VT.ARRAY, VT.BOOL)
    w.add_key_value("t.arr_str", ["a", "", "\u00fcber"], VT.ARRAY, VT.STRING)
    w.add_key_value("t.arr_nested", [[1, 2], [3]], VT.ARRAY, VT.ARRAY)
    # name: (shape in numpy order = reversed ggml ne, type)
    tensors = [
        ("tensor.a", (2, 3), QT.F32),
        ("tensor.b", (8,), QT.F16),
        ("tensor.c", (2, 4), QT.BF16),
        ("tensor.d", (2, 64), QT.Q8_0),
        ("tensor.e", (1, 256), QT.Q4_K),
        ("tensor.f", (2, 1, 1, 256), QT.Q6_K),
        ("tensor.g", (3, 32), QT.Q4_0),
    ]
    for i, (name, shape, qt) in enumerate(tensors):
        blk, blk_bytes = GGML_QUANT_SIZES[qt]
        row_bytes = shape[-1] // blk * blk_bytes
        byte_shape = tuple(shape[:-1]) + (row_bytes,)
        data = tensor_bytes(i, int(np.prod(byte_shape))).reshape(byte_shape)
        w.add_tensor(name, data, raw_shape=byte_shape, raw_dtype=qt)
    write(w)


def byte_token(b):
    return "<0x%02X>" % b


def spm(path, n_scores=None):
    """n_scores: write only this many scores (a malformed file the loader must refuse).
    Ids: 0 <pad>, 1 <eos>, 2 <bos>, 3 <unk>, 4..259 byte tokens <0x00>..<0xFF>, then the
    pieces below in order (260 = "\u2581" ...)."""
    w = GGUFWriter(path, "llama")
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"] + [byte_token(b) for b in range(256)]
    types = [3, 3, 3, 2] + [6] * 256
    scores = [0.0] * 4 + [0.0] * 256
    pieces = [  # (piece, score, type)
        ("\u2581", -1.0, 1),       # 260
        ("a", -2.0, 1),            # 261
        ("b", -2.0, 1),            # 262
        ("c", -2.0, 1),            # 263
        ("ab", -3.0, 1),           # 264
        ("bc", -2.5, 1),           # 265 (beats ab)
        ("abc", -4.0, 1),          # 266
        ("aa", -3.0, 1),           # 267
        ("\u2581a", -1.5, 1),      # 268
        ("h", -2.0, 1),            # 269
        ("e", -2.0, 1),            # 270
        ("l", -2.0, 1),            # 271
        ("o", -2.0, 1),            # 272
        ("he", -3.0, 1),           # 273
        ("ll", -3.0, 1),           # 274
        ("llo", -3.5, 1),          # 275
        ("hello", -5.0, 1),        # 276
        ("\u2581hello", -5.5, 1),  # 277
        ("\u00e9", -2.0, 1),       # 278
        ("\u65e5", -2.0, 1),       # 279
        ("\u672c", -2.0, 1),       # 280
        ("\u65e5\u672c", -1.0, 1), # 281
        ("<start_of_turn>", 0.0, 3),  # 282
        ("<end_of_turn>", 0.0, 3),    # 283
        ("\n", 0.0, 4),               # 284 user-defined
        ("\u2581\u2581", -1.2, 1),    # 285
    ]
    for p, s, t in pieces:
        tokens.append(p)
        scores.append(s)
        types.append(t)
    w.add_string("tokenizer.ggml.model", "llama")
    w.add_string("tokenizer.ggml.pre", "default")
    w.add_token_list(tokens)
    w.add_token_scores(scores[:n_scores] if n_scores is not None else scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(False)
    write(w)


def bytes_to_unicode():
    """GPT-2's byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def bpe(path):
    """Ids 0..255: the byte-level character of byte i; then the merge results in rank order
    (256 = "he" ...), then <|endoftext|> (control)."""
    w = GGUFWriter(path, "gpt2")
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    merges = ["h e", "l l", "he ll", "hell o", "\u0120 w", "o r", "\u0120w or", "l d",
              "\u0120wor ld", "1 2", "12 3"]
    for m in merges:
        tokens.append(m.replace(" ", ""))
    tokens.append("<|endoftext|>")
    types = [1] * (len(tokens) - 1) + [3]
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", "gpt-2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(len(tokens) - 1)
    w.add_eos_token_id(len(tokens) - 1)
    w.add_add_bos_token(False)
    write(w)


CORPUS = """The capital of France is Paris. It's a city we've all heard of; they'll say
it's the city of light. Numbers: 1234567, 3.14159, 2024-11-30, 100% sure!
Caf\u00e9 na\u00efve \u00e9l\u00e8ve \u00fcber Stra\u00dfe \u00c5ngstr\u00f6m.
\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3002\u4e2d\u6587\u5b57\u7b26\u3002
\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440! \u03b3\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5.
def main(argv):\n    return sum(x ** 2 for x in argv)  # squares
    if (a && b) { c = d[i] + 1; }\t// tabs and braces
Reasoning: first, the cache grows; then, attention is sparse... Therefore the answer is 42.
"""


def train_bpe(text, n_merges):
    """Plain byte-level BPE training on words from a rough GPT-2-like split plus bare digit
    groups (the split only shapes which merges exist; the tokenizer under test pre-tokenizes
    its own way), most frequent pair merged first, ties broken by the pair's text."""
    b2u = bytes_to_unicode()
    parts = re.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+", text)
    parts += re.findall(r"\d{1,3}", text)
    words = {}
    for part in parts:
        w = tuple(b2u[b] for b in part.encode())
        words[w] = words.get(w, 0) + 1
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], "".join(kv[0])))[0]
        if pairs[best] < 2:
            break
        merges.append(best)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    return merges


def bpe_trained(path, pre):
    w = GGUFWriter(path, "gpt2")
    b2u = bytes_to_unicode()
    tokens = [b2u[b] for b in range(256)]
    merges = train_bpe(CORPUS * 3, 600)
    seen = set(tokens)
    for a, b in merges:
        if a + b not in seen:
            tokens.append(a + b)
            seen.add(a + b)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    types = [1] * len(tokens) + [3] * len(specials)
    tokens += specials
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges([a + " " + b for a, b in merges])
    w.add_bos_token_id(len(tokens) - 3)
    w.add_eos_token_id(len(tokens) - 3)
    w.add_add_bos_token(False)
    write(w)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_test_gguf.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    basic(os.path.join(out, "basic.gguf"))
    spm(os.path.join(out, "spm.gguf"))
    spm(os.path.join(out, "spm_bad_scores.gguf"), n_scores=285)
    bpe(os.path.join(out, "bpe.gguf"))
    for name, pre in (("gpt2", "gpt-2"), ("llama3", "llama-bpe"), ("qwen2", "qwen2")):
        bpe_trained(os.path.join(out, "bpe_trained_%s.gguf" % name), pre)


if __name__ == "__main__":
    main()
