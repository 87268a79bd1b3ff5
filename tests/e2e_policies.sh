#!/usr/bin/env bash
# e2e_policies.sh: `raasbench policies` lists every policy with its parameters (type,
# default, range or choices), shows one policy by name, answers --help, and refuses an
# unknown policy or a stray option with `raasbench: <what>: <why>` and exit 2.
set -u
B=${RAASBENCH:-build/raasbench}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$B" policies >"$tmp/all" 2>"$tmp/err" || fail "policies exited $?"
# the registry is the only list: every name --names gives is a section of the full listing,
# and the full listing holds exactly --names plus the internal policies
"$B" policies --names >"$tmp/names" || fail "policies --names exited $?"
[ -s "$tmp/names" ] || fail "--names printed nothing"
while read -r p; do grep -q "^$p\$" "$tmp/all" || fail "policy $p not listed"; done <"$tmp/names"
n_all=$(grep -c '^[a-z]' "$tmp/all"); n_int=$(grep -c '^  internal:' "$tmp/all")
[ "$n_all" = $(( $(wc -l <"$tmp/names") + n_int )) ] || fail "$n_all sections, $(wc -l <"$tmp/names") names + $n_int internal"
"$B" policies --names --practical >"$tmp/practical" || fail "--practical exited $?"
[ "$(wc -l <"$tmp/practical")" = $(( $(wc -l <"$tmp/names") - $(grep -c '^  a bound' "$tmp/all") )) ] || fail "--practical leaves out the bounds"
"$B" policies --practical >/dev/null 2>"$tmp/err"; [ $? = 2 ] || fail "--practical alone accepted"
for k in streamingllm.sinks h2o.recent quest.gqa raas.score raas.refresh raas.r raas.alpha random.seed; do
  grep -q "$k" "$tmp/all" || fail "parameter $k not listed"
done
grep -q "raas.score *choice *default bound *bound|exact" "$tmp/all" || fail "raas.score row"
grep -q "h2o.recent *float *default 0.5 *\[0, 1\]" "$tmp/all" || fail "h2o.recent row"
grep -q "L >= 2P" "$tmp/all" || fail "page rule not shown"

"$B" policies quest >"$tmp/one" || fail "policies quest exited $?"
[ "$(grep -c '^[a-z]' "$tmp/one")" = 1 ] || fail "one policy expected"
"$B" policies --help | grep -q "usage: raasbench policies" || fail "--help"

"$B" policies lru >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 2 ] || fail "unknown policy: exit $rc, want 2"
grep -q "^raasbench: lru: unknown policy (known: dense" "$tmp/err" || fail "message: $(cat "$tmp/err")"
"$B" policies --frob >/dev/null 2>"$tmp/err"; rc=$?
[ $rc = 2 ] || fail "unknown option: exit $rc"
grep -q "^raasbench: policies: unknown option '--frob'" "$tmp/err" || fail "message: $(cat "$tmp/err")"
echo "# policies: listing, one policy, --help, unknown name and option refused"
