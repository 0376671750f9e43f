#!/usr/bin/env bash
# Runs every natter test: formatting and lints, the Rust unit and black-box
# API tests (real server on 127.0.0.1:0, real HTTP/WebSocket, real SQLite),
# then the browser end-to-end test and the socket.io client test, which
# install what they need (Chromium, npm packages) idempotently. Then, with
# NATTER_PG_TESTS=1, the same API suite on PostgreSQL (a fresh database per
# server, scripts/ensure-postgres.sh installs/starts PostgreSQL when missing)
# and a PostgreSQL pass of the socket.io and browser tests, with the cluster
# tests (three nodes on one database, NATS between them; scripts/ensure-nats.sh
# installs/starts NATS when missing).
set -euo pipefail
cd "$(dirname "$0")"

# The PostgreSQL passes (1 = on, the default; 0 skips them).
NATTER_PG_TESTS=${NATTER_PG_TESTS:-1}

# Tests keep their logs under target/: nothing named natter-*.log may appear in /tmp.
mkdir -p target
touch target/.test-start
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
# The S3 tests (tests/api/s3.rs, and the cluster's shared files) start moto,
# an S3-compatible server from PyPI; installed into target/moto-venv once.
echo "== scripts/ensure-s3.sh"
NATTER_TEST_MOTO=$(bash scripts/ensure-s3.sh)
export NATTER_TEST_MOTO
echo "== cargo test"
cargo build --quiet
cargo test --quiet 2>&1 | tee target/natter-cargo-test.log
for script in tests/e2e/run.sh tests/socketio/run.sh tests/fuzz/run.sh; do
  if [ -f "$script" ]; then
    echo "== $script"
    NATTER_BIN="$PWD/target/debug/natter" bash "$script"
  fi
done
if [ "$NATTER_PG_TESTS" = 1 ]; then
  # A given NATTER_TEST_PG (postgres://user@host:port) is used as it is.
  if [ -z "${NATTER_TEST_PG:-}" ]; then
    echo "== scripts/ensure-postgres.sh"
    NATTER_TEST_PG=$(bash scripts/ensure-postgres.sh)
  fi
  export NATTER_TEST_PG
  # The cluster tests (tests/api/cluster.rs) run in this pass: nodes on one
  # PostgreSQL database and one NATS server.
  if [ -z "${NATTER_TEST_NATS:-}" ]; then
    echo "== scripts/ensure-nats.sh"
    NATTER_TEST_NATS=$(bash scripts/ensure-nats.sh)
  fi
  export NATTER_TEST_NATS
  echo "== cargo test --test api on PostgreSQL ($NATTER_TEST_PG, bus $NATTER_TEST_NATS)"
  NATTER_TEST_DB=postgres cargo test --quiet --test api 2>&1 | tee target/natter-cargo-test-pg.log
  # The same API suite against a 2-node cluster (one database, NATS between
  # the nodes, files in one S3 bucket on moto), each request and socket
  # handed to the next node by a round-robin proxy (tests/api/helpers.rs).
  echo "== cargo test --test api on a 2-node cluster"
  py="$(dirname "$NATTER_TEST_MOTO")/python"
  moto_port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$NATTER_TEST_MOTO" -H 127.0.0.1 -p "$moto_port" >target/natter-moto-cluster.log 2>&1 &
  moto_pid=$!
  trap 'kill $moto_pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$moto_port/" >/dev/null 2>&1 && break
    sleep 0.3
  done
  NATTER_TEST_DB=postgres NATTER_TEST_CLUSTER=1 NATTER_TEST_S3="http://127.0.0.1:$moto_port" \
    AWS_ACCESS_KEY_ID=natter-test AWS_SECRET_ACCESS_KEY=natter-test-secret AWS_DEFAULT_REGION=us-east-1 \
    cargo test --quiet --test api 2>&1 | tee target/natter-cargo-test-cluster.log
  kill "$moto_pid" 2>/dev/null || true
  # socket.io always; the browser test too unless NATTER_PG_E2E=0
  pg_scripts=(tests/socketio/run.sh)
  [ "${NATTER_PG_E2E:-1}" = 1 ] && pg_scripts+=(tests/e2e/run.sh)
  for script in "${pg_scripts[@]}"; do
    echo "== $script on PostgreSQL"
    NATTER_TEST_DB=postgres NATTER_BIN="$PWD/target/debug/natter" bash "$script"
  done
fi
echo "== scripts/check-deploy.sh (install.sh twice, systemd unit, README proxy configs)"
bash scripts/check-deploy.sh
stray=$(find /tmp -maxdepth 1 -name 'natter-*.log' -newer target/.test-start 2>/dev/null || true)
if [ -n "$stray" ]; then
  echo "tests wrote logs outside the repo: $stray" >&2
  exit 1
fi
echo "== all tests passed"
