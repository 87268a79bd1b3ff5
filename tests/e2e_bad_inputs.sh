#!/usr/bin/env bash
# e2e_bad_inputs.sh: the bad-input corpus (tests/bad_inputs/gen.py: damaged traces, results,
# GGUF files, sweep configs, task files and bad arguments of every command). Each case must
# exit with its code (2) and its `raasbench: <what>: <why>` message, never crash (signal,
# sanitizer report), leave nothing where its output would go, and leave its inputs as they
# were. Cases named in tests/bad_inputs/KNOWN_FAILING (bugs of issue 15 being fixed) are
# reported as known failing without failing the test. RB_BAD_INPUTS=REGEX runs only the
# cases whose id matches; RB_BAD_INPUTS_KEEP=DIR keeps the corpus there.
set -u
RB=${RAASBENCH:-build/raasbench}
cd "$(dirname "$0")/.."
python3 -c "import h5py, numpy, gguf" 2>/dev/null || { echo "python3 with h5py, numpy and gguf is not installed"; exit 77; }
[ -x "$RB" ] || { echo "FAIL: $RB missing"; exit 1; }
if [ -n "${RB_BAD_INPUTS_KEEP:-}" ]; then T=$RB_BAD_INPUTS_KEEP; rm -rf "$T"; mkdir -p "$T"
else T=$(mktemp -d); trap 'rm -rf "$T"' EXIT; fi
python3 tests/bad_inputs/gen.py "$RB" "$T" >/dev/null || { echo "FAIL: gen.py"; exit 1; }
python3 - "$RB" "$T" tests/bad_inputs/KNOWN_FAILING "${RB_BAD_INPUTS:-}" <<'PY'
import hashlib, json, os, re, stat, subprocess, sys, time
rb, d, known_path, only = sys.argv[1:5]
known = {}
for line in open(known_path):
    line = line.strip()
    if line and not line.startswith("#"):
        cid, _, why = line.partition(" ")
        known[cid] = why.strip()
cases = [json.loads(l) for l in open(f"{d}/cases.json")]
ids = {c["id"] for c in cases}
stale = sorted(set(known) - ids)
if only:
    cases = [c for c in cases if re.search(only, c["id"])]
SAN = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:|Segmentation fault|core dumped")
env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "detect_leaks=1"))
def sha(p):  # content of a regular file, the type of anything else (a FIFO is not opened)
    try:
        st = os.lstat(p)
        if not stat.S_ISREG(st.st_mode):
            return f"mode {st.st_mode:o}"
        return hashlib.sha256(open(p, "rb").read()).hexdigest()
    except OSError as e:
        return str(e)
def leftovers(cid):
    od = f"{d}/o/{cid}"
    return sorted(os.listdir(od)) if os.path.isdir(od) else []
def run_case(c):
    """Runs one case; returns (case, list of what went wrong, stderr's lines)."""
    before = {p: sha(p) for p in c["keep"]}
    try:
        r = subprocess.run([rb, *c["argv"]], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=120, env=env)
        rc, err = r.returncode, r.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        rc, err = "timeout", (e.stderr or b"").decode("utf-8", "replace")
    why = []
    if SAN.search(err) or (isinstance(rc, int) and rc < 0):
        why.append(f"CRASH (rc {rc})")
    if rc != c["rc"]:
        why.append(f"exit {rc}, want {c['rc']}")
    if not re.search(c["re"], err, re.M):
        why.append(f"message lacks /{c['re']}/")
    left = leftovers(c["id"])
    if left:
        why.append(f"left {', '.join(left)}")
        for p in left:  # the next run of the same id starts clean
            subprocess.run(["rm", "-rf", f"{d}/o/{c['id']}/{p}"])
    changed = [p for p in c["keep"] if sha(p) != before[p]]
    if changed:
        why.append(f"changed its input {', '.join(changed)}")
    return c, why, err.strip().splitlines()
# Cases are independent (each has its own output folder) except those checking that an input
# stays untouched: several share one copy of an input, so they run one at a time, after.
from concurrent.futures import ThreadPoolExecutor
t0 = time.time()
workers = max(1, min(4, os.cpu_count() or 1))
with ThreadPoolExecutor(workers) as ex:
    results = list(ex.map(run_case, [c for c in cases if not c["keep"]]))
results += [run_case(c) for c in cases if c["keep"]]
n_pass = n_known = n_fixed = 0
fails = []
for c, why, msg in results:
    first = msg[0][:200] if msg else ""
    if not why:
        if c["id"] in known:
            n_fixed += 1
            print(f"ok   {c['id']} (listed in KNOWN_FAILING: remove it): {first}")
        else:
            n_pass += 1
        continue
    line = f"{c['id']}: {'; '.join(why)}; stderr: {first}"
    if c["id"] in known:
        n_known += 1
        print(f"known failing {line}   [{known[c['id']]}]")
    else:
        fails.append(line)
        print(f"FAIL {line}")
        if "CRASH" in line:
            print("\n".join("     " + l for l in msg[:25]))
for s in stale:
    print(f"note: KNOWN_FAILING names {s}, which is no case")
print(f"# bad inputs: {len(cases)} cases, {n_pass} pass, {n_known} known failing (KNOWN_FAILING), "
      f"{n_fixed} listed as known failing but passing, {len(fails)} fail "
      f"({time.time() - t0:.0f}s, {workers} at a time)")
sys.exit(1 if fails else 0)
PY
