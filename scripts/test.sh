#!/usr/bin/env bash
# Runs every test of amicopier on a fresh machine: installs what the tests
# need, then go vet, staticcheck and go test -race. CI calls exactly this.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

staticcheck_version=v0.8.2

started=$(date +%s)
step() { printf '\n==> [%ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

step "go version"
go version

step "download modules"
go mod download

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" >&2
  echo "$unformatted" >&2
  exit 1
fi

step "go vet"
go vet ./...

step "staticcheck $staticcheck_version"
tools="$root/.tools/bin"
mkdir -p "$tools"
if [ ! -x "$tools/staticcheck" ] || ! "$tools/staticcheck" -version 2>/dev/null | grep -q "${staticcheck_version#v}"; then
  GOBIN="$tools" go install "honnef.co/go/tools/cmd/staticcheck@$staticcheck_version"
fi
"$tools/staticcheck" ./...

step "dynalite (DynamoDB-compatible server for the state store tests)"
# The DynamoDB tests fail rather than skip under this script
# (AMICOPIER_REQUIRE_DYNAMODB=1).
source "$root/scripts/dynalite/start.sh"
trap stop_dynalite EXIT
start_dynalite "$root"
export AMICOPIER_REQUIRE_DYNAMODB=1

step "the engine's structure (a report, not a gate): functions over 80 lines, the run struct"
go run ./scripts/codereport ./reconcile ./reconcile/report

step "go test -race"
go test -race -count=1 ./...

step "fuzzing the parsers of untrusted input (${AMICOPIER_FUZZ_TIME:-10s} per target)"
# Each target also runs its committed seed corpus in the go test step above;
# here the fuzzer looks for new inputs for a bounded time.
while read -r pkg target; do
  go test -run='^$' -fuzz="^${target}\$" -fuzztime="${AMICOPIER_FUZZ_TIME:-10s}" -fuzzminimizetime=5s "$pkg"
done <<'TARGETS'
./internal/config FuzzParse
./internal/awsapi FuzzDecodeDescribeImages
./internal/cloud FuzzCheckParameterName
./internal/lambdafn FuzzParseEvent
./reconcile FuzzParseTargetList
./reconcile FuzzNoShareOutsideTheOrganization
./state FuzzFileOpen
TARGETS

step "browser test of the HTML drift report"; "$root/scripts/render-html.sh"

step "benchmark, CI-sized, and the chaos scenario (scripts/bench.sh small chaos)"; "$root/scripts/bench.sh" small chaos
step "kill -9 of the built binary at random moments (at least 20), against the served organisation and dynalite"
AMICOPIER_KILL_TEST=1 go test -count=1 -timeout 3m -run '^TestKill9$' -v ./internal/bench/
step "Lambda artefact: two builds give equal bytes, static arm64 bootstrap, serves the runtime API, stops before its deadline"; AMICOPIER_ARTEFACT_TEST=1 go test -count=1 -timeout 20m -run '^TestLambdaArtefact$' -v ./internal/deploy/

echo
echo "All checks passed."
