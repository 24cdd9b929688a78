#!/usr/bin/env bash
# The README's security recipe, verbatim: trial certificates, a gossip key
# and tokens from scripts/devcerts; one node with TLS, gossip encryption
# and tokens of both roles; drlctl and curl with and without a token, and
# a reset refused to the check token and done with the admin token. CI runs this
# through examples/readme; by hand: bash scripts/readme-security.sh
. "$(dirname "$0")/readme-lib.sh"
need_free_ports 7946 7947 8080

{
# --- README: Security ---
bin=$(mktemp -d)
go build -o "$bin/" ./cmd/node ./cmd/drlctl
go run ./scripts/devcerts -dir "$bin" a        # trial files: ca.pem, a.pem, a-key.pem, gossip.keys, tokens, admin-tokens
cd "$bin"
./node -name a -tls-cert a.pem -tls-key a-key.pem -tls-ca ca.pem -gossip-key-file gossip.keys \
  -auth-token-file tokens -admin-token-file admin-tokens & a=$!
TOKEN=$(head -1 tokens) ADMIN=$(head -1 admin-tokens)
./drlctl -tls-ca ca.pem -token "$TOKEN" wait
./drlctl -tls-ca ca.pem -token "$TOKEN" members
curl -s --cacert ca.pem -H "Authorization: Bearer $TOKEN" https://127.0.0.1:8080/v1/members
curl -s --cacert ca.pem https://127.0.0.1:8080/v1/members      # no token: refused (401)
curl -s --cacert ca.pem -H "Authorization: Bearer $TOKEN" -d '{"user_id":"u1","action":"login"}' https://127.0.0.1:8080/v1/reset   # a check token may not reset (403)
./drlctl -tls-ca ca.pem -token "$ADMIN" reset -user u1 -action login    # an admin token may
kill $a; wait $a
# --- end ---
} > "$out"

cat "$out"
expect_in '^ready after .*: a sees 1 alive in its ring$'
expect_in '^a +alive +true +127\.0\.0\.1:7947 +127\.0\.0\.1:8080 +127\.0\.0\.1:7946$'
expect_in '^\{"self": ?"a", ?"members": ?\[\{"name": ?"a",'
expect_in '"code": ?"UNAUTHENTICATED"'
expect_in '"code": ?"PERMISSION_DENIED", ?"message": ?"/v1/reset needs a token of role admin'
expect_in '^reset: 0 live bucket\(s\) dropped; confirmed by a$'
echo "readme-security: ok"
