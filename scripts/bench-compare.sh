#!/usr/bin/env bash
# bench-compare.sh: what a change bought, measured in one run. It builds
# this tree's benchmarks (sidecar/bench_test.go) against the code of each
# revision given ("." is the working tree), runs them in BENCH_COUNT
# interleaved rounds (the revisions' order turns each round), and prints, per
# revision, each workload's ratio to the direct client of the same round
# (tools/benchratio).
#
#   scripts/bench-compare.sh REV [REV ...]
#
#   BENCH_COUNT  rounds (default 3)
#   BENCH_TIME   -benchtime of each side (default 1s)
#   BENCH        -bench pattern (default .)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ $# -eq 0 ]]; then
	echo "usage: scripts/bench-compare.sh REV [REV ...]" >&2
	exit 2
fi
count=${BENCH_COUNT:-3}
tmp=$(mktemp -d)
cleanup() {
	for d in "$tmp"/wt-*; do
		[[ -d $d ]] && git worktree remove --force "$d"
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

names=()
for rev in "$@"; do
	if [[ $rev == . ]]; then
		name=worktree
		dir=$PWD
	else
		name=$(git rev-parse --short "$rev")
		dir=$tmp/wt-$name
		git worktree add -q --detach "$dir" "$rev"
		cp sidecar/bench_test.go "$dir/sidecar/"
	fi
	(cd "$dir" && go test -c -o "$tmp/$name.test" ./sidecar)
	names+=("$name")
	: >"$tmp/$name.txt"
done

for round in $(seq 1 "$count"); do
	order=("${names[@]}")
	if ((round % 2 == 0)); then
		order=()
		for ((i = ${#names[@]} - 1; i >= 0; i--)); do order+=("${names[i]}"); done
	fi
	for name in "${order[@]}"; do
		first=direct
		if ((round % 2 == 0)); then first=sidecar; fi
		echo "# round $round of $count: $name, $first first"
		(cd sidecar && ZKLOCK_BENCH_FIRST=$first "$tmp/$name.test" -test.run '^$' \
			-test.bench "${BENCH:-.}" -test.benchtime "${BENCH_TIME:-1s}" -test.benchmem) >>"$tmp/$name.txt"
	done
done

for i in "${!names[@]}"; do
	echo
	echo "== ${names[i]} ($(git log -1 --format=%s "${@:i+1:1}" 2>/dev/null | cut -c1-72 || echo "working tree"))"
	go run ./tools/benchratio "$tmp/${names[i]}.txt"
done
