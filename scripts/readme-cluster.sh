#!/usr/bin/env bash
# The README's "A 3-node cluster on one machine", verbatim: build, start a,
# wait for it, start b and c joining it, wait until every node has all
# three in its ring, ask, and stop them. CI runs this through
# examples/readme; by hand: bash scripts/readme-cluster.sh
. "$(dirname "$0")/readme-lib.sh"
need_free_ports 7946 7947 8080 7956 7957 8090 7966 7967 8100

{
# --- README: A 3-node cluster on one machine ---
bin=$(mktemp -d)
go build -o "$bin/" ./cmd/node ./cmd/drlctl
"$bin/node" -name a & a=$!
"$bin/drlctl" wait                     # until a is ready: b and c join it at once
"$bin/node" -name b -gossip-addr 127.0.0.1:7956 -grpc-addr 127.0.0.1:7957 -http-addr 127.0.0.1:8090 -join 127.0.0.1:7946 & b=$!
"$bin/node" -name c -gossip-addr 127.0.0.1:7966 -grpc-addr 127.0.0.1:7967 -http-addr 127.0.0.1:8100 -join 127.0.0.1:7946 & c=$!
"$bin/drlctl" -addr 127.0.0.1:7947,127.0.0.1:7957,127.0.0.1:7967 wait   # until each has all three in its ring

curl -s 127.0.0.1:8090/v1/members                               # three members, alive, in the ring
# the status page: http://127.0.0.1:8080/status (any node's)
curl -s '127.0.0.1:8100/v1/owner?user_id=u1&action=login'       # the same owner from every node
curl -s -XPOST 127.0.0.1:8100/v1/ratelimit -d '{"user_id":"u1","action":"login","limit":5,"window":"60s"}'
"$bin/drlctl" -addr 127.0.0.1:7957 members                     # the same over gRPC
for p in $c $b $a; do kill $p; wait $p; done                   # one at a time: each hands its keys over and leaves
# --- end ---
} > "$out"

cat "$out"
expect_in '^ready after .*: a sees 1 alive in its ring$'
expect_in '^ready after .*: a, b, c each see 3 or more alive in their rings$'
# (protojson, behind the HTTP API, puts spaces after some commas at random)
expect_in '^\{"self": ?"b", ?"members": ?\[(\{[^}]*"state": ?"alive", ?"in_ring": ?true\}(, ?)?){3}\], ?"quorum": ?\{"majority": ?true, ?"alive": ?3, ?"size": ?3[^}]*\}\}$'
expect_in '^\{"owner": ?\{"name": ?"[abc]",.*"in_ring": ?true\}, ?"partition": ?[0-9]+\}$'
expect_in '^\{"allowed":true,"limit":5,"remaining":4,'
expect_count 3 ' alive +true '
echo "readme-cluster: ok"
