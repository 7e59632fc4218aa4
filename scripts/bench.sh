#!/usr/bin/env bash
# Runs amicopier's benchmark scenarios on the simulator (25 ms per call, EC2
# token buckets on) and prints one JSON object per scenario per line: API
# calls against the lower bound (BENCHMARKS.md), wall time against its floor,
# peak heap (or, over the wire, the binary's CPU and peak RSS), state writes,
# throttling, and "pass" with the reasons it failed. Exits non-zero when a
# scenario fails an assertion. The wire-* scenarios run the built amicopier
# binary against the organisation served over HTTP by a separate process
# (amicopier-bench serve). sharded-10000 runs 10 shards at once, and
# noop-1000x4x200 and catchup-10000 also run the naive peer (the yardstick:
# per pair describe, share, copy) on the same organisation.
#
#   scripts/bench.sh                 every scenario (group "all")
#   scripts/bench.sh sharded-10000   10 shards at once over 10,000 accounts
#   scripts/bench.sh small           the CI-sized scenarios (scripts/test.sh)
#   scripts/bench.sh wire            the wire scenarios
#   scripts/bench.sh noop-1000x4x200 wire-noop-1000x4x200
#   scripts/bench.sh -list           the scenarios and groups
#   scripts/bench.sh soak            kill -9 of the built binary, hundreds of times
#                                    (not CI; starts dynalite unless
#                                    AMICOPIER_DYNAMODB_ENDPOINT is set)
#
# BENCHMARKS.md explains the scenarios, the formulas and the latest numbers.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bin=$(mktemp -d)
source "$root/scripts/dynalite/start.sh"
trap 'rm -rf "$bin"; stop_dynalite' EXIT
for arg in "$@"; do
  if [ "$arg" = soak ] && [ -z "${AMICOPIER_DYNAMODB_ENDPOINT:-}" ]; then
    start_dynalite "$root" >&2
  fi
done
go build -o "$bin/amicopier-bench" ./internal/bench/cmd/amicopier-bench
go build -o "$bin/amicopier" ./cmd/amicopier
"$bin/amicopier-bench" -amicopier "$bin/amicopier" "$@"
