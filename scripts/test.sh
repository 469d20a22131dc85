#!/usr/bin/env bash
# test.sh: what `make test` runs (the Makefile has installed the system
# packages and the code generators first).
#
#   1. go vet over the three modules of go.work
#   2. buf lint
#   3. the generated code is up to date (scripts/check-generated.sh)
#   4. every fuzz target for 3s (scripts/fuzz.sh)
#   5. the Helm chart and the Dockerfile's build (scripts/check-chart.sh;
#      the Makefile has installed bin/helm)
#   6. go test -race -count=1 -v over $GO_TEST_PKGS, its output in the
#      terminal and in bin/test.log
#
# A failing check does not stop the tests: every step runs and reports. The
# output ends with two lines, the second in the form
#   N passed, N failed, N skipped
# counting the "--- PASS:", "--- FAIL:" and "--- SKIP:" lines of go test -v
# (tests and subtests). That line is also written to bin/test-summary.txt.
#
# Exit status: go test's when it failed, else 1 when a check failed, else 0.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p bin
log=bin/test.log
summary=bin/test-summary.txt
rm -f "$log" "$summary"

# The three modules of the go.work: the daemon's, the API's and the Go client's.
all_pkgs="./... ./api/... ./clients/go/..."
pkgs=${GO_TEST_PKGS:-$all_pkgs}
timeout=${GO_TEST_TIMEOUT:-15m}
read -r -a extra <<<"${GO_TEST_FLAGS:-}"

failed_checks=()
check() {
	local name=$1
	shift
	echo "==> $name"
	local start=$SECONDS
	if "$@"; then
		echo "==> $name: ok ($((SECONDS - start))s)"
	else
		echo "==> $name: FAILED ($((SECONDS - start))s)"
		failed_checks+=("$name")
	fi
}

read -r -a vet_args <<<"$all_pkgs"
check "go vet" go vet "${vet_args[@]}"
check "buf lint" buf lint
check "generated code" scripts/check-generated.sh
check "fuzz (3s each)" env FUZZTIME=3s scripts/fuzz.sh
check "chart" scripts/check-chart.sh

read -r -a pkg_args <<<"$pkgs"
cmd=(go test -v -race -count=1 -timeout "$timeout" "${extra[@]}" "${pkg_args[@]}")
echo "==> ${cmd[*]}"
start=$SECONDS
set +e
"${cmd[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
elapsed=$((SECONDS - start))

count() { grep -cE "$1" "$log" || true; }
passed=$(count '^[[:space:]]*--- PASS: ')
failed=$(count '^[[:space:]]*--- FAIL: ')
skipped=$(count '^[[:space:]]*--- SKIP: ')
pkg_ok=$(count '^ok[[:space:]]')
pkg_fail=$(count '^FAIL[[:space:]]')
pkg_none=$(count '^\?[[:space:]].*\[no test files\]')

echo
echo "==> go test exited $rc after ${elapsed}s: packages: $pkg_ok ok, $pkg_fail FAIL, $pkg_none without tests"
if [[ $rc -ne 0 && $failed -eq 0 ]]; then
	# A build failure, a panic or the -timeout fails a package without any
	# "--- FAIL:" line: count each failed package (at least one) as a failure
	# so the summary never reads "0 failed" for a failing run.
	failed=$((pkg_fail > 0 ? pkg_fail : 1))
	echo "==> go test failed without a --- FAIL line (build failure, panic or timeout? see above): counting $failed failed package(s)"
fi
if [[ ${#failed_checks[@]} -gt 0 ]]; then
	echo "==> make test: FAIL: checks failed: $(IFS=,; echo "${failed_checks[*]}")"
elif [[ $rc -ne 0 ]]; then
	echo "==> make test: FAIL"
else
	echo "==> make test: PASS"
fi
line="$passed passed, $failed failed, $skipped skipped"
echo "$line" >"$summary"
echo "$line"

if [[ $rc -ne 0 ]]; then
	exit "$rc"
fi
if [[ ${#failed_checks[@]} -gt 0 ]]; then
	exit 1
fi
exit 0
