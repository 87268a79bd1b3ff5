#!/bin/sh
# rows.sh: the rows of one figure series from a TSV of `raasbench export`, for the plots.
#   rows.sh FILE --list            the series in FILE, in order of first appearance
#   rows.sh FILE SERIES [COLUMN]   the header, then SERIES's rows sorted numerically by COLUMN
# A row's series is its `series` column where the table has one (eval tables), else its
# run_id without the "_L<budget>[@<trace>]" suffix: `<policy>[-<label>]`, so a labelled
# variant (raas-exact, raas-decode) is its own line and never averaged into its policy's.
f=$1
want=$2
key=${3:-}
[ -r "$f" ] || { echo "rows.sh: cannot read $f" >&2; exit 2; }
awk -F'\t' -v want="$want" -v key="$key" '
NR == 1 {
    for (i = 1; i <= NF; i++) {
        if ($i == "series") sc = i
        if ($i == "run_id") rc = i
        if ($i == key) kc = i
    }
    if (!sc && !rc) { print "rows.sh: " FILENAME " has neither series nor run_id" > "/dev/stderr"; exit 2 }
    if (want != "--list") print
    next
}
NF == 0 { next }
{
    s = sc ? $sc : $rc
    if (!sc) sub(/_L[0-9]+(@.*)?$/, "", s)
    if (want == "--list") { if (!seen[s]++) printf "%s ", s; next }
    if (s == want) print (kc ? $kc : NR) "\t" $0 | "sort -t \"\t\" -k1,1g | cut -f2-"
}' "$f"
