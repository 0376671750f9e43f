#!/usr/bin/env bash
# Makes sure the S3-compatible test server is installed and prints the path of its
# `moto_server` program. The tests start it themselves, on 127.0.0.1 and a free port, once per
# test that needs a bucket. Idempotent:
#   - target/moto-venv/bin/moto_server exists: nothing is done;
#   - otherwise installs python3 + venv (Debian packages) when missing, then `moto[server]` from
#     PyPI into target/moto-venv.
# Exits non-zero with a message when it cannot. Progress goes to stderr, the path to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="$PWD/target/moto-venv"
bin="$venv/bin/moto_server"

say() { echo "ensure-s3: $*" >&2; }
die() { say "$*"; exit 1; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "python3 with venv is missing and this is not Debian/Ubuntu (no apt-get)"
  say "installing python3 and python3-venv (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >&2 \
    || die "apt-get install python3 python3-venv failed"
fi
mkdir -p target
rm -rf "$venv"
say "installing moto[server] from PyPI into $venv"
python3 -m venv "$venv" >&2 || die "cannot create $venv"
"$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5,<6' >&2 || die "pip install moto[server] failed"
[ -x "$bin" ] || die "moto_server is missing after the install"
echo "$bin"
