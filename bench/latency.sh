#!/usr/bin/env bash
# The realism check of DESIGN.md §5: do batches still form when owners are
# a real round trip away? Three cmd/node processes, each advertising its
# gRPC port through bench/delayproxy, which holds every chunk for half the
# round trip each way, and the embedded load generator as a fourth member:
# every forwarded check crosses a proxy. It runs the embedded row of
# floor.sh with the proxies adding nothing, then with them adding the round
# trip, on fresh nodes each time; the proxies' own cost is in both runs.
# Each run prints checks/s, p50/p99, checks per frame, the read+write
# syscalls per forwarded check (sender and owners; the proxies' are not
# counted) and the delay the proxies achieved. Loopback only; no root.
#
#   bench/latency.sh [duration] [rtt] [extra loadgen flags...]
#   bench/latency.sh 5s 1ms
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5s} rtt=${2:-1ms}
shift 2 || shift $# || true
bin=$(mktemp -d)
trap 'kill $(cat "$bin"/*.pid 2>/dev/null) 2>/dev/null || true; wait; rm -rf "$bin"' EXIT
go build -o "$bin/node" ./cmd/node
go build -o "$bin/loadgen" ./cmd/loadgen
go build -o "$bin/drlctl" ./cmd/drlctl
go build -o "$bin/delayproxy" ./bench/delayproxy
. bench/nodes.sh

run() { # $1: label, $2: the round trip the proxies add
  local routes=() i
  for i in 0 1 2; do routes+=("127.0.0.1:$((port + 5 + 10 * i))=127.0.0.1:$((port + 1 + 10 * i))"); done
  "$bin/delayproxy" -rtt "$2" "${routes[@]}" >"$bin/proxy.out" & echo $! > "$bin/proxy.pid"
  sleep 0.2; kill -0 "$(cat "$bin/proxy.pid")" || { echo "latency.sh: the proxies could not listen" >&2; exit 1; }
  for i in 0 1 2; do
    local join=""; [ "$i" -gt 0 ] && join="-join $(node_seed)"
    "$bin/node" -name "n$i" -gossip-addr "127.0.0.1:$((port + 10 * i))" -grpc-addr "127.0.0.1:$((port + 1 + 10 * i))" \
      -grpc-advertise "127.0.0.1:$((port + 5 + 10 * i))" -http-addr "" -gossip-profile local -log-level warn $join 2>>"$bin/nodes.log" &
    echo $! > "$bin/n$i.pid"
  done
  "$bin/drlctl" -addr "$(node_targets)" -timeout 30s wait >/dev/null
  local out
  out=$("$bin/loadgen" -mode embedded -join "$(node_seed)" -expect-members 4 -duration "$duration" -limit 1000 -window 60s \
    -quiet -json -pids "$(node_pids)" -action "$1" "${@:3}")
  stop_nodes
  kill "$(cat "$bin/proxy.pid")"; wait "$(cat "$bin/proxy.pid")" || true; rm -f "$bin/proxy.pid"
  printf "%-10s %7.0f checks/s  p50 %5.0f µs  p99 %6.0f µs  %5.1f checks per frame  %.2f read+write syscalls per forwarded check (sender %.2f, owners %.2f)  %s\n" \
    "$1" "$(field checks_per_sec <<<"$out")" "$(field p50_us <<<"$out")" "$(field p99_us <<<"$out")" \
    "$(field checks_per_forward_rpc <<<"$out")" "$(field syscalls_per_forwarded_check <<<"$out")" \
    "$(field sender_syscalls_per_forwarded_check <<<"$out")" "$(field owner_syscalls_per_forwarded_check <<<"$out")" \
    "$(sed 's/^delayproxy: //' "$bin/proxy.out")"
}
echo "# embedded, 64 callers, every forwarded check through a proxy"
run no-delay 0s "$@"
run "rtt-$rtt" "$rtt" "$@"
