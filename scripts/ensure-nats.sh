#!/usr/bin/env bash
# Makes sure a NATS server for the cluster tests answers on 127.0.0.1:4222 and prints its URL
# (nats://127.0.0.1:4222). Idempotent:
#   - installs the `nats-server` package (Debian) when the program is missing (the outage test
#     starts a private one);
#   - something already answers on the port: nothing else is changed;
#   - otherwise starts nats-server in the background, bound to 127.0.0.1 only (log:
#     target/nats-server.log).
# Exits non-zero with a message when it cannot. Progress goes to stderr, the URL to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

host=127.0.0.1
port=4222
url="nats://$host:$port"

say() { echo "ensure-nats: $*" >&2; }
die() { say "$*"; exit 1; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "need root (or sudo) to run: $*"
  fi
}
answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; }

# The outage test starts (and kills) a private nats-server of its own: the program must be here
# even when some other NATS already answers on the port.
if ! command -v nats-server >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "nats-server is not installed and this is not Debian/Ubuntu (no apt-get); install it yourself"
  say "installing nats-server (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server >&2 \
    || die "apt-get install nats-server failed"
fi
if answers; then
  echo "$url"
  exit 0
fi
say "no NATS on $host:$port; starting one"
mkdir -p target
nohup nats-server -a "$host" -p "$port" >target/nats-server.log 2>&1 &
for _ in $(seq 1 60); do
  if answers; then
    say "NATS is up"
    echo "$url"
    exit 0
  fi
  sleep 0.5
done
die "NATS did not answer on $host:$port within 30 s (see target/nats-server.log)"
