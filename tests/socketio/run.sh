#!/usr/bin/env bash
# socket.io compatibility test: the real npm socket.io-client (pinned in package.json and
# package-lock.json) against the real server binary ($NATTER_BIN, default target/debug/natter;
# this script never builds it), beside native /ws clients. Installs Node.js (Debian package)
# and the npm packages when they are missing or stale.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "socketio: installing Node.js (Debian package)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# npm writes node_modules/.package-lock.json on every install: when it is missing or older
# than the lock file, the installed packages are not the pinned ones.
stamp="$here/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$here/package-lock.json" -nt "$stamp" ] || [ "$here/package.json" -nt "$stamp" ]; then
  echo "socketio: installing socket.io-client (npm ci)"
  (cd "$here" && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
fi

export NATTER_BIN="${NATTER_BIN:-$root/target/debug/natter}"
if [ ! -x "$NATTER_BIN" ]; then
  echo "socketio: server binary not found at $NATTER_BIN (run cargo build first, or set NATTER_BIN)" >&2
  exit 1
fi
# NATTER_TEST_DB=postgres: on a fresh PostgreSQL database, dropped afterwards.
exec bash "$root/scripts/with-test-db.sh" socketio node "$here/socketio.test.mjs"
