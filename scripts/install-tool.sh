#!/usr/bin/env bash
# install-tool.sh NAME PACKAGE VERSION [GO-INSTALL-FLAGS...]
#
# Installs the Go command PACKAGE@VERSION as $GOBIN/NAME (GOBIN defaults to
# <repo>/bin), unless the binary already there was built from that module
# version. The check reads the build info the Go toolchain embeds in every
# binary (`go version -m`), so it needs no stamp files and notices a binary
# that was replaced or built at another version.
set -euo pipefail

if [[ $# -lt 3 ]]; then
	echo "usage: $0 NAME PACKAGE VERSION [GO-INSTALL-FLAGS...]" >&2
	exit 2
fi
name=$1 pkg=$2 version=$3
shift 3

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
gobin=${GOBIN:-$repo/bin}
bin=$gobin/$name

# installed_version prints the main module version embedded in $bin.
installed_version() {
	[[ -x $bin ]] || return 0
	go version -m "$bin" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'
}

have=$(installed_version)
if [[ $have == "$version" ]]; then
	exit 0
fi

if [[ -n $have ]]; then
	echo "tools: $name is $have, want $version: reinstalling"
else
	echo "tools: installing $name $version ($pkg)"
fi
start=$SECONDS
mkdir -p "$gobin"
GOBIN=$gobin go install "$@" "$pkg@$version"

have=$(installed_version)
if [[ $have != "$version" ]]; then
	echo "tools: $bin reports module version '${have:-?}' after installing $version" >&2
	exit 1
fi
echo "tools: $name $version installed in $((SECONDS - start))s"
