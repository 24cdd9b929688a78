#!/usr/bin/env bash
# Live heap per key held: 3 nodes on loopback, filled with 1,000,000 keys
# (long window, so none expires) by the load generator; heap read from each
# node's pprof endpoint after a forced GC, before and after; then the
# nodes' peak resident memory (VmHWM), which the GC's pacing sets:
# compare with GOGC=100 bench/memory.sh, which turns cmd/node's heap floor
# off (DESIGN.md §5). Last, where node m0's heap growth went, by the
# function that allocated it (pprof's -base difference).
set -euo pipefail
cd "$(dirname "$0")/.."
keys=${1:-1000000}
bin=$(mktemp -d)
trap 'kill $(cat "$bin"/*.pid 2>/dev/null) 2>/dev/null || true; wait; rm -rf "$bin"' EXIT
go build -o "$bin/node" ./cmd/node
go build -o "$bin/loadgen" ./cmd/loadgen
for i in 0 1 2; do
  join=""; [ "$i" -gt 0 ] && join="-join 127.0.0.1:27946"
  "$bin/node" -name "m$i" -gossip-addr "127.0.0.1:2$((7946 + 10 * i))" -grpc-addr "127.0.0.1:2$((7947 + 10 * i))" \
    -http-addr "" -gossip-profile local -log-level warn -pprof-addr "127.0.0.1:2$((6060 + i))" $join 2>/dev/null &
  echo $! > "$bin/m$i.pid"
done
sleep 2
# heap NAME: the three nodes' live heaps summed, after a forced GC; each
# node's profile (pprof reads this text form too) is kept as NAME.mI.
heap() {
  local total=0
  for i in 0 1 2; do
    curl -s "localhost:2$((6060 + i))/debug/pprof/heap?gc=1&debug=1" > "$bin/$1.m$i"
    total=$((total + $(awk '/^# HeapAlloc/ {print $4}' "$bin/$1.m$i")))
  done
  echo "$total"
}
before=$(heap before)
"$bin/loadgen" -mode client -targets 127.0.0.1:27947,127.0.0.1:27957,127.0.0.1:27967 -keys "$keys" \
  -dist sequential -per-call 50 -concurrency 16 -limit 100 -window 1h -duration 20s -quiet
sleep 1
after=$(heap after)
echo "heap before $before B, after $after B: $(( (after - before) / keys )) B per key over $keys keys"
peak=0
for i in 0 1 2; do
  peak=$((peak + $(awk '/^VmHWM/ {print $2}' "/proc/$(cat "$bin/m$i.pid")/status")))
done
echo "peak resident memory of the 3 nodes: $((peak / 1024)) MiB"
echo "m0's heap growth by allocating function:"
go tool pprof -top -inuse_space -base "$bin/before.m0" "$bin/node" "$bin/after.m0" 2>/dev/null | awk '/flat%/ {p = 1; next} p && n++ < 4 {sub(/\[.*/, "", $6); print "  " $1, $6}'
