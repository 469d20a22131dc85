#!/usr/bin/env bash
# check-generated.sh: fails when the generated code in the tree is not what
# `make generate` writes from api/ with the pinned tools.
#
# It snapshots api/, clients/ and internal/gateway/, regenerates, and compares. This works the same in a
# fresh clone (where the snapshot is the committed code) and in a working tree
# with uncommitted changes or no .git at all. The regenerated files are left
# in place, so after a failure the fix is to commit what is there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Generated code lives in api/ (Go), clients/ (Python, Java) and
# internal/gateway/ (the HTTP/JSON gateway's Go).
dirs=(api clients internal/gateway)

snap=$(mktemp -d)
trap 'rm -rf "$snap"' EXIT
for dir in "${dirs[@]}"; do
	mkdir -p "$snap/before/$(dirname "$dir")"
	cp -a "$dir" "$snap/before/$dir"
done

${MAKE:-make} --no-print-directory -s generate

stale=0
for dir in "${dirs[@]}"; do
	if diff -r -q "$snap/before/$dir" "$dir" >"$snap/changes"; then
		continue
	fi
	stale=1
	echo "generated code is out of date: 'make generate' changed these files:" >&2
	sed -E \
		-e "s|^Files $snap/before/.* and (.*) differ\$|  changed: \\1|" \
		-e "s|^Only in $snap/before/(.*): (.*)\$|  removed: \\1/\\2|" \
		-e "s|^Only in (.*): (.*)\$|  new:     \\1/\\2|" \
		"$snap/changes" >&2
	echo "--- diff (first 200 lines) ---" >&2
	diff -ru "$snap/before/$dir" "$dir" | sed -e "s|$snap/before/$dir|$dir (before)|g" | head -n 200 >&2 || true
done
if [[ $stale -eq 0 ]]; then
	echo "generated code is up to date"
	exit 0
fi
echo "run 'make generate' and commit the result" >&2
exit 1
