#!/usr/bin/env bash
# e2e_plots.sh: every plots/*.gp figure renders from a small real pipeline: a short
# synthetic trace, a replay of every registered policy at two budgets, a lifecycle
# analysis, the export tables, then each script. Checks: exit 0, no gnuplot warning (a
# warning means a filter matched nothing or a column name is wrong), a PNG of the
# terminal's size, and a clean refusal when a script is called without its inputs. KEEP=1
# keeps the temporary directory (inputs and PNGs) for a look.
set -u
B=${RAASBENCH:-build/raasbench}
command -v gnuplot >/dev/null || { echo "gnuplot not installed"; exit 77; }
python3 -c "import struct" 2>/dev/null || { echo "python3 missing"; exit 77; }
D=$(mktemp -d); [ -n "${KEEP:-}" ] || trap 'rm -rf "$D"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
P=$(cd "$(dirname "$0")/../plots" && pwd)

"$B" synth --out "$D/t.h5" --layers 2 --decode 400 --prefill 64 --quiet || fail "synth"
# Every registered policy (the registry is the only list), so each one's figures render.
policies=$("$B" policies --names | paste -sd, -)
[ -n "$policies" ] || fail "no policies listed"
# plus a labelled variant: a figure's series of its own, never averaged into raas's line
"$B" replay "$D/t.h5" --policies "$policies,exact=raas:score=exact" --budgets 64,128 \
    --dense-layers 1 --threads 1 --quiet --out "$D/res.h5" || fail "replay"
"$B" lifecycle "$D/t.h5" --layer 1 --out "$D/lc.h5" --quiet || fail "lifecycle"
"$B" export "$D/res.h5" --table summary --out "$D/summary.tsv" || fail "export summary"
"$B" export "$D/res.h5" --table steps --out "$D/steps.tsv" || fail "export steps"
# series: raas and raas-exact are two, each with its own two budgets in order
series=$(sh "$P/rows.sh" "$D/summary.tsv" --list)
case " $series" in *" raas "*" raas-exact "*) ;; *) fail "rows.sh --list: '$series' lacks raas and raas-exact apart" ;; esac
[ "$(sh "$P/rows.sh" "$D/summary.tsv" raas-exact budget | cut -f1 | paste -sd' ')" = "run_id raas-exact_L64 raas-exact_L128" ] \
  || fail "rows.sh raas-exact: $(sh "$P/rows.sh" "$D/summary.tsv" raas-exact budget | cut -f1)"
for t in heatmap milestones lifespan; do
  "$B" export "$D/lc.h5" --table $t --out "$D/$t.tsv" || fail "export $t"
done

render() {  # render NAME VARS: gnuplot -e VARS plots/NAME.gp, then check the PNG
  local name=$1 vars=$2 png="$D/$1.png"
  gnuplot -e "$vars; out='$png'" "$P/$name.gp" 2>"$D/$name.err" || fail "$name.gp exited $?: $(cat "$D/$name.err")"
  ! grep -qi warning "$D/$name.err" || fail "$name.gp warned: $(cat "$D/$name.err")"
  python3 - "$png" <<'PY' || fail "$name.png is not a proper PNG"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "signature"
w, h = struct.unpack(">II", b[16:24])
assert w == 1200 and h in (800, 900), (w, h)
assert len(b) > 20000, f"{len(b)} bytes: an empty plot?"
PY
  echo "# $name.png: $(stat -c %s "$png") bytes"
}
render budget "in='$D/summary.tsv'"
render latency "in='$D/steps.tsv'; budget=128"
render memory "in='$D/steps.tsv'"
render tradeoff "in='$D/summary.tsv'"
render lifecycle "in='$D/heatmap.tsv'; ms='$D/milestones.tsv'"
render lifespan "in='$D/lifespan.tsv'"
# A real decode has no planted truth and may have no milestone at all (Gemma 3 270M's global
# layers 5 and 17): the waterfall and lifespan figures still render without a warning.
awk -F'\t' '$1 != "planted"' "$D/milestones.tsv" > "$D/ms_real.tsv"
head -n 1 "$D/milestones.tsv" > "$D/ms_none.tsv"
awk -F'\t' -v OFS='\t' 'NR == 1 {print; next} {$3 = 0; $4 = "NaN"; print}' "$D/lifespan.tsv" > "$D/ls_none.tsv"
grep -q '^detected' "$D/ms_real.tsv" || fail "the small trace has no detected milestone to draw"
render lifecycle "in='$D/heatmap.tsv'; ms='$D/ms_real.tsv'; title='detected only'"
render lifecycle "in='$D/heatmap.tsv'; ms='$D/ms_none.tsv'; title='none detected'"
render lifespan "in='$D/ls_none.tsv'"

for s in budget latency memory tradeoff lifecycle lifespan; do
  gnuplot "$P/$s.gp" >"$D/out" 2>&1 && fail "$s.gp without inputs exited 0"
  grep -q "set in=" "$D/out" || fail "$s.gp without inputs: no usage message: $(cat "$D/out")"
done
echo "# plots: 6 figures rendered (and 3 of a decode without truth), 6 refusals without inputs"
