#!/usr/bin/env bash
# HTTP load test of crm-server on SQLite and on Postgres, beside a bare axum ceiling
# (crm-bench-baseline: a "hello" route and the same point select with the raw driver).
#
#   benches/load.sh                      # both stores; Postgres from CRM_TEST_DATABASE_URL
#   CRM_LOAD_DURATION=10s benches/load.sh sqlite
#
# For each store: a fresh database, the release server, a registered tenant (bearer token),
# CRM_LOAD_SEED leads imported, then oha with 64 connections. GET /api/leads/{id} alternates
# with the raw endpoint in CRM_LOAD_ROUNDS rounds of CRM_LOAD_ROUND_DURATION each (the median
# round's ratio is reported); then, for CRM_LOAD_DURATION per case, the bare "hello",
# GET /api/leads?limit=50, POST /api/leads, and a mixed load — two oha
# processes at once, 51 connections reading one lead and 13 creating leads (an 80/20 split of
# connections). Peak RSS (VmHWM) of the server is read idle (started, one tenant) and after
# the load. Results go to stdout and target/load-report.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${CRM_LOAD_DURATION:-15s}"
ROUNDS="${CRM_LOAD_ROUNDS:-5}"
ROUND_DURATION="${CRM_LOAD_ROUND_DURATION:-6s}"
CONNS=64
SEED="${CRM_LOAD_SEED:-10000}"
PG_URL="${CRM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
STORES=("${@:-sqlite postgres}")
read -r -a STORES <<<"${STORES[*]}"
OHA_VERSION=1.16.0

command -v oha >/dev/null || cargo install oha --locked --version "$OHA_VERSION"
if ! command -v jq >/dev/null; then
    # jq parses oha's JSON; try the system package, else jaq (a jq clone) from crates.io.
    if command -v apt-get >/dev/null && [[ $EUID -eq 0 ]]; then apt-get install -y -q jq >/dev/null; fi
    command -v jq >/dev/null || { cargo install jaq --locked && jq() { jaq "$@"; }; }
fi
command -v curl >/dev/null || { echo "load.sh needs curl" >&2; exit 1; }

cd "$ROOT"
cargo build --release -p crm-server -p crm-benches --bin crm-server --bin crm-bench-baseline
SERVER="$ROOT/target/release/crm-server"
BASELINE="$ROOT/target/release/crm-bench-baseline"

WORK="$(mktemp -d)"
REPORT="$ROOT/target/load-report.md"
PIDS=()
PG_DB=""
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n "$PG_DB" ]]; then psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true; fi
    # Server logs are kept for a look at any refusals.
    mkdir -p "$ROOT/target/load-logs" && cp "$WORK"/*.log "$ROOT/target/load-logs/" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A port nobody listens on (other servers may run on this machine).
free_port() {
    local port
    for port in $(seq "$1" $(($1 + 200))); do
        if ! ss -ltn | awk '{ print $4 }' | grep -q ":$port\$"; then echo "$port"; return; fi
    done
    echo "no free port from $1" >&2
    exit 1
}
CRM_PORT=$(free_port 28180)
BASE_PORT=$(free_port $((CRM_PORT + 1)))

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# wait_http URL PID: waits until URL answers, and fails if PID (the server) has exited.
wait_http() {
    for _ in $(seq 1 100); do
        kill -0 "$2" 2>/dev/null || { echo "server $2 exited" >&2; exit 1; }
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "no answer from $1" >&2
    exit 1
}

stop() {
    kill "$1"
    wait "$1" 2>/dev/null || true
    local kept=()
    for pid in "${PIDS[@]}"; do [[ "$pid" != "$1" ]] && kept+=("$pid"); done
    PIDS=("${kept[@]}")
}

{
    echo "# HTTP load, $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/^Mem/ { print $2 }') GiB;" \
        "oha $(oha --version | awk '{ print $2 }') on the same machine, $CONNS connections, $DURATION per case, $SEED leads seeded."
    echo
    echo "| store | case | req/s | p50 ms | p99 ms | non-2xx |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
} >"$REPORT"

# oha NAME CONNS URL [oha args...]: runs one case and prints a table row.
load() {
    local name="$1" conns="$2" url="$3"
    shift 3
    oha -z "${OHA_DURATION:-$DURATION}" -c "$conns" --no-tui --output-format json "$@" "$url" >"$WORK/$name.json"
}

row() {
    local store="$1" case="$2" file="$3"
    jq -r --arg s "$store" --arg c "$case" \
        '"| \($s) | \($c) | \(.summary.requestsPerSec | floor) | \(.latencyPercentiles.p50 * 1000 * 100 | round / 100) | \(.latencyPercentiles.p99 * 1000 * 100 | round / 100) | \([.statusCodeDistribution | to_entries[] | select(.key | startswith("2") | not) | "\(.value) × \(.key)"] | join(", ") | if . == "" then "0" else . end) |"' \
        "$file" | tee -a "$REPORT"
}

run_store() {
    local store="$1" db
    case "$store" in
        sqlite) db="$WORK/crm.db" ;;
        postgres)
            if ! command -v psql >/dev/null || ! psql -q "$PG_URL" -c "SELECT 1" >/dev/null 2>&1; then
                echo "SKIPPED postgres: $PG_URL does not answer" | tee -a "$REPORT"
                return
            fi
            PG_DB="crm_load_$$"
            psql -q "$PG_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
            db="${PG_URL%/*}/$PG_DB"
            ;;
        *) echo "unknown store $store" >&2; exit 1 ;;
    esac

    echo "== $store"
    local api="http://127.0.0.1:$CRM_PORT" server
    start_server() {
        RUST_LOG=warn "$SERVER" --bind "127.0.0.1:$CRM_PORT" --database-url "$db" \
            --dev-key-file "$WORK/key" --api-rate-per-minute 1000000000 --auth-rate-per-minute 100000 \
            >>"$WORK/server-$store.log" 2>&1 &
        server=$!
        PIDS+=("$server")
        wait_http "$api/health" "$server"
    }
    start_server

    local token tenant
    token=$(curl -sf "$api/api/auth/register" -H 'content-type: application/json' \
        -d '{"email":"load@bench.example","password":"a long and unusual passphrase","name":"Load","tenant":{"name":"Load","slug":"load"}}' \
        | jq -r .access_token)
    tenant=$(curl -sf "$api/api/auth/me" -H "authorization: Bearer $token" | jq -r .tenant.id)
    local idle
    idle=$(hwm "$server")

    jq -n --argjson n "$SEED" '[range($n) | {first_name: "Ada", last_name: "Lovelace \(.)",
        email: "ada\(.)@example.com", company: "Analytical Engines \(. % 100)"}]' >"$WORK/leads.json"
    local lead
    lead=$(curl -sf "$api/api/leads/import" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        --data-binary "@$WORK/leads.json" | jq -r ".ids[$((SEED / 2))]")
    local seeded
    seeded=$(rss "$server")
    local auth=(-H "authorization: Bearer $token")
    local body='{"first_name":"Grace","last_name":"Hopper","email":"grace@example.com","company":"Navy Labs"}'

    # The ceiling beside the server, on the same database: the two GET cases alternate in
    # ROUNDS short rounds and the median round's ratio is reported, so a noisy neighbour slowing
    # the machine for a few seconds moves both sides of a ratio, not one.
    RUST_LOG=warn "$BASELINE" --bind "127.0.0.1:$BASE_PORT" --tenant "$tenant" --database "$db" \
        >"$WORK/baseline-$store.log" 2>&1 &
    local base=$!
    PIDS+=("$base")
    wait_http "http://127.0.0.1:$BASE_PORT/hello" "$base"
    # Warm both (page cache, allocator arenas, connection pools) before anything is counted.
    OHA_DURATION=2s load "$store-warm" "$CONNS" "$api/api/leads/$lead" "${auth[@]}"
    OHA_DURATION=2s load "$store-warm" "$CONNS" "http://127.0.0.1:$BASE_PORT/leads/$lead"
    local round ratios=()
    for round in $(seq 1 "$ROUNDS"); do
        OHA_DURATION=$ROUND_DURATION load "$store-get-$round" "$CONNS" "$api/api/leads/$lead" "${auth[@]}"
        OHA_DURATION=$ROUND_DURATION load "$store-raw-$round" "$CONNS" "http://127.0.0.1:$BASE_PORT/leads/$lead"
        ratios+=("$(jq -n --slurpfile a "$WORK/$store-get-$round.json" --slurpfile b "$WORK/$store-raw-$round.json" \
            '$a[0].summary.requestsPerSec / $b[0].summary.requestsPerSec * 100 | round / 100') $round")
    done
    local ratio median all
    read -r ratio median < <(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
    all=$(printf '%s\n' "${ratios[@]}" | awk '{ print $1 }' | paste -sd' ')
    row "$store" "GET /api/leads/{id} (median round)" "$WORK/$store-get-$median.json"
    row "$store" "ceiling: bare axum + raw point select (same round)" "$WORK/$store-raw-$median.json"
    local loaded
    loaded=$(hwm "$server")
    load "$store-hello" "$CONNS" "http://127.0.0.1:$BASE_PORT/hello"
    row "$store" "ceiling: bare axum GET /hello" "$WORK/$store-hello.json"
    local base_hwm
    base_hwm=$(hwm "$base")
    stop "$base"

    load "$store-list" "$CONNS" "$api/api/leads?limit=50" "${auth[@]}"
    row "$store" "GET /api/leads?limit=50" "$WORK/$store-list.json"
    load "$store-create" "$CONNS" "$api/api/leads" "${auth[@]}" -m POST -H 'content-type: application/json' -d "$body"
    row "$store" "POST /api/leads" "$WORK/$store-create.json"
    load "$store-mixed-read" 51 "$api/api/leads/$lead" "${auth[@]}" &
    local reader=$!
    load "$store-mixed-write" 13 "$api/api/leads" "${auth[@]}" -m POST -H 'content-type: application/json' -d "$body"
    wait "$reader"
    row "$store" "mixed: GET by id (51 conns)" "$WORK/$store-mixed-read.json"
    row "$store" "mixed: POST (13 conns)" "$WORK/$store-mixed-write.json"
    local total
    total=$(jq -s '[.[].summary.requestsPerSec] | add | floor' "$WORK/$store-mixed-read.json" "$WORK/$store-mixed-write.json")
    echo "| $store | mixed: total | $total | | | |" | tee -a "$REPORT"
    local after
    after=$(hwm "$server")
    ((after > loaded)) && loaded=$after
    stop "$server"

    {
        echo
        echo "$store: authenticated GET by id at ${ratio}× the raw endpoint (median of $ROUNDS alternating" \
            "rounds of $ROUND_DURATION each: $all);" \
            "server RSS $(mib "$idle") MiB peak idle (started, one tenant registered: the password hash" \
            "takes 19 MiB), $(mib "$seeded") MiB resident after importing $SEED leads, $(mib "$loaded") MiB peak" \
            "under load (VmHWM); ceiling server $(mib "$base_hwm") MiB."
        echo
    } | tee -a "$REPORT"
    if [[ "$store" == postgres ]]; then
        psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null
        PG_DB=""
    fi
}

for store in "${STORES[@]}"; do run_store "$store"; done
echo "report: $REPORT"
