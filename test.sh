#!/usr/bin/env bash
# Runs every natter test: formatting and lints, the Rust unit and black-box
# API tests (real server on 127.0.0.1:0, real HTTP/WebSocket, real SQLite),
# then the browser end-to-end test and the socket.io client test, which
# install what they need (Chromium, npm packages) idempotently.
set -euo pipefail
cd "$(dirname "$0")"

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
echo "== all tests passed"
