#!/usr/bin/env bash
#
# scripts/test.sh — build everything and run the whole test suite.
#
#   scripts/test.sh [--repeat N] [--under-load] [CARGO TEST ARGS...]
#
# 1. makes sure the Debian `zookeeper` package is installed (installs it with
#    apt-get when running as root; the integration tests start throwaway
#    servers with scripts/zk.sh),
# 2. makes sure `systemd-analyze` (to verify the shipped unit), `shellcheck`, `promtool` and
#    Debian's python3-prometheus-client (to lint and parse /metrics) and `cargo` are available
#    (and `stress-ng` for --under-load),
# 3. checks the formatting (`cargo fmt --check`, rustfmt.toml) when rustfmt is installed,
# 4. runs `cargo build --workspace --bins` (the tests run the built binaries),
# 5. runs `cargo test --workspace ARGS...` and exits with its status.
#
# The flake hunt: `--repeat N` runs step 5 N times back to back and stops at the first
# failing run, naming the tests that failed; `--under-load` runs two CPU-bound processes
# (`stress-ng --cpu 2`) beside the suite meanwhile, stopped when the script ends. Each run's
# time and the total are printed; the last line says how many runs passed.
#
# Examples:
#   scripts/test.sh
#   scripts/test.sh --repeat 5
#   scripts/test.sh --repeat 2 --under-load
#   scripts/test.sh -- --nocapture
#   scripts/test.sh -p zk-coffee-tests -- session

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh" # also sets REPO_ROOT

repeat=1
under_load=0
while (($# > 0)); do
    case "$1" in
        -h | --help)
            script_help "${BASH_SOURCE[0]}"
            exit 0
            ;;
        --repeat)
            if [[ ! "${2:-}" =~ ^[1-9][0-9]*$ ]]; then
                echo "test.sh: --repeat takes a number of runs (1 or more), not '${2:-}'" >&2
                exit 2
            fi
            repeat="$2"
            shift 2
            ;;
        --under-load)
            under_load=1
            shift
            ;;
        *) break ;;
    esac
done

cd "$REPO_ROOT"

echo "==> checking ZooKeeper (Debian package 'zookeeper')"
ensure_zookeeper
echo "==> checking openssl and keytool (Debian packages 'openssl', 'openjdk-17-jre-headless', the TLS tests' certificates)"
ensure_command openssl openssl
ensure_command keytool openjdk-17-jre-headless
echo "==> checking systemd-analyze (Debian package 'systemd', to verify the unit files)"
ensure_command systemd-analyze systemd
echo "==> checking shellcheck (Debian package 'shellcheck', to lint the scripts in the tests)"
ensure_command shellcheck shellcheck
echo "==> checking promtool and the Prometheus parser (Debian packages 'prometheus', 'python3-prometheus-client', for the metrics tests)"
ensure_command promtool prometheus
ensure_python_module prometheus_client python3-prometheus-client
echo "==> checking chromium and chromedriver (Debian packages 'chromium', 'chromium-driver', the manager page's browser test)"
ensure_command chromium chromium
ensure_command chromedriver chromium-driver
echo "==> checking kazoo and selenium (Debian packages 'python3-kazoo', 'python3-selenium', the benchmark's peers and page, run short by the suite)"
ensure_python_module kazoo python3-kazoo
ensure_python_module selenium python3-selenium
echo "==> checking nginx, curl and openssl (Debian packages 'nginx', 'curl', 'openssl': HTTPS in front of the guarded manager)"
ensure_command nginx nginx
ensure_command curl curl
ensure_command openssl openssl
if ((under_load)); then
    echo "==> checking stress-ng (Debian package 'stress-ng', the CPU hogs of --under-load)"
    ensure_command stress-ng stress-ng
fi
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

if ((repeat == 1 && !under_load)); then
    echo "==> cargo test --workspace $*"
    cargo test --workspace "$@" || status=$?
    if ((status == 0)); then
        echo "==> all tests passed"
    else
        echo "==> tests failed (exit $status)" >&2
    fi
    exit "$status"
fi

# The flake hunt. The tests are built once, before the first run and before any hog starts.
cargo test --workspace --no-run --quiet "$@"
hog_pid=""
stop_hogs() {
    if [[ -n "$hog_pid" ]]; then
        kill -TERM "$hog_pid" 2>/dev/null || true
        wait "$hog_pid" 2>/dev/null || true
        hog_pid=""
    fi
}
trap stop_hogs EXIT
trap 'stop_hogs; exit 130' INT TERM
if ((under_load)); then
    # Two CPU-bound workers, as many as this machine's cores on the project's 2-core VMs.
    stress-ng --cpu 2 --timeout 0 --quiet &
    hog_pid=$!
    echo "==> under load: stress-ng --cpu 2 (pid $hog_pid)"
fi
log_dir="$(mktemp -d "${TMPDIR:-/tmp}/zk-coffee-flake-hunt.XXXXXX")"
started=$SECONDS
passed=0
for ((run = 1; run <= repeat; run++)); do
    run_started=$SECONDS
    echo "==> run $run of $repeat: cargo test --workspace $* (log: $log_dir/run-$run.log)"
    status=0
    cargo test --workspace "$@" >"$log_dir/run-$run.log" 2>&1 || status=$?
    counts="$(grep -E '^test result: ' "$log_dir/run-$run.log" | awk '{ p += $4; f += $6 } END { printf "%d passed, %d failed", p, f }')"
    echo "==> run $run: exit $status after $((SECONDS - run_started)) s ($counts)"
    if ((status != 0)); then
        echo "==> run $run failed; the failing tests:" >&2
        grep -E '^test .* FAILED$' "$log_dir/run-$run.log" | sed 's/^/    /' >&2 || true
        grep -E '^---- .* stdout ----$|panicked at' "$log_dir/run-$run.log" | head -20 | sed 's/^/    /' >&2 || true
        echo "==> flake hunt: $passed of $repeat runs passed, stopped at run $run after $((SECONDS - started)) s; full log: $log_dir/run-$run.log" >&2
        exit "$status"
    fi
    passed=$((passed + 1))
done
load_note=""
((under_load)) && load_note=" under load (stress-ng --cpu 2)"
echo "==> flake hunt: $passed of $repeat runs passed$load_note in $((SECONDS - started)) s"
