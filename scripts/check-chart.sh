#!/usr/bin/env bash
# check-chart.sh: what `make chart` runs, and `make test` as its "chart"
# check. Needs helm in bin/ (make tool-helm) and go; builds bin/kubecheck
# and bin/alertdoc (tools/kubecheck, a module of its own) itself.
#
#   1. helm lint --strict charts/zklock, with the default values and with
#      each charts/zklock/ci/*-values.yaml
#   2. helm template with the default values (must render nothing), with each
#      ci values file, and an app chart that includes the named templates
#      (tools/chart-test/app); kubecheck validates every rendered document
#      against the Kubernetes API types and the Prometheus Operator's,
#      offline (PromQL parsed), and that each Service, ServiceMonitor and
#      PodMonitor selects what it should scrape (-targets); the
#      PrometheusRule's alerts are those of docs/operations.md's table
#      (alertdoc)
#   3. values that cannot work must fail the render, each with its message;
#      each probe type renders what it should (the health port only for grpc);
#      http.enabled renders --http-listen where listen puts gRPC (off by
#      default)
#   4. kubecheck must reject broken manifests (an unknown field, a wrong
#      type, a mount of a volume that is not there, an unknown field in a
#      ServiceMonitor, PromQL that does not parse, a ServiceMonitor that
#      selects no Service), and alertdoc a rule that differs from the
#      table: the validation can fail
#   5. the Dockerfile: the layer before `go mod download` copies go.work
#      and the go.mod and go.sum of every module it uses; its go build
#      commands, run in a copy of the build context that .dockerignore
#      leaves, give static binaries (zklockd, healthprobe, the zklock CLI),
#      and zklockd and zklock report the version they were given
#   6. zklockd from step 5 runs with the exact flags each rendered example
#      gives it (TLS and credential files made up for it, ZooKeeper down),
#      and the rendered probe reaches it and reports NOT_SERVING: an exec
#      probe's command as rendered, a grpc probe as the kubelet dials it
#      (healthprobe, plaintext, to the probe's port, which must be the
#      containerPort named health that --health-listen binds); grpcurl, when
#      there is one, finds no LockService on the health port; with metrics
#      on, zklockd's /metrics is scraped, and every metric the alerts read
#      (but kube-state-metrics') must be in a scrape; with --http-listen,
#      curl reaches the gateway there (TLS and client certificate as
#      rendered, or the socket, with --socket-mode's mode) and GET
#      /v1/locks/x answers zklockd's 503 UNAVAILABLE NO_SESSION in JSON
#
# Prints one line per check; exits 1 if any failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
chart=charts/zklock
helm=${HELM:-bin/helm}
kubecheck=bin/kubecheck
alertdoc=bin/alertdoc
# grpcurl (make tool-grpcurl) is optional: without it the health port's
# refusal of the lock API is left to cmd/zklockd's tests.
grpcurl=${GRPCURL:-bin/grpcurl}
[[ -x $grpcurl ]] || grpcurl=$(command -v grpcurl || true)
# curl (deps.sh installs it) reaches the rendered HTTP/JSON listeners.
curl=$(command -v curl || true)

[[ -x $helm ]] || { echo "check-chart: $helm not found: run 'make tool-helm'" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

failed=0
ok() { echo "ok   $*"; }
fail() {
	echo "FAIL $*"
	failed=1
}

start=$SECONDS
# tools/kubecheck is a module of its own, outside go.work.
(cd tools/kubecheck && GOWORK=off go build -o "$repo/$kubecheck" . && GOWORK=off go build -o "$repo/$alertdoc" ./alertdoc)
echo "     built $kubecheck and $alertdoc ($((SECONDS - start))s)"

values=("$chart"/ci/*-values.yaml)

# ---- 1. lint -------------------------------------------------------------------

for v in "" "${values[@]}"; do
	args=()
	[[ -n $v ]] && args=(-f "$v")
	if out=$("$helm" lint --strict "$chart" "${args[@]}" 2>&1); then
		ok "helm lint --strict ${v:-(default values)}"
	else
		fail "helm lint --strict ${v:-(default values)}"
		echo "$out" | sed 's/^/    /'
	fi
done

# ---- 2. render and validate ------------------------------------------------

# validate NAME [kubecheck flags] < manifests
validate() {
	local name=$1 out
	shift
	if out=$("$kubecheck" -targets "$@" 2>&1); then
		ok "$name: ${out#kubecheck: }"
	else
		fail "$name"
		echo "$out" | sed 's/^/    /'
	fi
}

# render FILE [helm template args...]: renders the chart into FILE.
render() {
	local file=$1
	shift
	"$helm" template zklock "$chart" "$@" >"$file" 2>"$file.err" || {
		sed 's/^/    /' "$file.err"
		return 1
	}
}

if render "$tmp/default.yaml"; then
	if [[ -n $(grep -v -e '^---$' -e '^#' -e '^[[:space:]]*$' "$tmp/default.yaml") ]]; then
		fail "helm template (default values) renders objects; it must render nothing"
		sed 's/^/    /' "$tmp/default.yaml"
	else
		validate "helm template (default values) | kubecheck -allow-empty" -allow-empty <"$tmp/default.yaml"
	fi
else
	fail "helm template (default values)"
fi

if render "$tmp/set-example.yaml" --set example.enabled=true; then
	validate "helm template --set example.enabled=true | kubecheck" <"$tmp/set-example.yaml"
else
	fail "helm template --set example.enabled=true"
fi

for v in "${values[@]}"; do
	name=$(basename "$v" .yaml)
	if render "$tmp/$name.yaml" -f "$v"; then
		validate "helm template -f $v | kubecheck" <"$tmp/$name.yaml"
	else
		fail "helm template -f $v"
	fi
done

# An app chart that includes the named templates, with this chart as its
# dependency (copied into its charts/, as `helm dependency build` would).
cp -r tools/chart-test/app "$tmp/app"
mkdir -p "$tmp/app/charts"
cp -r "$chart" "$tmp/app/charts/zklock"
for set in "" "zklock.nativeSidecar=false,zklock.listen.mode=tcp"; do
	args=()
	[[ -n $set ]] && args=(--set "$set")
	if "$helm" template billing "$tmp/app" "${args[@]}" >"$tmp/app.yaml" 2>"$tmp/app.err"; then
		validate "app chart tools/chart-test/app ${set:+--set $set }| kubecheck" <"$tmp/app.yaml"
	else
		fail "helm template tools/chart-test/app ${set:+--set $set}"
		sed 's/^/    /' "$tmp/app.err"
	fi
done

# The PrometheusRule has exactly the alerts of docs/operations.md's table: a
# release of this chart with the rules alone renders that object alone, and
# the monitoring example renders the same rules.
alerts_doc=docs/operations.md
# check_alerts NAME FILE: alertdoc compares FILE's PrometheusRule with the table.
check_alerts() {
	local out
	if out=$("$alertdoc" -doc "$alerts_doc" <"$2" 2>&1); then
		ok "$1: ${out#alertdoc: }"
	else
		fail "$1: the PrometheusRule differs from $alerts_doc:"
		echo "$out" | sed 's/^/    /'
	fi
}
if render "$tmp/rules.yaml" --set metrics.prometheusRule.enabled=true; then
	kinds=$(grep '^kind:' "$tmp/rules.yaml" | tr '\n' ' ')
	if [[ $kinds == "kind: PrometheusRule " ]]; then
		validate "helm template --set metrics.prometheusRule.enabled=true (the PrometheusRule alone) | kubecheck" <"$tmp/rules.yaml"
	else
		fail "helm template --set metrics.prometheusRule.enabled=true renders $kinds; want the PrometheusRule alone"
	fi
	check_alerts "helm template --set metrics.prometheusRule.enabled=true | alertdoc" "$tmp/rules.yaml"
else
	fail "helm template --set metrics.prometheusRule.enabled=true"
fi
check_alerts "helm template -f $chart/ci/monitoring-values.yaml | alertdoc" "$tmp/monitoring-values.yaml"

# ---- 3. values that must fail the render -------------------------------------

# must_fail MESSAGE HELM-TEMPLATE-ARGS...: the render fails and says MESSAGE.
must_fail() {
	local want=$1 out
	shift
	if out=$("$helm" template zklock "$chart" --set example.enabled=true "$@" 2>&1); then
		fail "helm template $* rendered; it must fail with: $want"
	elif [[ $out != *"$want"* ]]; then
		fail "helm template $* failed without saying: $want"
		echo "$out" | sed 's/^/    /'
	else
		ok "helm template $* fails: $want"
	fi
}
must_fail "health.port and listen.port are both 7878" --set health.port=7878
must_fail "health.port and metrics.port are both 9464" --set metrics.enabled=true,health.port=9464
must_fail "/health/port" --set health.port=0
must_fail "value must be one of 'grpc', 'exec', 'none'" --set probes.type=http
must_fail "refuses TLS on a unix socket" --set listen.mode=unix,tls.enabled=true,tls.secretName=s
must_fail "tls.enabled needs tls.secretName" --set tls.enabled=true
must_fail "tls.clientCA.enabled needs tls.enabled" --set tls.clientCA.enabled=true
must_fail "must be at least 20" --set preStopSleepSeconds=10,shutdownTimeout=5s,example.terminationGracePeriodSeconds=19
must_fail "nativeSidecar needs Kubernetes 1.29" --set nativeSidecar=true --kube-version 1.28.0
must_fail "metrics.port and listen.port are both 7878" --set metrics.enabled=true,metrics.port=7878
must_fail "value must be one of 'tcp', 'unix'" --set listen.mode=udp
must_fail "additional properties 'conect' not allowed" --set zookeeper.conect=zk:2181
must_fail "/socketMode" --set-string listen.socketMode=0999
must_fail "metrics.podMonitor.enabled need metrics.enabled" --set metrics.serviceMonitor.enabled=true
must_fail "need metrics.podSelector" --set example.enabled=false,metrics.enabled=true,metrics.podMonitor.enabled=true
must_fail "are both true: enable one" --set metrics.enabled=true,metrics.serviceMonitor.enabled=true,metrics.podMonitor.enabled=true
must_fail "/metrics/serviceMonitor/interval" --set "metrics.serviceMonitor.interval=30 s"
must_fail "http.port and listen.port are both 7878" --set http.enabled=true,http.port=7878
must_fail "http.port and health.port are both 7879" --set http.enabled=true,http.port=7879
must_fail "http.port and metrics.port are both 9464" --set http.enabled=true,metrics.enabled=true,http.port=9464
must_fail 'http.socketName and listen.socketName are both "zklockd.sock"' --set http.enabled=true,listen.mode=unix,http.socketName=zklockd.sock
must_fail "refuses TLS on a unix socket" --set http.enabled=true,listen.mode=unix,tls.enabled=true,tls.secretName=s
must_fail "/http/port" --set http.enabled=true,http.port=0
must_fail "/http/socketName" --set http.socketName=a/b
must_fail "additional properties 'adress' not allowed" --set http.adress=0.0.0.0

# container NAME FILE: the lines of container NAME's spec in FILE.
container() {
	awk -v name="$1" '
		function indent(s) { match(s, /^ */); return RLENGTH }
		!in_c && $0 ~ "^ *- name: " name "$" { in_c = 1; c_indent = indent($0); print; next }
		in_c && !/^ *$/ && indent($0) <= c_indent { exit }
		in_c { print }' "$2"
}

# grpc_probe_ports: the port of each grpc: probe handler in a container spec.
grpc_probe_ports() { awk '/^ *grpc:$/ { g = 1; next } g && /^ *port:/ { print $2; g = 0 }'; }

# health_container_port: the containerPort named health in a container spec.
health_container_port() { awk '/^ *- name: health$/ { h = 1; next } h && /containerPort:/ { print $2; exit }'; }

# The probe types: grpc (the default) puts health, and health alone, on a
# port of its own whatever the listener (here a unix socket under mTLS
# would be refused, so a socket and a TLS TCP listener apart); exec and none
# put nothing on the pod network.
for set in "" "listen.mode=unix" "tls.enabled=true,tls.secretName=s,tls.clientCA.enabled=true,health.port=8081"; do
	if render "$tmp/probes.yaml" --set example.enabled=true ${set:+--set "$set"}; then
		c=$(container zklockd "$tmp/probes.yaml")
		port=${set##*health.port=}
		[[ $port == "$set" ]] && port=7879
		if [[ $c == *"\"--health-listen=0.0.0.0:$port\""* && $(health_container_port <<<"$c") == "$port" &&
			$(grpc_probe_ports <<<"$c" | sort -u) == "$port" && $(grpc_probe_ports <<<"$c" | wc -l) -eq 2 && $c != *"exec:"* ]]; then
			ok "probes.type=grpc${set:+ with $set}: --health-listen=0.0.0.0:$port, containerPort health $port, liveness and readiness grpc: {port: $port}"
		else
			fail "probes.type=grpc${set:+ with $set}: want --health-listen=0.0.0.0:$port, containerPort health $port and two grpc probes on it:"
			echo "$c" | sed 's/^/    /'
		fi
	else
		fail "helm template --set example.enabled=true${set:+,$set}"
	fi
done
for type in exec none; do
	if render "$tmp/probes.yaml" --set example.enabled=true,probes.type=$type; then
		c=$(container zklockd "$tmp/probes.yaml")
		n=$(grep -c -e '--health-listen' -e '- name: health$' -e 'grpc:' <<<"$c" || true)
		probes=$(grep -c -e 'livenessProbe:' -e 'readinessProbe:' <<<"$c" || true)
		want=2
		[[ $type == none ]] && want=0
		if [[ $n -eq 0 && $probes -eq $want ]]; then
			ok "probes.type=$type: no health listener or port, $probes probes"
		else
			fail "probes.type=$type: want no --health-listen, health port or grpc probe, and $want probes:"
			echo "$c" | sed 's/^/    /'
		fi
	else
		fail "helm template --set example.enabled=true,probes.type=$type"
	fi
done

# http.enabled: --http-listen where listen puts the lock API (its address,
# or a socket beside the gRPC one, in the directory both containers mount),
# a containerPort named http only when the pod IP reaches it; neither by
# default.
# http_case SETS WANT-FLAG WANT-PORT: WANT-PORT empty: no containerPort http.
http_case() {
	local set=$1 want=$2 port=$3 c got gotport says
	if ! render "$tmp/http.yaml" --set example.enabled=true ${set:+--set "$set"}; then
		fail "helm template --set example.enabled=true${set:+,$set}"
		return
	fi
	c=$(container zklockd "$tmp/http.yaml")
	got=$(grep -o -- '"--http-listen=[^"]*"' <<<"$c" | tr -d '"' || true)
	gotport=$(awk '/^ *- name: http$/ { h = 1; next } h && /containerPort:/ { print $2; exit }' <<<"$c")
	says="${want:-no --http-listen}, containerPort http ${port:-none}"
	if [[ $got == "$want" && $gotport == "$port" ]]; then
		ok "${set:-(default values)}: $says"
	else
		fail "${set:-(default values)}: want $says; got ${got:-no --http-listen}, containerPort http ${gotport:-none}:"
		echo "$c" | sed 's/^/    /'
	fi
}
http_case "" "" ""
http_case "http.enabled=true" "--http-listen=127.0.0.1:7880" ""
http_case "http.enabled=true,http.port=8080,listen.address=0.0.0.0,tls.enabled=true,tls.secretName=s" "--http-listen=0.0.0.0:8080" "8080"
http_case "http.enabled=true,listen.mode=unix,listen.socketDir=/run/z/" "--http-listen=unix:///run/z/zklockd-http.sock" ""
# ---- 4. kubecheck must reject broken manifests --------------------------------

# must_reject NAME MESSAGE < manifests
must_reject() {
	local name=$1 want=$2 out
	if out=$("$kubecheck" -targets 2>&1); then
		fail "kubecheck accepted $name"
	elif [[ $out != *"$want"* ]]; then
		fail "kubecheck rejected $name without saying: $want"
		echo "$out" | sed 's/^/    /'
	else
		ok "kubecheck rejects $name: $want"
	fi
}
ex=$tmp/set-example.yaml
sed '0,/imagePullPolicy:/s//imagePullPolicyy:/' "$ex" |
	must_reject "an unknown field" 'unknown field "spec.template.spec.containers[0].imagePullPolicyy"'
sed 's/^  replicas: 2$/  replicas: two/' "$ex" |
	must_reject "a string for replicas" 'cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32'
sed 's/^\( *- name: \)zklock-socket$/\1zklock-sockets/' "$tmp/unix-values.yaml" | sed '0,/zklock-sockets/s//zklock-socket/' |
	must_reject "a mount of a volume that is not there" 'volumeMounts[0].name: Not found: "zklock-socket"'
mon=$tmp/monitoring-values.yaml
sed 's/^\( *\)scrapeTimeout:/\1scrapeTimout:/' "$mon" |
	must_reject "an unknown field in a ServiceMonitor" 'unknown field "spec.endpoints[0].scrapeTimout"'
sed 's/^      app.kubernetes.io\/component: metrics$/      app.kubernetes.io\/component: metric/' "$mon" |
	must_reject "a ServiceMonitor that selects no Service" 'ServiceMonitor/zklock-metrics: selector selects no Service of the input'
sed 's/\[10m\]) > 5/[10m] > 5/' "$mon" |
	must_reject "PromQL that does not parse" 'rules[4].expr: Invalid value: "increase(zklock_zookeeper_reconnects_total[10m] > 5": PromQL: '
sed 's/^\(  *severity:\) critical$/\1 warning/' "$tmp/rules.yaml" >"$tmp/rules-changed.yaml"
if out=$("$alertdoc" -doc "$alerts_doc" <"$tmp/rules-changed.yaml" 2>&1); then
	fail "alertdoc accepted a PrometheusRule whose severities differ from $alerts_doc"
elif [[ $out != *'ZklockNoSession: severity: table "critical", PrometheusRule "warning"'* ]]; then
	fail "alertdoc rejected changed severities without naming ZklockNoSession's:"
	echo "$out" | sed 's/^/    /'
else
	ok "alertdoc rejects a rule whose severity differs from the table: ZklockNoSession: severity: table \"critical\", PrometheusRule \"warning\""
fi

# ---- 5. the Dockerfile's build --------------------------------------------------

# The build context: the tree less what .dockerignore names (plain paths and
# * globs, matched from the top as docker does).
ctx=$tmp/context
mkdir -p "$ctx"
excludes=()
while IFS= read -r line; do
	line=${line%%#*}
	line=${line%"${line##*[![:space:]]}"}
	[[ -z $line ]] && continue
	if [[ $line == *'!'* || $line == *'**'* ]]; then
		fail ".dockerignore: '$line' is beyond what this check copies (no ! or **)"
		continue
	fi
	excludes+=("--exclude=./${line#/}")
done <.dockerignore
tar -C "$repo" --anchored --no-wildcards-match-slash "${excludes[@]}" -cf - . | tar -C "$ctx" -xf -

# The files the COPY lines before `go mod download` copy (FROM's context,
# not --from), each with the directory it lands in: go.work, and go.mod and
# go.sum of each module go.work uses, each in its own directory.
mapfile -t copied < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile | awk '
	/^RUN .*go mod download/ { exit }
	/^COPY / && !/--from/ {
		dest = $NF; sub(/^\.\//, "", dest); sub(/\/$/, "", dest); if (dest == ".") dest = ""
		for (i = 2; i < NF; i++) print $i "\t" dest
	}')
want_files=(go.work)
[[ -f go.work.sum ]] && want_files+=(go.work.sum)
while read -r dir; do
	dir=${dir#./}
	dir=${dir%/}
	[[ $dir == . || -z $dir ]] && dir=
	want_files+=("${dir:+$dir/}go.mod" "${dir:+$dir/}go.sum")
done < <(GOWORK= go work edit -json | awk -F'"' '/"DiskPath"/ { print $4 }')
missing=()
for f in "${want_files[@]}"; do
	d=$(dirname "$f")
	[[ $d == . ]] && d=
	printf '%s\n' "${copied[@]}" | grep -qxF "$f"$'\t'"$d" || missing+=("$f")
done
if ((${#missing[@]})); then
	fail "Dockerfile: the COPY lines before 'go mod download' miss ${missing[*]} (each to its own directory); go.work uses: $(GOWORK= go work edit -json | awk -F'"' '/"DiskPath"/ { printf "%s ", $4 }')"
else
	ok "Dockerfile: the layer before 'go mod download' copies ${want_files[*]}"
fi

# The RUN lines with `go build`, continuation lines joined.
mapfile -t builds < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' Dockerfile | grep -E '^RUN .*go build' | sed -E 's/^RUN( +--mount=[^ ]+)* +//')
version=check-chart-$$
out=$tmp/out
start=$SECONDS
if [[ ${#builds[@]} -ne 3 ]]; then
	fail "Dockerfile: expected 3 RUN go build lines (zklockd, healthprobe, zklock), found ${#builds[@]}"
else
	for cmd in "${builds[@]}"; do
		cmd=${cmd#"${cmd%%[![:space:]]*}"}
		if (cd "$ctx" && env -u GOFLAGS VERSION="$version" TARGETOS=linux TARGETARCH="$(go env GOARCH)" bash -c "${cmd//\/out\//$out\/}") >"$tmp/build.log" 2>&1; then
			ok "Dockerfile: $cmd"
		else
			fail "Dockerfile: $cmd"
			sed 's/^/    /' "$tmp/build.log"
		fi
	done
fi
echo "     Dockerfile builds took $((SECONDS - start))s"
for b in zklockd healthprobe zklock; do
	[[ -x $out/$b ]] || { fail "Dockerfile: no $b built"; continue; }
	# ldd (libc-bin, on every Debian) refuses a static binary; file, when
	# installed, says so too.
	lddout=$(ldd "$out/$b" 2>&1 || true)
	cgo=$(go version -m "$out/$b" | awk '$2 == "CGO_ENABLED=0" { print "CGO_ENABLED=0" }')
	desc=
	command -v file >/dev/null 2>&1 && desc=$(file -b "$out/$b")
	if [[ $lddout == *"not a dynamic executable"* && $cgo == CGO_ENABLED=0 && ( -z $desc || $desc == *"statically linked"* ) ]]; then
		ok "$b is static: ldd: ${lddout//$'\t'/}; $cgo${desc:+; file: ${desc%%, Go BuildID*}}"
	else
		fail "$b is not static: ldd: $lddout; ${cgo:-cgo on}; file: ${desc:-?}"
	fi
done
for b in zklockd zklock; do
	[[ -x $out/$b ]] || continue
	got=$("$out/$b" --version 2>&1 || true)
	if [[ $got == *"$version"* ]]; then
		ok "$b --version: $got"
	else
		fail "$b --version says '$got', want $version"
	fi
done

# ---- 6. the rendered flags and probes against the built zklockd -------------------

# free_port: a TCP port on 127.0.0.1 nobody listens on.
free_port() {
	local p
	for ((p = 20000 + RANDOM % 20000; ; p++)); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# list_after KEY CONTAINER FILE: the items of the list under KEY (args:, or
# a probe's command:) in CONTAINER's spec, one a line, unquoted.
list_after() {
	awk -v key="$1" -v name="$2" '
		function indent(s) { match(s, /^ */); return RLENGTH }
		!in_c && $0 ~ "^ *- name: " name "$" { in_c = 1; c_indent = indent($0); next }
		in_c && !/^ *$/ && indent($0) <= c_indent { exit }
		in_c && !in_list && $0 ~ "^ *" key ":$" { in_list = 1; next }
		in_list && /^ *- / { sub(/^ *- /, ""); gsub(/^"|"$/, ""); print; next }
		in_list { exit }' "$3"
}

# The files the rendered flags name, made up: a CA, a certificate for
# 127.0.0.1 usable by servers and clients (the exec probe presents it under
# mTLS), and credentials.
pki=$tmp/etc/zklock
mkdir -p "$pki/tls" "$pki/zk-auth"
echo "billing:not-a-real-password" >"$pki/zk-auth/credentials"
{
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=check-ca \
		-keyout "$tmp/ca.key" -out "$pki/tls/ca.crt"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=zklockd \
		-keyout "$pki/tls/tls.key" -out "$tmp/tls.csr"
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$tmp/ext"
	openssl x509 -req -in "$tmp/tls.csr" -CA "$pki/tls/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial -days 1 \
		-extfile "$tmp/ext" -out "$pki/tls/tls.crt"
} >"$tmp/openssl.log" 2>&1 || { fail "openssl could not make the test certificates"; sed 's/^/    /' "$tmp/openssl.log"; }

# scrape PORT: the body of http://127.0.0.1:PORT/metrics (bash's /dev/tcp:
# no curl needed).
scrape() {
	timeout 10 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
		sed "1,/^\r\$/d" <&3' scrape "$1"
}

# check_http NAME ARGS...: with --http-listen among zklockd's ARGS, curl
# reaches it as a client in the pod would (http://127.0.0.1:PORT, https://
# with the CA and, under mTLS, the client certificate, or the socket, whose
# mode must be --socket-mode's), and GET /v1/locks/x must answer what
# zklockd's gateway answers without ZooKeeper: 503, application/json, the
# gRPC status UNAVAILABLE (14) with ErrorInfo reason NO_SESSION.
check_http() {
	local name=$1 a listen= tls= mtls= mode= url how out status ctype body want
	shift
	for a in "$@"; do
		case $a in
		--http-listen=*) listen=${a#--http-listen=} ;;
		--tls-cert=*) tls=1 ;;
		--tls-client-ca=*) mtls=1 ;;
		--socket-mode=*) mode=${a#--socket-mode=} ;;
		esac
	done
	[[ -n $listen ]] || return 0
	if [[ -z $curl ]]; then
		fail "$name: --http-listen=$listen, and no curl to reach it (deps.sh installs it)"
		return
	fi
	local opts=(-sS --max-time 10 -o "$tmp/http-body" -w '%{http_code} %{content_type}')
	if [[ $listen == unix://* ]]; then
		local sock=${listen#unix://} got
		opts+=(--unix-socket "$sock")
		url=http://localhost/v1/locks/x
		how="curl --unix-socket $sock"
		want=${mode:-0660}
		got=$(stat -c %a "$sock" 2>&1 || true)
		if [[ ${got#0} == "${want#0}" ]]; then
			ok "$name: the --http-listen socket has --socket-mode's mode $want"
		else
			fail "$name: the --http-listen socket $sock has mode '$got', want $want"
		fi
	else
		local host=${listen%:*} port=${listen##*:}
		[[ $host == 0.0.0.0 || -z $host || $host == "[::]" ]] && host=127.0.0.1
		if [[ -n $tls ]]; then
			opts+=(--cacert "$pki/tls/ca.crt")
			[[ -n $mtls ]] && opts+=(--cert "$pki/tls/tls.crt" --key "$pki/tls/tls.key")
			url=https://$host:$port/v1/locks/x
		else
			url=http://$host:$port/v1/locks/x
		fi
		how="curl${tls:+ (TLS${mtls:+, client certificate})}"
	fi
	rm -f "$tmp/http-body"
	if ! out=$("$curl" "${opts[@]}" "$url" 2>&1); then
		fail "$name: $how $url: $out"
		return
	fi
	read -r status ctype <<<"$out"
	body=$(cat "$tmp/http-body" 2>/dev/null || true)
	# protojson varies its spaces on purpose: match around them.
	local code_re='"code":[[:space:]]*14[[:space:]]*[,}]' reason_re='"reason":[[:space:]]*"NO_SESSION"'
	if [[ $status == 503 && $ctype == application/json* && $body =~ $code_re && $body =~ $reason_re ]]; then
		ok "$name: --http-listen=$listen: $how GET $url answers 503 $ctype, UNAVAILABLE NO_SESSION (zklockd's gateway, no ZooKeeper)"
	else
		fail "$name: --http-listen=$listen: $how GET $url: want 503 application/json with code 14 and reason NO_SESSION, got $status $ctype:"
		echo "$body" | sed 's/^/    /'
	fi
}

# run_rendered NAME HELM-ARGS...: renders the example, runs the built
# zklockd with the zklockd container's args (paths under /etc/zklock moved
# to $pki, ZooKeeper down), and runs the liveness probe's command (healthprobe
# from the build) against it: it must answer NOT_SERVING (exit 4), which
# takes a connection and a health answer. With metrics on, its /metrics is
# saved in $tmp/scrapes/NAME; with HTTP on, check_http.
run_rendered() {
	local name=$1 grpc_port metrics_port health_port http_port dir rendered args probe pid rc i c ports answer health_addr=
	shift
	grpc_port=$(free_port)
	metrics_port=$(free_port)
	[[ $metrics_port == "$grpc_port" ]] && metrics_port=$((grpc_port + 1))
	health_port=$(free_port)
	while [[ $health_port == "$grpc_port" || $health_port == "$metrics_port" ]]; do health_port=$(free_port); done
	http_port=$(free_port)
	while [[ $http_port == "$grpc_port" || $http_port == "$metrics_port" || $http_port == "$health_port" ]]; do http_port=$(free_port); done
	dir=$tmp/run-$name
	mkdir -p "$dir/sock"
	rendered=$dir/rendered.yaml
	if ! render "$rendered" --set example.enabled=true "$@" \
		--set "zookeeper.connect=127.0.0.1:1,listen.port=$grpc_port,metrics.port=$metrics_port,health.port=$health_port,http.port=$http_port,listen.socketDir=$dir/sock"; then
		fail "$name: helm template"
		return
	fi
	mapfile -t args < <(list_after args zklockd "$rendered" | sed "s#/etc/zklock/#$pki/#g")
	mapfile -t probe < <(list_after command zklockd "$rendered" | sed -e "s#/etc/zklock/#$pki/#g" -e "s#^/usr/local/bin/healthprobe\$#$out/healthprobe#")
	if [[ ${#args[@]} -eq 0 ]]; then
		fail "$name: no args found for the zklockd container"
		return
	fi
	if [[ ${#probe[@]} -eq 0 ]]; then
		# The kubelet's own probe: it dials the pod IP, in plaintext, at the
		# probe's port, which must be the health port --health-listen binds
		# on all interfaces. Here loopback stands for the pod IP.
		c=$(container zklockd "$rendered")
		ports=$(grpc_probe_ports <<<"$c" | sort -u)
		if [[ -z $ports || $ports != "$health_port" || $(health_container_port <<<"$c") != "$health_port" ||
			" ${args[*]} " != *" --health-listen=0.0.0.0:$health_port "* ]]; then
			fail "$name: no exec probe, and no grpc probe on the health port $health_port that --health-listen=0.0.0.0:$health_port binds:"
			echo "$c" | sed 's/^/    /'
			return
		fi
		health_addr=127.0.0.1:$health_port
		probe=("$out/healthprobe" "-addr=$health_addr")
	fi
	"$out/zklockd" "${args[@]}" >"$dir/zklockd.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	rc=0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		rc=0
		"${probe[@]}" >"$dir/probe.log" 2>&1 || rc=$?
		[[ $rc -eq 4 ]] && break
		sleep 0.2
	done
	if ! kill -0 "$pid" 2>/dev/null; then
		fail "$name: zklockd ${args[*]} exited at start:"
		sed 's/^/    /' "$dir/zklockd.log"
		return
	fi
	if [[ $rc -eq 4 ]]; then
		ok "$name: zklockd runs with the rendered flags; the rendered ${health_addr:+grpc }probe${health_addr:+ (healthprobe -addr=$health_addr)} answers NOT_SERVING (no ZooKeeper)"
	else
		fail "$name: the rendered probe ${probe[*]} exited $rc, want 4 (NOT_SERVING):"
		sed 's/^/    /' "$dir/probe.log" "$dir/zklockd.log"
	fi
	if [[ " ${args[*]} " == *" --metrics-listen=:$metrics_port "* ]]; then
		mkdir -p "$tmp/scrapes"
		if scrape "$metrics_port" >"$tmp/scrapes/$name" 2>"$dir/scrape.err" && grep -q '^zklock_' "$tmp/scrapes/$name"; then
			ok "$name: --metrics-listen=:$metrics_port serves /metrics ($(grep -c '^[a-z]' "$tmp/scrapes/$name") series)"
		else
			fail "$name: no zklock_ metrics at http://127.0.0.1:$metrics_port/metrics:"
			sed 's/^/    /' "$dir/scrape.err" "$tmp/scrapes/$name" | head -20
		fi
	fi
	check_http "$name" "${args[@]}"
	if [[ -n $health_addr && -n $grpcurl ]]; then
		# grpcurl says "Code: Unimplemented" for a service the server lacks.
		if answer=$("$grpcurl" -plaintext -max-time 5 -import-path api -proto zklock/v1/lock.proto -d '{"lock":"x"}' \
			"$health_addr" zklock.v1.LockService/Describe 2>&1); then
			fail "$name: the health port $health_addr serves the lock API: $answer"
		elif [[ $answer == *"Code: Unimplemented"* ]]; then
			ok "$name: the health port serves no LockService (Describe: Unimplemented)"
		else
			fail "$name: Describe on the health port: want Unimplemented, got:"
			echo "$answer" | sed 's/^/    /'
		fi
	fi
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
if [[ -x $out/zklockd && -x $out/healthprobe ]]; then
	for v in "${values[@]}"; do
		run_rendered "$(basename "$v" -values.yaml)" -f "$v"
	done
fi

# Every metric the alerts read is one zklockd exports (seen in a scrape
# above; grpc_server_* series appear at a gRPC call, which the exec probes
# make), but kube-state-metrics' limits.
if [[ -d $tmp/scrapes ]] && names=$("$alertdoc" -doc "$alerts_doc" -metrics <"$tmp/rules.yaml" 2>&1); then
	missing=()
	for m in $names; do
		[[ $m == kube_pod_container_resource_limits ]] && continue
		grep -qE "^$m(\{| )" "$tmp/scrapes/"* || missing+=("$m")
	done
	if ((${#missing[@]})); then
		fail "the alerts read metrics no scrape of zklockd had: ${missing[*]} (scraped: $(ls "$tmp/scrapes" | tr '\n' ' '))"
	else
		ok "every metric the alerts read is in a scrape of zklockd: $(echo $names | sed 's/ *kube_pod_container_resource_limits//')"
	fi
else
	fail "no scrape of zklockd's metrics, or alertdoc -metrics failed: ${names:-}"
fi

if ((failed)); then
	echo "check-chart: FAILED"
	exit 1
fi
echo "check-chart: all passed"
