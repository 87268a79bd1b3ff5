"""raasbench: Python over the C library (ctypes over build/libraasbench.so, `make lib`).

    import raasbench
    raasbench.policies()                      # [{"name", "summary", "flags"}, ...]
    res = raasbench.replay("t.h5", ["dense", "raas"], [64, 256], "r.h5")
    res.runs["raas_L64"]["recall"]            # numpy [steps, stored layers]
    raasbench.open_trace("t.h5").attrs        # h5py views of traces and results

The library is found at $RAASBENCH_LIB, else ../build/libraasbench.so next to this package
(an editable install from the repository: `pip install -e python/`). replay runs the same
code path as `raasbench replay` (cmd_replay), in this process, and reads back the results
file it wrote, so its numbers are the CLI's bit for bit.
"""
import ctypes
import os

__all__ = ["policies", "replay", "sweep", "run_cli", "open_trace", "open_results", "Results",
           "RaasbenchError", "library_path"]

POLICY_INTERNAL = 1 << 5


class RaasbenchError(RuntimeError):
    """A raasbench command exited non-zero (its message went to stderr)."""


class _PolicyOps(ctypes.Structure):
    # the leading fields of policy_ops (policies/policy.h); only these are read
    _fields_ = [("name", ctypes.c_char_p), ("summary", ctypes.c_char_p), ("flags", ctypes.c_uint)]


_lib = None


def library_path():
    p = os.environ.get("RAASBENCH_LIB")
    if p:
        return p
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "build", "libraasbench.so"))


def _load():
    global _lib
    if _lib is None:
        path = library_path()
        if not os.path.exists(path):
            raise OSError(f"raasbench: {path}: no such library (run `make lib`, or set RAASBENCH_LIB)")
        lib = ctypes.CDLL(path)
        lib.policy_list.restype = ctypes.POINTER(ctypes.POINTER(_PolicyOps))
        lib.policy_list.argtypes = [ctypes.POINTER(ctypes.c_int)]
        for cmd in ("cmd_replay", "cmd_sweep", "cmd_info", "cmd_synth", "cmd_policies", "cmd_export"):
            f = getattr(lib, cmd)
            f.restype = ctypes.c_int
            f.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        _lib = lib
    return _lib


def policies(include_internal=False):
    """The registered policies, in registry order: dicts with name, summary and flags."""
    lib = _load()
    n = ctypes.c_int(0)
    arr = lib.policy_list(ctypes.byref(n))
    out = []
    for i in range(n.value):
        ops = arr[i].contents
        if ops.flags & POLICY_INTERNAL and not include_internal:
            continue
        out.append({"name": ops.name.decode(), "summary": ops.summary.decode(), "flags": ops.flags})
    return out


def run_cli(command, *args):
    """Run one raasbench subcommand (replay, sweep, info, synth, policies, export) here;
    returns its exit code (0 ok, 2 bad input: the message is on stderr)."""
    lib = _load()
    f = getattr(lib, f"cmd_{command}", None)
    if f is None:
        raise ValueError(f"raasbench: {command}: not a command the library exposes")
    argv = [str(a).encode() for a in args]
    arr = (ctypes.c_char_p * (len(argv) + 1))(*argv, None)
    # C stdio and Python's sys.stdout are separate buffers: flush both around the call
    import sys
    sys.stdout.flush()
    rc = f(len(argv), arr)
    ctypes.CDLL(None).fflush(None)
    return rc


class Results:
    """A results file read whole: attrs, runs {run_id: {dataset: numpy array}}, summary."""

    def __init__(self, path):
        import h5py
        self.path = path
        with h5py.File(path, "r") as f:
            self.attrs = dict(f.attrs)
            self.runs = {}
            for rid, g in f["runs"].items():
                self.runs[rid] = {k: v[...] for k, v in g.items()}
                self.runs[rid]["attrs"] = dict(g.attrs)
            self.summary = f["summary"][...] if "summary" in f else None


def replay(trace, policies, budgets, out, params=(), quiet=True, **options):
    """`raasbench replay TRACE --policies ... --budgets ... --out OUT [--param k=v ...]
    [--key value ...]` in this process; returns Results(out). Options are the CLI's long
    options with _ for - (page_size=16, dense_layers=2, steps=T, threads=N, seed=S);
    True means a flag (per_head=True)."""
    args = [trace, "--policies", ",".join(policies), "--budgets", ",".join(map(str, budgets)),
            "--out", out]
    for p in params:
        args += ["--param", p]
    for k, v in options.items():
        if v is True:
            args.append("--" + k.replace("_", "-"))
        elif v is not None and v is not False:
            args += ["--" + k.replace("_", "-"), str(v)]
    if quiet:
        args.append("--quiet")
    rc = run_cli("replay", *args)
    if rc != 0:
        raise RaasbenchError(f"raasbench replay exited {rc}")
    return Results(out)


def sweep(*args):
    """`raasbench sweep ARGS...` in this process (see `raasbench sweep --help`)."""
    rc = run_cli("sweep", *args)
    if rc != 0:
        raise RaasbenchError(f"raasbench sweep exited {rc}")


def open_trace(path):
    """The trace as an h5py File (read-only), its format and version checked."""
    import h5py
    f = h5py.File(path, "r")
    if f.attrs.get("format") != "raasbench-trace" or int(f.attrs.get("format_version", 0)) != 1:
        f.close()
        raise RaasbenchError(f"raasbench: {path}: not a raasbench trace of format_version 1")
    return f


def open_results(path):
    return Results(path)


# ---- one layer's KV cache driven by a raasbench policy (harness/engine/stepper.h) ----

POLICY_BUDGET_FREE = 1 << 2


class _Err(ctypes.Structure):
    _fields_ = [("status", ctypes.c_int), ("what", ctypes.c_char * 256), ("why", ctypes.c_char * 768)]


class _PolicyConfig(ctypes.Structure):  # policy_config, policies/policy.h
    _fields_ = [("layer", ctypes.c_int), ("n_q_heads", ctypes.c_int), ("n_kv_heads", ctypes.c_int),
                ("head_dim", ctypes.c_int), ("budget", ctypes.c_int), ("page_size", ctypes.c_int),
                ("max_tokens", ctypes.c_int), ("attn_scale", ctypes.c_float),
                ("seed", ctypes.c_uint64), ("params", ctypes.c_void_p), ("separator", ctypes.c_void_p),
                ("pools", ctypes.c_void_p)]


class _Selection(ctypes.Structure):  # policy_selection, policies/policy.h
    _fields_ = [("n_q_heads", ctypes.c_int), ("group_size", ctypes.c_int), ("cap", ctypes.c_int),
                ("shared_by_group", ctypes.c_int), ("n", ctypes.POINTER(ctypes.c_int)),
                ("pos", ctypes.POINTER(ctypes.c_int32)), ("k", ctypes.c_void_p), ("v", ctypes.c_void_p)]


def _stepper_api(lib):
    if getattr(lib, "_stepper_ready", False):
        return
    P = ctypes.c_void_p
    lib.policy_find_choice.restype = ctypes.POINTER(_PolicyOps)
    lib.policy_find_choice.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Err)]
    lib.policy_params_for.restype = ctypes.c_int
    lib.policy_params_for.argtypes = [ctypes.POINTER(_PolicyOps), ctypes.POINTER(ctypes.c_char_p),
                                      ctypes.c_int, P, ctypes.POINTER(_Err)]
    lib.stepper_create.restype = ctypes.c_int
    lib.stepper_create.argtypes = [ctypes.POINTER(_PolicyOps), ctypes.POINTER(_PolicyConfig), ctypes.c_int,
                                   P, ctypes.POINTER(P), ctypes.POINTER(_Err)]
    lib.stepper_destroy.argtypes = [P]
    fp = ctypes.POINTER(ctypes.c_float)
    lib.stepper_prefill.argtypes = [P, ctypes.c_int, fp, fp, fp, fp]
    lib.stepper_step.argtypes = [P, ctypes.c_int, fp, fp, fp, fp, fp, ctypes.c_int, fp]
    lib.stepper_selection.restype = ctypes.POINTER(_Selection)
    lib.stepper_selection.argtypes = [P]
    lib.stepper_kv_bytes.restype = ctypes.c_int64
    lib.stepper_kv_bytes.argtypes = [P]
    lib._stepper_ready = True


class Stepper:
    """One layer's KV cache under a raasbench policy: the C engine's own stepper (the piece
    replay and live decode run every policy through). It owns the layer's pools, so what it
    keeps resident is all the memory the layer's cache takes. Arrays are float32 numpy:
    q [n, Hq, d], k and v [n, Hkv, d]; step() returns the attention output [Hq, d] over the
    policy's selection. Parameters as in replay: seed 1, page size 16, elem_bytes 2."""

    def __init__(self, policy, budget, layer, n_q_heads, n_kv_heads, head_dim, max_tokens,
                 attn_scale, page_size=16, seed=1, params=(), elem_bytes=2):
        import numpy as np
        self._np = np
        lib = self._lib = _load()
        _stepper_api(lib)
        err = _Err()
        ops = lib.policy_find_choice(policy.encode(), ctypes.byref(err))
        if not ops:
            raise RaasbenchError(f"raasbench: {err.what.decode()}: {err.why.decode()}")
        self._params = ctypes.create_string_buffer(4096)  # policy_params (~800 bytes)
        kv = (ctypes.c_char_p * max(1, len(params)))(*[p.encode() for p in params])
        if lib.policy_params_for(ops, kv, len(params), self._params, ctypes.byref(err)):
            raise RaasbenchError(f"raasbench: {err.what.decode()}: {err.why.decode()}")
        if ops.contents.flags & POLICY_BUDGET_FREE:
            budget = max_tokens  # as cells_layer_policy does
        self.cfg = _PolicyConfig(layer, n_q_heads, n_kv_heads, head_dim, budget, page_size,
                                 max_tokens, attn_scale, seed, ctypes.cast(self._params, ctypes.c_void_p), None)
        self._h = ctypes.c_void_p()
        if lib.stepper_create(ops, ctypes.byref(self.cfg), elem_bytes, None, ctypes.byref(self._h),
                              ctypes.byref(err)):
            raise RaasbenchError(f"raasbench: {err.what.decode()}: {err.why.decode()}")
        self.hq, self.hkv, self.d = n_q_heads, n_kv_heads, head_dim

    def _f(self, x):
        x = self._np.ascontiguousarray(x, dtype=self._np.float32)
        return x, x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))

    def prefill(self, q, k, v):
        (q, qp), (k, kp), (v, vp) = self._f(q), self._f(k), self._f(v)
        out = self._np.empty((q.shape[0], self.hq, self.d), self._np.float32)
        self._lib.stepper_prefill(self._h, q.shape[0], qp, kp, vp, self._f(out)[1])
        return out

    def step(self, pos, q, k, v):
        (q, qp), (k, kp), (v, vp) = self._f(q), self._f(k), self._f(v)
        out = self._np.empty((self.hq, self.d), self._np.float32)
        self._lib.stepper_step(self._h, pos, qp, kp, vp, None, None, 0, self._f(out)[1])
        return out

    def selection(self):
        """The positions each query head attended at the last step: list of int arrays."""
        s = self._lib.stepper_selection(self._h).contents
        out = []
        for h in range(s.n_q_heads):
            r = h - h % s.group_size if s.shared_by_group else h
            n = s.n[r]
            out.append(self._np.ctypeslib.as_array(s.pos, shape=(s.n_q_heads * s.cap,))[r * s.cap:r * s.cap + n].copy())
        return out

    def kv_bytes(self):
        """Resident K+V bytes in the pools (at elem_bytes per element)."""
        return int(self._lib.stepper_kv_bytes(self._h))

    def close(self):
        if self._h:
            self._lib.stepper_destroy(self._h)
            self._h = ctypes.c_void_p()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
