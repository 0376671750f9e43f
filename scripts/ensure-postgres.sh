#!/usr/bin/env bash
# Makes sure a PostgreSQL for the tests answers on 127.0.0.1:5432 with user `postgres` and no
# password, and prints its base URL (postgres://postgres@127.0.0.1:5432). Idempotent:
#   - PostgreSQL already answers there: nothing is changed (not even pg_hba.conf).
#   - Otherwise (Debian): installs the `postgresql` package when missing, starts the cluster,
#     and, since it set it up itself, lets `postgres` connect from 127.0.0.1 without a password
#     (trust for 127.0.0.1/32 in pg_hba.conf, then reload).
# Exits non-zero with a message when it cannot. Progress goes to stderr, the URL to stdout.
set -euo pipefail

host=127.0.0.1
port=5432
url="postgres://postgres@$host:$port"

say() { echo "ensure-postgres: $*" >&2; }
die() { say "$*"; exit 1; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

# Something accepts connections on host:port (pg_isready when installed, else bash's /dev/tcp).
answers() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$host" -p "$port" -t 2
  else
    timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
  fi
}
# The user postgres can log in over TCP without a password.
logs_in() {
  command -v psql >/dev/null 2>&1 || return 0 # nothing to check with; the tests will tell
  PGCONNECT_TIMEOUT=5 psql -w -X -q -h "$host" -p "$port" -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1
}

if answers; then
  logs_in || die "PostgreSQL answers on $host:$port but user postgres cannot log in without a password; \
allow it (trust for 127.0.0.1 in pg_hba.conf) or set NATTER_TEST_PG to a URL that works"
  echo "$url"
  exit 0
fi

say "no PostgreSQL on $host:$port; setting one up"
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and this is not Debian/Ubuntu (no apt-get); install PostgreSQL 15+ yourself"
  say "installing postgresql (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2 \
    || die "apt-get install postgresql failed"
fi

# Debian's cluster tools: the newest installed version's main cluster.
if command -v pg_lsclusters >/dev/null 2>&1; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  cluster=main
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version $cluster"; then
    say "creating cluster $version/$cluster"
    as_root pg_createcluster "$version" "$cluster" -p "$port" >&2 || die "pg_createcluster $version $cluster failed"
  fi
  hba="/etc/postgresql/$version/$cluster/pg_hba.conf"
  cluster_port=$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1==v && $2==c {print $3}')
  [ "$cluster_port" = "$port" ] || die "cluster $version/$cluster uses port $cluster_port, not $port; set NATTER_TEST_PG"
  # Trust postgres from 127.0.0.1 (first matching line wins: put ours first). Only here, where
  # this script set PostgreSQL up; an existing server's auth is left alone.
  if [ -f "$hba" ] && ! as_root grep -q '^host[[:space:]]\+all[[:space:]]\+postgres[[:space:]]\+127.0.0.1/32[[:space:]]\+trust' "$hba"; then
    say "allowing user postgres from 127.0.0.1 without a password ($hba)"
    as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba" || die "cannot edit $hba"
  fi
  say "starting cluster $version/$cluster"
  as_root pg_ctlcluster "$version" "$cluster" start >&2 \
    || as_root pg_ctlcluster "$version" "$cluster" reload >&2 \
    || as_root service postgresql start >&2 \
    || die "cannot start PostgreSQL $version/$cluster"
  as_root pg_ctlcluster "$version" "$cluster" reload >&2 || true
else
  as_root service postgresql start >&2 || die "cannot start PostgreSQL (service postgresql start)"
fi

for _ in $(seq 1 60); do
  if answers; then
    logs_in || die "PostgreSQL started on $host:$port, but user postgres cannot log in without a password"
    say "PostgreSQL is up"
    echo "$url"
    exit 0
  fi
  sleep 0.5
done
die "PostgreSQL did not answer on $host:$port within 30 s"
