#!/usr/bin/env bash
# The README's quickstart: one node with the built-in defaults (what
# `go run ./cmd/node` starts), then the README's first check, verbatim.
# The node is built first, so that it can be stopped by its PID (killing
# `go run` would leave it running). CI runs this through examples/readme;
# by hand: bash scripts/readme-quickstart.sh
. "$(dirname "$0")/readme-lib.sh"
need_free_ports 7946 7947 8080

tmp=$(mktemp -d)
tmps+=("$tmp")
go build -o "$tmp/" ./cmd/node ./cmd/drlctl
"$tmp/node" &
node=$!
"$tmp/drlctl" wait

{
# --- README: Quickstart, "Then, in another shell" ---
curl -s -XPOST 127.0.0.1:8080/v1/ratelimit \
  -d '{"user_id":"u1","action":"login","limit":5,"window":"60s"}'
# {"allowed":true,"limit":5,"remaining":4,"reset_after":"60s","retry_after":"0s","decided_by":"owner"}
# --- end ---
} > "$out"

cat "$out"
expect_in '^\{"allowed":true,"limit":5,"remaining":4,"reset_after":"[0-9.]+s","retry_after":"0s","decided_by":"owner"\}$'
kill "$node"
wait "$node"  # exit status 0: it left cleanly
echo "readme-quickstart: ok"
