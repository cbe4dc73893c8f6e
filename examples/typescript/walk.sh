#!/usr/bin/env bash
# Generates a TypeScript client from the server's /openapi.json (openapi-typescript), type-checks
# walk.ts under --strict (a whole walk with no cast), then runs it against a live server.
#
#   examples/typescript/walk.sh      (installs the pinned npm packages; CRM_FUZZ_PROFILE=release
#                                     builds the server in release, default: dev)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
profile="${CRM_FUZZ_PROFILE:-dev}"
cargo build --quiet --profile "$profile" -p crm-server --manifest-path "$root/Cargo.toml"
bin_dir=$([ "$profile" = dev ] && echo debug || echo "$profile")
work="$(mktemp -d)"
port=18081
"$root/target/$bin_dir/crm-server" --bind "127.0.0.1:$port" --database-url "$work/crm.db" \
  --dev-key-file "$work/key" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
cd "$here"
[ -d node_modules ] || npm install --no-audit --no-fund --silent
curl -sf "127.0.0.1:$port/openapi.json" -o openapi.json
npx openapi-typescript openapi.json -o schema.d.ts --silent
npx tsc -p .
CRM_URL="http://127.0.0.1:$port" node build/walk.js
