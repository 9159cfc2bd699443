#!/bin/sh
# run.sh BINARY CASES: runs BINARY on each "expression<TAB>expected" line of CASES and
# prints one "ok"/"not ok" line per case; exits 1 if any case failed (which fails the
# vertex, and so the job).
bin=$1
fail=0
n=0
tab=$(printf '\t')
while IFS=$tab read -r expr want; do
	n=$((n + 1))
	got=$("$bin" "$expr" 2>&1)
	if [ "$got" = "$want" ]; then
		echo "ok $n - $expr = $got"
	else
		echo "not ok $n - $expr: expected $want, got $got"
		fail=1
	fi
done <"$2"
# An error must be reported, and must fail the program.
if "$bin" "1 +" 2>/dev/null; then
	echo "not ok $((n + 1)) - '1 +' did not fail"
	fail=1
else
	echo "ok $((n + 1)) - '1 +' fails"
fi
exit $fail
