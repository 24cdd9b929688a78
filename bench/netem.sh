#!/usr/bin/env bash
# The realism check of DESIGN.md §5: do batches still form when nodes are a
# real round trip apart? Three cmd/node processes and the embedded load
# generator, each in a network namespace of its own, joined by veth links
# to a bridge (as chaos/ builds them), run the embedded row of floor.sh
# twice: without added delay, then with netem adding half the round trip
# on every namespace's way out (1 ms between any two nodes by default).
# Each run prints checks/s, p50/p99, checks per frame and the read+write
# syscalls per forwarded check (sender and owners). Needs root, ip and tc;
# creates its namespaces and deletes them on exit.
#
#   sudo bench/netem.sh [duration] [rtt] [extra loadgen flags...]
#   sudo bench/netem.sh 5s 1ms
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-5s} rtt=${2:-1ms}
shift 2 || shift $# || true
[ "$(id -u)" = 0 ] || { echo "netem.sh: needs root for network namespaces" >&2; exit 1; }
bin=$(mktemp -d) id=$$ net=10.231.$((RANDOM % 200)).
br=drlnbr$id
nss=()
cleanup() {
  kill $(cat "$bin"/*.pid 2>/dev/null) 2>/dev/null || true
  for ns in "${nss[@]}" "$br"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$bin"
}
trap cleanup EXIT
go build -o "$bin/node" ./cmd/node
go build -o "$bin/loadgen" ./cmd/loadgen
go build -o "$bin/drlctl" ./cmd/drlctl

ip netns add "$br"
if ! ip netns exec "$br" tc qdisc add dev lo root netem delay 1us 2>/dev/null; then
  echo "netem.sh: this kernel has no netem qdisc (sch_netem): no delay to add" >&2
  exit 1
fi
ip netns exec "$br" tc qdisc del dev lo root
ip -n "$br" link add br0 type bridge
ip -n "$br" link set br0 up
for i in 0 1 2 3; do # n0, n1, n2, and the load generator's node
  ns=drln$i-$id; nss+=("$ns")
  ip netns add "$ns"
  ip link add eth0 netns "$ns" type veth peer name v$i netns "$br"
  ip -n "$ns" addr add "$net$((i + 1))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "$br" link set "v$i" master br0
  ip -n "$br" link set "v$i" up
done
pids=()
for i in 0 1 2; do
  join=""; [ "$i" -gt 0 ] && join="-join ${net}1:7946"
  ip netns exec "${nss[$i]}" "$bin/node" -name "n$i" -gossip-addr "$net$((i + 1)):7946" -grpc-addr "$net$((i + 1)):7947" \
    -http-addr "" -gossip-profile local -log-level warn $join 2>>"$bin/nodes.log" &
  echo $! > "$bin/n$i.pid"; pids+=($!)
done
ip netns exec "${nss[3]}" "$bin/drlctl" -addr "${net}1:7947,${net}2:7947,${net}3:7947" -timeout 30s wait >/dev/null
pidlist=$(IFS=,; echo "${pids[*]}")

run() { # $1: label
  ip netns exec "${nss[3]}" "$bin/loadgen" -mode embedded -bind "${net}4" -join "${net}1:7946" -expect-members 4 -duration "$duration" \
    -limit 1000 -window 60s -quiet -json -pids "$pidlist" -action "$1$RANDOM" "${@:2}" |
    sed -n 's/.*"checks_per_sec":\([0-9.e+]*\).*"p50_us":\([0-9.e+]*\).*"p99_us":\([0-9.e+]*\).*"checks_per_forward_rpc":\([0-9.e+]*\).*"syscalls_per_forwarded_check":\([-0-9.e+]*\).*/\1 \2 \3 \4 \5/p' |
    { read -r cps p50 p99 cpf sys; printf "%-10s %9.0f checks/s  p50 %6.0f µs  p99 %6.0f µs  %5.1f checks per frame  %.2f read+write syscalls per forwarded check\n" "$1" "$cps" "$p50" "$p99" "$cpf" "$sys"; }
}
echo "# embedded, 64 callers, 4 namespaces on one bridge"
run no-delay "$@"
half=$(awk -v r="${rtt%ms}" 'BEGIN { printf "%gus", r * 500 }')
for ns in "${nss[@]}"; do ip netns exec "$ns" tc qdisc add dev eth0 root netem delay "$half"; done
run "rtt-$rtt" "$@"
