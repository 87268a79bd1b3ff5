#!/usr/bin/env bash
# e2e_record_hf.sh: traces/record_hf.py on tiny random-weight Llama, Qwen2 and Gemma 3
# models built from configs (tests/make_tiny_hf.py, no download). For each: the trace opens
# in raasbench (info) with the model's shape, scale and sliding windows; the dense attention
# of the trace's q, k, v (float64, the format's definition) reproduces the outputs
# transformers computed in the same run (/check, --store-outputs) within 1e-5 relative
# (float32 traces) and 5e-3 (Gemma 3, float16 trace); `raasbench replay --policies dense` reads it with
# recall 1; the greedy tokens equal transformers' own generate(); a seeded sampled run
# repeats itself; chunked streaming (--chunk 5) writes the same data as one flush; --tasks
# writes one trace per task with the tokenizer's ids and the decoded /text; bad
# arguments exit 2 with no file. Skips (77) without torch or transformers.
set -u
RB=${RAASBENCH:-build/raasbench}
python3 -c "import torch, transformers" 2>/dev/null ||
  { echo "torch or transformers not installed (tools/install-python-ml.sh installs them)"; exit 77; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# one thread: OpenMP's spinning workers slow a shared 2-core machine tenfold
export TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
python3 tests/make_tiny_hf.py "$dir" llama qwen2 gemma3 >/dev/null 2>&1 || fail "make_tiny_hf.py"
P=2,5,17,33,9,100,4,8,12,200,7,3   # 12 prompt tokens; 24 more pass Gemma 3's window of 8
rec() { python3 traces/record_hf.py --prompt-tokens $P --max-new-tokens 24 --ignore-eos "$@" 2>"$dir/err" ||
          { cat "$dir/err"; fail "record_hf.py $*"; }; }
for fam in llama qwen2 gemma3; do
  rec --model "$dir/$fam" --dtype f32 --store-outputs --out "$dir/$fam.h5"
  "$RB" info "$dir/$fam.h5" >"$dir/info" || fail "$fam: raasbench info refuses the trace"
  grep -q "36 = 12 prefill + 24 decode steps" "$dir/info" || { cat "$dir/info"; fail "$fam: token counts"; }
  python3 tests/check_hf_outputs.py "$dir/$fam.h5" --tol 1e-5 >"$dir/chk" || { cat "$dir/chk"; fail "$fam: f32 outputs"; }
  echo "# $fam f32 trace vs transformers' attention outputs: $(tail -1 "$dir/chk")"
  "$RB" replay "$dir/$fam.h5" --policies dense --budgets 8 --dense-layers 0 --out "$dir/$fam.r.h5" --quiet ||
    fail "$fam: replay"
done
rec --model "$dir/gemma3" --dtype f16 --store-outputs --out "$dir/gemma3.f16.h5"
python3 tests/check_hf_outputs.py "$dir/gemma3.f16.h5" --tol 5e-3 >"$dir/chk" || { cat "$dir/chk"; fail "gemma3: f16 outputs"; }
echo "# gemma3 f16 trace: $(tail -1 "$dir/chk")"
python3 - "$dir" "$P" <<'PY' || fail "trace contents"
import sys, h5py, numpy as np, torch, transformers as T
d, P = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
want = {"llama": (0.25, [0, 0, 0, 0]), "qwen2": (0.25, [0, 0, 0, 0]), "gemma3": (24 ** -0.5, [8, 8, 8, 0])}
for fam, (scale, wins) in want.items():
    with h5py.File(f"{d}/{fam}.h5") as f, h5py.File(f"{d}/{fam}.r.h5") as r:
        a = f.attrs
        assert a["format"] == "raasbench-trace" and a["source"] == "record_hf", dict(a)
        assert (int(a["n_q_heads"]), int(a["n_kv_heads"]), int(a["head_dim"])) == (4, 2, 16)
        assert abs(a["attn_scale"] - scale) < 1e-7, (fam, a["attn_scale"])
        assert [int(f[f"layer_{l:03d}"].attrs["sliding_window"]) for l in range(4)] == wins, fam
        assert f["layer_000/q"].dtype == np.float32 and f["layer_000/k"].shape == (36, 2, 16)
        toks = f["tokens"][:].tolist()
        assert toks[:12] == P
    m = T.AutoModelForCausalLM.from_pretrained(f"{d}/{fam}", dtype=torch.float32)
    g = m.generate(torch.tensor([P]), max_new_tokens=24, do_sample=False, eos_token_id=None,
                   pad_token_id=0)[0].tolist()
    assert g == toks, (fam, g, toks)
print("# greedy tokens equal generate()'s for llama, qwen2, gemma3")
PY
# replay's dense run: recall 1 on every step
python3 - "$dir" <<'PY' || fail "replay results"
import sys, h5py, numpy as np
for fam in ("llama", "qwen2", "gemma3"):
    with h5py.File(f"{sys.argv[1]}/{fam}.r.h5") as r:
        rec = []
        r.visititems(lambda n, o: rec.append(o[...]) if isinstance(o, h5py.Dataset) and n.endswith("recall") else None)
        assert rec and all(np.all(np.abs(x - 1) < 1e-6) for x in rec), fam
PY
# sampled: the same seed gives the same tokens, not the greedy ones
rec --model "$dir/llama" --temperature 1 --seed 7 --out "$dir/s1.h5"
rec --model "$dir/llama" --temperature 1 --seed 7 --chunk 5 --out "$dir/s2.h5"
python3 - "$dir" <<'PY' || fail "sampling or chunking"
import sys, h5py, numpy as np
d = sys.argv[1]
f1, f2, g = (h5py.File(f"{d}/{n}.h5") for n in ("s1", "s2", "llama"))
assert (f1["tokens"][:] == f2["tokens"][:]).all(), "same seed, different tokens"
assert (f1["tokens"][:] != g["tokens"][:]).any(), "temperature 1 sampled the greedy tokens"
for l in range(4):
    for t in "qkv":
        assert np.array_equal(f1[f"layer_{l:03d}/{t}"][:], f2[f"layer_{l:03d}/{t}"][:]), (l, t)
print("# seeded sampling repeats; --chunk 5 writes the same bytes as one flush")
PY
# tasks: a prompt line and a question line through a template, one trace each, tokens from
# the model's tokenizer and the text decoded
printf '%s\n' '{"id": "a", "prompt": "Q: What is 2 + 3? A:"}' '{"question": "What is 3 + 2?"}' \
  '{"prompt": "never read (--limit 2)"}' >"$dir/tasks.jsonl"
printf 'Q: {question} A:' >"$dir/tmpl.txt"
python3 traces/record_hf.py --model "$dir/llama" --tasks "$dir/tasks.jsonl" --limit 2 --template "$dir/tmpl.txt" \
  --max-new-tokens 4 --ignore-eos --out "$dir/task.h5" 2>"$dir/err" || { cat "$dir/err"; fail "--tasks"; }
python3 - "$dir" <<'PY' || fail "task traces"
import os, sys, h5py, transformers as T
d = sys.argv[1]
tok = T.AutoTokenizer.from_pretrained(f"{d}/llama")
assert sorted(x for x in os.listdir(d) if x.startswith("task-")) == ["task-2.h5", "task-a.h5"], os.listdir(d)
for name, prompt in (("a", "Q: What is 2 + 3? A:"), ("2", "Q: What is 3 + 2? A:")):
    with h5py.File(f"{d}/task-{name}.h5") as f:
        ids = tok(prompt)["input_ids"]
        P = int(f.attrs["n_prefill"])
        assert P == len(ids) and f["tokens"][:P].tolist() == ids and int(f.attrs["n_tokens"]) == P + 4
        text = f["text"][()].decode()
        assert text.startswith(prompt), (text, prompt)
print("# --tasks: one trace per task, tokens from the tokenizer, /text decoded")
PY
# bad input: exit 2, a raasbench-style message, no file
for args in "--max-new-tokens 0" "--max-new-tokens 4 --temperature -1" "--max-new-tokens 4 --prompt-tokens x,y"; do
  python3 traces/record_hf.py --model "$dir/llama" --prompt-tokens 1,2 $args --out "$dir/bad.h5" >/dev/null 2>"$dir/err"
  rc=$?
  [ $rc = 2 ] || fail "'$args' exited $rc, expected 2"
  grep -q "^raasbench: " "$dir/err" || { cat "$dir/err"; fail "'$args': no raasbench: message"; }
  ls "$dir"/bad.h5* >/dev/null 2>&1 && fail "'$args' left a file"
done
python3 traces/record_hf.py --model "$dir/none" --prompt-tokens 1 --max-new-tokens 1 --out "$dir/bad.h5" 2>/dev/null
[ $? = 2 ] || fail "missing model not refused with 2"
echo "record_hf: 3 families recorded and checked"
