#!/usr/bin/env bash
# deps.sh: makes sure the machine has what the build and the tests need:
# ZooKeeper's jars (/usr/share/java/zookeeper.jar) and java (the tests and
# scripts/run.sh start real ZooKeeper servers), protoc, and Python's gRPC
# (the Python client's stubs and tests, with /usr/bin/python3).
#
# A machine that has them all is left alone, quickly and quietly. Otherwise
# it says what is missing and installs Debian's zookeeper and
# protobuf-compiler, Python's and Java's gRPC (and default-jdk-headless
# without javac), Curator, Kazoo, iproute2 and nftables, python3-venv and
# python3-wheel, Maven with the plugins clients/java uses, and nodejs and
# npm where missing, and curl, with apt-get, through
# sudo when not root.
set -euo pipefail

zk_jar=/usr/share/java/zookeeper.jar
missing=()
[[ -f $zk_jar ]] || missing+=("$zk_jar")
command -v java >/dev/null 2>&1 || missing+=(java)
command -v protoc >/dev/null 2>&1 || missing+=(protoc)
/usr/bin/python3 -c 'import grpc, grpc_tools, google.protobuf' >/dev/null 2>&1 || missing+=("python3 grpc")
command -v javac >/dev/null 2>&1 || missing+=(javac)
[[ -x /usr/bin/grpc_java_plugin && -f /usr/share/java/grpc-netty.jar && -f /usr/share/java/perfmark-api.jar && -f /usr/share/java/tomcat9-annotations-api.jar ]] ||
	missing+=("grpc-java")
# Curator and Kazoo, for the interop tests.
[[ -f /usr/share/java/curator-recipes.jar ]] || missing+=(curator)
/usr/bin/python3 -c 'import kazoo' >/dev/null 2>&1 || missing+=(kazoo)
# ip and nft, for the chaos run's network partitions.
command -v ip >/dev/null 2>&1 || missing+=(ip)
command -v nft >/dev/null 2>&1 || missing+=(nft)
# curl, for the HTTP/JSON tests.
command -v curl >/dev/null 2>&1 || missing+=(curl)
# venv and wheel: pip installs the Python client into a venv, offline.
/usr/bin/python3 -c 'import ensurepip, wheel' >/dev/null 2>&1 || missing+=("python3 venv/wheel")
# Maven and the plugins and test jars clients/java's pom uses, from
# Debian's repository (/usr/share/maven-repo).
maven_pkgs=(maven libmaven-resources-plugin-java libmaven-compiler-plugin-java libsurefire-java libmaven-jar-plugin-java
	libmaven-install-plugin-java libmaven-dependency-plugin-java libbuild-helper-maven-plugin-java junit4 libslf4j-java)
for p in "${maven_pkgs[@]}"; do
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
# node and npm: the Node.js client's tests and install check. Debian's only
# where they are missing (another build's npm would conflict with Debian's).
command -v node >/dev/null 2>&1 || missing+=(node)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi

# zookeeper brings the jars (and a JRE), protobuf-compiler protoc.
# Reinstalling a present package is a no-op, so name both.
pkgs=(zookeeper protobuf-compiler python3-grpcio python3-grpc-tools python3-protobuf
	protobuf-compiler-grpc-java-plugin libgrpc-java libprotobuf-java libperfmark-java libtomcat9-java
	libcurator-recipes-java python3-kazoo iproute2 nftables python3-venv python3-wheel curl
	"${maven_pkgs[@]}")
command -v javac >/dev/null 2>&1 || pkgs+=(default-jdk-headless)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
echo "deps: missing: ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: no apt-get here: install ${pkgs[*]} (or equivalents) by hand" >&2
	exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "deps: need root to install ${pkgs[*]}, and sudo is not installed" >&2
		exit 1
	fi
	sudo=(sudo)
fi

echo "deps: installing Debian packages: ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${pkgs[@]}" </dev/null

for f in "$zk_jar"; do
	[[ -f $f ]] || { echo "deps: $f still missing after installing ${pkgs[*]}" >&2; exit 1; }
done
for c in java javac protoc; do
	command -v "$c" >/dev/null 2>&1 || { echo "deps: $c still missing after installing ${pkgs[*]}" >&2; exit 1; }
done
/usr/bin/python3 -c 'import grpc, grpc_tools, google.protobuf' || { echo "deps: python3 grpc still missing after installing ${pkgs[*]}" >&2; exit 1; }
echo "deps: done"
