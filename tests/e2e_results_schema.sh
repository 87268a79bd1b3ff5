#!/usr/bin/env bash
# e2e_results_schema.sh: results/FORMAT.md holds exactly the tables `raasbench export
# --schema` prints (between its BEGIN and END markers), and those tables describe the files
# raasbench writes: every attribute, dataset and /summary member of a replay with
# --per-head and --dump-selection and of a teacher-forced decode (tiny gemma3) is a row,
# of the type the row says; every row marked "always" is in every run.
set -u
B=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$B" export --schema > "$D/schema.md" || fail "export --schema exited $?"
sed -n '/^<!-- BEGIN raasbench export --schema/,/^<!-- END raasbench export --schema/p' \
  results/FORMAT.md | sed '1d;$d' > "$D/format.md"
[ -s "$D/format.md" ] || fail "results/FORMAT.md has no BEGIN/END raasbench export --schema block"
diff -u "$D/format.md" "$D/schema.md" > "$D/diff" ||
  fail "results/FORMAT.md differs from \`raasbench export --schema\`; paste its output between the markers:
$(head -20 "$D/diff")"

python3 -c "import h5py, numpy" 2>/dev/null || { echo "h5py/numpy missing"; exit 77; }
"$B" synth --out "$D/t.h5" --layers 2 --decode 100 --prefill 32 --phoenix 0 --quiet || fail synth
"$B" replay "$D/t.h5" --policies dense,raas --budgets 64 --dense-layers 1 --threads 1 \
  --per-head --dump-selection --quiet --out "$D/replay.h5" || fail "replay"
files="$D/replay.h5"
if python3 -c "import gguf" 2>/dev/null && python3 tools/make_tiny_models.py "$D" >/dev/null; then
  "$B" decode --model "$D/tiny-gemma3.gguf" --prompt-tokens 1,272,87,280,273 --max-tokens 8 \
    --dense-layers 0 --page-size 4 --teacher-forced --policies dense,streamingllm --budgets 8 \
    --quiet --out "$D/tf.h5" || fail "teacher-forced decode"
  files="$files $D/tf.h5"
fi

python3 - "$D/schema.md" $files <<'PY' || fail "a written file disagrees with the schema"
import sys, re, h5py, numpy as np
schema = open(sys.argv[1]).read()
tables = {}  # section -> {name: (type, present)}
for sec in schema.split("\n### ")[0:]:
    title = sec.split("\n", 1)[0]
    key = ("root" if "root" in title else "attr" if "Attributes of each run" in title
           else "data" if "Datasets" in title else "summary" if "/summary" in title else None)
    if not key: continue
    head = None
    for line in sec.split("\n"):
        if not line.startswith("| "): continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if head is None: head = cells; continue
        if cells[0].startswith("`"):
            row = dict(zip(head, cells))
            tables.setdefault(key, {})[cells[0].strip("`").split("/")[0]] = row
assert set(tables) == {"root", "attr", "data", "summary"}, tables.keys()
TYPES = {"int32": np.int32, "int64": np.int64, "float32": np.float32, "float64": np.float64,
         "uint8": np.uint8}
def check_type(where, want, value):
    if want.startswith("string"):
        ok = isinstance(value, (str, bytes)) or (hasattr(value, "dtype") and value.dtype.kind in "SOU")
    else:
        ok = np.asarray(value).dtype == TYPES[want]
    assert ok, f"{where}: {np.asarray(value).dtype} is not {want}"
n_checked = 0
for path in sys.argv[2:]:
    f = h5py.File(path, "r")
    for k, v in f.attrs.items():
        assert k in tables["root"], f"root attribute {k} is not in the schema"
        check_type(f"/@{k}", tables["root"][k]["type"], v); n_checked += 1
    for k in tables["root"]:
        assert k in f.attrs, f"{path}: root attribute {k} missing"
    for rid, g in f["runs"].items():
        for k, v in g.attrs.items():
            assert k in tables["attr"], f"run attribute {k} is not in the schema"
            check_type(f"{rid}@{k}", tables["attr"][k]["type"], v); n_checked += 1
        for k, row in tables["attr"].items():
            if row["present"] == "always" and k != "run_id":
                assert k in g.attrs, f"{rid}: attribute {k} missing"
        for k, v in g.items():
            assert k in tables["data"], f"dataset {k} is not in the schema"
            row = tables["data"][k]
            for d in (v.values() if isinstance(v, h5py.Group) else [v]):
                check_type(f"{rid}/{k}", row["type"], d[()]); n_checked += 1
                assert d.ndim == row["shape"].count(",") + 1, (k, d.shape, row["shape"])
        for k, row in tables["data"].items():
            if row["present"] == "always":
                assert k in g, f"{rid}: dataset {k} missing"
    s = f["summary"]
    assert list(s.dtype.names) == list(tables["summary"]), (s.dtype.names, list(tables["summary"]))
    for k in s.dtype.names:
        check_type(f"summary.{k}", tables["summary"][k]["type"], s[k]); n_checked += 1
print(f"# {len(sys.argv) - 2} files: {n_checked} attributes, datasets and summary members match the schema")
PY
echo "# results/FORMAT.md is the schema's markdown"
