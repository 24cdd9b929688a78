#!/usr/bin/env bash
# Regenerates api/drlv1 from api/drl.proto. Needs protoc (Debian's
# protobuf-compiler); the Go plugins are pinned in go.mod as tools.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "gen.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
go build -o /tmp/drl-protoc-bin/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
PATH="/tmp/drl-protoc-bin:$PATH" protoc -I api \
  --go_out=. --go_opt=module=github.com/drlimit/drl \
  --go-grpc_out=. --go-grpc_opt=module=github.com/drlimit/drl \
  api/drl.proto
