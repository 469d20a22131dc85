#!/usr/bin/env bash
# build.sh OUT: compiles the generated stubs, the client, its e2e check and
# the interop contender (src/test) into OUT with javac against Debian's jars, and prints the class
# path to run them with: java -cp "$(build.sh OUT)" io.zklock.ZkLockClientE2E
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build.sh OUTDIR}
j=/usr/share/java
compile=$j/grpc-api.jar:$j/grpc-stub.jar:$j/grpc-protobuf.jar:$j/grpc-context.jar:$j/protobuf.jar:$j/guava.jar:$j/tomcat9-annotations-api.jar
# Curator, for the interop contender in src/test.
compile=$compile:$j/curator-framework.jar:$j/curator-client.jar:$j/curator-recipes.jar:$j/zookeeper.jar
runtime=$compile:$j/grpc-core.jar:$j/grpc-netty.jar:$j/grpc-protobuf-lite.jar:$j/perfmark-api.jar:$j/zookeeper-jute.jar:$j/slf4j-api.jar:$j/slf4j-nop.jar
for n in buffer codec codec-http codec-http2 codec-socks common handler handler-proxy resolver transport transport-native-unix-common; do
	runtime=$runtime:$j/netty-$n.jar
done
mkdir -p "$out"
find "$here/gen" "$here/src" -name '*.java' >"$out/sources.txt"
javac -nowarn --release 17 -encoding UTF-8 -d "$out" -cp "$compile" @"$out/sources.txt" >&2
echo "$out:$runtime"
