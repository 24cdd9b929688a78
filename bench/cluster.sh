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
trap 'kill $(cat "$bin"/*.pid 2>/dev/null) 2>/dev/null || true; wait; rm -rf "$bin"' EXIT
go build -o "$bin/node" ./cmd/node
go build -o "$bin/loadgen" ./cmd/loadgen

. bench/nodes.sh
targets=$(node_targets)

for batch in 256 1; do
  start_nodes "$bin/node" -batch-size "$batch"
  echo "# client mode, node batch size $batch"
  "$bin/loadgen" -mode client -targets "$targets" -duration "$duration" -pids "$(node_pids)" -quiet -json "$@"
  echo "# embedded mode, batch size $batch"
  "$bin/loadgen" -mode embedded -join "$(node_seed)" -expect-members 4 -batch-size "$batch" \
    -duration "$duration" -pids "$(node_pids)" -quiet -json "$@"
  stop_nodes
done
