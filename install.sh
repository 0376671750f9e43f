#!/usr/bin/env bash
# Builds the natter release binary and installs it.
#
#   ./install.sh [--prefix DIR] [--systemd] [--uninstall]
#
#   --prefix DIR   install to DIR/bin/natter (default /usr/local)
#   --systemd      also create the 'natter' system user, /var/lib/natter and a
#                  hardened systemd unit (natter.service), enabled but not started
#   --uninstall    remove the binary (and the unit with --systemd); data is kept
#   --print-unit   print the systemd unit for this prefix and exit (no build)
#
# Idempotent: running it again rebuilds and replaces the binary in place.
set -euo pipefail
cd "$(dirname "$0")"

prefix=/usr/local
systemd=0
uninstall=0
print_unit=0
data_dir=/var/lib/natter
unit_dir=${NATTER_UNIT_DIR:-/etc/systemd/system}
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --systemd) systemd=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    --print-unit) print_unit=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin="$prefix/bin/natter"

unit_text() {
  cat <<UNIT
[Unit]
Description=natter chat server
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=natter
Group=natter
ExecStart=$bin serve --data-dir $data_dir
Restart=on-failure
RestartSec=2
# Hardening
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
LockPersonality=true
ReadWritePaths=$data_dir
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
UNIT
}

if [ "$print_unit" = 1 ]; then
  unit_text
  exit 0
fi

if [ "$uninstall" = 1 ]; then
  rm -f "$bin" && echo "removed $bin"
  if [ "$systemd" = 1 ] && [ -f "$unit_dir/natter.service" ]; then
    systemctl disable --now natter.service 2>/dev/null || true
    rm -f "$unit_dir/natter.service" && echo "removed $unit_dir/natter.service"
    systemctl daemon-reload 2>/dev/null || true
  fi
  echo "data left in place (e.g. $data_dir)"
  exit 0
fi

command -v cargo >/dev/null || { echo "install.sh: cargo not found; install a Rust toolchain (rustup)" >&2; exit 1; }
echo "building the release binary (cargo build --release --locked)..."
cargo build --release --locked --quiet
mkdir -p "$prefix/bin"
install -m 0755 target/release/natter "$bin.new"
mv -f "$bin.new" "$bin"
echo "installed $bin ($("$bin" --version))"

if [ "$systemd" = 1 ]; then
  if ! id natter >/dev/null 2>&1; then
    useradd --system --home-dir "$data_dir" --shell /usr/sbin/nologin natter
    echo "created system user natter"
  fi
  mkdir -p "$data_dir"
  chown natter:natter "$data_dir"
  chmod 0750 "$data_dir"
  mkdir -p "$unit_dir"
  unit_text > "$unit_dir/natter.service"
  echo "wrote $unit_dir/natter.service (data in $data_dir)"
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable natter.service >/dev/null
    echo "enabled natter.service: start it with 'systemctl start natter'"
  fi
fi
