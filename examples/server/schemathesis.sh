#!/usr/bin/env bash
# Drives the server from its own /openapi.json with schemathesis (a schema-driven fuzzer no one
# on the team wrote): every documented operation, generated and mutated inputs, all checks —
# above all, no request may get a 5xx, and every reply must match the document.
#
#   examples/server/schemathesis.sh [seconds] [schemathesis options…]
#   (default 300 s; installs schemathesis if missing; CRM_FUZZ_PROFILE=dev skips the release build)
set -euo pipefail
budget="${1:-300}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
command -v schemathesis >/dev/null || pip3 install --quiet schemathesis
profile="${CRM_FUZZ_PROFILE:-release}"
cargo build --quiet --profile "$profile" -p crm-server --manifest-path "$root/Cargo.toml"
bin_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
work="$(mktemp -d)"
port=18080
"$root/target/$bin_dir/crm-server" --bind "127.0.0.1:$port" --database-url "$work/crm.db" \
  --dev-key-file "$work/key" --auth-rate-per-minute 1000000 --api-rate-per-minute 1000000 \
  >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
token=$(curl -sf "127.0.0.1:$port/api/auth/register" -H 'content-type: application/json' \
  -d '{"email":"fuzz@example.com","password":"a long and unusual passphrase","name":"Fuzz","tenant":{"name":"Fuzz","slug":"fuzz"}}' \
  | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
status=0
curl -sf "127.0.0.1:$port/openapi.json" >"$work/openapi.json"
cd "$work" # schemathesis keeps its cache in the working directory
CRM_FUZZ_DOCUMENT="$work/openapi.json" PYTHONPATH="$root/examples/server" SCHEMATHESIS_HOOKS=schemathesis_hooks schemathesis --config-file "$root/examples/server/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks all --max-time "$budget" --workers 2 --suppress-health-check all "${@:2}" || status=$?
if grep -q "panicked" "$work/server.log"; then echo "the server panicked"; exit 1; fi
exit $status
