#!/usr/bin/env bash
# Regenerates the Go code of the two protocols: api/drlv1 from
# api/drl.proto (the public API) and internal/peerpb from
# internal/peerpb/drl_peer.proto (the node-to-node protocol, which imports
# the public file for its Code enum), and for the public API also the
# marshaling code of protoc-gen-go-vtproto, which transport's codec uses
# (no reflection on the hot path). Needs protoc (Debian's
# protobuf-compiler); the Go plugins are pinned in go.mod as tools.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "gen.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc \
  github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto
PATH="$bin:$PATH" protoc -I api -I internal/peerpb \
  --go_out=. --go_opt=module=github.com/drlimit/drl \
  --go-grpc_out=. --go-grpc_opt=module=github.com/drlimit/drl \
  api/drl.proto internal/peerpb/drl_peer.proto
PATH="$bin:$PATH" protoc -I api \
  --go-vtproto_out=. --go-vtproto_opt=module=github.com/drlimit/drl,features=marshal+unmarshal+size \
  api/drl.proto
