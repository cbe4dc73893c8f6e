#!/usr/bin/env bash
# Prints every criterion result under target/criterion (mean, with its 95 % interval) as
# `group/bench[/size]  mean  [low high]`, for BENCHMARKS.md. Run after `cargo bench -p crm-benches`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
command -v jq >/dev/null || { echo "report.sh needs jq" >&2; exit 1; }
fmt() { awk -v ns="$1" 'BEGIN {
    if (ns >= 1e9) printf "%.2f s", ns / 1e9; else if (ns >= 1e6) printf "%.2f ms", ns / 1e6;
    else if (ns >= 1e3) printf "%.1f µs", ns / 1e3; else printf "%.0f ns", ns }'; }
find "$ROOT/target/criterion" -path '*/new/estimates.json' | sort | while read -r f; do
    name="${f#"$ROOT/target/criterion/"}"
    name="${name%/new/estimates.json}"
    read -r mean low high < <(jq -r '.mean | "\(.point_estimate) \(.confidence_interval.lower_bound) \(.confidence_interval.upper_bound)"' "$f")
    printf '%-75s %12s  [%s %s]\n' "$name" "$(fmt "$mean")" "$(fmt "$low")" "$(fmt "$high")"
done
