#!/usr/bin/env bash
# Runs a test command against the store NATTER_TEST_DB names. Usage:
#   scripts/with-test-db.sh NAME COMMAND [ARGS...]
# sqlite (default): COMMAND runs with no DATABASE_URL (natter uses its data dir).
# postgres: a fresh database natter_NAME_<random> on NATTER_TEST_PG (default
# postgres://postgres@127.0.0.1:5432) is passed to `natter serve` as DATABASE_URL through
# the command's environment, and dropped afterwards.
set -euo pipefail
name=$1; shift
if [ "${NATTER_TEST_DB:-sqlite}" != postgres ]; then
  unset DATABASE_URL
  exec "$@"
fi
pg="${NATTER_TEST_PG:-postgres://postgres@127.0.0.1:5432}"
pg="${pg%/}"
command -v psql >/dev/null 2>&1 || { echo "$name: psql not found (bash scripts/ensure-postgres.sh)" >&2; exit 1; }
db="natter_${name}_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
psql -w -X -q "$pg/postgres" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -w -X -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
export DATABASE_URL="$pg/$db"
echo "$name: on PostgreSQL database $db"
"$@"
