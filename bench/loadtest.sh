#!/usr/bin/env bash
# Side-by-side load tests: sse-bench against examples/feed (fastsse, stream
# and dense transports) and the peer servers of bench/servers (a raw
# fasthttp SetBodyStreamWriter loop, tmaxmax/go-sse and r3labs/sse on
# net/http), with the same settings for each.
#
#   bash bench/loadtest.sh smoke   # make loadtest-smoke: 200 connections, < 1 min, table to stdout
#   bash bench/loadtest.sh full    # make loadtest: 10k/19k idle, fan-out to 1,000 and to 10,000 at 1/10/100 ev/s,
#                                  # tables into bench/RESULTS.md between the loadtest markers
#   bash bench/loadtest.sh cluster-smoke  # three feeds on one NATS bus, 300 connections, < 1 min
#   bash bench/loadtest.sh cluster        # 10,000 connections over three feeds, 10 and 100 ev/s,
#                                  # one instance killed mid-window, against one process at the
#                                  # same load; the table to stdout and $WORK/cluster.md
#   bash bench/loadtest.sh slow-smoke     # examples/ticker, 200 connections, 5% slow readers, < 2 min
#   bash bench/loadtest.sh slow           # examples/ticker, 10,000 connections, 5% reading at 1/20
#                                  # of the rate: conflation (always; throttled) and none (close,
#                                  # drop-oldest, drop-newest); the table to stdout and $WORK/slow.md
#
# Loopback only. Each server run: start on a free 127.0.0.1 port, wait until it
# accepts, run sse-bench, SIGTERM it, wait for its exit (SIGKILL after 15 s).
# Everything is bounded in time. The sse-bench JSON reports and all logs stay
# in a temporary directory (printed at the end; removed after a good smoke run).
#
# Overrides (environment): LOADTEST_SERVERS, LOADTEST_RATES, LOADTEST_IDLE,
# LOADTEST_FANOUT_TIERS (fan-out connection counts, e.g. "1000 10000"),
# LOADTEST_FANOUT_D, LOADTEST_IDLE_D, LOADTEST_WAIT_LOAD (seconds to wait for
# a 1-minute load average below LOADTEST_MAX_LOAD before a full run; 0: none),
# LOADTEST_KEEP=1 (keep the temporary directory), LOADTEST_RESULTS (the file
# a full run writes; default bench/RESULTS.md).
set -euo pipefail

MODE=${1:-}
case $MODE in
smoke | full | cluster-smoke | cluster | slow-smoke | slow) ;;
*)
	echo "usage: $0 smoke|full|cluster-smoke|cluster|slow-smoke|slow" >&2
	exit 2
	;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}
T0=$SECONDS

if [[ $MODE == slow-smoke ]]; then
	SLOW_CONNS=${LOADTEST_SLOW_CONNS:-200}
	FANOUT_D=${LOADTEST_FANOUT_D:-8s}
	FANOUT_SETTLE=1s
	PROCS=1
	GAP=0.5
elif [[ $MODE == slow ]]; then
	SLOW_CONNS=${LOADTEST_SLOW_CONNS:-10000}
	FANOUT_D=${LOADTEST_FANOUT_D:-20s}
	FANOUT_SETTLE=2s
	PROCS=2
	GAP=2
elif [[ $MODE == cluster-smoke ]]; then
	CLUSTER_CONNS=${LOADTEST_CLUSTER_CONNS:-300}
	RATES=${LOADTEST_RATES-10}
	FANOUT_D=${LOADTEST_FANOUT_D:-4s}
	FANOUT_SETTLE=1s
	PROCS=1
	GAP=0.5
elif [[ $MODE == cluster ]]; then
	CLUSTER_CONNS=${LOADTEST_CLUSTER_CONNS:-10000}
	RATES=${LOADTEST_RATES-10 100}
	FANOUT_D=${LOADTEST_FANOUT_D:-20s}
	FANOUT_SETTLE=2s
	PROCS=2
	GAP=2
elif [[ $MODE == smoke ]]; then
	SERVERS=${LOADTEST_SERVERS:-stream dense rawstream gosse r3labs}
	IDLE=${LOADTEST_IDLE-200}
	IDLE_D=${LOADTEST_IDLE_D:-1s}
	IDLE_SETTLE=500ms
	FANOUT_TIERS=${LOADTEST_FANOUT_TIERS:-200}
	RATES=${LOADTEST_RATES-10}
	FANOUT_D=${LOADTEST_FANOUT_D:-3s}
	FANOUT_SETTLE=500ms
	PROCS=1
	GAP=0.2 # seconds between runs
else
	SERVERS=${LOADTEST_SERVERS:-stream dense rawstream gosse r3labs}
	IDLE=${LOADTEST_IDLE-10000 19000}
	IDLE_D=${LOADTEST_IDLE_D:-5s}
	IDLE_SETTLE=2s
	# Two tiers: 1,000 connections, where every server keeps up and latency
	# is compared at equal load, and 10,000, where they part.
	FANOUT_TIERS=${LOADTEST_FANOUT_TIERS:-1000 10000}
	RATES=${LOADTEST_RATES-1 10 100}
	FANOUT_D=${LOADTEST_FANOUT_D:-20s}
	FANOUT_SETTLE=1s
	# Two client processes in every run: the connections and their TIME_WAIT
	# ports are spread over two source addresses (127.0.0.2 and .3).
	PROCS=2
	GAP=2
fi
SIZE=64
HB=15s
BENCH_TIMEOUT=300 # sse-bench bounds itself; this is a backstop
SOURCES=()
for ((i = 0; i < PROCS; i++)); do SOURCES+=("127.0.0.$((2 + i))"); done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/loadtest.XXXXXX")
BIN=$WORK/bin
JSON=$WORK/json
LOGS=$WORK/log
mkdir -p "$BIN" "$JSON" "$LOGS"
: >"$WORK/notes.txt"
: >"$WORK/commands.txt"
SERVER_PID=""
PORT=""

say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
note() {
	say "NOTE: $*"
	printf -- '- %s\n' "$*" >>"$WORK/notes.txt"
}

# alive PID: the process exists and is not a zombie (our exited children
# stay zombies until waited for, and kill -0 still succeeds on them).
alive() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $s && $s != Z* ]]
}

cleanup() {
	local rc=$?
	if [[ -n $SERVER_PID ]] && alive "$SERVER_PID"; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 50); do alive "$SERVER_PID" || break; sleep 0.1; done
		kill -KILL "$SERVER_PID" 2>/dev/null || true
	fi
	for pid in ${CLUSTER_PIDS:-}; do
		alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
	done
	if [[ $rc -ne 0 || ${LOADTEST_KEEP:-} == 1 || $MODE == full || $MODE == cluster || $MODE == slow ]]; then
		say "logs and reports kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# log_cmd ARGS...: the command as run, with the port, pid and temporary
# paths made generic.
log_cmd() {
	local s="$*"
	s=${s//$BIN\//}
	s=${s//$JSON\/*.json/RESULT.json}
	[[ -n $PORT ]] && s=${s//:$PORT/:PORT}
	[[ -n $SERVER_PID ]] && s=${s//-server-pid $SERVER_PID/-server-pid PID}
	echo "$s" >>"$WORK/commands.txt"
}

# free_port: a loopback port below the ephemeral range with no socket on it.
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 10000))
		if [[ -z $(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null) ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# server_argv NAME: the server's command without the shared flags.
server_argv() {
	case $1 in
	stream | dense) SRV=("$BIN/feed" -transport "$1" -drain-spread 1s) ;;
	rawstream | gosse | r3labs) SRV=("$BIN/$1") ;;
	*)
		echo "unknown server $1" >&2
		exit 2
		;;
	esac
}

# start_server TAG NAME RATE: sets SERVER_PID and PORT; fails when the server
# does not accept within 15 s.
start_server() {
	local tag=$1 name=$2 rate=$3
	PORT=$(free_port) || {
		note "$tag: no free port"
		return 1
	}
	server_argv "$name"
	SRV+=(-addr "127.0.0.1:$PORT" -rate "$rate" -size "$SIZE" -heartbeat "$HB")
	"${SRV[@]}" >"$LOGS/$tag.server.log" 2>&1 &
	SERVER_PID=$!
	log_cmd "${SRV[@]}"
	local deadline=$((SECONDS + 15))
	until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
		if ! alive "$SERVER_PID"; then
			wait "$SERVER_PID" || true
			SERVER_PID=""
			note "$tag: server exited at start: $(tail -n 3 "$LOGS/$tag.server.log" | tr '\n' ' ')"
			return 1
		fi
		if ((SECONDS >= deadline)); then
			note "$tag: server did not accept within 15 s"
			stop_server "$tag"
			return 1
		fi
		sleep 0.1
	done
}

# stop_server TAG: SIGTERM, wait up to 15 s, then SIGKILL.
stop_server() {
	local tag=$1 pid=$SERVER_PID rc=0 t=$SECONDS
	[[ -n $pid ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + 15))
	while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
		note "$tag: server still running 15 s after SIGTERM; killed"
	fi
	wait "$pid" || rc=$?
	SERVER_PID=""
	if ((rc != 0)); then
		note "$tag: server exit status $rc after SIGTERM ($(tail -n 2 "$LOGS/$tag.server.log" | tr '\n' ' '))"
	fi
	say "  stopped in $((SECONDS - t)) s"
}

# ports_wait NEED: wait (≤ 75 s) until each source address has NEED ports
# to spare: sockets in TIME_WAIT from earlier runs hold theirs for 60 s.
ports_wait() {
	local need=$1 deadline=$((SECONDS + 75)) worst n a
	while :; do
		worst=0
		for a in "${SOURCES[@]}"; do
			n=$(ss -Htan src "$a" 2>/dev/null | wc -l)
			((n > worst)) && worst=$n
		done
		((worst + need <= 27000)) && return 0
		if ((SECONDS >= deadline)); then
			note "still $worst sockets on a source address after 75 s; running anyway"
			return 0
		fi
		say "  waiting for TIME_WAIT: $worst sockets on a source address, $need needed"
		sleep 3
	done
}

# bench TAG NAME RATE CONNS ARGS...: one server run.
bench() {
	local tag=$1 name=$2 rate=$3 conns=$4 rc=0
	shift 4
	ports_wait $(((conns + PROCS - 1) / PROCS + 500))
	say "$tag"
	local load0
	load0=$(cut -d' ' -f1 /proc/loadavg)
	start_server "$tag" "$name" "$rate" || return 0
	local argv=("$BIN/sse-bench" -url "http://127.0.0.1:$PORT/feed" -c "$conns" "$@" -procs "$PROCS" -server-pid "$SERVER_PID" -json "$JSON/$tag.json")
	log_cmd "${argv[@]}"
	timeout -k 10 "$BENCH_TIMEOUT" "${argv[@]}" >"$LOGS/$tag.bench.txt" 2>"$LOGS/$tag.bench.err" || rc=$?
	if ((rc != 0)); then
		note "$tag: sse-bench exit status $rc ($(grep -v '^ *[0-9.]*s ' "$LOGS/$tag.bench.err" | tail -n 2 | tr '\n' ' '))"
	fi
	if ! alive "$SERVER_PID"; then
		note "$tag: the server died during the run ($(tail -n 3 "$LOGS/$tag.server.log" | tr '\n' ' '))"
	fi
	echo "$load0 $(cut -d' ' -f1 /proc/loadavg)" >"$JSON/$tag.load"
	awk '/^(open at end|failed|deliveries\/s|latency p99 \(ms\)|server rss per conn|server cpu)/ {sub(/  +/, " = "); printf "    %s\n", $0}' "$LOGS/$tag.bench.txt" >&2 || true
	stop_server "$tag"
	sleep "$GAP"
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

say "building into $WORK"
"$GO" build -o "$BIN/sse-bench" ./loadtest/sse-bench
(cd examples && "$GO" build -o "$BIN/feed" ./feed)
(cd bench/servers && "$GO" build -o "$BIN/" ./rawstream ./gosse ./r3labs ./cmd/lttable ./cmd/ltplot)

# wait_accept PORT PID TAG: until 127.0.0.1:PORT accepts (≤ 15 s).
wait_accept() {
	local port=$1 pid=$2 tag=$3 deadline=$((SECONDS + 15))
	until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		if ! alive "$pid" || ((SECONDS >= deadline)); then
			note "$tag: no server on port $port"
			return 1
		fi
		sleep 0.1
	done
}

# field FILE NAME: a figure from sse-bench's text report.
field() { awk -v k="$2" '{ key = substr($0, 1, 31); sub(/ +$/, "", key) } key == k { print $NF; exit }' "$1"; }

# cluster_run TAG RATE: three feeds (dense) on one bus, the first hosting
# the embedded NATS server and publishing RATE ev/s, the others publishing
# nothing; sse-bench spreads CLUSTER_CONNS over the three; the third is
# killed (SIGKILL) in the middle of the window and its clients go on at the
# next URL with Last-Event-ID.
cluster_run() {
	local tag=$1 rate=$2 np p1 p2 p3 rc=0 pids=()
	np=$(free_port) && p1=$(free_port) && p2=$(free_port) && p3=$(free_port) || {
		note "$tag: no free ports"
		return 0
	}
	ports_wait $(((CLUSTER_CONNS + PROCS - 1) / PROCS + 500))
	say "$tag"
	local common=(-transport dense -size "$SIZE" -heartbeat "$HB" -drain-spread 1s)
	"$BIN/feed" "${common[@]}" -addr "127.0.0.1:$p1" -rate "$rate" -nats "embedded:$np" >"$LOGS/$tag.feed1.log" 2>&1 &
	pids+=($!)
	log_cmd "$BIN/feed" "${common[@]}" -addr 127.0.0.1:PORT1 -rate "$rate" -nats embedded:NATSPORT
	wait_accept "$p1" "${pids[0]}" "$tag" || { kill -KILL "${pids[@]}" 2>/dev/null; return 0; }
	for p in "$p2" "$p3"; do
		"$BIN/feed" "${common[@]}" -addr "127.0.0.1:$p" -rate 0 -nats "nats://127.0.0.1:$np" >"$LOGS/$tag.feed-$p.log" 2>&1 &
		pids+=($!)
		wait_accept "$p" "${pids[-1]}" "$tag" || { kill -KILL "${pids[@]}" 2>/dev/null; return 0; }
	done
	log_cmd "$BIN/feed" "${common[@]}" -addr 127.0.0.1:PORT2 -rate 0 -nats nats://127.0.0.1:NATSPORT "(and PORT3)"
	CLUSTER_PIDS="${pids[*]}"
	local urls="http://127.0.0.1:$p1/feed,http://127.0.0.1:$p2/feed,http://127.0.0.1:$p3/feed"
	local argv=("$BIN/sse-bench" -url "$urls" -c "$CLUSTER_CONNS" -mode fanout -d "$FANOUT_D" -settle "$FANOUT_SETTLE" -procs "$PROCS" -server-pid "$(tr ' ' ',' <<<"${pids[*]}")" -json "$JSON/$tag.json")
	log_cmd "$BIN/sse-bench" -url "http://127.0.0.1:PORT1/feed,http://127.0.0.1:PORT2/feed,http://127.0.0.1:PORT3/feed" -c "$CLUSTER_CONNS" -mode fanout -d "$FANOUT_D" -settle "$FANOUT_SETTLE" -procs "$PROCS" "(PORT3's instance is killed with SIGKILL half-way through the window)"
	timeout -k 10 "$BENCH_TIMEOUT" "${argv[@]}" >"$LOGS/$tag.bench.txt" 2>"$LOGS/$tag.bench.err" &
	local bp=$!
	# The kill: half-way through the window, after the connecting phase
	# (sse-bench prints "measure" on stderr when the window opens).
	local deadline=$((SECONDS + 120))
	until grep -q measure "$LOGS/$tag.bench.err" 2>/dev/null || ((SECONDS >= deadline)); do sleep 0.2; done
	sleep "$(awk -v d="${FANOUT_D%s}" 'BEGIN { print d / 2 }')"
	kill -KILL "${pids[2]}" 2>/dev/null || true
	say "  killed instance 3 (pid ${pids[2]})"
	wait "$bp" || rc=$?
	((rc != 0)) && note "$tag: sse-bench exit status $rc ($(tail -n 2 "$LOGS/$tag.bench.err" | tr '\n' ' '))"
	kill -TERM "${pids[0]}" "${pids[1]}" 2>/dev/null || true
	for pid in "${pids[@]}"; do
		for _ in $(seq 1 150); do alive "$pid" || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	CLUSTER_PIDS=""
	sleep "$GAP"
}

# The slow-reader scenario (issue 11): examples/ticker publishes TICKER_RATE
# keyed updates a second over TICKER_SYMBOLS symbols, the symbols in turn;
# sse-bench opens SLOW_CONNS streams, a fraction SLOW_FRACTION of them slow
# readers that read at 1/SLOW_FACTOR of a fast reader's byte rate. A slow
# reader can take SLOW_FACTOR times fewer events than it is sent, so
# throttled it keeps up only when symbols/interval is below that: with 5
# symbols at 50 updates/s (2.5 events/s for a slow reader), an interval of
# 5 s (1 event/s) leaves it room. Both sides' socket buffers are small
# (server -sndbuf, sse-bench -slow-rcvbuf), so that what a slow reader
# cannot take backs up into the server's queue within seconds rather than
# into megabytes of kernel buffers (see examples/ticker's README).
TICKER_SYMBOLS=${LOADTEST_TICKER_SYMBOLS:-5}
TICKER_RATE=${LOADTEST_TICKER_RATE:-50}
TICKER_QUEUE=64
TICKER_SNDBUF=4096
SLOW_FRACTION=0.05
SLOW_FACTOR=20
SLOW_RCVBUF=4096
THROTTLE=${LOADTEST_THROTTLE:-5s}

# slow_run TAG "TICKER FLAGS" [SSE-BENCH FLAGS...]: one ticker run.
slow_run() {
	local tag=$1 tflags=$2 rc=0 port pid load0
	shift 2
	port=$(free_port) || { note "$tag: no free port"; return 0; }
	ports_wait $(((SLOW_CONNS + PROCS - 1) / PROCS + 500))
	say "$tag"
	load0=$(loadavg)
	# shellcheck disable=SC2086 # tflags is a list of flags
	local srv=("$BIN/ticker" -addr "127.0.0.1:$port" -transport dense -symbols "$TICKER_SYMBOLS" -rate "$TICKER_RATE" -queue "$TICKER_QUEUE" -sndbuf "$TICKER_SNDBUF" -heartbeat "$HB" -drain-spread 1s $tflags)
	"${srv[@]}" >"$LOGS/$tag.server.log" 2>&1 &
	pid=$!
	SERVER_PID=$pid PORT=$port
	log_cmd "${srv[@]}"
	wait_accept "$port" "$pid" "$tag" || { stop_server "$tag"; return 0; }
	local url="http://127.0.0.1:$port/stream"
	local argv=("$BIN/sse-bench" -url "$url" -c "$SLOW_CONNS" -mode fanout -d "$FANOUT_D" -settle "$FANOUT_SETTLE" -procs "$PROCS" -keyed
		-slow-factor "$SLOW_FACTOR" -slow-rcvbuf "$SLOW_RCVBUF" "${@//URL/$url}" -server-pid "$pid" -json "$JSON/$tag.json")
	log_cmd "${argv[@]}"
	timeout -k 10 "$BENCH_TIMEOUT" "${argv[@]}" >"$LOGS/$tag.bench.txt" 2>"$LOGS/$tag.bench.err" || rc=$?
	((rc != 0)) && note "$tag: sse-bench exit status $rc ($(grep -v '^ *[0-9.]*s ' "$LOGS/$tag.bench.err" | tail -n 2 | tr '\n' ' '))"
	# The server's own counters: what it conflated, dropped and closed.
	(exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET /stats HTTP/1.0\r\n\r\n' >&3 && cat <&3) >"$LOGS/$tag.stats" 2>/dev/null || true
	echo "$load0 → $(loadavg)" >"$JSON/$tag.load"
	stop_server "$tag"
	sleep "$GAP"
}

# stat FILE NAME: a counter from the ticker's /stats.
stat() { awk -v k="$2" '$1 == k { print $2; exit }' "$1"; }

if [[ $MODE == slow* ]]; then
	LOAD_START=$(loadavg)
	DATE_START=$(date -u '+%Y-%m-%d %H:%M UTC')
	(cd examples && "$GO" build -o "$BIN/ticker" ./ticker)
	say "slow readers: $SLOW_CONNS connections, $SLOW_FRACTION slow; load average $LOAD_START"
	slow_run base "-conflate always"
	slow_run always "-conflate always" -slow "$SLOW_FRACTION"
	slow_run always-nostall "-conflate always -stall-timeout -1s" -slow "$SLOW_FRACTION"
	slow_run throttled "-conflate always" -slow "$SLOW_FRACTION" -slow-url "URL?throttle=$THROTTLE"
	slow_run off-close "-conflate off -overflow close" -slow "$SLOW_FRACTION"
	slow_run off-drop-oldest "-conflate off -overflow drop-oldest" -slow "$SLOW_FRACTION"
	slow_run off-drop-newest "-conflate off -overflow drop-newest" -slow "$SLOW_FRACTION"
	{
		echo "| run | conflation | slow readers' stream | open at end (fast / slow) | slow streams ended by the server | fast deliveries/s | fast p50 / p99 ms | fast value age p99 ms | slow deliveries/s | slow p50 / p99 ms | slow value age p50 / p99 / max ms | slow lasse-loss events (dropped / conflated) | server: conflated / dropped / slow consumers | load avg |"
		echo "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
		for tag in base always always-nostall throttled off-close off-drop-oldest off-drop-newest; do
			f=$LOGS/$tag.bench.txt st=$LOGS/$tag.stats
			[[ -s $f ]] || continue
			case $tag in
			base) c="always" how="(no slow readers)" ;;
			always) c="always" how="/stream" ;;
			always-nostall) c="always, -stall-timeout off" how="/stream" ;;
			throttled) c="always" how="/stream?throttle=$THROTTLE" ;;
			off-*) c="off, ${tag#off-}" how="/stream" ;;
			esac
			sl() { [[ $tag == base ]] && echo "–" || field "$f" "slow $1"; }
			echo "| $tag | $c | $how | $(field "$f" 'fast open at end') / $(sl 'open at end') | $(sl 'streams dropped') | $(field "$f" 'fast deliveries/s') | $(field "$f" 'fast latency p50 (ms)') / $(field "$f" 'fast latency p99 (ms)') | $(field "$f" 'fast value age p99 (ms)') | $(sl 'deliveries/s') | $(sl 'latency p50 (ms)') / $(sl 'latency p99 (ms)') | $(sl 'value age p50 (ms)') / $(sl 'value age p99 (ms)') / $(sl 'value age max (ms)') | $(sl 'loss events') ($(sl 'loss dropped') / $(sl 'loss conflated')) | $(stat "$st" conflated) / $(stat "$st" dropped) / $(stat "$st" slow_consumers) | $(cat "$JSON/$tag.load") |"
		done
		echo
		echo "$DATE_START; load average $LOAD_START at the start, $(loadavg) at the end. Commands (PORT: a free loopback port; PID: the server's pid):"
		echo
		echo '```sh'
		awk '!seen[$0]++' "$WORK/commands.txt"
		echo '```'
		[[ -s $WORK/notes.txt ]] && { echo; echo "Notes:"; cat "$WORK/notes.txt"; }
	} >"$WORK/slow.md"
	cat "$WORK/slow.md"
	exit 0
fi

if [[ $MODE == cluster* ]]; then
	LOAD_START=$(loadavg)
	say "cluster: $CLUSTER_CONNS connections, rates $RATES; load average $LOAD_START"
	for r in $RATES; do
		# One process at the same load: the baseline.
		bench "cluster-base-$r" dense "$r" "$CLUSTER_CONNS" -mode fanout -d "$FANOUT_D" -settle "$FANOUT_SETTLE"
		cluster_run "cluster-$r" "$r"
	done
	{
		echo "| run | ev/s | connections | deliveries/s | p50 ms | p99 ms | gaps | duplicates | reconnects | failed |"
		echo "|---|---|---|---|---|---|---|---|---|---|"
		for r in $RATES; do
			for tag in "cluster-base-$r" "cluster-$r"; do
				f=$LOGS/$tag.bench.txt
				[[ -s $f ]] || continue
				name="one process"
				[[ $tag == cluster-[0-9]* ]] && name="3 instances on NATS, one killed"
				echo "| $name | $r | $(field "$f" connections) | $(field "$f" 'deliveries/s') | $(field "$f" 'latency p50 (ms)') | $(field "$f" 'latency p99 (ms)') | $(field "$f" gaps) | $(field "$f" duplicates) | $(field "$f" reconnects) | $(field "$f" failed) |"
			done
		done
		echo
		echo "Load average $LOAD_START at the start, $(loadavg) at the end. Commands:"
		echo
		echo '```sh'
		awk '!seen[$0]++' "$WORK/commands.txt"
		echo '```'
		[[ -s $WORK/notes.txt ]] && { echo; echo "Notes:"; cat "$WORK/notes.txt"; }
	} >"$WORK/cluster.md"
	cat "$WORK/cluster.md"
	exit 0
fi

WAITED=0
if [[ $MODE == full ]]; then
	max=${LOADTEST_MAX_LOAD:-1.5}
	limit=${LOADTEST_WAIT_LOAD:-900}
	while :; do
		l1=$(cut -d' ' -f1 /proc/loadavg)
		if awk -v l="$l1" -v m="$max" 'BEGIN { exit !(l < m) }'; then break; fi
		if ((WAITED >= limit)); then
			note "the 1-minute load average was still $l1 after waiting $WAITED s for it to fall below $max; ran anyway"
			break
		fi
		say "load average $(loadavg): waiting for < $max ($WAITED/$limit s)"
		sleep 30
		WAITED=$((WAITED + 30))
	done
fi
LOAD_START=$(loadavg)
DATE_START=$(date -u '+%Y-%m-%d %H:%M UTC')
say "start; load average $LOAD_START"

for n in $IDLE; do
	for s in $SERVERS; do
		bench "idle-$n-$s" "$s" 0 "$n" -mode idle -d "$IDLE_D" -settle "$IDLE_SETTLE"
	done
done
for n in $FANOUT_TIERS; do
	for r in $RATES; do
		for s in $SERVERS; do
			bench "fanout-$n-$r-$s" "$s" "$r" "$n" -mode fanout -d "$FANOUT_D" -settle "$FANOUT_SETTLE"
		done
	done
done

LOAD_END=$(loadavg)
ELAPSED=$((SECONDS - T0))
say "done in $ELAPSED s; load average $LOAD_END"

csv() { tr ' ' ',' <<<"$1"; }
"$BIN/lttable" -dir "$JSON" -servers "$(csv "$SERVERS")" -idle "$(csv "$IDLE")" -fanout "$(csv "$FANOUT_TIERS")" -rates "$(csv "$RATES")" >"$WORK/tables.md"

if [[ $MODE == smoke ]]; then
	cat "$WORK/tables.md"
	if [[ -s $WORK/notes.txt ]]; then
		echo "Notes:"
		cat "$WORK/notes.txt"
	fi
	exit 0
fi

RESULTS=${LOADTEST_RESULTS:-bench/RESULTS.md}
# The charts, drawn from the same reports, go beside the results file; the
# fan-out charts show the last (largest) tier.
TIER_LAST=${FANOUT_TIERS##* }
"$BIN/ltplot" -dir "$JSON" -out "$(dirname "$RESULTS")/charts" -link charts -servers "$(csv "$SERVERS")" -idle "$(csv "$IDLE")" -conns "$TIER_LAST" -rates "$(csv "$RATES")" >"$WORK/charts.md"
gomod() { awk -v m="$2" '$1 == m { print $2; exit }' "$1"; }
{
	echo "## Load test: fastsse vs a raw loop and peer libraries (sse-bench)"
	echo
	echo "Written by \`make loadtest\` (\`bash bench/loadtest.sh full\`); everything between the loadtest markers is replaced on each run."
	echo
	echo "- Date: $DATE_START; the whole run took $((ELAPSED / 60)) min $((ELAPSED % 60)) s."
	echo "- Machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), MemTotal $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr); $("$GO" version | cut -d' ' -f3-)."
	echo "- Versions: fasthttp $(gomod go.mod github.com/valyala/fasthttp) (go.mod); tmaxmax/go-sse $(gomod bench/servers/go.mod github.com/tmaxmax/go-sse), r3labs/sse/v2 $(gomod bench/servers/go.mod github.com/r3labs/sse/v2) (bench/servers/go.mod)."
	echo "- Load average (1, 5, 15 min): $LOAD_START at the start, $LOAD_END at the end$( ((WAITED > 0)) && echo " (after waiting $WAITED s for a quieter machine)"). The client, sse-bench, runs on the same 2 cores as the server, and other work may share the machine."
	echo "- Settings: every server \`-size $SIZE -heartbeat $HB\`; idle runs at \`-rate 0\`, $IDLE_D held after a $IDLE_SETTLE settle; fan-out to ${FANOUT_TIERS// / and to } connections, a $FANOUT_D window after a $FANOUT_SETTLE settle; sse-bench \`-procs $PROCS\` (two client processes, source addresses 127.0.0.2 and .3) in every run. The feed runs with \`-drain-spread 1s\` only to stop faster. Runs go scenario by scenario, every server in turn, each in a fresh process on a fresh port."
	echo "- Servers: \`fastsse stream\` and \`fastsse dense\` are examples/feed; the others are bench/servers (same contract: GET /feed, consecutive ids (feed's EPOCH-1, EPOCH-2, ...; the peers' 1, 2, 3, ...), data = send time in Unix ns, a space, x filler)."
	echo
	echo "Commands (PORT: a free loopback port; PID: the server's pid; binaries built by the script from ./loadtest/sse-bench, ./examples/feed and bench/servers):"
	echo
	echo '```sh'
	awk '!seen[$0]++' "$WORK/commands.txt"
	echo '```'
	echo
	cat "$WORK/tables.md"
	echo "#### Charts (bench/servers/cmd/ltplot, from the same reports; fan-out to $TIER_LAST connections)"
	echo
	cat "$WORK/charts.md"
	if [[ -s $WORK/notes.txt ]]; then
		echo "Notes from the run:"
		echo
		cat "$WORK/notes.txt"
		echo
	fi
} >"$WORK/section.md"
"$BIN/lttable" -splice "$RESULTS" <"$WORK/section.md"
cat "$WORK/tables.md"
say "$RESULTS updated (loadtest section)"
