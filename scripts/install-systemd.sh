#!/usr/bin/env bash
#
# scripts/install-systemd.sh — install the barista and the shop manager as systemd services on
# this host.
#
#   sudo scripts/install-systemd.sh [--bin-dir DIR]
#
# 1. builds the release binaries (unless --bin-dir names a directory that holds them),
# 2. installs barista, customer, shop-init, shop-status, shop-manager and shop-admin into /usr/local/bin,
# 3. installs systemd/barista@.service and systemd/shop-manager.service into
#    /etc/systemd/system,
# 4. installs README.md as /usr/local/share/doc/zk-coffee/README.md (the unit's
#    Documentation=),
# 5. installs systemd/barista.env.example as /etc/zk-coffee/barista.env and
#    systemd/shop-manager.env.example as /etc/zk-coffee/shop-manager.env unless they exist
#    (edit ZK_SERVERS there), and reloads systemd.
#
# Then: `systemctl enable --now barista@1 barista@2` starts two baristas named
# <short hostname>_1 and <short hostname>_2; `journalctl -u 'barista@*'` shows their logs;
# `systemctl enable --now shop-manager` starts the manager.
# For metrics, give each instance its own port in /etc/zk-coffee/barista-N.env, e.g.
# BARISTA_METRICS_LISTEN=127.0.0.1:9721 for barista@1 (see barista.env and the README).

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BIN_DIR=""

while (($#)); do
    case "$1" in
        --bin-dir) BIN_DIR="${2:-}"; shift 2 || true ;;
        -h | --help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "install-systemd.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

if ((EUID != 0)); then
    echo "install-systemd.sh: run as root (it writes /usr/local/bin, /usr/local/share/doc, /etc/systemd/system and /etc/zk-coffee)" >&2
    exit 1
fi

if [[ -z "$BIN_DIR" ]]; then
    (cd "$REPO_ROOT" && cargo build --release --workspace --bins)
    BIN_DIR="$REPO_ROOT/target/release"
fi
for bin in barista customer shop-init shop-status shop-manager shop-admin; do
    install -m 0755 "$BIN_DIR/$bin" "/usr/local/bin/$bin"
done
install -m 0644 "$REPO_ROOT/systemd/barista@.service" /etc/systemd/system/barista@.service
install -m 0644 "$REPO_ROOT/systemd/shop-manager.service" /etc/systemd/system/shop-manager.service
install -D -m 0644 "$REPO_ROOT/README.md" /usr/local/share/doc/zk-coffee/README.md
install -d -m 0755 /etc/zk-coffee
if [[ ! -e /etc/zk-coffee/barista.env ]]; then
    install -m 0644 "$REPO_ROOT/systemd/barista.env.example" /etc/zk-coffee/barista.env
    echo "installed /etc/zk-coffee/barista.env: set ZK_SERVERS there"
fi
if [[ ! -e /etc/zk-coffee/shop-manager.env ]]; then
    install -m 0644 "$REPO_ROOT/systemd/shop-manager.env.example" /etc/zk-coffee/shop-manager.env
    echo "installed /etc/zk-coffee/shop-manager.env: set ZK_SERVERS there"
fi
systemctl daemon-reload 2>/dev/null || echo "(systemd is not running here: run 'systemctl daemon-reload' where it is)"
echo "installed; start baristas with: systemctl enable --now barista@1 barista@2; the manager with: systemctl enable --now shop-manager"
