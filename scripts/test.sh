#!/usr/bin/env bash
# Runs every test of amicopier on a fresh machine: installs what the tests
# need, then go vet, staticcheck and go test -race. CI calls exactly this.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

staticcheck_version=v0.8.2

step() { printf '\n==> %s\n' "$*"; }

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

step "go test -race"
go test -race -count=1 ./...

echo
echo "All checks passed."
