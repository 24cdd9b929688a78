# Sourced by the bench scripts: three nodes on loopback, started and
# stopped by PID. Needs $bin (a temp folder whose *.pid files the caller's
# trap kills).
#
#   start_nodes NODE_BINARY [node flags...]   n0, n1, n2 on ports from $BENCH_PORT
#                                             (default 17946: 17946..17968; gossip,
#                                             gRPC and HTTP at +0, +1, +2, then +10 a node)
#   stop_nodes                                SIGTERM, then wait for each
#   node_pids                                 "pid0,pid1,pid2", for loadgen -pids
#   node_targets                              their gRPC addresses
#   node_seed                                 n0's gossip address
#   field NAME                                the number of "NAME": in loadgen's
#                                             JSON on stdin, or -1

port=${BENCH_PORT:-17946}

start_nodes() {
  local node=$1; shift
  for i in 0 1 2; do
    local join=""; [ "$i" -gt 0 ] && join="-join $(node_seed)"
    "$node" -name "n$i" -gossip-addr "127.0.0.1:$((port + 10 * i))" -grpc-addr "127.0.0.1:$((port + 1 + 10 * i))" \
      -http-addr "127.0.0.1:$((port + 2 + 10 * i))" -gossip-profile local -log-level warn $join "$@" 2>>"$bin/nodes.log" &
    echo $! > "$bin/n$i.pid"
  done
  # Until every node answers and has all three in its ring.
  [ -x "$bin/drlctl" ] || go build -o "$bin/drlctl" ./cmd/drlctl
  "$bin/drlctl" -addr "$(node_targets)" -timeout 30s wait >/dev/null
}

stop_nodes() {
  for i in 0 1 2; do kill "$(cat "$bin/n$i.pid")" 2>/dev/null || true; done
  for i in 0 1 2; do while kill -0 "$(cat "$bin/n$i.pid")" 2>/dev/null; do sleep 0.1; done; rm -f "$bin/n$i.pid"; done
}

node_pids() { echo "$(cat "$bin/n0.pid"),$(cat "$bin/n1.pid"),$(cat "$bin/n2.pid")"; }

node_targets() { echo "127.0.0.1:$((port + 1)),127.0.0.1:$((port + 11)),127.0.0.1:$((port + 21))"; }

node_http_targets() { echo "127.0.0.1:$((port + 2)),127.0.0.1:$((port + 12)),127.0.0.1:$((port + 22))"; }

node_seed() { echo "127.0.0.1:$port"; }

field() { sed -n 's/.*"'"$1"'":\([-0-9.e+]*\).*/\1/p' | grep . || echo -1; }
