#!/usr/bin/env bash
# SQLite before/after and PostgreSQL side by side (BENCHMARKS.md, "The store seam").
# Usage: scripts/bench-store.sh BEFORE_BINARY AFTER_BINARY [postgres://user@127.0.0.1]
# Writes one JSON report per run into ./bench-store/. Each PostgreSQL run gets a fresh
# database (dropped and created with psql). Traffic stays on 127.0.0.1.
set -euo pipefail
before=$1 after=$2 pg=${3:-postgres://postgres@127.0.0.1}
out=bench-store; mkdir -p "$out"
fresh() {
  local name=natter_bench_$1
  psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
  echo "$pg/$name"
}
for round in 1 2; do
  "$before" bench direct --users 100 --seconds 10 --json > "$out/direct-before-$round.json"
  "$after" bench direct --users 100 --seconds 10 --json > "$out/direct-after-$round.json"
  "$after" bench direct --users 100 --seconds 10 --json --database "$(fresh d$round)" \
    > "$out/direct-pg-$round.json"
done
"$before" bench group --members 1000 --senders 4 --rate 200 --seconds 10 --json > "$out/group-before.json"
"$after" bench group --members 1000 --senders 4 --rate 200 --seconds 10 --json > "$out/group-after.json"
"$after" bench group --members 1000 --senders 4 --rate 200 --seconds 10 --json --database "$(fresh g)" \
  > "$out/group-pg.json" || true
"$before" bench history --messages 1000000 --chats 20 --seconds 8 --json > "$out/history-before.json"
"$after" bench history --messages 1000000 --chats 20 --seconds 8 --json > "$out/history-after.json"
"$after" bench history --messages 1000000 --chats 20 --seconds 8 --json --database "$(fresh h)" \
  > "$out/history-pg.json"
echo "reports in $out/"
