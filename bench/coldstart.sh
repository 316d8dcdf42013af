#!/usr/bin/env bash
# Cold start of the example servers: exec to the first event a client
# receives (bench/coldstart), for examples/feed (stream and dense
# transports) with the stream opened once the server logs that it listens
# and with it opened during start-up (a connect loop from exec), and for
# the serverless case: examples/lambda, built as for Lambda (-tags
# lambda.norpc) and run with -local, which serves the same net/http handler
# from a local server (Lambda's runtime API does not run here).
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

"$GO" build -o "$BIN/" ./bench/coldstart
(cd examples && "$GO" build -o "$BIN/feed" ./feed)
(cd examples/lambda && "$GO" build -tags lambda.norpc -o "$BIN/lambda" .)
cd "$BIN"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in ready during; do
	./coldstart -n "$N" -mode "$mode" -- ./feed -addr {addr} -rate 1000 -drain-spread 0s
	./coldstart -n "$N" -mode "$mode" -- ./feed -addr {addr} -transport dense -rate 1000 -drain-spread 0s
	./coldstart -n "$N" -mode "$mode" -- ./lambda -local {addr}
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
