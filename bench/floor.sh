#!/usr/bin/env bash
# The floor of DESIGN.md §5: a bare gRPC server that answers the
# RateLimiter API with a constant, and a plain net/http server that decodes
# the check body with encoding/json and answers a constant (bench/floor),
# and a 3-node cluster, driven in turns by the same load generator (10,000
# uniform keys, limit 1000 per 60 s), so that every cluster figure is a
# ratio to the floor measured in the same round: absolute figures on a
# shared machine swing by ±40% between hours.
#
# Each round runs, 64 callers unless said:
#   floor            client mode against the gRPC floor
#   client           client mode, owner routing (the default)
#   client-rr        client mode, round-robin (-owner-routing=false)
#   client-batching  client mode, client.NewBatching
#   embedded         a 4th node inside the load generator, joined to the three;
#                    also the read+write syscalls per forwarded check (sender
#                    and owners, /proc/<pid>/io) and the checks per frame
#   embedded-nobatch the same with forwarding batches of 1
#   http-floor       HTTP/JSON, one check per request, against the HTTP floor
#   http             the same against the nodes' HTTP API, round-robin
#   http-batch       /v1/ratelimit:batch, 10 checks per request
#   solo, http-solo  client mode and HTTP against a one-node cluster: the
#                    path's own cost, no second hop and no sharing of the
#                    cores with two other nodes
#   floor-1, client-1, embedded-1   one caller: latency at low load
#
# Rows print "round name checks/s p50_us p99_us cpu_us_per_check", the CPU
# being the nodes' (or the floor's) over all checks; the ratio lines give
# http, http-batch and http-solo as ratios to http-floor, the others to
# the floor.
#
#   bench/floor.sh [duration] [rounds] [extra loadgen flags...]
#   BENCH_PORT=27946 bench/floor.sh 1s 1    # other ports (nodes.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s} rounds=${2:-3}
shift 2 || shift $# || true
bin=$(mktemp -d)
# Wait for them too: a node still shutting down holds its ports, and a run
# started right after this one would fail to bind them.
trap 'kill $(cat "$bin"/*.pid 2>/dev/null) 2>/dev/null || true; wait; rm -rf "$bin"' EXIT
go build -o "$bin/node" ./cmd/node
go build -o "$bin/loadgen" ./cmd/loadgen
go build -o "$bin/floor" ./bench/floor

. bench/nodes.sh
floor_addr=127.0.0.1:$((port + 44)) floor_http=127.0.0.1:$((port + 45))
"$bin/floor" -addr "$floor_addr" -http-addr "$floor_http" & echo $! > "$bin/floor.pid"
start_nodes "$bin/node"
solo_addr=127.0.0.1:$((port + 41)) solo_http=127.0.0.1:$((port + 42))
"$bin/node" -name solo -gossip-addr "127.0.0.1:$((port + 40))" -grpc-addr "$solo_addr" -http-addr "$solo_http" \
  -gossip-profile local -log-level warn 2>>"$bin/nodes.log" & echo $! > "$bin/solo.pid"
"$bin/drlctl" -addr "$solo_addr" -timeout 30s wait >/dev/null

run() { # $1: row name, then loadgen flags; prints "name checks/s p50_us p99_us cpu_us [syscalls/fwd checks/frame]"
  local name=$1; shift
  local out
  out=$("$bin/loadgen" -duration "$duration" -limit 1000 -window 60s -quiet -json "$@")
  local sys
  sys=$(field syscalls_per_forwarded_check <<<"$out")
  echo "$name $(field checks_per_sec <<<"$out") $(field p50_us <<<"$out") $(field p99_us <<<"$out") $(field node_cpu_us_per_check <<<"$out")" \
    "$([ "$sys" != -1 ] && echo "$sys $(field checks_per_forward_rpc <<<"$out") $(field sender_syscalls_per_forwarded_check <<<"$out") $(field owner_syscalls_per_forwarded_check <<<"$out")")"
}
ratio() { # $1: row, $2: floor row; prints the row as ratios to the floor's
  awk -v c="$1" -v f="$2" 'BEGIN { split(c, b, " "); split(f, a, " ");
    printf "  %-16s %.2fx the floor'"'"'s checks/s, p50 %.2fx, p99 %.2fx", b[1], b[2]/a[2], b[3]/a[3], b[4]/a[4];
    if (b[5] > 0) printf "; node CPU %.1f µs/check", b[5];
    if (b[5] > 0 && a[5] > 0) printf " (%.2fx the floor'"'"'s)", b[5]/a[5];
    if (b[6] != "") printf "; %.2f read+write syscalls per forwarded check (sender %.2f, owners %.2f), %.1f checks per frame", b[6], b[8], b[9], b[7];
    printf "\n" }'
}
echo "# round row checks/s p50_us p99_us cpu_us_per_check [syscalls_per_forwarded_check checks_per_frame sender owners], then ratios to the floor of the round"
targets=$(node_targets) pids=$(node_pids) seed=$(node_seed) http_targets=$(node_http_targets) fpid=$(cat "$bin/floor.pid") spid=$(cat "$bin/solo.pid")
for round in $(seq "$rounds"); do
  f=$(run floor -mode client -targets "$floor_addr" -pids "$fpid" "$@")
  rows=(
    "$(run client -mode client -targets "$targets" -pids "$pids" -action "c$round" "$@")"
    "$(run client-rr -mode client -targets "$targets" -pids "$pids" -owner-routing=false -action "r$round" "$@")"
    "$(run client-batching -mode client -targets "$targets" -pids "$pids" -client-batching -action "b$round" "$@")"
    "$(run embedded -mode embedded -join "$seed" -expect-members 4 -pids "$pids" -action "e$round" "$@")"
    "$(run embedded-nobatch -mode embedded -join "$seed" -expect-members 4 -pids "$pids" -batch-size 1 -action "n$round" "$@")"
    "$(run solo -mode client -targets "$solo_addr" -pids "$spid" -action "s$round" "$@")"
  )
  hf=$(run http-floor -mode http -targets "$floor_http" -pids "$fpid" "$@")
  http=(
    "$(run http -mode http -targets "$http_targets" -pids "$pids" -action "h$round" "$@")"
    "$(run http-batch -mode http -targets "$http_targets" -pids "$pids" -per-call 10 -action "k$round" "$@")"
    "$(run http-solo -mode http -targets "$solo_http" -pids "$spid" -action "t$round" "$@")"
  )
  f1=$(run floor-1 -mode client -targets "$floor_addr" -concurrency 1 "$@")
  low=(
    "$(run client-1 -mode client -targets "$targets" -pids "$pids" -concurrency 1 -action "l$round" "$@")"
    "$(run embedded-1 -mode embedded -join "$seed" -expect-members 4 -concurrency 1 -action "m$round" "$@")"
  )
  echo "$round $f"
  for r in "${rows[@]}"; do echo "$round $r"; done
  echo "$round $hf"
  for r in "${http[@]}"; do echo "$round $r"; done
  echo "$round $f1"
  for r in "${low[@]}"; do echo "$round $r"; done
  echo "$round ratios:"
  for r in "${rows[@]}"; do ratio "$r" "$f"; done
  for r in "${http[@]}"; do ratio "$r" "$hf"; done
  for r in "${low[@]}"; do ratio "$r" "$f1"; done
done
