#!/usr/bin/env bash
# e2e_policies.sh: `raasbench policies` lists every registered policy with its parameters
# (type, default, range or choices); `--names` gives the same names one a line (what scripts
# take their policies from); internal policies are hidden from both unless --all, and shown
# when named; one policy by name; --help; an unknown policy or a stray option is refused
# with `raasbench: <what>: <why>` and exit 2. No policy list is written here.
set -u
B=${RAASBENCH:-build/raasbench}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$B" policies >"$tmp/all" 2>"$tmp/err" || fail "policies exited $?"
"$B" policies --names >"$tmp/names" || fail "policies --names exited $?"
"$B" policies --names --all >"$tmp/every" || fail "policies --names --all exited $?"
[ -s "$tmp/names" ] || fail "no names"
grep -qv '^[a-z0-9_]\+$' "$tmp/names" && fail "--names prints bare names only: $(cat "$tmp/names")"
# The listing's headings are exactly the names, in the same order.
diff <(grep '^[a-z0-9_]\+$' "$tmp/all") "$tmp/names" >/dev/null || fail "listing and --names differ"
# Internal policies: in --all only, marked when named, announced under the listing.
internal=$(grep -vxFf "$tmp/names" "$tmp/every" || true)
for p in $internal; do
  "$B" policies "$p" | grep -q "^  internal:" || fail "$p is hidden but not marked internal"
  grep -q "^$p\$" "$tmp/all" && fail "internal $p listed"
done
n_int=$(wc -w <<<"$internal")
[ "$n_int" = 0 ] || grep -q "^($n_int internal polic" "$tmp/all" || fail "hidden policies not announced"
# Every parameter row names a listed policy; two rows checked for their format.
grep -oE '^    [a-z0-9_]+\.[a-z0-9_]+' "$tmp/all" | sed 's/^ *//; s/\..*//' | sort -u >"$tmp/owners"
[ -s "$tmp/owners" ] || fail "no parameter rows"
grep -vxFf "$tmp/names" "$tmp/owners" && fail "parameter of an unlisted policy"
grep -q "raas.score *choice *default bound *bound|exact" "$tmp/all" || fail "raas.score row"
grep -q "h2o.recent *float *default 0.5 *\[0, 1\]" "$tmp/all" || fail "h2o.recent row"
grep -q "L >= 2P" "$tmp/all" || fail "page rule not shown"

first=$(head -1 "$tmp/names")
"$B" policies "$first" >"$tmp/one" || fail "policies $first exited $?"
[ "$(grep -c '^[a-z]' "$tmp/one")" = 1 ] || fail "one policy expected"
[ "$("$B" policies "$first" --names)" = "$first" ] || fail "policies $first --names"
"$B" policies --help | grep -q "usage: raasbench policies" || fail "--help"

"$B" policies lru >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 2 ] || fail "unknown policy: exit $rc, want 2"
grep -q "^raasbench: lru: unknown policy (known: $(head -1 "$tmp/every")" "$tmp/err" || fail "message: $(cat "$tmp/err")"
"$B" policies --frob >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 2 ] || fail "unknown option: exit $rc"
grep -q "^raasbench: policies: unknown option '--frob'" "$tmp/err" || fail "message: $(cat "$tmp/err")"
echo "# policies: $(wc -l <"$tmp/names") listed = --names, $n_int internal hidden; one policy, --help, unknown name and option refused"
