#!/usr/bin/env bash
# Runs the same load against nodes built from two revisions, in turns, to
# compare them on a noisy machine: 3 nodes on loopback built from each
# revision, the load generator from the working tree, one JSON line per
# run.
#
#   bench/compare.sh REV_A REV_B [rounds] [loadgen flags...]
#   bench/compare.sh HEAD~1 HEAD 3 -mode embedded -concurrency 64 -duration 5s
#   bench/compare.sh HEAD~1 HEAD 2 -mode client -duration 6s
#
# It starts and stops every node itself (by PID).
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 rounds=${3:-2}
shift 2; [ $# -gt 0 ] && shift
bin=$(mktemp -d)
trap 'kill $(cat "$bin"/*.pid 2>/dev/null) 2>/dev/null || true; git worktree remove --force "$bin/tree" 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/loadgen" ./cmd/loadgen
. bench/nodes.sh
for rev in "$a" "$b"; do
  git worktree add -q --detach "$bin/tree" "$rev"
  (cd "$bin/tree" && go build -o "$bin/node-$(git rev-parse --short HEAD)" ./cmd/node)
  git worktree remove --force "$bin/tree"
done
for round in $(seq "$rounds"); do
  for rev in "$a" "$b"; do
    node="$bin/node-$(git rev-parse --short "$rev")"
    start_nodes "$node"
    pids=$(node_pids)
    echo "# round $round, nodes at $rev"
    "$bin/loadgen" -targets "$(node_targets)" -join "$(node_seed)" -expect-members 4 \
      -pids "$pids" -quiet -json -action "r$round-$rev" "$@"
    stop_nodes
  done
done
