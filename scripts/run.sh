#!/usr/bin/env bash
# run.sh: runs zklock locally: a standalone ZooKeeper on loopback and zklockd
# in front of it. `make run` builds zklockd and then runs this.
#
#   scripts/run.sh [extra zklockd flags...]
#   scripts/run.sh zk-stop              (from another terminal)
#   scripts/run.sh zk-start [--fresh]   (from another terminal)
#
# Ctrl-C (SIGINT), SIGTERM or SIGHUP stops both: zklockd first (SIGTERM, so it
# releases its locks while ZooKeeper is still up), then ZooKeeper. If zklockd
# dies on its own, the script stops ZooKeeper and exits non-zero.
#
# If ZooKeeper stops (zk-stop, or it dies), zklockd keeps running, as it
# would in production during an outage: its holders get Suspended, then Lost
# SESSION_EXPIRED, or Resumed if ZooKeeper is back in time. zk-stop stops the
# ZooKeeper of the run.sh using the same RUN_DIR (make zk-stop); zk-start has
# that run.sh start it again, on the same port and with the same data, as a
# restarted server would (make zk-start); with --fresh, the data is wiped
# first, as if the ensemble had been rebuilt empty (make zk-start-fresh). A
# ZooKeeper started so is the script's own: Ctrl-C stops it too. With
# ZKLOCKD=none, ZooKeeper exiting ends the script.
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
zk_log=$zk_dir/zookeeper.log
zklock_port=${ZKLOCK_PORT:-7878}
metrics_port=${ZKLOCK_METRICS_PORT:-9464}
zklockd=${ZKLOCKD:-$repo/bin/zklockd}
stop_timeout=${STOP_TIMEOUT:-20}
zk_start_timeout=${ZK_START_TIMEOUT:-60}
zklockd_start_timeout=${ZKLOCKD_START_TIMEOUT:-30}

# How to reach this run from another terminal: make, with this RUN_DIR.
make_cmd="make"
[[ -z ${RUN_DIR:-} ]] || make_cmd="RUN_DIR=$run_dir make"

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
	# shellcheck disable=SC2016 # $1 and $2 are the inner bash's
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

# alive PID: the process exists (it may be a zombie not yet reaped).
alive() {
	[[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null
}

# zombie PID: the process has exited but is not reaped yet.
zombie() {
	[[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) == Z ]]
}

# stop_proc NAME PID: SIGTERM, wait up to $stop_timeout s, then SIGKILL.
# Reaps the process (a child of this script) and returns its exit status.
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
			zombie "$pid" && break
			sleep 0.1
		done
		if alive "$pid" && ! zombie "$pid"; then
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
	if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$pattern"; then
		log "stopping pid $pid left over by an earlier run ($pattern)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || return 0
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

# ---- zk-stop and zk-start, from another terminal --------------------------

# run_pid: prints the pid of the run.sh running with this RUN_DIR.
run_pid() {
	local pid
	[[ -f $run_dir/run.lock ]] || return 1
	# Free: no run.sh holds it.
	! flock -n "$run_dir/run.lock" true || return 1
	pid=$(cat "$run_dir/run.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

# zk_running: prints the pid of this RUN_DIR's ZooKeeper if it is running.
zk_running() {
	local pid
	pid=$(cat "$zk_dir/zookeeper.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$zk_dir/zoo.cfg" || return 1
	! zombie "$pid" || return 1
	echo "$pid"
}

# need_run: prints the pid of the run.sh running with this RUN_DIR and
# zklockd, or dies.
need_run() {
	run_pid || die "no scripts/run.sh (make run) is running with RUN_DIR=$run_dir"
	[[ -f $run_dir/zklockd.pid ]] ||
		die "the scripts/run.sh running with RUN_DIR=$run_dir runs no zklockd (ZKLOCKD=none, or it is starting): Ctrl-C it instead"
}

# zk-stop: SIGTERM to the ZooKeeper of the running run.sh, which notices,
# says so, and keeps zklockd running.
zk_stop_cmd() {
	local pid i
	(($# == 0)) || die "usage: scripts/run.sh zk-stop"
	need_run >/dev/null
	if ! pid=$(zk_running); then
		log "ZooKeeper is not running; '$make_cmd zk-start' starts it"
		return 0
	fi
	log "stopping ZooKeeper (pid $pid); zklockd keeps running"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < stop_timeout * 10; i++)); do
		zk_running >/dev/null || break
		sleep 0.1
	done
	if zk_running >/dev/null; then
		log "ZooKeeper did not stop within ${stop_timeout}s: killing it"
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			zk_running >/dev/null || break
			sleep 0.1
		done
	fi
	log "ZooKeeper is stopped; '$make_cmd zk-start' starts it again with its data"
}

# zk-start [--fresh]: asks the running run.sh to start its ZooKeeper again
# (it must be its child, so that Ctrl-C stops it): the request goes in
# $zk_dir/start.request, SIGUSR1 wakes run.sh, and its answer comes back in
# $zk_dir/start.status.
zk_start_cmd() {
	local mode=keep main pid i answer
	case $* in
	"") ;;
	--fresh) mode=fresh ;;
	*) die "usage: scripts/run.sh zk-start [--fresh]" ;;
	esac
	main=$(need_run) || exit 1
	if pid=$(zk_running); then
		[[ $mode == keep ]] || die "ZooKeeper is running (pid $pid): '$make_cmd zk-stop' first"
		log "ZooKeeper is already running (pid $pid)"
		return 0
	fi
	rm -f "$zk_dir/start.status"
	echo "$mode" >"$zk_dir/start.request"
	# Signalled again each second until run.sh has taken the request: a
	# signal that comes while it is busy elsewhere is not lost then.
	for ((i = 0; ; i++)); do
		[[ ! -f $zk_dir/start.status ]] || break
		kill -0 "$main" 2>/dev/null || die "scripts/run.sh (pid $main) has exited"
		if ((i % 10 == 0)) && [[ -f $zk_dir/start.request ]]; then
			kill -USR1 "$main" 2>/dev/null || true
		fi
		((i < (zk_start_timeout + 30) * 10)) || die "scripts/run.sh (pid $main) did not answer"
		sleep 0.1
	done
	answer=$(<"$zk_dir/start.status")
	case $answer in
	up)
		if [[ $mode == fresh ]]; then
			log "ZooKeeper is up again on 127.0.0.1:$(<"$zk_dir/port"), with empty data"
		else
			log "ZooKeeper is up again on 127.0.0.1:$(<"$zk_dir/port"), with its data"
		fi
		;;
	running) log "ZooKeeper is already running" ;;
	*) die "ZooKeeper did not start: see the terminal of make run, and ${zk_log#"$repo"/}" ;;
	esac
}

case ${1:-} in
zk-stop)
	shift
	zk_stop_cmd "$@"
	exit 0
	;;
zk-start)
	shift
	zk_start_cmd "$@"
	exit 0
	;;
esac

# ---- shutdown -------------------------------------------------------------

zk_pid=
zklockd_pid=
stopping=0
force=0

shutdown() {
	local rc
	if [[ -n $zklockd_pid ]]; then
		rc=0
		[[ -n $zk_pid ]] || log "ZooKeeper is down: zklockd may take its --shutdown-timeout (default 10s) to stop"
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
	rm -f "$run_dir/run.pid" "$zk_dir/start.request" "$zk_dir/start.status"
}

# shellcheck disable=SC2317 # called by the traps below
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
# zk-start's wake-up call: it interrupts the wait below.
trap ':' USR1

# ---- one run at a time per work directory -----------------------------------

mkdir -p "$zk_dir"
exec 9>"$run_dir/run.lock"
if ! flock -n 9; then
	die "another scripts/run.sh is using $run_dir (set RUN_DIR to run a second one)"
fi
kill_stale "$run_dir/zklockd.pid" "zklockd"
kill_stale "$zk_dir/zookeeper.pid" "$zk_dir/zoo.cfg"
rm -f "$zk_dir/start.request" "$zk_dir/start.status"
echo $$ >"$run_dir/run.pid"

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
echo "$zk_port" >"$zk_dir/port"
read -r -a zk_jvm_opts <<<"${ZK_JVM_OPTS:-}"

# Ready when ruok answers imok and srvr reports a mode: ruok says imok as
# soon as the port is open, while srvr answers "not currently serving
# requests" until the server has loaded its database.
srvr=
zk_ready() {
	[[ $(four_letter "$zk_port" ruok) == imok ]] || return 1
	srvr=$(four_letter "$zk_port" srvr)
	[[ $srvr == *"Mode: "* ]]
}

# start_zk: starts ZooKeeper (a child of this script) with the data in
# $zk_dir/data and waits until it serves. If it exits or does not serve in
# time, it says why, stops it and returns 1.
start_zk() {
	local start rc zk_version
	log "starting ZooKeeper on 127.0.0.1:$zk_port (log: ${zk_log#"$repo"/})"
	# setsid: Ctrl-C in the terminal reaches only this script, which stops
	# the two processes in order (zklockd first, while ZooKeeper is still up).
	setsid "$java" \
		-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-Djava.net.preferIPv4Stack=true \
		-Dlog4j.configuration="file:$zk_dir/log4j.properties" \
		-Dzookeeper.log.dir="$zk_dir" \
		-Dzookeeper.jmx.log4j.disable=true \
		-Dzookeeper.admin.enableServer=false \
		"${zk_jvm_opts[@]}" \
		-cp "$classpath" org.apache.zookeeper.server.ZooKeeperServerMain "$zk_dir/zoo.cfg" \
		</dev/null >>"$zk_log" 2>&1 9>&- &
	zk_pid=$!
	echo "$zk_pid" >"$zk_dir/zookeeper.pid"

	start=$SECONDS
	until zk_ready; do
		if ! alive "$zk_pid" || zombie "$zk_pid"; then
			rc=0
			wait "$zk_pid" || rc=$?
			zk_pid=
			rm -f "$zk_dir/zookeeper.pid"
			log "ZooKeeper exited with status $rc while starting; the end of $zk_log:"
			tail -n 30 "$zk_log" >&2 || true
			return 1
		fi
		if ((SECONDS - start > zk_start_timeout)); then
			log "ZooKeeper did not answer ruok within ${zk_start_timeout}s; the end of $zk_log:"
			tail -n 30 "$zk_log" >&2 || true
			stop_proc ZooKeeper "$zk_pid" || true
			zk_pid=
			rm -f "$zk_dir/zookeeper.pid"
			return 1
		fi
		sleep 0.2
	done
	zk_version=$(awk -F': ' '/^Zookeeper version/ { split($2, v, "-"); print v[1] }' <<<"$srvr")
	log "ZooKeeper ${zk_version:-?} is up on 127.0.0.1:$zk_port ($((SECONDS - start))s)"
}

# serve_zk_start: starts ZooKeeper again if zk-start asked for it, and
# answers it.
serve_zk_start() {
	local mode answer=up
	[[ -f $zk_dir/start.request ]] || return 0
	mode=$(<"$zk_dir/start.request")
	rm -f "$zk_dir/start.request"
	if [[ -n $zk_pid ]]; then
		answer=running
	else
		if [[ $mode == fresh ]]; then
			log "zk-start --fresh: wiping ZooKeeper's data: every session and lock node is gone, as in an ensemble rebuilt empty"
			rm -rf "$zk_dir/data"
			mkdir -p "$zk_dir/data"
		fi
		start_zk || answer=failed
	fi
	echo "$answer" >"$zk_dir/start.status.new"
	mv -f "$zk_dir/start.status.new" "$zk_dir/start.status"
}

: >"$zk_log"
start_zk || exit 1

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

  # rehearse an outage (README.md): zklockd keeps running while ZooKeeper is stopped
  $make_cmd zk-stop      # later: $make_cmd zk-start
EOF
	[[ -x bin/grpcurl ]] || echo "  (grpcurl is not in bin/: 'make tools' installs it)" >&2
	echo "
Ctrl-C stops zklockd, then ZooKeeper. ZooKeeper's log: ${zk_log#"$repo"/}
" >&2
fi

# ---- wait for a signal, for zk-start, or for a process to die ---------------

# wait -n returns when a child exits, or early (status > 128) when a trapped
# signal arrives: SIGUSR1 from zk-start, or a repeated Ctrl-C whose trap
# returned (the first one's trap stops everything and exits).
while :; do
	serve_zk_start
	pids=()
	[[ -z $zklockd_pid ]] || pids+=("$zklockd_pid")
	[[ -z $zk_pid ]] || pids+=("$zk_pid")
	rc=0
	dead=
	wait -n -p dead "${pids[@]}" || rc=$?
	# A signal leaves dead unset.
	[[ -n ${dead:-} ]] || continue
	if [[ $dead == "$zk_pid" ]]; then
		zk_pid=
		rm -f "$zk_dir/zookeeper.pid"
		if ((rc == 143)); then
			log "ZooKeeper stopped (SIGTERM)"
		else
			log "ZooKeeper exited with status $rc; the end of $zk_log:"
			tail -n 20 "$zk_log" >&2 || true
		fi
		# ZooKeeper alone: nothing is left to run.
		[[ -n $zklockd_pid ]] || break
		log "zklockd keeps running without ZooKeeper: its holders get Suspended, then Lost SESSION_EXPIRED unless ZooKeeper is back in time; '$make_cmd zk-start' starts it again with its data"
		continue
	fi
	zklockd_pid=
	rm -f "$run_dir/zklockd.pid"
	log "zklockd exited with status $rc"
	break
done
shutdown
exit $((rc == 0 ? 1 : rc))
