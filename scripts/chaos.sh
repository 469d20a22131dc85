#!/usr/bin/env bash
# chaos.sh: what `make chaos` and `make chaos-control` run.
#
#   scripts/chaos.sh            the chaos run (e2e TestChaos) for $CHAOS_DURATION
#   scripts/chaos.sh control    its negative control (e2e TestChaosNegativeControl)
#
# The run needs root (network namespaces and nftables for the partitions).
# It prints the run's own log lines (faults, records, violations), keeps go
# test's full output in bin/chaos.log and each zklockd's in bin/chaos-logs/,
# and ends with the summary line
#   chaos: <ops> ops, <faults> faults, <wipes> ensemble wipes, <n> of <m> partitions, pauses and handoff cuts cost a holder its lease, <violations> violations, <orphans> orphans, max regrant <ms> ms, <s> semaphore grants, <r> re-entries
# (the control prints two: its unsafe run's, then its safe run's).
# Exit status: go test's (non-zero when a violation or an orphan was found,
# or, for the control, when the unsafe run did not find the double grant or
# the safe run found anything).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bin
log=bin/chaos.log
summary=$PWD/bin/chaos-summary.txt
logs=$PWD/bin/chaos-logs
rm -rf "$summary" "$logs"

test=TestChaos
if [[ ${1:-} == control ]]; then
	test=TestChaosNegativeControl
fi
duration=${CHAOS_DURATION:-3m}
echo "==> $test (faults for $duration, seed ${ZKLOCK_CHAOS_SEED:-random}); full output in $log"

set +e
ZKLOCK_CHAOS_DURATION=$duration ZKLOCK_CHAOS_SUMMARY=$summary ZKLOCK_CHAOS_LOGS=$logs \
	go test -race -count=1 -timeout 30m -v -run "^$test\$" ./e2e >"$log" 2>&1
rc=$?
set -e
grep -E '^\s+chaos_[a-z_]+\.go:[0-9]+: ' "$log" | sed -E 's/^\s+chaos_[a-z_]+\.go:[0-9]+: /  /' || true
if [[ $rc -ne 0 ]]; then
	echo "==> $test failed (exit $rc); the end of $log:"
	tail -n 40 "$log"
fi
if [[ -s $summary ]]; then
	cat "$summary"
else
	echo "chaos: no summary line (the run did not finish; see $log)"
	[[ $rc -ne 0 ]] || rc=1
fi
exit "$rc"
