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
