#!/usr/bin/env bash
# The README's security recipe, verbatim: trial certificates, a gossip key
# and a token from scripts/devcerts; one node with TLS, gossip encryption
# and tokens; drlctl and curl with and without the token. CI runs this
# through examples/readme; by hand: bash scripts/readme-security.sh
. "$(dirname "$0")/readme-lib.sh"
need_free_ports 7946 7947 8080

{
# --- README: Security ---
bin=$(mktemp -d)
go build -o "$bin/" ./cmd/node ./cmd/drlctl
go run ./scripts/devcerts -dir "$bin" a        # trial files: ca.pem, a.pem, a-key.pem, gossip.keys, tokens
cd "$bin"
./node -name a -tls-cert a.pem -tls-key a-key.pem -tls-ca ca.pem -gossip-key-file gossip.keys -auth-token-file tokens & a=$!
TOKEN=$(head -1 tokens)
./drlctl -tls-ca ca.pem -token "$TOKEN" wait
./drlctl -tls-ca ca.pem -token "$TOKEN" members
curl -s --cacert ca.pem -H "Authorization: Bearer $TOKEN" https://127.0.0.1:8080/v1/members
curl -s --cacert ca.pem https://127.0.0.1:8080/v1/members      # no token: refused (401)
kill $a; wait $a
# --- end ---
} > "$out"

cat "$out"
expect_in '^ready after .*: a sees 1 alive in its ring$'
expect_in '^a +alive +true +127\.0\.0\.1:7947 +127\.0\.0\.1:8080 +127\.0\.0\.1:7946$'
expect_in '^\{"self": ?"a", ?"members": ?\[\{"name": ?"a",'
expect_in '"code": ?"UNAUTHENTICATED"'
echo "readme-security: ok"
