#!/usr/bin/env bash
# Builds the Lambda artefact of amicopier: the amicopier binary, named
# bootstrap, for the provided.al2023 runtime on arm64 (Graviton), zipped
# reproducibly. Prints the path of the zip on stdout (and nothing else).
#
#   scripts/build-lambda.sh                 # -> dist/amicopier-lambda-arm64.zip
#   VERSION=v1.2.3 scripts/build-lambda.sh  # stamp another version
#
# Environment:
#   VERSION        version stamped into the binary (main.version);
#                  default: git describe --tags --always --dirty, else "dev"
#   DIST_DIR       where the zip goes; default <repo>/dist
#   LAMBDA_GOARCH  arm64 (default, what the templates deploy) or amd64
#                  (an x86_64 function; the tests also run it on this host)
#   SOURCE_DATE_EPOCH  modification time of the zip entry (Unix seconds);
#                  default 2000-01-01T00:00:00Z
#
# Two builds of the same commit with the same Go toolchain give the same
# bytes: no cgo, -trimpath, no VCS stamp, an empty build id, and a zip
# written by scripts/lambdazip with fixed times, modes and entry order.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

arch=${LAMBDA_GOARCH:-arm64}
case "$arch" in
  arm64|amd64) ;;
  *) echo "build-lambda: LAMBDA_GOARCH must be arm64 or amd64, not \"$arch\"" >&2; exit 64 ;;
esac
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
dist=${DIST_DIR:-$root/dist}
mkdir -p "$dist"
dist=$(cd "$dist" && pwd)
zip_path="$dist/amicopier-lambda-$arch.zip"

work=$(mktemp -d "${TMPDIR:-/tmp}/amicopier-lambda.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "build-lambda: building amicopier $version for linux/$arch" >&2
# GOARM64/GOAMD64 pinned to the baseline so an inherited setting cannot
# change the bytes (or the machines the binary runs on).
env CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOARM64=v8.0 GOAMD64=v1 GOFLAGS=-mod=readonly \
  go build -trimpath -buildvcs=false \
  -ldflags "-s -w -buildid= -X main.version=$version" \
  -o "$work/bootstrap" ./cmd/amicopier

# The zip writer runs on the host, whatever the target.
env -u GOOS -u GOARCH CGO_ENABLED=0 go run ./scripts/lambdazip -o "$zip_path" -name bootstrap "$work/bootstrap"

echo "$zip_path"
