#!/usr/bin/env bash
# e2e_policy_generate.sh: a raasbench policy deciding the KV cache inside a transformers
# decode (record_hf.py --policy, python/'s Stepper over build/libraasbench.so), checked
# against the C engine: the run's own q, k, v are recorded, `raasbench replay` runs the
# same policy and budget on that trace, and the attended sets (--dump-selection) agree at
# every step, layer and query head (tiny random Llama: raas and h2o on 3 global layers;
# tiny Gemma 3: its one global layer). The transformers cache of the policy's layers holds
# 0 bytes, the policy's pools at most L (+ the pinned prompt pages for raas) per KV head;
# model.generate() inside raasbench.hf.policy(...) decodes the same tokens as that run.
# Skips (77) without torch/transformers, and in a sanitizer build (a Python process cannot
# load an ASan library).
set -u
RB=${RAASBENCH:-build/raasbench}
BUILD=${BUILD:-build}
case "$BUILD" in *san*) echo "sanitizer build: python cannot load an ASan libraasbench.so"; exit 77;; esac
python3 -c "import torch, transformers" 2>/dev/null ||
  { echo "torch or transformers not installed (tools/install-python-ml.sh installs them)"; exit 77; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export TRANSFORMERS_VERBOSITY=error HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
export RAASBENCH_LIB="$PWD/$BUILD/libraasbench.so"
make -s BUILD="$BUILD" lib >"$dir/make.log" 2>&1 || { cat "$dir/make.log"; fail "make lib"; }
python3 tests/make_tiny_hf.py "$dir" llama gemma3 >/dev/null 2>&1 || fail "make_tiny_hf.py"
P=2,5,17,33,9,100,4,8,12,200,7,3,4,5,6,7,8,9,10,11   # 20 prompt tokens, 60 decoded
run() {  # family policy budget dense_layers
  python3 traces/record_hf.py --model "$dir/$1" --prompt-tokens $P --max-new-tokens 60 --ignore-eos \
    --dtype f32 --store-outputs --policy "$2" --budget "$3" --page-size 8 --dense-layers "$4" \
    --out "$dir/$1-$2.h5" 2>"$dir/err" || { cat "$dir/err"; fail "record_hf.py --policy $2 on $1"; }
  "$RB" replay "$dir/$1-$2.h5" --policies "$2" --budgets "$3" --page-size 8 --dense-layers "$4" \
    --dump-selection --threads 1 --quiet --out "$dir/$1-$2.r.h5" || fail "replay $1 $2"
  python3 - "$dir/$1-$2.h5" "$dir/$1-$2.r.h5" "$2" "$3" <<'PY' || fail "$1 $2: C engine disagrees"
import sys, json, h5py, numpy as np
f, r = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
pol, L, Pg = sys.argv[3], int(sys.argv[4]), 8
sel = r[f"runs/{pol}_L{L}/selection"]
layers = sorted(int(k[6:]) for k in f["check"] if "selection" in f["check"][k])
assert layers, "no policy layer"
hkv, d, n_pre = int(f.attrs["n_kv_heads"]), int(f.attrs["head_dim"]), int(f.attrs["n_prefill"])
kvb = json.loads(f.attrs["policy_kv_bytes"])
bound_tokens = L + (Pg * -(-n_pre // Pg) if pol == "raas" else 0)
for l in layers:
    a = f[f"check/layer_{l:03d}/selection"][:]
    b = sel[f"layer_{l:03d}"][:].astype(np.uint8)
    assert a.shape == b.shape == (60, int(f.attrs["n_q_heads"]), 80), (a.shape, b.shape)
    assert np.array_equal(a, b), (l, int((a != b).sum()))
    assert a.sum(-1).max() <= L + Pg, a.sum(-1).max()
    assert kvb[str(l)] <= bound_tokens * hkv * d * 2 * 2 < 80 * hkv * d * 2 * 2, (l, kvb[str(l)])
assert int(f.attrs["policy_hf_cache_bytes"]) == 0
print(f"# {sys.argv[1].split('/')[-1][:-3]}: attended sets equal to replay's at 60 steps x layers {layers}; "
      f"pools {sorted(kvb.values())} bytes (dense would hold {80 * hkv * d * 4}); transformers' cache 0")
PY
}
run llama raas 32 1
# the same policy inside model.generate() (raasbench.hf.policy): the tokens of the run whose
# attended sets the C replay just reproduced, the policy layers' transformers cache empty
PYTHONPATH=python python3 - "$dir" $P <<'PY' || fail "generate() under raasbench.hf.policy"
import sys, h5py, torch, transformers as T
from raasbench.hf import policy
d, P = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
m = T.AutoModelForCausalLM.from_pretrained(f"{d}/llama", dtype=torch.float32)
kw = dict(max_new_tokens=60, do_sample=False, eos_token_id=None, pad_token_id=0)
with policy(m, "raas", 32, max_tokens=80, dense_layers=1, page_size=8) as cache:
    g = m.generate(torch.tensor([P]), cache=cache, **kw)[0].tolist()
    assert all(cache.layers[l].keys.numel() == 0 for l in (1, 2, 3))
    assert cache.layers[0].keys.shape[2] == 79 and max(cache.kv_bytes().values()) <= 4096, cache.kv_bytes()
want = h5py.File(f"{d}/llama-raas.h5")["tokens"][:].tolist()
assert g == want, (g, want)
dense = m.generate(torch.tensor([P]), **kw)[0].tolist()
assert dense != g, "raas at L=32 decoded the dense tokens"
print("# model.generate() under raasbench.hf.policy('raas', 32): the replay-checked run's 60 tokens, policy layers' transformers cache empty")
PY
run llama h2o 32 1
run gemma3 raas 32 2
# a policy the C library does not know is refused with exit 2
python3 traces/record_hf.py --model "$dir/llama" --prompt-tokens 1,2 --max-new-tokens 2 --policy nosuch \
  --budget 8 --out "$dir/bad.h5" 2>"$dir/err"; rc=$?
[ $rc = 2 ] && grep -q "^raasbench: " "$dir/err" || { cat "$dir/err"; fail "unknown policy: exit $rc"; }
