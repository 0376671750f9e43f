#!/usr/bin/env bash
# Follows the README's deployment section on this machine, for the parts that
# can run here: install.sh --prefix (twice: idempotent) gives a working
# binary; the systemd unit passes `systemd-analyze verify`; the Caddy and nginx
# configs in the README pass `caddy validate` and `nginx -t` (installed from
# Debian's packages when missing and we are root). Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
passed=0; failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAILED: $1"; failed=$((failed + 1)); }

if [ "$(id -u)" = 0 ] && { ! command -v nginx >/dev/null || ! command -v caddy >/dev/null; }; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx caddy) >/dev/null 2>&1 || true
fi

# 1. install.sh --prefix, twice
for round in 1 2; do
  if ./install.sh --prefix "$work/prefix" >"$work/install.log" 2>&1; then ok "install.sh --prefix (run $round)"; else bad "install.sh run $round: $(tail -3 "$work/install.log")"; fi
done
bin="$work/prefix/bin/natter"
if "$bin" --version >/dev/null 2>&1; then ok "installed binary runs"; else bad "installed binary does not run"; fi
"$bin" serve --port 0 --data-dir "$work/data" 2>"$work/serve.log" &
pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -n "$url" ] && curl -fsS "$url/health" | grep -q '"ok"'; then ok "installed binary serves /health"; else bad "installed binary does not serve"; fi
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""

# 2. the systemd unit
if command -v systemd-analyze >/dev/null; then
  ./install.sh --print-unit --prefix "$work/prefix" >"$work/natter.service"
  if systemd-analyze verify "$work/natter.service" >"$work/verify.log" 2>&1; then ok "systemd-analyze verify natter.service"
  elif grep -qiE "natter.service" "$work/verify.log" && ! grep -qiE "unknown|invalid|failed to parse|not executable" "$work/verify.log"; then ok "systemd-analyze verify (only environment notes: $(head -1 "$work/verify.log"))"
  else bad "systemd-analyze verify: $(cat "$work/verify.log")"; fi
else
  echo "skip: systemd-analyze not available"
fi

# 3. reverse proxy configs, exactly as in the README
extract() { awk -v lang="$1" '$0 == "```" lang {on=1; next} on && $0 == "```" {exit} on {print}' README.md; }
if command -v caddy >/dev/null; then
  extract caddy >"$work/Caddyfile"
  if HOME="$work" caddy validate --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1; then ok "caddy validate (README config)"; else bad "caddy validate: $(tail -3 "$work/caddy.log")"; fi
else
  echo "skip: caddy not installed"
fi
if command -v nginx >/dev/null && command -v openssl >/dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=chat.example.com \
    -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
  {
    echo "pid $work/nginx.pid; error_log $work/nginx-error.log; events {}"
    echo "http { access_log off; client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work; uwsgi_temp_path $work; scgi_temp_path $work;"
    extract nginx | sed -e "s#/etc/letsencrypt/live/chat.example.com/fullchain.pem#$work/cert.pem#" \
                        -e "s#/etc/letsencrypt/live/chat.example.com/privkey.pem#$work/key.pem#"
    echo "}"
  } >"$work/nginx.conf"
  if nginx -t -c "$work/nginx.conf" -p "$work" >"$work/nginx.log" 2>&1; then ok "nginx -t (README config)"; else bad "nginx -t: $(cat "$work/nginx.log")"; fi
else
  echo "skip: nginx or openssl not installed"
fi

echo "deploy: $passed passed, $failed failed"
[ "$failed" = 0 ]
