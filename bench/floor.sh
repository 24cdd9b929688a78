#!/usr/bin/env bash
# The floor of DESIGN.md §5 and issue 13: a bare gRPC server that answers
# the RateLimiter API with a constant (bench/floor), and a 3-node cluster,
# driven in turns by the same load generator in client mode (64 callers,
# 10,000 uniform keys, limit 1000 per 60 s), so that every cluster figure
# is a ratio to the floor measured in the same run.
#
#   bench/floor.sh [duration] [rounds] [extra loadgen flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s} rounds=${2:-3}
shift 2 || shift $# || true
bin=$(mktemp -d)
trap 'kill $(cat "$bin"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/node" ./cmd/node
go build -o "$bin/loadgen" ./cmd/loadgen
go build -o "$bin/floor" ./bench/floor

"$bin/floor" -addr 127.0.0.1:17990 & echo $! > "$bin/floor.pid"
. bench/nodes.sh
start_nodes "$bin/node"

run() { # $1: name, $2: targets; prints "name checks/s p50 p99"
  "$bin/loadgen" -mode client -targets "$2" -duration "$duration" -limit 1000 -window 60s -quiet -json "${@:3}" |
    sed -n 's/.*"checks_per_sec":\([0-9.]*\).*"p50_us":\([0-9.]*\).*"p99_us":\([0-9.]*\).*/\1 \2 \3/p' |
    { read -r cps p50 p99; echo "$1 $cps $p50 $p99"; }
}
echo "# round target checks/s p50_us p99_us, then the cluster as a ratio to the floor of its round"
for round in $(seq "$rounds"); do
  f=$(run floor 127.0.0.1:17990 "$@")
  c=$(run cluster "$(node_targets)" -action "r$round" "$@")
  echo "$round $f"
  echo "$round $c"
  awk -v f="$f" -v c="$c" 'BEGIN { split(f, a, " "); split(c, b, " ");
    printf "%s ratio: %.2fx the floor'"'"'s checks/s; p50 %.2fx, p99 %.2fx\n", "'"$round"'", b[2]/a[2], b[3]/a[3], b[4]/a[4] }'
done
