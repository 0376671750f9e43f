#!/usr/bin/env bash
# Runs every natter test: formatting and lints, the Rust unit and black-box
# API tests (real server on 127.0.0.1:0, real HTTP/WebSocket, real SQLite),
# then the browser end-to-end test and the socket.io client test, which
# install what they need (Chromium, npm packages) idempotently.
set -euo pipefail
cd "$(dirname "$0")"

# Tests keep their logs under target/: nothing named natter-*.log may appear in /tmp.
mkdir -p target
touch target/.test-start
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo build --quiet
cargo test --quiet 2>&1 | tee target/natter-cargo-test.log
for script in tests/e2e/run.sh tests/socketio/run.sh tests/fuzz/run.sh; do
  if [ -f "$script" ]; then
    echo "== $script"
    NATTER_BIN="$PWD/target/debug/natter" bash "$script"
  fi
done
echo "== scripts/check-deploy.sh (install.sh twice, systemd unit, README proxy configs)"
bash scripts/check-deploy.sh
stray=$(find /tmp -maxdepth 1 -name 'natter-*.log' -newer target/.test-start 2>/dev/null || true)
if [ -n "$stray" ]; then
  echo "tests wrote logs outside the repo: $stray" >&2
  exit 1
fi
echo "== all tests passed"
