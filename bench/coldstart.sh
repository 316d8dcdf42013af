#!/usr/bin/env bash
# Cold start of the example servers: exec to the first event a client
# receives (bench/coldstart), for examples/feed (stream and dense
# transports) with the stream opened once the server logs that it listens
# and with it opened during start-up (a connect loop from exec), and for
# the serverless case: fastsse's net/http handler (bench/coldstart/httpsse,
# shaped as examples/lambda).
#
#   bash bench/coldstart.sh          # 30 rounds per case
#   COLDSTART_N=5 bash bench/coldstart.sh
#
# The feed publishes at -rate 1000, so its first tick follows the stream's
# opening by at most 1 ms (its stream opens with no event of its own); the
# net/http server opens every stream with a "hello" event. Loopback only;
# every round is bounded (coldstart -timeout); the binaries are built into a
# temporary directory, removed at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GO=${GO:-go}
N=${COLDSTART_N:-30}
BIN=$(mktemp -d "${TMPDIR:-/tmp}/coldstart.XXXXXX")
trap 'rm -rf "$BIN"' EXIT

"$GO" build -o "$BIN/" ./bench/coldstart ./bench/coldstart/httpsse
(cd examples && "$GO" build -o "$BIN/feed" ./feed)
cd "$BIN"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in ready during; do
	./coldstart -n "$N" -mode "$mode" -- ./feed -addr {addr} -rate 1000 -drain-spread 0s
	./coldstart -n "$N" -mode "$mode" -- ./feed -addr {addr} -transport dense -rate 1000 -drain-spread 0s
	./coldstart -n "$N" -mode "$mode" -- ./httpsse -addr {addr}
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
