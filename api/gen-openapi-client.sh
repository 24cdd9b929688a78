#!/usr/bin/env bash
# Regenerates examples/openapi/client.gen.go, a Go client of the HTTP API,
# from api/openapi.yaml with oapi-codegen at a pinned version: proof that
# a client generated from the document works (examples/openapi's test
# makes checks through it against a running node). Needs the Go module
# proxy; offline, with oapi-codegen already in the module cache, run it as
#   GOPROXY=file://$(go env GOMODCACHE)/cache/download api/gen-openapi-client.sh
# (with GOPROXY=off, go run pkg@version refuses: it looks up deprecations).
set -euo pipefail
cd "$(dirname "$0")/.."
go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 \
  -config examples/openapi/oapi-codegen.yaml api/openapi.yaml
