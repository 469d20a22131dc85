#!/usr/bin/env bash
# run.sh: runs zklock locally: a standalone ZooKeeper on loopback and zklockd
# in front of it. `make run` builds zklockd and then runs this.
#
#   scripts/run.sh [extra zklockd flags...]
#
# Ctrl-C (SIGINT), SIGTERM or SIGHUP stops both: zklockd first (SIGTERM, so it
# releases its locks while ZooKeeper is still up), then ZooKeeper. If either
# process dies on its own, the script stops the other and exits non-zero.
#
# Environment:
#   ZK_PORT            ZooKeeper's client port (default 2181; when that port
#                      is busy and ZK_PORT is not set, a free one is chosen)
#   ZKLOCK_PORT        zklockd's gRPC port on 127.0.0.1 (default 7878)
#   ZKLOCK_METRICS_PORT  zklockd's Prometheus /metrics port on 127.0.0.1
#                      (default 9464)
#   ZKLOCKD            the zklockd binary (default bin/zklockd); "none" runs
#                      ZooKeeper alone
#   RUN_DIR            work directory (default <repo>/.run); ZooKeeper's
#                      config, data and log (zookeeper.log) are in $RUN_DIR/zk
#   ZK_KEEP_DATA=1     keep ZooKeeper's data from the previous run
#   ZK_CLASSPATH       class path for the server (default: Debian's jars)
#   JAVA               java binary (default $JAVA_HOME/bin/java, else java)
#   ZK_JVM_OPTS        extra JVM options for ZooKeeper
#   STOP_TIMEOUT       seconds to wait for each process to stop before
#                      SIGKILL (default 20)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

run_dir=${RUN_DIR:-$repo/.run}
zk_dir=$run_dir/zk
zklock_port=${ZKLOCK_PORT:-7878}
metrics_port=${ZKLOCK_METRICS_PORT:-9464}
zklockd=${ZKLOCKD:-$repo/bin/zklockd}
stop_timeout=${STOP_TIMEOUT:-20}
zk_start_timeout=${ZK_START_TIMEOUT:-60}
zklockd_start_timeout=${ZKLOCKD_START_TIMEOUT:-30}

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# four_letter PORT CMD: sends a ZooKeeper four-letter command, prints the reply.
four_letter() {
	timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf %s "$2" >&3 && cat <&3' _ "$1" "$2" 2>/dev/null || true
}

# free_port FIRST: the first port from FIRST up that nothing listens on.
free_port() {
	local p
	for ((p = $1; p < $1 + 200; p++)); do
		if ! port_open "$p"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# alive PID: the process exists and is not a zombie we have yet to reap.
alive() {
	[[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null
}

# stop_proc NAME PID: SIGTERM, wait up to $stop_timeout s, then SIGKILL.
# Reaps the process and returns its exit status.
stop_proc() {
	local name=$1 pid=$2 i rc=0
	if alive "$pid"; then
		log "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < stop_timeout * 10; i++)); do
			alive "$pid" || break
			((force == 0)) || break
			# A child that has exited but is not reaped still answers kill -0:
			# look at its state.
			[[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
			sleep 0.1
		done
		if alive "$pid" && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
			if ((force)); then
				log "killing $name"
			else
				log "$name did not stop within ${stop_timeout}s: killing it"
			fi
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

# kill_stale PIDFILE PATTERN: a process left over by an earlier run that was
# itself killed (SIGKILL) is stopped, if its command line matches PATTERN.
kill_stale() {
	local pidfile=$1 pattern=$2 pid i
	[[ -f $pidfile ]] || return 0
	pid=$(<"$pidfile")
	rm -f "$pidfile"
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"; then
		log "stopping pid $pid left over by an earlier run ($pattern)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || return 0
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# ---- shutdown -------------------------------------------------------------

zk_pid=
zklockd_pid=
stopping=0
force=0

shutdown() {
	local rc
	if [[ -n $zklockd_pid ]]; then
		rc=0
		stop_proc zklockd "$zklockd_pid" || rc=$?
		# zklockd exits 0 after a clean SIGTERM shutdown.
		[[ $rc -eq 0 || $stopping -eq 0 ]] || log "zklockd exited with status $rc"
		zklockd_pid=
		rm -f "$run_dir/zklockd.pid"
	fi
	if [[ -n $zk_pid ]]; then
		rc=0
		stop_proc ZooKeeper "$zk_pid" || rc=$?
		# The JVM exits 143 (128+SIGTERM) after its shutdown hooks.
		[[ $rc -eq 0 || $rc -eq 143 || $stopping -eq 0 ]] || log "ZooKeeper exited with status $rc"
		zk_pid=
		rm -f "$zk_dir/zookeeper.pid"
	fi
}

on_signal() {
	local sig=$1
	stopping=1
	# A second signal while stopping kills what is left at once. (A plain
	# assignment: a trap that calls a function while this one runs confuses
	# bash.)
	trap 'force=1' INT TERM HUP
	echo >&2
	log "got SIG$sig: stopping (again to kill at once)"
	shutdown
	log "stopped"
	trap - "$sig" EXIT
	# Die by the same signal, so that a caller (make, a shell loop) sees it.
	kill -"$sig" $$
	exit $((128 + $(kill -l "$sig")))
}

trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP
trap 'shutdown' EXIT

# ---- one run at a time per work directory -----------------------------------

mkdir -p "$zk_dir"
exec 9>"$run_dir/run.lock"
if ! flock -n 9; then
	die "another scripts/run.sh is using $run_dir (set RUN_DIR to run a second one)"
fi
kill_stale "$run_dir/zklockd.pid" "zklockd"
kill_stale "$zk_dir/zookeeper.pid" "$zk_dir/zoo.cfg"

# ---- ZooKeeper -------------------------------------------------------------

if [[ -n ${JAVA:-} ]]; then
	java=$JAVA
elif [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
	java=$JAVA_HOME/bin/java
else
	java=$(command -v java) || die "java not found: run 'make deps' (installs default-jre-headless)"
fi

if [[ -n ${ZK_CLASSPATH:-} ]]; then
	classpath=$ZK_CLASSPATH
else
	# Debian's zkEnv.sh uses just /usr/share/java/zookeeper.jar: its manifest
	# Class-Path names the jars it needs. It names no SLF4J binding, so add
	# the log4j 1.2 one Debian builds ZooKeeper with, or the server logs
	# nothing.
	[[ -f /usr/share/java/zookeeper.jar ]] ||
		die "/usr/share/java/zookeeper.jar not found: run 'make deps' (installs Debian's zookeeper package) or set ZK_CLASSPATH"
	classpath=/usr/share/java/zookeeper.jar
	for j in slf4j-log4j12.jar log4j-1.2.jar; do
		[[ -f /usr/share/java/$j ]] && classpath+=:/usr/share/java/$j
	done
fi

if [[ -n ${ZK_PORT:-} ]]; then
	zk_port=$ZK_PORT
	port_open "$zk_port" && die "port $zk_port (ZK_PORT) is in use"
else
	zk_port=2181
	if port_open "$zk_port"; then
		zk_port=$(free_port 2182) || die "no free port for ZooKeeper from 2181 up"
		log "port 2181 is in use: ZooKeeper will listen on $zk_port"
	fi
fi

if [[ $zklockd != none ]]; then
	[[ -x $zklockd ]] || die "$zklockd not found: run 'make build' (or set ZKLOCKD=none for ZooKeeper alone)"
	port_open "$zklock_port" && die "port $zklock_port is in use: set ZKLOCK_PORT to another port"
	port_open "$metrics_port" && die "port $metrics_port is in use: set ZKLOCK_METRICS_PORT to another port"
fi

if [[ ${ZK_KEEP_DATA:-0} != 1 ]]; then
	rm -rf "$zk_dir/data"
fi
mkdir -p "$zk_dir/data"

cat >"$zk_dir/zoo.cfg" <<EOF
# Written by scripts/run.sh: a standalone server on loopback.
tickTime=2000
dataDir=$zk_dir/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
EOF

cat >"$zk_dir/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
EOF

zk_log=$zk_dir/zookeeper.log
read -r -a zk_jvm_opts <<<"${ZK_JVM_OPTS:-}"
log "starting ZooKeeper on 127.0.0.1:$zk_port (log: ${zk_log#"$repo"/})"
# setsid: Ctrl-C in the terminal reaches only this script, which stops the
# two processes in order (zklockd first, while ZooKeeper is still up).
setsid "$java" \
	-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
	-Djava.net.preferIPv4Stack=true \
	-Dlog4j.configuration="file:$zk_dir/log4j.properties" \
	-Dzookeeper.log.dir="$zk_dir" \
	-Dzookeeper.jmx.log4j.disable=true \
	-Dzookeeper.admin.enableServer=false \
	"${zk_jvm_opts[@]}" \
	-cp "$classpath" org.apache.zookeeper.server.ZooKeeperServerMain "$zk_dir/zoo.cfg" \
	</dev/null >"$zk_log" 2>&1 9>&- &
zk_pid=$!
echo "$zk_pid" >"$zk_dir/zookeeper.pid"
echo "$zk_port" >"$zk_dir/port"

# Ready when ruok answers imok and srvr reports a mode: ruok says imok as
# soon as the port is open, while srvr answers "not currently serving
# requests" until the server has loaded its database.
zk_ready() {
	[[ $(four_letter "$zk_port" ruok) == imok ]] || return 1
	srvr=$(four_letter "$zk_port" srvr)
	[[ $srvr == *"Mode: "* ]]
}
srvr=
start=$SECONDS
until zk_ready; do
	if ! alive "$zk_pid"; then
		rc=0
		wait "$zk_pid" || rc=$?
		zk_pid=
		log "ZooKeeper exited with status $rc while starting; the end of $zk_log:"
		tail -n 30 "$zk_log" >&2 || true
		exit 1
	fi
	if ((SECONDS - start > zk_start_timeout)); then
		log "ZooKeeper did not answer ruok within ${zk_start_timeout}s; the end of $zk_log:"
		tail -n 30 "$zk_log" >&2 || true
		exit 1
	fi
	sleep 0.2
done
zk_version=$(awk -F': ' '/^Zookeeper version/ { split($2, v, "-"); print v[1] }' <<<"$srvr")
log "ZooKeeper ${zk_version:-?} is up on 127.0.0.1:$zk_port ($((SECONDS - start))s)"

# ---- zklockd ---------------------------------------------------------------

if [[ $zklockd == none ]]; then
	log "ZKLOCKD=none: running ZooKeeper alone; connect string 127.0.0.1:$zk_port; Ctrl-C stops it"
else
	args=(--zk "127.0.0.1:$zk_port" --listen "127.0.0.1:$zklock_port" --metrics-listen "127.0.0.1:$metrics_port" "$@")
	log "starting ${zklockd#"$repo"/} ${args[*]}"
	setsid "$zklockd" "${args[@]}" </dev/null 9>&- &
	zklockd_pid=$!
	echo "$zklockd_pid" >"$run_dir/zklockd.pid"

	start=$SECONDS
	until port_open "$zklock_port"; do
		if ! alive "$zklockd_pid"; then
			rc=0
			wait "$zklockd_pid" || rc=$?
			zklockd_pid=
			log "zklockd exited with status $rc while starting"
			exit 1
		fi
		if ((SECONDS - start > zklockd_start_timeout)); then
			die "zklockd is not listening on 127.0.0.1:$zklock_port after ${zklockd_start_timeout}s"
		fi
		sleep 0.1
	done

	grpcurl=bin/grpcurl
	[[ -x $grpcurl ]] || grpcurl="grpcurl"
	cat >&2 <<EOF

zklockd is listening on 127.0.0.1:$zklock_port, metrics on 127.0.0.1:$metrics_port/metrics (ZooKeeper: 127.0.0.1:$zk_port). In another terminal:

  # take the lock "demo"; it is held while grpcurl runs (Ctrl-C releases it)
  $grpcurl -plaintext -d '{"lock":"demo"}' 127.0.0.1:$zklock_port zklock.v1.LockService/Acquire

  # see its holders and waiters
  $grpcurl -plaintext -d '{"lock":"demo"}' 127.0.0.1:$zklock_port zklock.v1.LockService/Describe

  # list the services (server reflection)
  $grpcurl -plaintext 127.0.0.1:$zklock_port list

  # the lock metrics (Prometheus text; gRPC, Go and process metrics beside them)
  curl -s 127.0.0.1:$metrics_port/metrics | grep '^zklock_'
EOF
	[[ -x bin/grpcurl ]] || echo "  (grpcurl is not in bin/: 'make tools' installs it)" >&2
	echo "
Ctrl-C stops zklockd, then ZooKeeper. ZooKeeper's log: ${zk_log#"$repo"/}
" >&2
fi

# ---- wait for a signal, or for either process to die ----------------------

pids=("$zk_pid")
[[ -n $zklockd_pid ]] && pids+=("$zklockd_pid")
rc=0
dead=
# wait -n returns when a child exits, or early (status > 128) when a trapped
# signal arrives; the trap then stops everything and exits.
wait -n -p dead "${pids[@]}" || rc=$?
if [[ -z $dead ]]; then
	# Only a signal whose trap returned (a repeat) gets here: wait again.
	wait -n -p dead "${pids[@]}" || rc=$?
fi
if [[ $dead == "$zk_pid" ]]; then
	zk_pid=
	rm -f "$zk_dir/zookeeper.pid"
	log "ZooKeeper exited with status $rc; the end of $zk_log:"
	tail -n 20 "$zk_log" >&2 || true
else
	zklockd_pid=
	rm -f "$run_dir/zklockd.pid"
	log "zklockd exited with status $rc"
fi
shutdown
exit $((rc == 0 ? 1 : rc))
