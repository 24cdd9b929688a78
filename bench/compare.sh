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
for rev in "$a" "$b"; do
  git worktree add -q --detach "$bin/tree" "$rev"
  (cd "$bin/tree" && go build -o "$bin/node-$(git rev-parse --short HEAD)" ./cmd/node)
  git worktree remove --force "$bin/tree"
done
for round in $(seq "$rounds"); do
  for rev in "$a" "$b"; do
    node="$bin/node-$(git rev-parse --short "$rev")"
    for i in 0 1 2; do
      join=""; [ "$i" -gt 0 ] && join="-join 127.0.0.1:17946"
      "$node" -name "n$i" -gossip-addr "127.0.0.1:1$((7946 + 10 * i))" -grpc-addr "127.0.0.1:1$((7947 + 10 * i))" \
        -http-addr "" -gossip-profile local -log-level warn $join 2>>"$bin/nodes.log" &
      echo $! > "$bin/n$i.pid"
    done
    sleep 2
    pids="$(cat "$bin/n0.pid"),$(cat "$bin/n1.pid"),$(cat "$bin/n2.pid")"
    echo "# round $round, nodes at $rev"
    "$bin/loadgen" -targets 127.0.0.1:17947,127.0.0.1:17957,127.0.0.1:17967 -join 127.0.0.1:17946 -expect-members 4 \
      -pids "$pids" -quiet -json -action "r$round-$rev" "$@"
    for i in 0 1 2; do kill "$(cat "$bin/n$i.pid")" 2>/dev/null || true; done
    for i in 0 1 2; do while kill -0 "$(cat "$bin/n$i.pid")" 2>/dev/null; do sleep 0.1; done; rm -f "$bin/n$i.pid"; done
  done
done
