#!/usr/bin/env bash
# Many idle streams on one machine (issue 14): examples/feed with the dense
# transport in many prefork processes, sse-bench in many worker processes
# over many source addresses, small kernel socket buffers on both ends, set
# per socket. Measures user-space bytes per stream, kernel memory per
# socket, connects per second and the heartbeat CPU of the idle server.
#
#   bash bench/idle-million.sh                 # 250,000 streams
#   IDLE_N=1000000 bash bench/idle-million.sh  # a million
#
# Settings (environment): IDLE_N (streams; 250000), IDLE_PROCS (server
# processes; N / 18,000 + 1, at least 2), IDLE_CLIENTS (sse-bench worker
# processes; N / 18,000 rounded up), IDLE_SOCKBUF
# (bytes, both ends; 4096), IDLE_KEEPALIVE (the feed's -tcp-keepalive;
# false), IDLE_HB (heartbeat; 15s), IDLE_RAMP (connects/s
# asked for; 2500), IDLE_D (the idle window; 60s), IDLE_MIN_FREE_MB
# (MemAvailable floor; 3072), IDLE_PPROF=1 (serve pprof; take one child's
# heap profile mid-window), IDLE_CLIENT_GOMAXPROCS (GOMAXPROCS of sse-bench
# and its workers, which inherit it; empty: Go's default, one per core). The logs and the summary stay in a temporary
# directory (printed at the end).
#
# One process may open 20,000 files here, so each server process holds at
# most ~19,900 streams and each client worker 18,000; sse-bench gives each
# worker its own source addresses (127.0.0.2 and up, at most 12,000
# connections on each: see portsPerSource in loadtest/config.go).
#
# Loopback only. Bounded: sse-bench bounds itself (connect window N / ramp
# + 30 s, settle, window) and runs under timeout; a watchdog stops the run
# (SIGINT to sse-bench, which reports what it has) when MemAvailable falls
# under the floor. On exit, whatever the cause, every process the script
# started is stopped (SIGTERM, then SIGKILL), by pid.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}
N=${IDLE_N:-250000}
PER=18000
PROCS=${IDLE_PROCS:-$((N / PER + 1 > 2 ? N / PER + 1 : 2))}
CLIENTS=${IDLE_CLIENTS:-$(((N + PER - 1) / PER))}
SOCKBUF=${IDLE_SOCKBUF:-4096}
KEEPALIVE=${IDLE_KEEPALIVE:-false} # the feed's -tcp-keepalive
HB=${IDLE_HB:-15s}
RAMP=${IDLE_RAMP:-2500}
D=${IDLE_D:-60s}
PPROF=${IDLE_PPROF:-}
CLIENT_GOMAXPROCS=${IDLE_CLIENT_GOMAXPROCS:-} # GOMAXPROCS of sse-bench and its workers; empty: Go's default # 1: serve pprof, and take one child's heap profile mid-window
SETTLE=10s
MIN_FREE_MB=${IDLE_MIN_FREE_MB:-3072}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/idle-million.XXXXXX")
MASTER="" BENCH="" WATCH="" SAMPLER=""
T0=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - T0)) "$*" >&2; }

alive() {
	local s
	s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $s && $s != Z* ]]
}

# stop_pids SECONDS PID...: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pids() {
	local grace=$1 p left
	shift
	for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
	for _ in $(seq 1 $((grace * 10))); do
		left=0
		for p in "$@"; do alive "$p" && left=1; done
		((left)) || return 0
		sleep 0.1
	done
	for p in "$@"; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
}

# descendants PID: its children, their children, and so on.
descendants() {
	local c
	for c in $(pgrep -P "$1" 2>/dev/null || true); do
		echo "$c"
		descendants "$c"
	done
}

cleanup() {
	local rc=$? pids=()
	[[ -n $WATCH ]] && kill "$WATCH" 2>/dev/null || true
	[[ -n $SAMPLER ]] && kill "$SAMPLER" 2>/dev/null || true
	if [[ -n $BENCH ]]; then
		# timeout, sse-bench and its workers (a worker whose parent is gone
		# stops by itself too: its stdin ends).
		pids=($(descendants "$BENCH"))
		stop_pids 10 "$BENCH" "${pids[@]}"
	fi
	if [[ -n $MASTER ]]; then
		pids=($(cat "$WORK/children" 2>/dev/null || true) $(pgrep -P "$MASTER" 2>/dev/null || true))
		stop_pids 20 "$MASTER" "${pids[@]}"
	fi
	# A prefork master killed while it restarted a child leaves an orphan:
	# whatever still runs from this run's binaries goes too.
	pids=($(pgrep -f "^$WORK/(feed|sse-bench) " 2>/dev/null || true))
	((${#pids[@]} == 0)) || stop_pids 5 "${pids[@]}"
	wait 2>/dev/null || true
	rm -f "$WORK/feed" "$WORK/sse-bench"
	say "logs and figures kept in $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

memavail_mb() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }
slab_kb() { awk '/^Slab:/ { print $2 }' /proc/meminfo; }
tcp_inuse() { awk '$1 == "TCP:" { print $3 }' /proc/net/sockstat; }
tcp_mem_pages() { awk '$1 == "TCP:" { for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1) }' /proc/net/sockstat; }
# sum_status FIELD PID...: the sum of a /proc/PID/status field, in kB.
sum_status() {
	local f=$1
	shift
	local p t=0 v
	for p in "$@"; do
		v=$(awk -v f="$f:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
# cpu_ticks PID...: utime + stime, in clock ticks.
cpu_ticks() {
	local p t=0 v
	for p in "$@"; do
		v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
# snapshot NAME: kernel and memory figures into $WORK/NAME.*
snapshot() {
	{
		echo "memavail_mb $(memavail_mb)"
		echo "slab_kb $(slab_kb)"
		echo "tcp_inuse $(tcp_inuse)"
		echo "tcp_mem_pages $(tcp_mem_pages)"
		echo "uptime $(cut -d' ' -f1-3 /proc/loadavg)"
	} >"$WORK/$1.txt"
	cat /proc/net/sockstat >"$WORK/$1.sockstat"
	grep -E '^(MemAvailable|Slab|SReclaimable|SUnreclaim|KernelStack|PageTables):' /proc/meminfo >"$WORK/$1.meminfo"
	[[ -r /proc/slabinfo ]] && cat /proc/slabinfo >"$WORK/$1.slabinfo" 2>/dev/null || true
	# The kernel's TCP counters and the loopback backlog's drops.
	cat /proc/net/netstat /proc/net/snmp >"$WORK/$1.netstat" 2>/dev/null || true
	local d=0 a b rest
	while read -r a b rest; do d=$((d + 16#$b)); done </proc/net/softnet_stat
	echo "softnet_dropped $d" >>"$WORK/$1.txt"
}
# tcpctr NAME FIELD: a counter of /proc/net/netstat or snmp in snapshot NAME.
tcpctr() {
	awk -v f="$2" '$1 ~ /:$/ { if (!(($1) in hdr)) { hdr[$1] = 1; split($0, names); next } for (i = 2; i <= NF; i++) if (names[i] == f) { print $i; exit } delete hdr[$1] }' "$WORK/$1.netstat" 2>/dev/null
}
# get NAME KEY: the value after KEY in $WORK/NAME.txt (empty when absent).
get() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$WORK/$1.txt" 2>/dev/null || true; }

free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 10000))
		[[ -z $(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null) ]] && { echo "$p"; return 0; }
	done
	return 1
}

say "building into $WORK"
"$GO" build -o "$WORK/sse-bench" ./loadtest/sse-bench
(cd examples && "$GO" build -o "$WORK/feed" ./feed)

if (($(memavail_mb) < MIN_FREE_MB + 2048)); then
	say "only $(memavail_mb) MB available: not starting"
	exit 1
fi
PORT=$(free_port)
snapshot before
say "N=$N: $PROCS server processes, $CLIENTS client workers (source addresses 127.0.0.2 and up), sockbuf $SOCKBUF, heartbeat $HB, ramp $RAMP/s; load average $(get before uptime)"

# The server.
"$WORK/feed" -prefork "$PROCS" -transport dense -addr "127.0.0.1:$PORT" -rate 0 -heartbeat "$HB" \
	-sockbuf "$SOCKBUF" -tcp-keepalive="$KEEPALIVE" -drain-spread 2s ${PPROF:+-pprof} >"$WORK/server.log" 2>&1 &
MASTER=$!
for _ in $(seq 1 300); do
	(($(ss -Hltn "sport = :$PORT" | wc -l) >= PROCS)) && break
	alive "$MASTER" || { say "the server exited: $(tail -n 3 "$WORK/server.log")"; exit 1; }
	sleep 0.1
done
(($(ss -Hltn "sport = :$PORT" | wc -l) >= PROCS)) || { say "not all $PROCS processes listen after 30 s"; exit 1; }
pgrep -P "$MASTER" >"$WORK/children"
mapfile -t KIDS <"$WORK/children"
sleep 2
snapshot listening
echo "anon_kb $(sum_status RssAnon "${KIDS[@]}") rss_kb $(sum_status VmRSS "${KIDS[@]}") master_anon_kb $(sum_status RssAnon "$MASTER") master_rss_kb $(sum_status VmRSS "$MASTER")" >"$WORK/server0.txt"
say "server: master $MASTER and ${#KIDS[@]} children listen on 127.0.0.1:$PORT; $(cat "$WORK/server0.txt")"

# The client.
BENCH_ARGV=("$WORK/sse-bench" -url "http://127.0.0.1:$PORT/feed" -c "$N" -procs "$CLIENTS" -mode idle
	-ramp "$RAMP" -settle "$SETTLE" -d "$D" -sockbuf "$SOCKBUF" -timeout 30s
	-server-pid "$(paste -sd, "$WORK/children")" -json "$WORK/bench.json")
echo "${CLIENT_GOMAXPROCS:+GOMAXPROCS=$CLIENT_GOMAXPROCS }${BENCH_ARGV[*]}" | sed "s|$WORK/||g; s|:$PORT/|:PORT/|; s|-server-pid [0-9,]*|-server-pid PIDS|" >"$WORK/commands.txt"
LIMIT=$((N / RAMP + 30 + 10 + ${D%s} + 120))
env ${CLIENT_GOMAXPROCS:+GOMAXPROCS=$CLIENT_GOMAXPROCS} timeout -k 15 "$LIMIT" "${BENCH_ARGV[@]}" >"$WORK/bench.txt" 2>"$WORK/bench.err" &
BENCH=$!

# The watchdog: stop the run when memory runs short.
(
	while sleep 1; do
		m=$(memavail_mb)
		if ((m < MIN_FREE_MB)); then
			snapshot stopped
			echo "$(date -u +%T) MemAvailable $m MB < $MIN_FREE_MB MB: stopping the run at $((($(tcp_inuse) - $(get before tcp_inuse)) / 2)) connections" >>"$WORK/watchdog.txt"
			kill -INT "$BENCH" 2>/dev/null
			exit 0
		fi
	done
) &
WATCH=$!
# The sampler: TCP sockets in use, MemAvailable (MB), Slab (kB), the
# load average and the runnable and blocked tasks, once a second; the
# busiest processes every 10 s.
(
	i=0
	while sleep 1; do
		echo "$SECONDS $(tcp_inuse) $(memavail_mb) $(slab_kb) $(cut -d' ' -f1 /proc/loadavg) $(awk '/^procs_(running|blocked)/ { printf "%s ", $2 }' /proc/stat)"
		((i++ % 10)) || top -b -n 1 -w 200 | sed -n '1,3p;7,14p' >>"$WORK/top.txt"
	done >"$WORK/samples.txt"
) &
SAMPLER=$!

# Mid-window: memory, kernel figures and the idle server's CPU.
phase_seen() { grep -q " $1 " "$WORK/bench.err" 2>/dev/null; }
until phase_seen measure || ! alive "$BENCH"; do sleep 1; done
if alive "$BENCH"; then
	say "all connected: $(grep ' measure ' "$WORK/bench.err" | tail -n 1 | cut -c1-60)"
	c0=$(cpu_ticks "${KIDS[@]}") t0=$(date +%s.%N) m0=$(cpu_ticks "$MASTER")
	w=$((${D%s} / 2))
	sleep "$w"
	c1=$(cpu_ticks "${KIDS[@]}") t1=$(date +%s.%N) m1=$(cpu_ticks "$MASTER")
	snapshot open
	if [[ -n $PPROF ]]; then
		# One child answers (SO_REUSEPORT): its heap and its stream count.
		curl -s -m 20 -o "$WORK/heap.pb.gz" "http://127.0.0.1:$PORT/debug/pprof/heap?gc=1" || true
	fi
	echo "anon_kb $(sum_status RssAnon "${KIDS[@]}") rss_kb $(sum_status VmRSS "${KIDS[@]}") master_anon_kb $(sum_status RssAnon "$MASTER") master_rss_kb $(sum_status VmRSS "$MASTER") cpu_cores $(awk -v c="$((c1 - c0))" -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", c / hz / (b - a) }') master_cpu_ticks $((m1 - m0)) streams $((($(tcp_inuse) - $(get before tcp_inuse)) / 2))" >"$WORK/server1.txt"
	# The workers: the processes running sse-bench -worker.
	clients=($(pgrep -f "^$WORK/sse-bench -worker" || true))
	echo "client_anon_kb $(sum_status RssAnon "${clients[@]}") client_rss_kb $(sum_status VmRSS "${clients[@]}") client_procs ${#clients[@]}" >>"$WORK/server1.txt"
	say "open: $(cat "$WORK/server1.txt" | tr '\n' ' ')"
fi
rc=0
wait "$BENCH" || rc=$?
BENCH=""
kill "$WATCH" "$SAMPLER" 2>/dev/null || true
WATCH="" SAMPLER=""
((rc == 0)) || say "sse-bench exit status $rc: $(grep -v '^ *[0-9.]*s ' "$WORK/bench.err" | tail -n 3 | tr '\n' ' ')"
stop_pids 20 "$MASTER" "${KIDS[@]}"
wait "$MASTER" 2>/dev/null || true
MASTER=""
snapshot after

# The summary.
{
	echo "### idle streams: $N asked, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo '```sh'
	echo "feed -prefork $PROCS -transport dense -addr 127.0.0.1:PORT -rate 0 -heartbeat $HB -sockbuf $SOCKBUF -drain-spread 2s &"
	cat "$WORK/commands.txt"
	echo '```'
	echo
	awk '/^(connections|opened|failed|  failed:|open at end|connect phase|connect p50|connect p99 |connect max|client rss per conn|server rss per conn|server cpu|bytes\/s)/' "$WORK/bench.txt"
	echo
	[[ -s $WORK/watchdog.txt ]] && { echo "watchdog: $(cat "$WORK/watchdog.txt")"; echo; }
	echo "load average before: $(get before uptime); at the open: $(get open uptime 2>/dev/null)"
	echo "MemAvailable MB: before $(get before memavail_mb), open $(get open memavail_mb 2>/dev/null), after $(get after memavail_mb)"
	echo "Slab kB: before $(get before slab_kb), open $(get open slab_kb 2>/dev/null), after $(get after slab_kb)"
	echo "sockstat TCP inuse: before $(get before tcp_inuse), open $(get open tcp_inuse 2>/dev/null); TCP mem pages: before $(get before tcp_mem_pages), open $(get open tcp_mem_pages 2>/dev/null)"
	echo "server before: $(cat "$WORK/server0.txt")"
	echo "server open: $(cat "$WORK/server1.txt" 2>/dev/null | tr '\n' ' ')"
	if [[ -s $WORK/open.txt ]]; then
		awk -v s0="$(get before slab_kb)" -v s1="$(get open slab_kb)" -v i0="$(get before tcp_inuse)" -v i1="$(get open tcp_inuse)" \
			-v a0="$(get server0 anon_kb)" -v a1="$(get server1 anon_kb)" -v r1="$(get server1 rss_kb)" -v m1="$(get server1 master_anon_kb)" \
			-v c1="$(get server1 client_anon_kb)" 'BEGIN {
			n = (i1 - i0) / 2
			printf "streams (TCP inuse delta / 2): %d\n", n
			printf "kernel slab per socket: %.0f bytes (per stream, both ends: %.0f)\n", (s1 - s0) * 1024 / (2 * n), (s1 - s0) * 1024 / n
			printf "server user space per stream (RssAnon of the children, open - before): %.0f bytes; all of it (children RssAnon + master RssAnon) / streams: %.0f bytes\n", (a1 - a0) * 1024 / n, (a1 + m1) * 1024 / n
			printf "server VmRSS of the children / streams: %.0f bytes (counts the shared binary once per process)\n", r1 * 1024 / n
			printf "client RssAnon / streams: %.0f bytes\n", c1 * 1024 / n
		}'
	fi
	if [[ -s $WORK/open.slabinfo && -s $WORK/before.slabinfo ]]; then
		echo "slab caches that grew by more than 1 MB, before → open (bytes per socket: over 2 × streams):"
		awk -v n2="$((2 * ($(get open tcp_inuse) - $(get before tcp_inuse)) / 2))" 'NR == FNR { if (FNR > 2) b[$1] = $3 * $4; next }
			FNR > 2 { d = $3 * $4 - b[$1]; if (d > 1e6) printf "  %-22s %8.1f MB  object %5d B  %6.0f B/socket\n", $1, d / 1048576, $4, d / n2 }' \
			"$WORK/before.slabinfo" "$WORK/open.slabinfo" | sort -k2 -nr
	fi
	if [[ -s $WORK/samples.txt ]]; then
		awk -v i0="$(get before tcp_inuse)" -v n="$N" '{ t[NR] = $1; c[NR] = ($2 - i0) / 2 } END {
			best = 0
			for (i = 6; i <= NR; i++) { r = (c[i] - c[i - 5]) / (t[i] - t[i - 5]); if (r > best) best = r }
			for (i = 1; i <= NR; i++) if (c[i] >= 0.99 * n) { printf "connects: 99%% of %d open %d s after the start: %.0f/s on average; best 5 s: %.0f/s\n", n, t[i] - t[1] + 1, 0.99 * n / (t[i] - t[1] + 1), best; exit }
			printf "connects: never 99%% of %d; most open at once %d; best 5 s: %.0f/s\n", n, c[NR], best
		}' "$WORK/samples.txt"
		awk 'NR == 1 || $3 < m { m = $3 } END { printf "lowest MemAvailable during the run: %d MB\n", m }' "$WORK/samples.txt"
	fi
	for f in TCPAbortOnTimeout TCPKeepAlive EstabResets TCPSynRetrans; do
		printf '%s during the run: %s\n' "$f" "$(($(tcpctr after "$f" || echo 0) - $(tcpctr before "$f" || echo 0)))"
	done
	echo "loopback backlog drops (softnet_stat) during the run: $(($(get after softnet_dropped) - $(get before softnet_dropped)))"
	echo "load average at the end: $(get after uptime)"
} >"$WORK/summary.md"
cat "$WORK/summary.md"
exit "$rc"
