#!/usr/bin/env bash
# e2e_results_schema.sh: results/FORMAT.md holds the results format's tables exactly as the
# code defines them (`raasbench export --schema`, printed from results.c's column tables),
# and every dataset a real run writes is a row of that table (nothing written undocumented).
set -u
B=${RAASBENCH:-build/raasbench}
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$B" export --schema >"$D/schema.md" || fail "export --schema exited $?"
sed -n '/<!-- schema:/,/<!-- end schema -->/p' results/FORMAT.md | sed '1d;$d' >"$D/doc.md"
[ -s "$D/doc.md" ] || fail "results/FORMAT.md has no schema block between its markers"
diff -u "$D/doc.md" "$D/schema.md" >"$D/diff" ||
  fail "results/FORMAT.md differs from 'raasbench export --schema' (paste its output between the markers): $(head -20 "$D/diff")"
"$B" export --schema --table summary >/dev/null 2>&1 && fail "--schema with --table accepted"
# every dataset of a replay with --per-head is documented
"$B" synth --out "$D/t.h5" --layers 2 --prefill 32 --decode 40 >/dev/null 2>&1 || fail "synth"
"$B" replay "$D/t.h5" --policies dense,h2o --budgets 16 --per-head --out "$D/r.h5" --quiet || fail "replay"
python3 - "$D/r.h5" "$D/schema.md" <<'PY' || fail "an undocumented dataset"
import sys, h5py, re
documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", open(sys.argv[2]).read(), re.M))
with h5py.File(sys.argv[1], "r") as f:
    for run in f["runs"].values():
        for name, obj in run.items():
            if isinstance(obj, h5py.Dataset):
                assert name in documented, f"{name} is written but not in the schema"
    for col in f["summary"].dtype.names:
        assert col in documented, f"summary column {col} not in the schema"
print("# every dataset and summary column written is documented")
PY
echo "# results/FORMAT.md matches export --schema"
