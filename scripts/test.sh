#!/usr/bin/env bash
#
# scripts/test.sh — build everything and run the whole test suite.
#
#   scripts/test.sh [CARGO TEST ARGS...]
#
# 1. makes sure the Debian `zookeeper` package is installed (installs it with
#    apt-get when running as root; the integration tests start throwaway
#    servers with scripts/zk.sh),
# 2. makes sure `systemd-analyze` (to verify the shipped unit) and `cargo` are available,
# 3. checks the formatting (`cargo fmt --check`, rustfmt.toml) when rustfmt is installed,
# 4. runs `cargo build --workspace --bins` (the tests run the built binaries),
# 5. runs `cargo test --workspace ARGS...` and exits with its status.
#
# Examples:
#   scripts/test.sh
#   scripts/test.sh -- --nocapture
#   scripts/test.sh -p zk-coffee-tests -- session

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"

case "${1:-}" in
    -h | --help)
        awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
esac

cd "$REPO_ROOT"

echo "==> checking ZooKeeper (Debian package 'zookeeper')"
ensure_zookeeper
echo "==> checking systemd-analyze (Debian package 'systemd', to verify the unit files)"
ensure_command systemd-analyze systemd
echo "==> checking shellcheck (Debian package 'shellcheck', to lint the scripts in the tests)"
ensure_command shellcheck shellcheck
echo "==> checking Rust toolchain"
ensure_cargo

if cargo fmt --version >/dev/null 2>&1; then
    echo "==> cargo fmt --check"
    if ! cargo fmt --all --check >/dev/null; then
        echo "==> the code is not formatted as rustfmt.toml says: run 'cargo fmt'" >&2
        exit 1
    fi
else
    echo "==> rustfmt is not installed ('rustup component add rustfmt'): format not checked"
fi

echo "==> cargo build --workspace --bins"
status=0
cargo build --workspace --bins || status=$?
if ((status != 0)); then
    echo "==> build failed (exit $status)" >&2
    exit "$status"
fi

echo "==> cargo test --workspace $*"
cargo test --workspace "$@" || status=$?
if ((status == 0)); then
    echo "==> all tests passed"
else
    echo "==> tests failed (exit $status)" >&2
fi
exit "$status"
