#!/usr/bin/env bash
# Browser test of the HTML drift report: renders `amicopier demo --output
# html` in headless Chromium (installing Debian's chromium when it is
# missing), takes a screenshot, dumps the DOM after the page's script ran,
# and runs the Go tests that check that DOM against `demo --output json
# --include-ok`, and the layout in a 700-pixel-wide window (no page-wide
# horizontal scroll, account headers in full, the <title>) as measured by
# a probe script loaded after the page's own.
#
# Usage: scripts/render-html.sh [--out DIR] [--update-screenshot]
#   --out DIR             keep the page, JSON, DOM, screenshot and logs in DIR
#                         (default: a temporary directory, removed on success)
#   --update-screenshot   copy the screenshot to docs/demo-report.png (README)
#
# Where Chromium cannot be installed the test is skipped with a loud
# message (exit 0), unless AMICOPIER_REQUIRE_BROWSER=1 makes that a failure.
# When Chromium is there, any failure to render or to pass the DOM test
# fails the script.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

out=""
update=false
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --update-screenshot) update=true; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "render-html.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
done

skip() {
  {
    echo
    echo "################################################################################"
    echo "##  SKIPPED: browser test of the HTML drift report"
    echo "##  $1"
    echo "##  Install Chromium (Debian: apt-get install chromium) to run it."
    echo "################################################################################"
    echo
  } >&2
  if [ "${AMICOPIER_REQUIRE_BROWSER:-}" = "1" ]; then
    echo "AMICOPIER_REQUIRE_BROWSER=1: a skipped browser test is a failure" >&2
    exit 1
  fi
  exit 0
}

find_browser() {
  local c
  for c in chromium chromium-browser google-chrome-stable google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

install_chromium() {
  command -v apt-get >/dev/null 2>&1 || return 1
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      echo "not root and no password-less sudo: cannot install chromium" >&2
      return 1
    fi
  fi
  echo "==> installing Debian's chromium"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium ||
    { "${sudo[@]}" apt-get update && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
}

if ! browser=$(find_browser); then
  install_chromium || true
  browser=$(find_browser) || skip "Chromium is not installed and could not be installed here."
fi
echo "==> browser: $browser ($("$browser" --version 2>/dev/null || echo "version unknown"))"

if [ -n "$out" ]; then
  mkdir -p "$out"
  work=$(cd "$out" && pwd)
  keep=true
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/amicopier-html.XXXXXX")
  keep=false
fi
profiles=$(mktemp -d "${TMPDIR:-/tmp}/amicopier-chromium.XXXXXX")
finish() {
  local rc=$?
  rm -rf "$profiles"
  if [ "$rc" -eq 0 ] && [ "$keep" = false ]; then
    rm -rf "$work"
  else
    echo "==> artifacts kept in $work" >&2
  fi
}
trap finish EXIT

echo "==> render the demo (html and json)"
go build -o "$work/amicopier" ./cmd/amicopier
"$work/amicopier" demo --output html >"$work/report.html"
"$work/amicopier" demo --output json --include-ok >"$work/report.json"
# The same page with the layout probe (reconcile/report/testdata) loaded
# after the page's own script.
cp reconcile/report/testdata/layout-probe.js "$work/layout-probe.js"
sed 's#</body>#<script src="layout-probe.js"></script></body>#' "$work/report.html" >"$work/probe.html"

# A fresh profile per run, nothing fetched from the network.
chromium_run() {
  local profile
  profile=$(mktemp -d "$profiles/profile.XXXXXX")
  timeout 180 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-extensions --hide-scrollbars --user-data-dir="$profile" "$@"
}

echo "==> dump the DOM after the page's script ran"
if ! chromium_run --dump-dom "file://$work/report.html" >"$work/dom.html" 2>"$work/chromium-dom.log"; then
  tail -20 "$work/chromium-dom.log" >&2
  echo "chromium failed to render the report" >&2
  exit 1
fi
echo "==> take a screenshot (1400x900)"
if ! chromium_run --screenshot="$work/report.png" --window-size=1400,900 "file://$work/report.html" \
  >"$work/chromium-shot.log" 2>&1; then
  tail -20 "$work/chromium-shot.log" >&2
  echo "chromium failed to take the screenshot" >&2
  exit 1
fi
echo "==> measure the layout in a 700-pixel-wide window"
if ! chromium_run --dump-dom --window-size=700,900 "file://$work/probe.html" >"$work/layout-700.html" 2>"$work/chromium-layout.log"; then
  tail -20 "$work/chromium-layout.log" >&2
  echo "chromium failed to render the probed report" >&2
  exit 1
fi
if [ ! -s "$work/dom.html" ] || [ ! -s "$work/report.png" ] || [ ! -s "$work/layout-700.html" ]; then
  echo "chromium wrote an empty DOM dump or screenshot" >&2
  exit 1
fi

echo "==> check the DOM against the JSON report, and the layout"
AMICOPIER_HTML_DOM="$work/dom.html" AMICOPIER_HTML_JSON="$work/report.json" AMICOPIER_HTML_LAYOUT="$work/layout-700.html" \
  go test -count=1 -run '^TestHTML(InBrowser|LayoutInBrowser)$' -v ./reconcile/report/

if [ "$update" = true ]; then
  mkdir -p docs
  cp "$work/report.png" docs/demo-report.png
  echo "==> updated docs/demo-report.png"
fi
echo "Browser test of the HTML report passed."
