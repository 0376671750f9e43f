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
# The main flow (e2e.mjs), then each feature's suite (*.e2e.mjs), each its own server and
# browser; every suite runs even when an earlier one failed, and any failure fails the script.
# NATTER_TEST_DB=postgres: each suite on a fresh PostgreSQL database, dropped afterwards.
# E2E_SUITES="e2e push" runs only the named suites.
failed=()
for suite in "$here/e2e.mjs" "$here"/*.e2e.mjs; do
  [ -f "$suite" ] || continue
  name="$(basename "$suite" .mjs)"; name="${name%.e2e}"
  if [ -n "${E2E_SUITES:-}" ] && [[ " $E2E_SUITES " != *" $name "* ]]; then continue; fi
  echo "e2e: suite $name"
  bash "$root/scripts/with-test-db.sh" "e2e_${name//-/_}" node "$suite" || failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "e2e: failed suites: ${failed[*]}" >&2
  exit 1
fi
