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
# Pinned by scripts/dynalite/package-lock.json, installed into .tools/dynalite
# (ignored by git); offline once installed. The DynamoDB tests fail rather
# than skip under this script (AMICOPIER_REQUIRE_DYNAMODB=1).
dynalite_dir="$root/.tools/dynalite"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "node and npm (Node.js 20 or newer) are needed to run dynalite for the DynamoDB tests" >&2
  exit 1
fi
if ! cmp -s "$root/scripts/dynalite/package-lock.json" "$dynalite_dir/package-lock.json" ||
   [ ! -f "$dynalite_dir/node_modules/dynalite/package.json" ]; then
  mkdir -p "$dynalite_dir"
  cp "$root/scripts/dynalite/package.json" "$root/scripts/dynalite/package-lock.json" "$dynalite_dir/"
  # --ignore-scripts: dynalite runs in memory, the native LevelDB build is not needed.
  npm ci --prefix "$dynalite_dir" --ignore-scripts --no-audit --no-fund --loglevel=error
fi
dynalite_port_file=$(mktemp "${TMPDIR:-/tmp}/amicopier-dynalite.XXXXXX")
rm -f "$dynalite_port_file"
node "$root/scripts/dynalite/serve.js" "$dynalite_dir" "$dynalite_port_file" >"$dynalite_port_file.log" 2>&1 &
dynalite_pid=$!
stop_dynalite() {
  kill "$dynalite_pid" 2>/dev/null || true
  wait "$dynalite_pid" 2>/dev/null || true
  rm -f "$dynalite_port_file" "$dynalite_port_file.log"
}
trap stop_dynalite EXIT
for _ in $(seq 1 100); do
  [ -s "$dynalite_port_file" ] && break
  if ! kill -0 "$dynalite_pid" 2>/dev/null; then
    echo "dynalite exited at start:" >&2
    cat "$dynalite_port_file.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$dynalite_port_file" ]; then
  echo "dynalite did not start listening within 10s:" >&2
  cat "$dynalite_port_file.log" >&2
  exit 1
fi
export AMICOPIER_DYNAMODB_ENDPOINT="http://127.0.0.1:$(cat "$dynalite_port_file")"
export AMICOPIER_REQUIRE_DYNAMODB=1
echo "dynalite $(node -p "require('$dynalite_dir/node_modules/dynalite/package.json').version") at $AMICOPIER_DYNAMODB_ENDPOINT"

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
step "Lambda artefact: two builds give equal bytes, static arm64 bootstrap, serves the runtime API"; AMICOPIER_ARTEFACT_TEST=1 go test -count=1 -timeout 20m -run '^TestLambdaArtefact$' -v ./internal/deploy/

echo
echo "All checks passed."
