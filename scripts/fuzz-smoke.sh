#!/usr/bin/env bash
# fuzz-smoke: run every native fuzz target of the module for FUZZTIME each.
#
# Each run's output goes to a log that is printed whenever the run fails, so
# CI always shows why. A finding always fails: the fuzzer wrote a failing
# input under testdata/fuzz/ (printed here, with the command that re-runs it),
# or the log shows a panic or a test failure. One failure is not ours: Go's
# fuzzing engine can end a time-bounded run with a bare "context deadline
# exceeded" when -fuzztime expires while a starved worker is mid-call
# (golang/go#75804, golang/go#56238) — no input written, nothing failed.
# That case is reported loudly and the target is run once more; a second
# failure of any kind fails the gate.
set -uo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3s}
PKGS=${PKGS:-./...}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
flakes=0

# run PKG TARGET: 0 pass, 1 finding or unknown failure, 2 engine deadline flake.
run() {
	local pkg=$1 fz=$2 dir before after
	dir=$("$GO" list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$fz
	before=$(ls "$dir" 2>/dev/null | sort)
	if "$GO" test -run '^$' -fuzz "^$fz\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
		return 0
	fi
	after=$(ls "$dir" 2>/dev/null | sort)
	cat "$log"
	local new
	new=$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)
	if [ -n "$new" ]; then
		for f in $new; do
			echo "== failing input $dir/$f:"
			cat "$dir/$f"
			echo "== re-run: $GO test -run '^$fz/$f\$' $pkg"
		done
		return 1
	fi
	if grep -q 'context deadline exceeded' "$log" &&
		! grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
		return 2
	fi
	return 1
}

for pkg in $("$GO" list $PKGS); do
	for fz in $("$GO" test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		echo "fuzz $pkg $fz ($FUZZTIME)"
		run "$pkg" "$fz"
		rc=$?
		if [ $rc -eq 2 ]; then
			flakes=$((flakes + 1))
			echo "!! $fz: Go's fuzzing engine ended the run with a bare 'context deadline exceeded'"
			echo "!! (no failing input, no test failure: golang/go#75804); running it once more"
			run "$pkg" "$fz"
			rc=$?
		fi
		if [ $rc -ne 0 ]; then
			echo "FAIL: fuzz target $pkg $fz"
			exit 1
		fi
	done
done
echo "fuzz-smoke: every target passed ($flakes engine deadline flake(s) re-run)"
