#!/usr/bin/env bash
# The job runner against graphile-worker on this machine's Postgres, side by side in one run
# (BENCHMARKS.md, "Jobs"): no-op jobs per second, all enqueued first, then run to the last by
# one process with 10 at a time; and enqueue-to-start latency, one job at a time into an idle
# worker woken by LISTEN/NOTIFY. Rounds alternate the two sides; each side gets a fresh database.
# Then tenant fairness: how many of one tenant's 100 000 queued jobs start before another's one.
#
#   benches/jobs.sh                        # 3 rounds of 20 000 jobs, 300 latency samples
#   CRM_JOBS_ROUNDS=1 CRM_JOBS_N=5000 benches/jobs.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_URL="${CRM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
ROUNDS="${CRM_JOBS_ROUNDS:-3}"
N="${CRM_JOBS_N:-20000}"
SAMPLES="${CRM_JOBS_SAMPLES:-300}"
CONCURRENCY=10

cd "$ROOT"
cargo build --release -q -p crm-benches --bin crm-bench-jobs
(cd benches/graphile && npm ci --no-audit --no-fund --silent)
OUT="$ROOT/target/jobs-report.jsonl"
: >"$OUT"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    node benches/graphile/bench.js "$PG_URL" "$N" "$CONCURRENCY" "$SAMPLES" | tee -a "$OUT"
    target/release/crm-bench-jobs "$PG_URL" "$N" 1 "$CONCURRENCY" "$SAMPLES" | tee -a "$OUT"
    target/release/crm-bench-jobs "$PG_URL" "$N" 4 "$CONCURRENCY" "$SAMPLES" | tee -a "$OUT"
done
echo "fairness: one tenant's 100 000 jobs, another's one" >&2
target/release/crm-bench-jobs fairness "$PG_URL" 100000 | tee -a "$OUT"
echo "results: $OUT" >&2
