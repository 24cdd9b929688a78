#!/usr/bin/env bash
# Node CPU per check in client mode, one node, with and without the Go
# client's batching (client.NewBatching via loadgen -client-batching), in
# turns: the figures of DESIGN.md §5.
#
#   bench/client.sh [duration] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5s} rounds=${2:-2}
bin=$(mktemp -d)
trap 'kill $(cat "$bin"/*.pid 2>/dev/null) 2>/dev/null || true; wait; rm -rf "$bin"' EXIT
go build -o "$bin/node" ./cmd/node
go build -o "$bin/loadgen" ./cmd/loadgen
"$bin/node" -name n0 -gossip-addr 127.0.0.1:17946 -grpc-addr 127.0.0.1:17947 -http-addr "" -log-level warn 2>/dev/null &
echo $! > "$bin/n0.pid"
sleep 1.5
for round in $(seq "$rounds"); do
  for batching in false true; do
    echo "# round $round, -client-batching=$batching"
    "$bin/loadgen" -mode client -targets 127.0.0.1:17947 -client-batching="$batching" -duration "$duration" \
      -pids "$(cat "$bin/n0.pid")" -quiet -json -action "r$round-$batching"
  done
done
