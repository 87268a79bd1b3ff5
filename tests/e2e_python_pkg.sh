#!/usr/bin/env bash
# e2e_python_pkg.sh: the python/ package installs with pip from the repository and, over
# $BUILD/libraasbench.so (`make lib`), lists the same policies as `raasbench policies
# --names` and replays a synthetic trace to the same recall, out_err, attended and kv_bytes
# as the CLI, bit for bit, twice in one process; a bad policy raises with exit code 2.
# Skips (77) in a sanitizer build (a Python process cannot load an ASan library).
set -u
RB=${RAASBENCH:-build/raasbench}
BUILD=${BUILD:-build}
case "$BUILD" in *san*) echo "sanitizer build: python cannot load an ASan libraasbench.so"; exit 77;; esac
python3 -c "import h5py, numpy" 2>/dev/null || { echo "h5py or numpy missing"; exit 77; }
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
make -s BUILD="$BUILD" lib >"$dir/make.log" 2>&1 || { cat "$dir/make.log"; fail "make lib"; }
cp -r python "$dir/src"   # setuptools writes build/ and egg-info/ into the tree it installs
python3 -m pip install -q --disable-pip-version-check --no-deps \
  --target "$dir/site" "$dir/src" >"$dir/pip.log" 2>&1 || { cat "$dir/pip.log"; fail "pip install python/"; }
"$RB" synth --out "$dir/t.h5" --layers 4 --decode 300 --prefill 64 --quiet || fail "synth"
"$RB" replay "$dir/t.h5" --policies dense,streamingllm,raas --budgets 32,64 --out "$dir/cli.h5" --quiet --threads 1 ||
  fail "cli replay"
"$RB" policies --names >"$dir/names" || fail "policies --names"
cd "$dir" && PYTHONPATH="$dir/site" RAASBENCH_LIB="$OLDPWD/$BUILD/libraasbench.so" python3 - "$dir" <<'PY' || fail "python package"
import sys, numpy as np, raasbench
d = sys.argv[1]
names = [p["name"] for p in raasbench.policies()]
want = open(f"{d}/names").read().split()
assert names == want, (names, want)
cli = raasbench.open_results(f"{d}/cli.h5")
for i in range(2):  # twice: the library keeps no state between commands
    r = raasbench.replay(f"{d}/t.h5", ["dense", "streamingllm", "raas"], [32, 64], f"{d}/py{i}.h5", threads=1)
    assert sorted(r.runs) == sorted(cli.runs) and len(r.runs) == 6, sorted(r.runs)
    for rid in r.runs:
        for k in ("recall", "out_err", "attended", "kv_bytes"):
            assert np.array_equal(r.runs[rid][k], cli.runs[rid][k]), (rid, k)
try:
    raasbench.replay(f"{d}/t.h5", ["nosuch"], [32], f"{d}/bad.h5")
    raise SystemExit("a bad policy did not raise")
except raasbench.RaasbenchError as e:
    assert "exited 2" in str(e), e
with raasbench.open_trace(f"{d}/t.h5") as t:
    assert int(t.attrs["n_layers"]) == 4
print(f"# python package: {len(names)} policies, 6 runs replayed equal to the CLI's, bit for bit")
PY
