#!/usr/bin/env bash
# fuzz.sh: runs every fuzz target of the module (each `func FuzzX(f
# *testing.F)` in a _test.go file) for FUZZTIME (default 60s), one target
# at a time, and prints one line per target:
#
#   ok   ./sidecar FuzzRequests (63s)
#   FAIL ./zkrecipes FuzzX (4s)        followed by go test's output
#
# A failing input is saved by go test under the package's
# testdata/fuzz/FuzzX/, where plain `go test` replays it from then on.
# Exit status: 1 if a target failed or none was found, else 0.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime=${FUZZTIME:-60s}
mkdir -p bin
out=bin/fuzz.log

# "dir name" lines, sorted, for every fuzz target outside build outputs,
# hidden directories, testdata and vendor.
targets=$(find . \( -name bin -o -name testdata -o -name vendor -o -name node_modules -o -name '.?*' \) -prune \
	-o -type f -name '*_test.go' -print |
	xargs -r grep -HoE '^func Fuzz[A-Za-z0-9_]*\(' |
	sed -E 's#^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#./\1 \2#; s#^\./[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#. \1#' |
	sort -u)
if [[ -z $targets ]]; then
	echo "fuzz.sh: no fuzz target found" >&2
	exit 1
fi

failed=0
while read -r dir name; do
	start=$SECONDS
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$dir" >"$out" 2>&1; then
		echo "ok   $dir $name ($((SECONDS - start))s)"
	else
		echo "FAIL $dir $name ($((SECONDS - start))s)"
		sed 's/^/    /' "$out"
		failed=1
	fi
done <<<"$targets"
exit "$failed"
