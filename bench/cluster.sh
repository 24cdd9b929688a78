#!/usr/bin/env bash
# Runs the cluster figures of DESIGN.md: 3 nodes and the load generator on
# loopback, in client and embedded mode, with batching on and off.
#
#   bench/cluster.sh [duration] [extra loadgen flags...]
#
# It builds both commands, starts and stops every node itself (by PID), and
# prints one JSON report per run.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
shift || true
bin=$(mktemp -d)
trap 'kill $(cat "$bin"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/node" ./cmd/node
go build -o "$bin/loadgen" ./cmd/loadgen

start_nodes() { # $1: batch size for the nodes' own forwarding
  for i in 0 1 2; do
    join=""; [ "$i" -gt 0 ] && join="-join 127.0.0.1:17946"
    "$bin/node" -name "n$i" -gossip-addr "127.0.0.1:1$((7946 + 10 * i))" -grpc-addr "127.0.0.1:1$((7947 + 10 * i))" \
      -http-addr "" -gossip-profile local -batch-size "$1" -log-level warn $join 2>>"$bin/nodes.log" &
    echo $! > "$bin/n$i.pid"
  done
  sleep 2
}
stop_nodes() {
  for i in 0 1 2; do kill "$(cat "$bin/n$i.pid")" 2>/dev/null || true; done
  for i in 0 1 2; do while kill -0 "$(cat "$bin/n$i.pid")" 2>/dev/null; do sleep 0.1; done; rm -f "$bin/n$i.pid"; done
}
pids() { echo "$(cat "$bin/n0.pid"),$(cat "$bin/n1.pid"),$(cat "$bin/n2.pid")"; }
targets=127.0.0.1:17947,127.0.0.1:17957,127.0.0.1:17967

for batch in 256 1; do
  start_nodes "$batch"
  echo "# client mode, node batch size $batch"
  "$bin/loadgen" -mode client -targets "$targets" -duration "$duration" -pids "$(pids)" -quiet -json "$@"
  echo "# embedded mode, batch size $batch"
  "$bin/loadgen" -mode embedded -join 127.0.0.1:17946 -expect-members 4 -batch-size "$batch" \
    -duration "$duration" -pids "$(pids)" -quiet -json "$@"
  stop_nodes
done
