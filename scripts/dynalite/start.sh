# Sourced by scripts/test.sh and scripts/bench.sh (soak): start_dynalite
# ROOT installs dynalite, pinned by scripts/dynalite/package-lock.json,
# into ROOT/.tools/dynalite (ignored by git; offline once installed),
# starts it in memory on a free loopback port and exports
# AMICOPIER_DYNAMODB_ENDPOINT; stop_dynalite stops it (call it on exit).

start_dynalite() {
  local root=$1
  dynalite_dir="$root/.tools/dynalite"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node and npm (Node.js 20 or newer) are needed to run dynalite for the DynamoDB tests" >&2
    return 1
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
  for _ in $(seq 1 100); do
    [ -s "$dynalite_port_file" ] && break
    if ! kill -0 "$dynalite_pid" 2>/dev/null; then
      echo "dynalite exited at start:" >&2
      cat "$dynalite_port_file.log" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ ! -s "$dynalite_port_file" ]; then
    echo "dynalite did not start listening within 10s:" >&2
    cat "$dynalite_port_file.log" >&2
    return 1
  fi
  export AMICOPIER_DYNAMODB_ENDPOINT="http://127.0.0.1:$(cat "$dynalite_port_file")"
  echo "dynalite $(node -p "require('$dynalite_dir/node_modules/dynalite/package.json').version") at $AMICOPIER_DYNAMODB_ENDPOINT"
}

stop_dynalite() {
  [ -n "${dynalite_pid:-}" ] || return 0
  kill "$dynalite_pid" 2>/dev/null || true
  wait "$dynalite_pid" 2>/dev/null || true
  rm -f "$dynalite_port_file" "$dynalite_port_file.log"
  dynalite_pid=
}
