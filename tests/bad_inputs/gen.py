#!/usr/bin/env python3
"""gen.py RAASBENCH OUTDIR: the bad-input corpus of tests/e2e_bad_inputs.sh.

Writes, under OUTDIR, good fixtures made by raasbench itself (a synthetic trace, a replay's
results, a lifecycle file, a task file) and by tools/make_tiny_models.py (tiny GGUF models),
then damaged copies of each: traces and results edited with h5py, GGUF files rewritten by a
small GGUF codec below (independent of the C reader), sweep configs (JSON) and eval task
files (JSONL) written as text; and OUTDIR/cases.json, one case a line:

  {"id": ..., "argv": [...], "rc": 2, "re": REGEX, "keep": [paths that must not change]}

A case runs `RAASBENCH argv...`; it must exit with rc, print `raasbench: ...` matching RE on
stderr, never crash or report a sanitizer error, and leave OUTDIR/o/<id>/ (where its output
goes) empty. Case ids are stable: tests/bad_inputs/KNOWN_FAILING names some of them."""
import json
import os
import shutil
import struct
import subprocess
import sys

import h5py
import numpy as np

RB, D = sys.argv[1], os.path.abspath(sys.argv[2])
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.makedirs(D, exist_ok=True)
cases = []


def odir(cid):
    p = f"{D}/o/{cid}"
    os.makedirs(p, exist_ok=True)
    return p


def case(cid, argv, re_, rc=2, keep=()):
    assert all(c["id"] != cid for c in cases), cid
    cases.append(dict(id=cid, argv=[str(a) for a in argv], rc=rc, re=re_, keep=list(keep)))


def run(*argv):
    subprocess.run([RB, *map(str, argv)], check=True, stdout=subprocess.DEVNULL)


def write(name, data):
    p = f"{D}/{name}"
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return p


# ---------------------------------------------------------------- good fixtures
TRACE = f"{D}/good.h5"
RESULTS = f"{D}/good_results.h5"
LIFE = f"{D}/good_lifecycle.h5"
TASKS = f"{D}/good.jsonl"
run("synth", "--out", TRACE, "--layers", 4, "--q-heads", 4, "--kv-heads", 2, "--head-dim", 32,
    "--prefill", 16, "--decode", 48, "--phoenix", 0, "--quiet")
run("replay", TRACE, "--policies", "dense,h2o", "--budgets", 32, "--threads", 1, "--quiet",
    "--out", RESULTS)
run("lifecycle", TRACE, "--layer", 2, "--out", LIFE, "--quiet")
run("tasks", "--kind", "chain", "--n", 2, "--shots", 0, "--out", TASKS)
subprocess.run([sys.executable, f"{REPO}/tools/make_tiny_models.py", f"{D}/m"], check=True,
               stdout=subprocess.DEVNULL)
MODEL = f"{D}/m/tiny-gemma3.gguf"
MODEL_Q = f"{D}/m/tiny-qwen2.gguf"
TXT = write("plain.txt", "plain text, not any raasbench format\n")
EMPTY = write("empty.bin", b"")
os.makedirs(f"{D}/adir", exist_ok=True)
ADIR = f"{D}/adir"
MISSING = f"{D}/no/such/file"
POL = "dense"
DECODE = ["decode", "--model", MODEL, "--prompt-tokens", "2,270,275", "--max-tokens", 2, "--quiet"]


def keep_out(cid, name="out.h5"):
    return f"{odir(cid)}/{name}"


# ---------------------------------------------------------------- traces (HDF5)
def trace_variant(name, edit):
    p = f"{D}/t/{name}.h5"
    os.makedirs(os.path.dirname(p), exist_ok=True)
    shutil.copy(TRACE, p)
    with h5py.File(p, "r+") as f:
        edit(f)
    return p


def set_attr(obj, k, v):
    if k in obj.attrs:
        del obj.attrs[k]
    obj.attrs[k] = v


def replace_ds(g, name, data=None, **kw):
    if name in g:
        del g[name]
    if data is None:
        return g.create_dataset(name, **kw)
    return g.create_dataset(name, data=data, **kw)


def trace_case(name, edit, re_, cmd="info"):
    p = trace_variant(name, edit)
    cid = f"trace-{name}"
    if cmd == "info":
        case(cid, ["info", p], re_)
    elif cmd == "replay":
        o = keep_out(cid)
        case(cid, ["replay", p, "--policies", POL, "--budgets", 32, "--threads", 1, "--quiet",
                   "--out", o], re_)
    elif cmd == "lifecycle":
        case(cid, ["lifecycle", p, "--layer", 2, "--quiet", "--out", keep_out(cid)], re_)
    elif cmd == "sweep":
        cfg = write(f"t/{name}.json", json.dumps({"traces": [p], "policies": [POL], "budgets": [32],
                                                  "threads": 1, "out": keep_out(cid)}))
        case(cid, ["sweep", cfg, "--quiet"], re_)


raw = open(TRACE, "rb").read()
case("trace-not-hdf5", ["info", TXT], r"^raasbench: .*plain.txt: not an HDF5 file")
case("trace-empty-file", ["info", EMPTY], r"^raasbench: .*empty.bin: not an HDF5 file")
case("trace-missing-file", ["info", MISSING], r"^raasbench: .*no/such/file: no such file")
case("trace-directory", ["info", ADIR], r"^raasbench: .*adir: .*directory")
for n in (512, 4096, len(raw) // 2, len(raw) - 100):
    p = write(f"t/truncated_{n}.h5", raw[:n])
    case(f"trace-truncated-{n if n < 5000 else 'half' if n == len(raw)//2 else 'end'}",
         ["replay", p, "--policies", POL, "--budgets", 32, "--threads", 1, "--quiet", "--out",
          keep_out(f"trace-truncated-{n if n < 5000 else 'half' if n == len(raw)//2 else 'end'}")],
         r"^raasbench: .*truncated_")
junk = bytearray(raw)
for i in range(2048, len(junk), 4099):
    junk[i] ^= 0x5A
p = write("t/bitflips.h5", bytes(junk))
case("trace-bitflips", ["replay", p, "--policies", POL, "--budgets", 32, "--threads", 1, "--quiet",
                        "--out", keep_out("trace-bitflips")], r"^raasbench: .*bitflips.h5")

trace_case("format-other", lambda f: set_attr(f, "format", "something-else"), r"not a raasbench trace")
trace_case("format-int", lambda f: set_attr(f, "format", np.int64(3)), r"^raasbench: .*format")
trace_case("format-missing", lambda f: f.attrs.__delitem__("format"), r"^raasbench: .*format")
trace_case("version-2", lambda f: set_attr(f, "format_version", np.int64(2)), r"format_version 2 is not supported")
trace_case("version-0", lambda f: set_attr(f, "format_version", np.int64(0)), r"format_version 0 is not supported")
trace_case("version-string", lambda f: set_attr(f, "format_version", "1"), r"^raasbench: .*format_version")
for a in ("n_layers", "n_q_heads", "n_kv_heads", "head_dim", "n_prefill", "n_tokens", "attn_scale"):
    trace_case(f"attr-missing-{a}", lambda f, a=a: f.attrs.__delitem__(a), rf"attribute '{a}'")
    trace_case(f"attr-string-{a}", lambda f, a=a: set_attr(f, a, "12"), rf"^raasbench: .*{a}")
for a, v in (("n_layers", 0), ("n_layers", -1), ("n_q_heads", 0), ("n_kv_heads", 0),
             ("head_dim", 0), ("head_dim", -32), ("n_tokens", 0), ("n_prefill", -1),
             ("n_layers", 1 << 40), ("n_tokens", 1 << 40)):
    trace_case(f"attr-{a}-{v if v < 1000 else 'huge'}", lambda f, a=a, v=v: set_attr(f, a, np.int64(v)),
               rf"^raasbench: .*{a}")
trace_case("attr-n_layers-float", lambda f: set_attr(f, "n_layers", 2.5), r"^raasbench: .*n_layers")
trace_case("attr-n_layers-array", lambda f: set_attr(f, "n_layers", np.array([4, 4])), r"^raasbench: .*n_layers")
trace_case("attr-n_layers-300", lambda f: set_attr(f, "n_layers", np.int64(300)), r"^raasbench: .*n_layers")
trace_case("heads-not-multiple", lambda f: set_attr(f, "n_q_heads", np.int64(3)), r"n_q_heads \(3\) is not a multiple of n_kv_heads \(2\)")
trace_case("prefill-ge-tokens", lambda f: set_attr(f, "n_prefill", np.int64(64)), r"n_prefill \(64\) >= n_tokens \(64\)")
for v, tag in ((float("nan"), "nan"), (0.0, "zero"), (-0.5, "negative"), (float("inf"), "inf")):
    trace_case(f"attn_scale-{tag}", lambda f, v=v: set_attr(f, "attn_scale", np.float32(v)), r"^raasbench: .*attn_scale")
trace_case("tokens-mismatch", lambda f: set_attr(f, "n_tokens", np.int64(63)), r"has shape \[64, .*expected \[63")
trace_case("layer-missing", lambda f: f.__delitem__("layer_001"), r"missing layer group /layer_001|layer_001")
trace_case("layer-none", lambda f: [f.__delitem__(k) for k in list(f) if k.startswith("layer_")], r"^raasbench: .*layer")
trace_case("layer-beyond", lambda f: f.move("layer_003", "layer_009"), r"^raasbench: .*layer")
trace_case("layer-is-dataset", lambda f: (f.__delitem__("layer_001"), f.create_dataset("layer_001", data=[1])), r"^raasbench: .*layer_001")
for t in ("q", "k", "v"):
    trace_case(f"layer-no-{t}", lambda f, t=t: f["layer_001"].__delitem__(t), rf"missing dataset /layer_001/{t}")
trace_case("q-rank2", lambda f: replace_ds(f["layer_001"], "q", np.zeros((64, 128), np.float16)),
           r"/layer_001/q has shape \[64, 128\]")
trace_case("q-rank4", lambda f: replace_ds(f["layer_001"], "q", np.zeros((64, 4, 32, 1), np.float16)),
           r"/layer_001/q has (shape|rank)")
trace_case("k-wrong-heads", lambda f: replace_ds(f["layer_002"], "k", np.zeros((64, 3, 32), np.float16)),
           r"/layer_002/k has shape \[64, 3, 32\], expected \[64, 2, 32\]")
trace_case("v-wrong-dim", lambda f: replace_ds(f["layer_000"], "v", np.zeros((64, 2, 31), np.float16)),
           r"/layer_000/v has shape \[64, 2, 31\]")
for dt in ("i4", "f8", "u1"):
    trace_case(f"q-dtype-{dt}", lambda f, dt=dt: replace_ds(f["layer_001"], "q", np.zeros((64, 4, 32), dt)),
               r"expected float16 or float32")
trace_case("q-dtype-string", lambda f: replace_ds(f["layer_001"], "q", np.full((64, 4, 32), "x", dtype=h5py.string_dtype())),
           r"expected float16 or float32")
trace_case("dtype-mixed", lambda f: [replace_ds(f["layer_002"], t, np.zeros(f["layer_002"][t].shape, np.float32)) for t in ("q", "k", "v")],
           r"dtype differs")
trace_case("window-negative", lambda f: set_attr(f["layer_001"], "sliding_window", np.int64(-4)), r"negative sliding_window")
trace_case("window-string", lambda f: set_attr(f["layer_001"], "sliding_window", "4"), r"^raasbench: .*sliding_window")


def poison(f, layer, t, idx, val):
    x = f[layer][t][...]
    x[idx] = val
    replace_ds(f[layer], t, x)


trace_case("nan-q", lambda f: poison(f, "layer_002", "q", (40, 1, 3), np.nan), r"NaN in /layer_002/q at position 40, head 1", "replay")
trace_case("inf-k", lambda f: poison(f, "layer_003", "k", (5, 0, 0), np.inf), r"Inf in /layer_003/k at position 5, head 0", "replay")
trace_case("neginf-v", lambda f: poison(f, "layer_002", "v", (63, 1, 31), -np.inf), r"Inf in /layer_002/v at position 63", "replay")
trace_case("nan-q-sweep", lambda f: poison(f, "layer_002", "q", (30, 0, 0), np.nan), r"NaN in /layer_002/q", "sweep")
trace_case("nan-q-lifecycle", lambda f: poison(f, "layer_002", "q", (30, 0, 0), np.nan), r"NaN in /layer_002/q", "lifecycle")
# Declared extents the file cannot hold (issue 15): datasets declared far larger than the
# bytes behind them (chunked, never written).
trace_case("milestones-2e40", lambda f: replace_ds(f["truth"], "milestones", shape=(1 << 40, 3), dtype="i4", chunks=(1024, 3)),
           r"^raasbench: .*milestones")
trace_case("milestones-2e40-lifecycle", lambda f: replace_ds(f["truth"], "milestones", shape=(1 << 40, 3), dtype="i4", chunks=(1024, 3)),
           r"^raasbench: .*milestones", "lifecycle")


def huge_tokens(f):
    n = 10 ** 9
    set_attr(f, "n_tokens", np.int64(n))
    for k in [k for k in f if k.startswith("layer_")]:
        for t, h in (("q", 4), ("k", 2), ("v", 2)):
            replace_ds(f[k], t, shape=(n, h, 32), dtype="f2", chunks=(64, h, 32))


trace_case("n_tokens-1e9-unwritten", huge_tokens, r"^raasbench: .*(n_tokens|size|storage|larger)", "replay")
trace_case("milestones-shape", lambda f: replace_ds(f["truth"], "milestones", np.zeros((5, 2), "i4")), r"/truth/milestones")
trace_case("milestones-out-of-range", lambda f: replace_ds(f["truth"], "milestones", np.array([[999, 20, 30]], "i4")), r"/truth/milestones")
trace_case("phoenix-string", lambda f: replace_ds(f["truth"], "phoenix", np.array(["a", "b"], dtype=h5py.string_dtype())), r"/truth/phoenix")
trace_case("truth-is-dataset", lambda f: (f.__delitem__("truth"), f.create_dataset("truth", data=[1])), r"^raasbench: .*truth")
# Every optional object is checked for kind and extent at open, its rows against the trace.
trace_case("milestones-out-of-range-lifecycle", lambda f: replace_ds(f["truth"], "milestones", np.array([[20, 30, 64]], "i4")), r"/truth/milestones row 0 .*past the trace", "lifecycle")
trace_case("milestones-in-prompt", lambda f: replace_ds(f["truth"], "milestones", np.array([[3, 20, 30]], "i4")), r"/truth/milestones row 0 .*not a decode position")
trace_case("phoenix-out-of-range", lambda f: replace_ds(f["truth"], "phoenix", np.array([[40, 16, 20]], "i4")), r"/truth/phoenix row 0 .*not a prompt position")
trace_case("phoenix-revival-negative", lambda f: replace_ds(f["truth"], "phoenix", np.array([[4, 16, -1]], "i4")), r"/truth/phoenix row 0 ")
trace_case("milestones-float", lambda f: replace_ds(f["truth"], "milestones", np.zeros((2, 3), "f4")), r"/truth/milestones must be integers")
trace_case("milestones-too-many-rows", lambda f: replace_ds(f["truth"], "milestones", np.tile(np.array([[20, 30, 40]], "i4"), (65, 1))), r"/truth/milestones has 65 rows, more than n_tokens=64")
trace_case("milestones-is-group", lambda f: (f["truth"].__delitem__("milestones"), f["truth"].create_group("milestones")), r"truth/milestones is not a dataset")
trace_case("truth-is-dataset-replay", lambda f: (f.__delitem__("truth"), f.create_dataset("truth", data=[1])), r"/truth must be a group", "replay")
trace_case("tokens-is-group", lambda f: (f.__contains__("tokens") and f.__delitem__("tokens"), f.create_group("tokens")), r"tokens is not a dataset")
trace_case("text-is-group", lambda f: (f.__contains__("text") and f.__delitem__("text"), f.create_group("text")), r"text is not a dataset")
trace_case("tokens-length", lambda f: replace_ds(f, "tokens", np.arange(10, dtype="i4")), r"/tokens .*(10|n_tokens)")
trace_case("text-int", lambda f: replace_ds(f, "text", np.arange(5, dtype="i4")), r"^raasbench: .*/text")
trace_case("text-array", lambda f: replace_ds(f, "text", np.array(["a", "b"], dtype=h5py.string_dtype())), r"^raasbench: .*/text")

# ---------------------------------------------------------------- results files (HDF5)
def results_variant(name, edit):
    p = f"{D}/r/{name}.h5"
    os.makedirs(os.path.dirname(p), exist_ok=True)
    shutil.copy(RESULTS, p)
    with h5py.File(p, "r+") as f:
        edit(f)
    return p


RUN = "runs/h2o_L32"


def results_case(name, edit, re_, cmd=("info",)):
    p = results_variant(name, edit)
    cid = f"results-{name}"
    if cmd[0] == "info":
        case(cid, ["info", p], re_)
    else:  # export --table T
        o = keep_out(cid, "out.tsv")
        case(cid, ["export", p, "--table", cmd[1], "--out", o], re_)


case("results-trace-as-results", ["export", TRACE, "--table", "summary", "--out", keep_out("results-trace-as-results", "o.tsv")],
     r"^raasbench: .*good.h5: .*(not a raasbench results|trace)")
case("results-text", ["export", TXT, "--table", "summary"], r"^raasbench: .*not an HDF5 file")
case("results-missing", ["export", MISSING, "--table", "steps"], r"^raasbench: .*no such file")
results_case("format-other", lambda f: set_attr(f, "format", "nope"), r"^raasbench: .*(not a raasbench|format)")
results_case("version-99", lambda f: set_attr(f, "format_version", np.int64(99)), r"format_version 99")
results_case("version-missing", lambda f: f.attrs.__delitem__("format_version"), r"format_version")
results_case("no-runs", lambda f: f.__delitem__("runs"), r"^raasbench: .*runs", ("export", "steps"))
results_case("runs-is-dataset", lambda f: (f.__delitem__("runs"), f.create_dataset("runs", data=[1])), r"^raasbench: .*runs", ("export", "steps"))
for a in ("policy", "budget", "page_size", "layers", "sparse_layers"):
    results_case(f"run-no-{a}", lambda f, a=a: f[RUN].attrs.__delitem__(a), rf"{a}", ("export", "steps"))
results_case("run-budget-string", lambda f: set_attr(f[RUN], "budget", "32"), r"budget", ("export", "steps"))
results_case("run-layers-length", lambda f: set_attr(f[RUN], "layers", np.arange(7, dtype="i4")), r"layers", ("export", "steps"))
for s in ("recall", "out_err", "attended", "kv_bytes", "latency_ns"):
    results_case(f"series-missing-{s}", lambda f, s=s: f[RUN].__delitem__(s), rf"{s}", ("export", "steps"))
results_case("series-recall-T", lambda f: replace_ds(f[RUN], "recall", np.zeros((47, 4), "f4")), r"recall", ("export", "steps"))
results_case("series-recall-rank1", lambda f: replace_ds(f[RUN], "recall", np.zeros(48, "f4")), r"recall", ("export", "steps"))
results_case("series-recall-string", lambda f: replace_ds(f[RUN], "recall", np.full((48, 4), "x", dtype=h5py.string_dtype())), r"recall", ("export", "steps"))
results_case("series-kv-T", lambda f: replace_ds(f[RUN], "kv_bytes", np.zeros(50, "i8")), r"kv_bytes", ("export", "steps"))
results_case("series-latency-2d", lambda f: replace_ds(f[RUN], "latency_ns", np.zeros((48, 2), "i8")), r"latency_ns", ("export", "steps"))
results_case("recall-2e33", lambda f: replace_ds(f[RUN], "recall", shape=(1 << 33, 4), dtype="f4", chunks=(1024, 4)),
             r"^raasbench: .*recall", ("export", "steps"))
results_case("summary-missing", lambda f: f.__delitem__("summary"), r"summary", ("export", "summary"))
results_case("summary-not-compound", lambda f: replace_ds(f, "summary", np.zeros(2, "f8")), r"summary", ("export", "summary"))
results_case("summary-2e34", lambda f: replace_ds(f, "summary", shape=(1 << 34,), dtype=f["summary"].dtype, chunks=(64,)),
             r"^raasbench: .*summary", ("export", "summary"))
results_case("summary-2e34-info", lambda f: replace_ds(f, "summary", shape=(1 << 34,), dtype=f["summary"].dtype, chunks=(64,)),
             r"^raasbench: .*summary")
# Optional objects of the wrong kind are refused at open, whatever the command reads.
results_case("runs-is-dataset-info", lambda f: (f.__delitem__("runs"), f.create_dataset("runs", data=[1])), r"/runs must be a group of runs, not a dataset")
results_case("run-is-dataset", lambda f: (f["runs"].__delitem__("h2o_L32"), f["runs"].create_dataset("h2o_L32", data=[1])), r"/runs/h2o_L32 is not a run group", ("export", "steps"))
results_case("summary-is-group", lambda f: (f.__delitem__("summary"), f.create_group("summary")), r"/summary must be a table \(a dataset\), not a group")
results_case("summary-is-group-export", lambda f: (f.__delitem__("summary"), f.create_group("summary")), r"/summary must be a table", ("export", "summary"))
case("results-unknown-run", ["export", RESULTS, "--table", "steps", "--run", "nope_L1", "--out", keep_out("results-unknown-run", "o.tsv")],
     r"^raasbench: .*nope_L1")
case("results-unknown-table", ["export", RESULTS, "--table", "heatmap", "--out", keep_out("results-unknown-table", "o.tsv")],
     r"^raasbench: .*heatmap")
case("lifecycle-unknown-table", ["export", LIFE, "--table", "steps"], r"^raasbench: .*steps")


def life_variant(name, edit):
    p = f"{D}/r/life_{name}.h5"
    shutil.copy(LIFE, p)
    with h5py.File(p, "r+") as f:
        edit(f)
    return p


p = life_variant("no-heatmap", lambda f: f.__delitem__("heatmap"))
case("lifecycle-no-heatmap", ["export", p, "--table", "heatmap"], r"^raasbench: .*heatmap")
p = life_variant("heatmap-no-bins", lambda f: f["heatmap"].attrs.__delitem__("step_bin"))
case("lifecycle-heatmap-no-bins", ["export", p, "--table", "heatmap"], r"step_bin")

# ---------------------------------------------------------------- GGUF files
GT = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class Gguf:
    """A GGUF v3 file as lists: kv [(key, type, value)] (arrays: (elem_type, [values])),
    tensors [[name, dims, type, offset]], the alignment and the data section."""

    def __init__(self, path):
        b = open(path, "rb").read()
        self.pos = 0
        self.b = b
        assert b[:4] == b"GGUF"
        self.version, nt, nkv = struct.unpack_from("<IQQ", b, 4)
        self.pos = 24
        self.kv = [self._kv() for _ in range(nkv)]
        self.tensors = []
        for _ in range(nt):
            name = self._str()
            nd = self._u("I")
            dims = [self._u("Q") for _ in range(nd)]
            self.tensors.append([name, dims, self._u("I"), self._u("Q")])
        self.align = dict((k, v) for k, _, v in self.kv).get("general.alignment", 32)
        start = (self.pos + self.align - 1) // self.align * self.align
        self.data = bytearray(b[start:])

    def _u(self, f):
        v = struct.unpack_from("<" + f, self.b, self.pos)[0]
        self.pos += struct.calcsize(f)
        return v

    def _str(self):
        n = self._u("Q")
        s = self.b[self.pos:self.pos + n]
        self.pos += n
        return s.decode("utf-8", "surrogateescape")

    def _val(self, t):
        if t == 8:
            return self._str()
        if t == 9:
            et, n = self._u("I"), self._u("Q")
            return (et, [self._val(et) for _ in range(n)])
        return self._u(GT[t])

    def _kv(self):
        k = self._str()
        t = self._u("I")
        return [k, t, self._val(t)]

    def get(self, key):
        return next(kv for kv in self.kv if kv[0] == key)

    def tensor(self, name):
        return next(t for t in self.tensors if t[0] == name)

    @staticmethod
    def enc_str(s):
        b = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s
        return struct.pack("<Q", len(b)) + b

    def enc_val(self, t, v):
        if t == 8:
            return self.enc_str(v)
        if t == 9:
            et, vals = v
            return struct.pack("<IQ", et, len(vals)) + b"".join(self.enc_val(et, x) for x in vals)
        return struct.pack("<" + GT[t], v)

    def bytes(self, n_tensors=None, n_kv=None, version=None):
        out = b"GGUF" + struct.pack("<IQQ", self.version if version is None else version,
                                    len(self.tensors) if n_tensors is None else n_tensors,
                                    len(self.kv) if n_kv is None else n_kv)
        for k, t, v in self.kv:
            out += self.enc_str(k) + struct.pack("<I", t) + self.enc_val(t, v)
        for name, dims, tt, off in self.tensors:
            out += self.enc_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", tt, off)
        out += b"\0" * ((-len(out)) % self.align)
        return out + bytes(self.data)


def gguf_case(name, edit, re_, cmd="info", base=MODEL):
    g = Gguf(base)
    b = edit(g)
    if b is None:
        b = g.bytes()
    p = write(f"g/{name}.gguf", b)
    cid = f"gguf-{name}"
    if cmd == "info":
        case(cid, ["info", p], re_)
    elif cmd == "decode":
        case(cid, ["decode", "--model", p, "--prompt-tokens", "2,270,275", "--max-tokens", 2, "--quiet",
                   "--logits-out", keep_out(cid, "logits.f32")], re_)
    elif cmd == "prompt":
        case(cid, ["decode", "--model", p, "--prompt", "the capital of France", "--max-tokens", 2, "--quiet"], re_)


mb = open(MODEL, "rb").read()
case("gguf-text", ["info", write("g/text.gguf", "GGUF is not what this is\n")], r"^raasbench: .*text.gguf")
case("gguf-empty", ["decode", "--model", EMPTY, "--prompt-tokens", "2", "--max-tokens", 1], r"^raasbench: .*empty.bin")
case("gguf-missing", ["decode", "--model", MISSING, "--prompt-tokens", "2", "--max-tokens", 1], r"^raasbench: .*(no such file|No such file)")
case("gguf-directory", ["decode", "--model", ADIR, "--prompt-tokens", "2", "--max-tokens", 1], r"^raasbench: .*adir")
for n in (3, 8, 23, 100, 2000, len(mb) // 2, len(mb) - 1):
    case(f"gguf-truncated-{n}", ["info", write(f"g/trunc_{n}.gguf", mb[:n])], r"^raasbench: .*trunc_")
gguf_case("magic", lambda g: b"GGUG" + g.bytes()[4:], r"^raasbench: .*magic|not a GGUF")
gguf_case("version-2", lambda g: g.bytes(version=2), r"version 2")
gguf_case("version-4", lambda g: g.bytes(version=4), r"version 4")
gguf_case("n-tensors-huge", lambda g: g.bytes(n_tensors=1 << 62), r"^raasbench: .*tensor")
gguf_case("n-kv-huge", lambda g: g.bytes(n_kv=1 << 62), r"^raasbench: .*gguf")
gguf_case("n-kv-plus1", lambda g: g.bytes(n_kv=len(g.kv) + 1), r"^raasbench: .*gguf")
gguf_case("n-tensors-minus1", lambda g: g.bytes(n_tensors=len(g.tensors) - 1), r"^raasbench: .*(tensor missing|the model is damaged)", "decode")


def key_len_huge(g):
    b = g.bytes()
    return b[:24] + struct.pack("<Q", 1 << 60) + b[32:]


gguf_case("key-length-huge", key_len_huge, r"^raasbench: .*gguf")


def value_type(g, t):
    b = bytearray(g.bytes())
    k0 = len(g.enc_str(g.kv[0][0]))
    struct.pack_into("<I", b, 24 + k0, t)
    return bytes(b)


gguf_case("value-type-13", lambda g: value_type(g, 13), r"^raasbench: .*(type|gguf)")
gguf_case("value-type-huge", lambda g: value_type(g, 0xFFFFFFFF), r"^raasbench: .*(type|gguf)")


def string_len_huge(g):
    g.kv.insert(0, ["x.s", 8, "abc"])
    b = bytearray(g.bytes())
    struct.pack_into("<Q", b, 24 + len(g.enc_str("x.s")) + 4, 1 << 61)
    return bytes(b)


gguf_case("string-length-huge", string_len_huge, r"^raasbench: .*gguf")


def array_len_huge(g):
    g.kv.insert(0, ["x.a", 9, (4, [1, 2])])
    b = bytearray(g.bytes())
    struct.pack_into("<Q", b, 24 + len(g.enc_str("x.a")) + 8, 1 << 60)
    return bytes(b)


gguf_case("array-length-huge", array_len_huge, r"^raasbench: .*gguf")
gguf_case("array-elem-type-bad", lambda g: g.kv.insert(0, ["x.b", 9, (13, [])]), r"^raasbench: .*(type|gguf)")
gguf_case("duplicate-key", lambda g: g.kv.append(list(g.get("general.architecture"))), r"duplicate|general.architecture")
gguf_case("alignment-zero", lambda g: (g.kv.append(["general.alignment", 4, 0])), r"alignment")
gguf_case("alignment-3", lambda g: (g.kv.append(["general.alignment", 4, 3])), r"alignment")
gguf_case("alignment-string", lambda g: (g.kv.append(["general.alignment", 8, "32"])), r"alignment")
gguf_case("tensor-dims-0", lambda g: g.tensors[1].__setitem__(1, []), r"^raasbench: .*(dim|blk.0.attn_norm.weight)")
gguf_case("tensor-dims-5", lambda g: g.tensors[1].__setitem__(1, [64, 1, 1, 1, 1]), r"^raasbench: .*(dim|blk.0.attn_norm.weight)")
gguf_case("tensor-ne-0", lambda g: g.tensors[1].__setitem__(1, [0]), r"^raasbench: .*blk.0.attn_norm.weight")
gguf_case("tensor-ne-overflow", lambda g: g.tensors[1].__setitem__(1, [1 << 62, 1 << 62]), r"^raasbench: .*blk.0.attn_norm.weight")
gguf_case("tensor-type-99", lambda g: g.tensors[1].__setitem__(2, 99), r"^raasbench: .*(type|blk.0.attn_norm.weight)")
gguf_case("tensor-offset-misaligned", lambda g: g.tensors[1].__setitem__(3, g.tensors[1][3] + 1), r"^raasbench: .*blk.0.attn_norm.weight")
gguf_case("tensor-offset-beyond", lambda g: g.tensors[-1].__setitem__(3, 1 << 40), r"^raasbench: .*%s" % Gguf(MODEL).tensors[-1][0].replace(".", r"\."))
gguf_case("tensor-data-cut", lambda g: g.bytes()[:-64], r"^raasbench: .*gguf")
gguf_case("tensor-name-long", lambda g: g.tensors[1].__setitem__(0, "x" * 200), r"^raasbench: .*(name|128)")
gguf_case("tensor-name-duplicate", lambda g: g.tensors[2].__setitem__(0, g.tensors[1][0]), r"^raasbench: .*(duplicate|blk.0.attn_norm.weight)")
# Model-level refusals (decode loads the model).
gguf_case("arch-unknown", lambda g: g.get("general.architecture").__setitem__(2, "mamba9"), r"mamba9", "decode")
gguf_case("arch-missing", lambda g: g.kv.remove(g.get("general.architecture")), r"general.architecture", "decode")
gguf_case("arch-int", lambda g: g.get("general.architecture").__setitem__(1, 4) or g.get("general.architecture").__setitem__(2, 7), r"general.architecture", "decode")
gguf_case("block-count-0", lambda g: g.get("gemma3.block_count").__setitem__(2, 0), r"hyperparameters out of range \(layers 0", "decode")
gguf_case("block-count-huge", lambda g: g.get("gemma3.block_count").__setitem__(2, 1 << 31), r"hyperparameters out of range \(layers 2147483648", "decode")
gguf_case("head-count-0", lambda g: g.get("gemma3.attention.head_count").__setitem__(2, 0), r"hyperparameters out of range .*heads 0", "decode")
gguf_case("head-count-kv-3", lambda g: g.get("gemma3.attention.head_count_kv").__setitem__(2, 3), r"head_count", "decode")
gguf_case("embd-mismatch", lambda g: g.get("gemma3.embedding_length").__setitem__(2, 48), r"embedding_length|token_embd|shape", "decode")
gguf_case("tensor-missing-q", lambda g: g.tensors.remove(g.tensor("blk.0.attn_q.weight")), r"blk\.0\.attn_q\.weight", "decode")
gguf_case("tensor-missing-embd", lambda g: g.tensors.remove(g.tensor("token_embd.weight")), r"token_embd\.weight", "decode")
gguf_case("tensor-shape-q", lambda g: g.tensor("blk.1.attn_q.weight").__setitem__(1, [64, 96]), r"blk\.1\.attn_q\.weight", "decode")


def poke_f32(g, name, val):
    t = g.tensor(name)
    assert t[2] == 0
    struct.pack_into("<f", g.data, t[3], val)


def poke_q8_scale(g, name, half):
    t = g.tensor(name)
    assert t[2] == 8  # Q8_0: blocks of fp16 scale + 32 int8
    struct.pack_into("<H", g.data, t[3] + 34 * 5, half)


gguf_case("nan-norm", lambda g: poke_f32(g, "blk.1.attn_norm.weight", float("nan")), r"NaN.*blk\.1\.attn_norm\.weight|blk\.1\.attn_norm\.weight.*NaN", "decode")
gguf_case("inf-output-norm", lambda g: poke_f32(g, "output_norm.weight", float("inf")), r"output_norm\.weight", "decode")
gguf_case("inf-embd", lambda g: poke_q8_scale(g, "token_embd.weight", 0x7C00), r"token_embd\.weight", "decode")
gguf_case("nan-embd", lambda g: poke_q8_scale(g, "token_embd.weight", 0x7E00), r"token_embd\.weight", "decode")


def vocab_trim(g, n):
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        kv = g.get(key)
        kv[2] = (kv[2][0], kv[2][1][:n])


gguf_case("vocab-smaller-than-embd", lambda g: vocab_trim(g, 300), r"vocabulary|tokens|token_embd", "decode")
gguf_case("vocab-scores-short", lambda g: g.get("tokenizer.ggml.scores").__setitem__(2, (6, g.get("tokenizer.ggml.scores")[2][1][:-1])), r"scores", "prompt")
gguf_case("vocab-types-short", lambda g: g.get("tokenizer.ggml.token_type").__setitem__(2, (5, g.get("tokenizer.ggml.token_type")[2][1][:10])), r"token_type", "prompt")
gguf_case("vocab-tokens-missing", lambda g: g.kv.remove(g.get("tokenizer.ggml.tokens")), r"tokenizer\.ggml\.tokens", "prompt")
gguf_case("vocab-tokens-ints", lambda g: g.get("tokenizer.ggml.tokens").__setitem__(2, (4, list(range(320)))), r"tokenizer\.ggml\.tokens", "prompt")
gguf_case("vocab-model-unknown", lambda g: g.get("tokenizer.ggml.model").__setitem__(2, "wordpiece9"), r"wordpiece9", "prompt")
gguf_case("vocab-bos-out-of-range", lambda g: g.get("tokenizer.ggml.bos_token_id").__setitem__(2, 100000), r"bos", "prompt")
gguf_case("vocab-empty", lambda g: vocab_trim(g, 0), r"tokenizer|vocabulary", "prompt")
case("gguf-prompt-token-out-of-vocab", ["decode", "--model", MODEL, "--prompt-tokens", "2,99999", "--max-tokens", 1, "--quiet"], r"99999")
case("gguf-prompt-token-negative", ["decode", "--model", MODEL, "--prompt-tokens", "2,-1", "--max-tokens", 1, "--quiet"], r"-1|prompt-tokens")

# ---------------------------------------------------------------- sweep configs (JSON)
def sweep_case(name, cfg, re_, raw_text=None):
    cid = f"sweep-{name}"
    o = keep_out(cid)
    if raw_text is None:
        if isinstance(cfg, dict):
            cfg = dict(cfg)
            cfg.setdefault("out", o)
        text = json.dumps(cfg)
    else:
        text = raw_text.replace("@OUT", o)
    p = write(f"s/{name}.json", text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)
    case(cid, ["sweep", p, "--quiet"], re_)


base = {"traces": [TRACE], "policies": [POL], "budgets": [32], "threads": 1}


def sw(**kw):
    c = dict(base)
    for k, v in kw.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


J = json.dumps
sweep_case("broken", None, r"broken JSON at line 1, column", raw_text='{"traces": [')
sweep_case("empty", None, r"broken JSON|empty", raw_text="")
sweep_case("trailing", None, r"text after the JSON value", raw_text=J(base)[:-1] + ', "out": "@OUT"} x')
sweep_case("array", ["a"], r"must be a JSON object")
sweep_case("string", "x", r"must be a JSON object")
sweep_case("nul-byte", None, r"^raasbench: ", raw_text=J(base)[:-1] + ', "out": "@OUT\u0000x"}')
sweep_case("unknown-key", sw(colour="red"), r"colour: unknown key")
sweep_case("traces-missing", sw(traces=None), r"traces: must be a non-empty list")
sweep_case("traces-empty", sw(traces=[]), r"traces: must be a non-empty list")
sweep_case("traces-string", sw(traces=TRACE), r"traces: must be a non-empty list")
sweep_case("traces-int", sw(traces=[1]), r"traces: entries must be strings")
sweep_case("traces-65", sw(traces=[TRACE] * 65), r"traces: must be a non-empty list")
sweep_case("trace-missing", sw(traces=[MISSING]), r"no/such/file: no such file")
sweep_case("trace-text", sw(traces=[TXT]), r"plain.txt: not an HDF5 file")
sweep_case("trace-results", sw(traces=[RESULTS]), r"good_results.h5: not a raasbench trace")
sweep_case("trace-directory", sw(traces=[ADIR]), r"adir")
sweep_case("policies-missing", sw(policies=None), r"policies: must be a non-empty list")
sweep_case("policies-empty", sw(policies=[]), r"policies: must be a non-empty list")
sweep_case("policy-unknown", sw(policies=["lru"]), r"lru")
sweep_case("policy-int", sw(policies=[3]), r"policies\[0\]: must be a policy name")
sweep_case("policy-no-name", sw(policies=[{"label": "x"}]), r"policies\[0\]: needs a string 'name'")
sweep_case("policy-unknown-key", sw(policies=[{"name": POL, "colour": 1}]), r"unknown key 'colour'")
sweep_case("policy-params-list", sw(policies=[{"name": "raas", "params": [1], "label": "a"}]), r"'params' must be an object")
sweep_case("policy-params-no-label", sw(policies=[{"name": "raas", "params": {"r": 0.3}}]), r"needs a 'label'")
sweep_case("policy-param-bool", sw(policies=[{"name": "raas", "params": {"r": True}, "label": "a"}]), r"param 'r' must be a number or a string")
sweep_case("policy-param-unknown", sw(policies=[{"name": "raas", "params": {"colour": 1}, "label": "a"}]), r"colour")
sweep_case("policy-param-bad-value", sw(policies=[{"name": "raas", "params": {"r": "abc"}, "label": "a"}]), r"policies\[0\]: .*r")
sweep_case("policy-label-slash", sw(policies=[{"name": POL, "label": "a/b"}]), r"'label' must be a short string")
sweep_case("policy-label-long", sw(policies=[{"name": POL, "label": "x" * 60}]), r"'label' must be a short string")
sweep_case("policy-label-empty", sw(policies=[{"name": POL, "label": ""}]), r"'label' must be a short string")
sweep_case("policy-duplicate", sw(policies=[POL, POL]), r"dense|duplicate|twice")
sweep_case("budgets-missing", sw(budgets=None), r"budgets: must be a non-empty list")
sweep_case("budgets-empty", sw(budgets=[]), r"budgets: must be a non-empty list")
for tag, v in (("zero", 0), ("negative", -1), ("fraction", 1.5), ("string", "32"), ("huge", 1e300), ("null", None)):
    sweep_case(f"budget-{tag}", sw(budgets=[v]), r"budgets: entries must be positive integers")
sweep_case("budgets-65", sw(budgets=list(range(1, 66))), r"budgets: must be a non-empty list")
sweep_case("out-missing", None, r"out: must be the path", raw_text=J(base))
sweep_case("out-empty", sw(out=""), r"out: must be the path")
sweep_case("out-int", sw(out=3), r"out: must be the path")
sweep_case("out-directory", sw(out=ADIR), r"adir.*directory|directory")
sweep_case("out-no-parent", sw(out=f"{D}/no/such/dir/out.h5"), r"no/such/dir")
for k, v, rng in (("page_size", 0, "1..4096"), ("page_size", 5000, "1..4096"), ("page_size", "16", "1..4096"),
                  ("dense_layers", -1, "0..1048576"), ("elem_bytes", 0, "1..8"), ("elem_bytes", 9, "1..8"),
                  ("steps", -1, "0..1073741824"), ("threads", 0, "1..1024"), ("threads", 2000, "1..1024"),
                  ("batch", -1, "0..1048576"), ("latency_every", 0, "1..1048576"), ("seed", -1, "0..1073741824"),
                  ("seed", 1e20, "0..1073741824"), ("page_size", 2.5, "1..4096")):
    sweep_case(f"{k}-{v}", sw(**{k: v}), rf"{k}: must be an integer in {rng}")
sweep_case("duplicate-key", None, r"duplicate",
           raw_text='{"traces": ["%s"], "policies": ["%s"], "budgets": [32], "budgets": [64], "threads": 1, "out": "@OUT"}' % (TRACE, POL))
sweep_case("nested-deep", None, r"nest",
           raw_text=J(base)[:-1] + ', "out": "@OUT", "comment": ' + "[" * 2000 + "]" * 2000 + "}")
case("sweep-config-missing", ["sweep", MISSING], r"no/such/file: no such file")
case("sweep-config-directory", ["sweep", ADIR], r"adir: .*directory")
case("sweep-no-config", ["sweep"], r"^raasbench: ")
case("sweep-two-configs", ["sweep", TXT, TXT], r"^raasbench: ")
case("sweep-unknown-option", ["sweep", TXT, "--fast"], r"--fast")
copy = f"{D}/s/trace_copy.h5"
shutil.copy(TRACE, copy)
cfg = write("s/out-is-trace.json", J({"traces": [copy], "policies": [POL], "budgets": [32], "threads": 1, "out": copy}))
case("sweep-out-is-trace", ["sweep", cfg, "--quiet"], r"^raasbench: .*(same|input|trace)", keep=[copy])

# ---------------------------------------------------------------- eval task files (JSONL)
def tasks_case(name, text, re_):
    p = write(f"k/{name}.jsonl", text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)
    cid = f"tasks-{name}"
    case(cid, ["eval", "--model", MODEL, "--tasks", p, "--policies", POL, "--budgets", 32, "--threads", 1,
               "--max-tokens", 2, "--quiet", "--out", keep_out(cid)], re_)


good_line = '{"id": "a", "prompt": "1+1=", "answer": 2}'
tasks_case("not-json", "hello\n", r"k/not-json.jsonl:1: not JSON")
tasks_case("array-line", "[1, 2]\n", r":1: not a JSON object")
tasks_case("text-after", good_line + " x\n", r":1: text after the JSON value")
tasks_case("two-objects", good_line + good_line + "\n", r":1: text after the JSON value")
tasks_case("invalid-utf8", b'{"id": "a", "prompt": "\xff\xfe", "answer": 2}\n', r":1: not valid UTF-8")
tasks_case("nul-byte", b'{"id": "a", "prompt": "x\0y", "answer": 2}\n', r":1: a NUL byte")
tasks_case("line-too-long", '{"id": "a", "prompt": "' + "x" * (1 << 20) + '", "answer": 2}\n', r":1: line longer than 1 MiB")
tasks_case("duplicate-key", '{"id": "a", "prompt": "x", "prompt": "y", "answer": 2}\n', r":1: duplicate key 'prompt'")
tasks_case("answer-missing", '{"id": "a", "prompt": "x"}\n', r":1: answer: missing")
tasks_case("answer-bool", '{"id": "a", "prompt": "x", "answer": true}\n', r":1: answer: must be a string or a number")
tasks_case("answer-words", '{"id": "a", "prompt": "x", "answer": "two"}\n', r":1: answer: not one number")
tasks_case("answer-hash-words", '{"id": "a", "prompt": "x", "answer": "so #### two"}\n', r":1: answer: the text after #### is not one number")
tasks_case("answer-huge", '{"id": "a", "prompt": "x", "answer": 1e400}\n', r":1: answer")
tasks_case("id-number", '{"id": 3, "prompt": "x", "answer": 2}\n', r":1: id: must be a string")
tasks_case("prompt-number", '{"id": "a", "prompt": 3, "answer": 2}\n', r":1: prompt: must be a string")
tasks_case("both-prompt-question", '{"id": "a", "prompt": "x", "question": "y", "answer": 2}\n', r":1: prompt/question: give exactly one")
tasks_case("neither", '{"id": "a", "answer": 2}\n', r":1: prompt/question: give exactly one")
tasks_case("prompt-empty", '{"id": "a", "prompt": "", "answer": 2}\n', r":1: prompt: empty")
tasks_case("duplicate-id", good_line + "\n" + good_line + "\n", r":2: id \"a\": also on line 1")
tasks_case("empty-file", "", r"no tasks in the file")
tasks_case("blank-lines", "\n\n  \n", r"no tasks in the file|:3")
tasks_case("bad-line-3", good_line + "\n" + '{"id": "b", "prompt": "y", "answer": 3}\n' + "{\n", r":3: not JSON")
tasks_case("nested-deep", '{"id": "a", "prompt": "x", "answer": 2, "z": ' + "[" * 2000 + "]" * 2000 + "}\n", r":1: .*nest")
case("tasks-file-missing", ["eval", "--model", MODEL, "--tasks", MISSING, "--policies", POL, "--budgets", 32, "--quiet",
                            "--out", keep_out("tasks-file-missing")], r"no/such/file")
case("tasks-file-directory", ["eval", "--model", MODEL, "--tasks", ADIR, "--policies", POL, "--budgets", 32, "--quiet",
                              "--out", keep_out("tasks-file-directory")], r"adir")

# ---------------------------------------------------------------- arguments of every command
case("main-no-command", [], r"usage: raasbench")
case("main-unknown-command", ["frobnicate"], r"^raasbench: frobnicate: unknown command")


def argcase(cid, argv, re_, keep=()):
    case(f"arg-{cid}", argv, re_, keep=keep)


def synth(cid, extra, re_):
    o = keep_out(f"arg-synth-{cid}")
    argcase(f"synth-{cid}", ["synth", "--out", o, "--decode", 64, "--prefill", 16, "--quiet", *extra], re_)


argcase("synth-no-out", ["synth", "--quiet"], r"--out")
for cid, extra, re_ in (
        ("seed-negative", ["--seed", -1], r"--seed"), ("layers-0", ["--layers", 0], r"--layers"),
        ("layers-abc", ["--layers", "abc"], r"--layers"), ("layers-huge", ["--layers", "1e99"], r"--layers"),
        ("q-heads-0", ["--q-heads", 0], r"--q-heads"), ("kv-heads-3", ["--kv-heads", 3], r"--kv-heads"),
        ("head-dim-31", ["--head-dim", 31], r"--head-dim"), ("head-dim-1024", ["--head-dim", 1024], r"--head-dim"),
        ("prefill-4", ["--prefill", 4], r"--prefill"), ("decode-0", ["--decode", 0], r"--decode"),
        ("dtype-f64", ["--dtype", "f64"], r"--dtype"), ("sinks-negative", ["--sinks", -1], r"--sinks"),
        ("milestone-rate-2", ["--milestone-rate", 2], r"--milestone-rate"), ("phrase-max-0", ["--phrase-max", 0], r"--phrase-max"),
        ("life-max-lt-min", ["--life-min", 64, "--life-max", 32], r"--life-m"), ("jitter-negative", ["--jitter", -1], r"--jitter"),
        ("phoenix-dormant-10", ["--phoenix-dormant", 10], r"--phoenix-dormant"), ("noise-negative", ["--noise", -1], r"--noise"),
        ("decoy-rate-1.5", ["--decoy-rate", 1.5], r"--decoy-rate"), ("unknown-option", ["--colour", 1], r"--colour"),
        ("missing-value", ["--layers"], r"--layers"), ("sink-logit-nan", ["--sink-logit", "nan"], r"--sink-logit"),
        ("layers-trailing", ["--layers", "4x"], r"--layers")):
    synth(cid, extra, re_)
argcase("synth-out-directory", ["synth", "--out", ADIR, "--decode", 64, "--quiet"], r"adir")
argcase("synth-out-no-parent", ["synth", "--out", f"{D}/no/dir/x.h5", "--decode", 64, "--quiet"], r"no/dir")


def replay(cid, extra, re_, trace=TRACE, out=True, keep=()):
    o = keep_out(f"arg-replay-{cid}")
    argv = ["replay", trace, "--policies", POL, "--budgets", 32, "--quiet", *extra]
    if out:
        argv += ["--out", o]
    argcase(f"replay-{cid}", argv, re_, keep)


argcase("replay-no-trace", ["replay", "--policies", POL, "--budgets", 32, "--out", keep_out("arg-replay-no-trace")], r"^raasbench: ")
argcase("replay-no-policies", ["replay", TRACE, "--budgets", 32, "--out", keep_out("arg-replay-no-policies")], r"--policies")
argcase("replay-no-budgets", ["replay", TRACE, "--policies", POL, "--out", keep_out("arg-replay-no-budgets")], r"--budgets")
replay("no-out", [], r"--out", out=False)
for cid, extra, re_ in (
        ("policy-unknown", ["--policies", "lru"], r"lru"), ("budget-0", ["--budgets", 0], r"--budgets|budget"),
        ("budget-abc", ["--budgets", "abc"], r"--budgets"), ("budget-empty", ["--budgets", ""], r"--budgets"),
        ("budget-list-gap", ["--budgets", "32,,64"], r"--budgets"), ("page-size-0", ["--page-size", 0], r"--page-size"),
        ("dense-layers-negative", ["--dense-layers", -1], r"--dense-layers"),
        ("dense-layers-huge", ["--dense-layers", 1000000], r"--dense-layers"),
        ("threads-negative", ["--threads", -5], r"--threads"), ("elem-bytes-0", ["--elem-bytes", 0], r"--elem-bytes"),
        ("steps-negative", ["--steps", -1], r"--steps"), ("latency-every-0", ["--latency-every", 0], r"--latency-every"),
        ("seed-negative", ["--seed", -1], r"--seed"), ("param-no-equals", ["--param", "raas.r"], r"raas\.r"),
        ("param-unknown-key", ["--policies", "raas", "--param", "raas.colour=1"], r"colour"),
        ("param-bad-value", ["--policies", "raas", "--param", "raas.r=abc"], r"raas\.r|abc"),
        ("param-unknown-policy", ["--param", "lru.x=1"], r"lru"), ("unknown-option", ["--fast"], r"--fast"),
        ("two-traces", [TRACE], r"^raasbench: ")):
    replay(cid, extra, re_)
replay("out-directory", ["--out", ADIR], r"adir.*directory|directory", out=False)
replay("out-no-parent", ["--out", f"{D}/no/dir/r.h5"], r"no/dir", out=False)
rcopy = f"{D}/a/trace_for_replay.h5"
os.makedirs(f"{D}/a", exist_ok=True)
shutil.copy(TRACE, rcopy)
replay("out-is-trace", ["--out", rcopy], r"^raasbench: .*(same|input|trace)", trace=rcopy, out=False, keep=[rcopy])
lnk = f"{D}/a/link_to_trace.h5"
os.symlink(rcopy, lnk)
replay("out-is-trace-link", ["--out", lnk], r"^raasbench: .*(same|input|trace)", trace=rcopy, out=False, keep=[rcopy])
replay("trace-is-results", [], r"not a raasbench trace", trace=RESULTS)
fifo = f"{D}/a/fifo"
os.mkfifo(fifo)
replay("out-fifo", ["--out", fifo], r"fifo", out=False, keep=[fifo])


def decode(cid, extra, re_, keep=(), prompt=True):
    argv = ["decode", "--model", MODEL, "--max-tokens", 2, "--quiet"]
    if prompt:
        argv += ["--prompt-tokens", "2,270,275"]
    argcase(f"decode-{cid}", argv + list(extra), re_, keep)


argcase("decode-no-model", ["decode", "--prompt-tokens", "2", "--max-tokens", 1], r"--model")
decode("no-prompt", [], r"--prompt", prompt=False)
for cid, extra, re_ in (
        ("two-prompts", ["--prompt", "x"], r"--prompt"), ("max-tokens-negative", ["--max-tokens", -1], r"--max-tokens"),
        ("max-tokens-abc", ["--max-tokens", "abc"], r"--max-tokens"), ("temperature-negative", ["--temperature", -1], r"--temperature"),
        ("temperature-nan", ["--temperature", "nan"], r"--temperature"),
        ("policy-unknown-no-budget", ["--policy", "lru"], r"lru"), ("budget-0", ["--policy", "h2o", "--budget", 0], r"--budget"),
        ("page-size-0", ["--page-size", 0], r"--page-size"), ("dense-layers-negative", ["--dense-layers", -1], r"--dense-layers"),
        ("threads-negative", ["--threads", -1], r"--threads"), ("record-dtype-f64", ["--record-dtype", "f64"], r"--record-dtype"),
        ("teacher-forced-no-policies", ["--teacher-forced"], r"--policies|--teacher-forced"),
        ("policies-without-teacher", ["--policies", "h2o", "--budgets", 8], r"--teacher-forced|--policies"),
        ("param-bad", ["--policy", "raas", "--budget", 16, "--param", "raas.r=abc"], r"raas\.r|abc"),
        ("prompt-tokens-gap", ["--prompt-tokens", "2,,3"], r"--prompt-tokens"),
        ("prompt-tokens-abc", ["--prompt-tokens", "abc"], r"--prompt-tokens"), ("seed-negative", ["--seed", -1], r"--seed"),
        ("unknown-option", ["--fast"], r"--fast")):
    decode(cid, extra, re_)
decode("prompt-file-missing", ["--prompt-file", MISSING], r"no/such/file", prompt=False)
decode("prompt-file-directory", ["--prompt-file", ADIR], r"adir", prompt=False)
decode("record-directory", ["--record", ADIR], r"adir")
decode("out-directory", ["--out", ADIR], r"adir")
decode("logits-out-directory", ["--logits-out", ADIR], r"adir")
decode("logits-out-no-parent", ["--logits-out", f"{D}/no/dir/l.f32"], r"no/dir")
mcopy = f"{D}/a/model_copy.gguf"
shutil.copy(MODEL, mcopy)
argcase("decode-logits-out-is-model", ["decode", "--model", mcopy, "--prompt-tokens", "2,270", "--max-tokens", 2, "--quiet",
                                       "--logits-out", mcopy], r"^raasbench: .*(same|input|model)", keep=[mcopy])
argcase("decode-record-is-model", ["decode", "--model", mcopy, "--prompt-tokens", "2,270", "--max-tokens", 2, "--quiet",
                                   "--record", mcopy], r"^raasbench: .*(same|input|model)", keep=[mcopy])
argcase("decode-out-is-model", ["decode", "--model", mcopy, "--prompt-tokens", "2,270", "--max-tokens", 2, "--quiet",
                                "--teacher-forced", "--policies", "h2o", "--budgets", 8, "--out", mcopy],
        r"^raasbench: .*(same|input|model)", keep=[mcopy])


def lifecycle(cid, extra, re_, trace=TRACE, out=True, keep=()):
    argv = ["lifecycle", trace, "--quiet", *extra]
    if out:
        argv += ["--out", keep_out(f"arg-lifecycle-{cid}")]
    argcase(f"lifecycle-{cid}", argv, re_, keep)


lifecycle("no-layer", [], r"--layer")
lifecycle("layer-negative", ["--layer", -1], r"--layer.*(-1|negative|>= 0|0\.\.)")
lifecycle("no-out", ["--layer", 2], r"--out", out=False)
for cid, extra, re_ in (
        ("layer-not-stored", ["--layer", 99], r"--layer|layer 99"), ("head-99", ["--layer", 2, "--head", 99], r"--head"),
        ("kv-head-99", ["--layer", 2, "--kv-head", 99], r"--kv-head"),
        ("head-and-kv-head", ["--layer", 2, "--head", 0, "--kv-head", 0], r"--head|--kv-head"),
        ("reduce-bad", ["--layer", 2, "--reduce", "sum"], r"--reduce"), ("k-sigma-negative", ["--layer", 2, "--k-sigma", -1], r"--k-sigma"),
        ("smooth-0", ["--layer", 2, "--smooth", 0], r"--smooth"), ("heat-size-abc", ["--layer", 2, "--heat-size", "abc"], r"--heat-size"),
        ("heat-size-0", ["--layer", 2, "--heat-size", "0x0"], r"--heat-size"), ("hist-bins-0", ["--layer", 2, "--hist-bins", 0], r"--hist-bins"),
        ("min-fill-2", ["--layer", 2, "--min-fill", 2], r"--min-fill"), ("recency-negative", ["--layer", 2, "--recency", -5], r"--recency"),
        ("unknown-option", ["--layer", 2, "--fast"], r"--fast")):
    lifecycle(cid, extra, re_)
lifecycle("trace-missing", ["--layer", 2], r"no/such/file", trace=MISSING)
lifecycle("trace-is-results", ["--layer", 2], r"not a raasbench trace", trace=RESULTS)
lcopy = f"{D}/a/trace_for_lifecycle.h5"
shutil.copy(TRACE, lcopy)
lifecycle("out-is-trace", ["--layer", 2, "--out", lcopy], r"^raasbench: .*(same|input|trace)", trace=lcopy, out=False, keep=[lcopy])
lifecycle("out-directory", ["--layer", 2, "--out", ADIR], r"adir", out=False)

argcase("export-no-file", ["export", "--table", "summary"], r"^raasbench: ")
argcase("export-no-table", ["export", RESULTS], r"--table")
argcase("export-table-bogus", ["export", RESULTS, "--table", "bogus"], r"bogus")
argcase("export-out-directory", ["export", RESULTS, "--table", "summary", "--out", ADIR], r"adir")
ecopy = f"{D}/a/results_for_export.h5"
shutil.copy(RESULTS, ecopy)
argcase("export-out-is-input", ["export", ecopy, "--table", "summary", "--out", ecopy], r"^raasbench: .*(same|input)", keep=[ecopy])
argcase("export-unknown-option", ["export", RESULTS, "--table", "summary", "--fast"], r"--fast")
argcase("info-no-file", ["info"], r"^raasbench: ")
argcase("info-two-files", ["info", TRACE, RESULTS], r"^raasbench: ")
argcase("info-unknown-hdf5", ["info", trace_variant("other_format", lambda f: set_attr(f, "format", "other"))], r"other|not a raasbench")
argcase("bench-no-what", ["bench"], r"^raasbench: |usage")
argcase("bench-unknown", ["bench", "everything"], r"everything")
argcase("bench-replay-bad-option", ["bench", "replay", "--fast"], r"--fast")
argcase("bench-decode-model-missing", ["bench", "decode", "--model", MISSING], r"no/such/file")
argcase("policies-unknown", ["policies", "lru"], r"lru")
argcase("policies-except-unknown", ["policies", "--except", "lru"], r"lru")
argcase("policies-unknown-option", ["policies", "--fast"], r"--fast")


def tasks(cid, extra, re_, out=True):
    argv = ["tasks", "--kind", "chain", *extra]
    if out:
        argv += ["--out", keep_out(f"arg-tasks-{cid}", "t.jsonl")]
    argcase(f"tasks-{cid}", argv, re_)


argcase("tasks-no-kind", ["tasks", "--out", keep_out("arg-tasks-no-kind", "t.jsonl")], r"--kind")
tasks("kind-bogus", ["--kind", "riddle"], r"riddle|--kind")
tasks("no-out", [], r"--out", out=False)
for cid, extra, re_ in (("n-0", ["--n", 0], r"--n"), ("n-negative", ["--n", -1], r"--n"), ("steps-negative", ["--steps", -1], r"--steps"),
                        ("lookback-0", ["--lookback", 0], r"--lookback"), ("lookback-min-gt", ["--lookback", 1, "--lookback-min", 3], r"--lookback"),
                        ("max-value-0", ["--max-value", 0], r"--max-value"), ("p-add-2", ["--p-add", 2], r"--p-add"),
                        ("shots-negative", ["--shots", -1], r"--shots"), ("seed-negative", ["--seed", -1], r"--seed"),
                        ("inits-0", ["--inits", 0], r"--inits")):
    tasks(cid, extra, re_)
tasks("out-directory", ["--out", ADIR], r"adir", out=False)


def evalc(cid, extra, re_, base_args=True, out=True, keep=()):
    argv = ["eval"]
    if base_args:
        argv += ["--model", MODEL, "--tasks", TASKS, "--policies", POL, "--budgets", 32, "--threads", 1, "--max-tokens", 2]
    argv += ["--quiet", *extra]
    if out:
        argv += ["--out", keep_out(f"arg-eval-{cid}")]
    argcase(f"eval-{cid}", argv, re_, keep)


evalc("no-model", ["--tasks", TASKS, "--policies", POL, "--budgets", 32], r"--model", base_args=False)
evalc("no-tasks", ["--model", MODEL, "--policies", POL, "--budgets", 32], r"--tasks", base_args=False)
evalc("no-policies", ["--model", MODEL, "--tasks", TASKS, "--budgets", 32], r"--policies", base_args=False)
evalc("no-out", [], r"--out", out=False)
for cid, extra, re_ in (("budget-0", ["--budgets", 0], r"--budgets|budget"), ("limit-negative", ["--limit", -1], r"--limit"),
                        ("max-tokens-0", ["--max-tokens", 0], r"--max-tokens"), ("threads-negative", ["--threads", -1], r"--threads"),
                        ("template-missing", ["--template", MISSING], r"no/such/file"), ("policy-unknown", ["--policies", "lru"], r"lru"),
                        ("page-size-0", ["--page-size", 0], r"--page-size"), ("model-missing", ["--model", MISSING], r"no/such/file"),
                        ("model-text", ["--model", TXT], r"plain.txt"), ("unknown-option", ["--fast"], r"--fast")):
    evalc(cid, extra, re_)
tcopy = f"{D}/a/tasks_for_eval.jsonl"
shutil.copy(TASKS, tcopy)
evalc("out-is-tasks", ["--tasks", tcopy, "--out", tcopy], r"^raasbench: .*(same|input|tasks)", out=False, keep=[tcopy])
evalc("out-is-model", ["--model", mcopy, "--out", mcopy], r"^raasbench: .*(same|input|model)", out=False, keep=[mcopy])
evalc("out-directory", ["--out", ADIR], r"adir", out=False)

with open(f"{D}/cases.json", "w") as f:
    for c in cases:
        f.write(json.dumps(c) + "\n")
print(f"{len(cases)} cases in {D}/cases.json")
