#!/usr/bin/env bash
# Browser end-to-end test of the web app: installs what it needs when missing (Debian's
# Chromium, playwright-core from npm), then drives the real server binary ($NATTER_BIN,
# default target/debug/natter; this script never builds it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v chromium >/dev/null 2>&1; then
  echo "e2e: installing Chromium (Debian package)"
  apt_install chromium fonts-noto-color-emoji
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "e2e: installing Node.js (Debian package)"
  apt_install nodejs npm
fi
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  echo "e2e: installing playwright-core"
  (cd "$here" && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; })
fi

export NATTER_BIN="${NATTER_BIN:-$root/target/debug/natter}"
if [ ! -x "$NATTER_BIN" ]; then
  echo "e2e: server binary not found at $NATTER_BIN (run cargo build first, or set NATTER_BIN)" >&2
  exit 1
fi
# NATTER_TEST_DB=postgres: on a fresh PostgreSQL database, dropped afterwards.
exec bash "$root/scripts/with-test-db.sh" e2e node "$here/e2e.mjs"
