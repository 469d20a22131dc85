#!/usr/bin/env bash
# bench.sh: compares lock cycles through the sidecar with the same cycles by
# Go programs embedding go-zookeeper (sidecar/bench_test.go), in BENCH_COUNT
# rounds, then prints per workload the sidecar's result over the direct
# client's of the same round: the median across rounds and their range
# (tools/benchratio). Odd rounds run each workload's direct side first, even
# rounds its sidecar side first. Then it measures the resident memory of
# 10,000 waiters, the release-to-grant latency through them and ZooKeeper's
# watches (e2e BenchmarkWaitersMemory, once). docs/performance.md says more.
#
#   BENCH_COUNT  rounds (default 5)
#   BENCH_TIME   -benchtime of each side in each round (default 1s)
#   BENCH        -bench pattern for ./sidecar (default .)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bin
out=bin/bench.txt
count=${BENCH_COUNT:-5}
: >"$out"
go test -c -o bin/sidecar-bench.test ./sidecar
for round in $(seq 1 "$count"); do
	first=direct
	if ((round % 2 == 0)); then first=sidecar; fi
	echo "# round $round of $count, $first first" | tee -a "$out"
	# A test binary runs in its package's directory, as go test runs it.
	(cd sidecar && ZKLOCK_BENCH_FIRST=$first ../bin/sidecar-bench.test -test.run '^$' \
		-test.bench "${BENCH:-.}" -test.benchtime "${BENCH_TIME:-1s}" -test.benchmem) | tee -a "$out"
done
go test -run '^$' -bench WaitersMemory -benchtime 1x ./e2e | tee -a "$out"
echo
echo "the sidecar's result over the direct client's in the same round: median (range):"
go run ./tools/benchratio "$out"
