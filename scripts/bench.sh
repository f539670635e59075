#!/usr/bin/env bash
#
# scripts/bench.sh — the benchmark of issue 7: the shop against the raw ZooKeeper bound and
# against kazoo's queue recipes, the shop manager's cost (issue 13) and its page in a real
# browser (issue 14), all measured in one run against one throwaway server.
#
#   scripts/bench.sh [--short] [--bin-dir DIR] [--keep]
#
# 1. builds the release binaries (barista, customer, shop-init, shop-manager, zk-coffee-bench) unless
#    --bin-dir names a directory that already holds them,
# 2. starts a private ZooKeeper with fsync on (scripts/zk.sh start --fsync) and warms it up
#    for 10 s (a fresh server is several times slower at first),
# 3. runs every step (see `zk-coffee-bench --help`; the peers are
#    scripts/bench/kazoo_queue.py, which needs python3-kazoo; the page's figures are
#    scripts/bench/page_bench.py, which needs python3-selenium, chromium and chromium-driver:
#    all installed with apt-get when running as root),
# 4. prints ONE Markdown table on stdout: every figure, its conditions, and issue 7's
#    targets with met/missed. Progress goes to stderr.
#
# It stops its server and removes its files when done, also on Ctrl-C or SIGTERM; it only
# ever signals processes it started itself. A full run takes about 5-6 minutes on 2 cores.
#
#   --short      a tiny version of every step (well under a minute; for the test suite:
#                the figures mean nothing, only that every step works)
#   --bin-dir D  use the binaries in D (e.g. target/debug) instead of building
#   --keep       keep the work directory (the steps' raw lines, every process's log)
#   --compare D  also run every step of the shop (shop, backlog, scale, rss, recovery,
#                restart) with the binaries in D (e.g. a build of an older commit),
#                interleaved with this build's step by step (which goes first alternates),
#                and print, after the table, each figure of both side by side with their
#                ratio (new / old), marking those more than 15 % apart
#   --membership [--baseline-bin D]
#                only the membership rows of issue 15: 10, 100 and 1 000 barista
#                processes at once (`zk-coffee-bench membership`; --short: 5 and 20,
#                session timeout 2 s), with
#                barista and shop-init from D too (a build of an older commit) when given;
#                about 10 minutes for both builds on 2 cores; prints their table

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"

SHORT=""
BIN_DIR=""
KEEP=""
COMPARE_DIR=""
MEMBERSHIP=""
BASELINE_BIN=""
while (($#)); do
    case "$1" in
        --short) SHORT=1; shift ;;
        --bin-dir) BIN_DIR="${2:-}"; shift 2 || { log_error "--bin-dir needs a value"; exit 2; } ;;
        --bin-dir=*) BIN_DIR="${1#*=}"; shift ;;
        --keep) KEEP=1; shift ;;
        --compare) COMPARE_DIR="${2:-}"; shift 2 || { log_error "--compare needs a directory"; exit 2; } ;;
        --membership) MEMBERSHIP=1; shift ;;
        --baseline-bin) BASELINE_BIN="${2:-}"; shift 2 || { log_error "--baseline-bin needs a directory"; exit 2; } ;;
        -h | --help)
            awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        *) log_error "unknown argument '$1' (see --help)"; exit 2 ;;
    esac
done

WORK="$(mktemp -d /tmp/zk-coffee-bench.XXXXXX)"
ZKDIR="$WORK/zk"
RESULTS="$WORK/results.txt"
RESULTS_OLD="$WORK/results-old.txt"
STEP_PID=""

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n "$STEP_PID" ]] && kill -0 "$STEP_PID" 2>/dev/null; then
        kill -TERM "$STEP_PID" 2>/dev/null || true
        wait "$STEP_PID" 2>/dev/null || true
    fi
    if [[ -f "$ZKDIR/zoo.cfg" ]]; then
        bash "$SCRIPT_DIR/zk.sh" stop "$ZKDIR" >/dev/null 2>&1 || true
    fi
    if [[ -n "$KEEP" ]]; then
        log_info "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Tools

ensure_zookeeper
if [[ -z "$BIN_DIR" ]]; then
    ensure_cargo
    log_info "==> cargo build --release (barista, customer, shop-init, shop-manager, zk-coffee-bench)"
    (cd "$REPO_ROOT" && cargo build --release --quiet -p barista -p customer -p shop-init -p shop-manager \
        -p zk-coffee-bench) >&2
    BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
fi
BIN_DIR="$(cd "$BIN_DIR" && pwd)"
for bin in barista customer shop-init shop-manager zk-coffee-bench; do
    [[ -x "$BIN_DIR/$bin" ]] || { log_error "$BIN_DIR/$bin is missing (build it, or drop --bin-dir)"; exit 1; }
done
BENCH="$BIN_DIR/zk-coffee-bench"
NEW_BIN_DIR="$BIN_DIR"
if [[ -n "$BASELINE_BIN" ]]; then
    [[ -n "$MEMBERSHIP" ]] || { log_error "--baseline-bin goes with --membership (see --help)"; exit 2; }
    BASELINE_BIN="$(cd "$BASELINE_BIN" && pwd)" || { log_error "--baseline-bin: no directory '$BASELINE_BIN'"; exit 2; }
    for bin in barista shop-init; do
        [[ -x "$BASELINE_BIN/$bin" ]] || { log_error "$BASELINE_BIN/$bin is missing (--baseline-bin)"; exit 1; }
    done
fi
if [[ -n "$COMPARE_DIR" ]]; then
    COMPARE_DIR="$(cd "$COMPARE_DIR" && pwd)" || { log_error "--compare: no directory '$COMPARE_DIR'"; exit 2; }
    for bin in barista customer shop-init; do
        [[ -x "$COMPARE_DIR/$bin" ]] || { log_error "$COMPARE_DIR/$bin is missing (--compare)"; exit 1; }
    done
fi

# ---------------------------------------------------------------------------------------
# How steps run

# start_server TICK_MS: a private ZooKeeper with fsync on, in $ZKDIR; sets ZK, ZKPID,
# ZK_VERSION, LOAD_BEFORE and STARTED.
start_server() {
    log_info "==> starting ZooKeeper (fsync on, tickTime $1 ms)"
    mkdir -p "$ZKDIR" "$WORK/logs"
    ZK=""
    read -r ZK _ < <(bash "$SCRIPT_DIR/zk.sh" start --fsync --dir "$ZKDIR" --tick-ms "$1") || true
    [[ -n "$ZK" ]] || { log_error "could not start ZooKeeper"; exit 1; }
    ZKPID="$(cat "$ZKDIR/zk.pid")"
    ZK_VERSION="$(zk_4lw "${ZK%:*}" "${ZK##*:}" srvr 2 | sed -n 's/^Zookeeper version: \([^-,]*\).*/\1/p')"
    LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
    STARTED=$SECONDS
}

# run_one LABEL CMD...: runs one step in the background (so a signal reaches this script at
# once), and appends "KEY <its last stdout line>" to the results (KEY: LABEL's first word).
run_one() {
    local key="${1%% *}" label="$1" out="$WORK/step.out" status=0 line
    shift
    log_info "==> $label"
    "$@" >"$out" &
    STEP_PID=$!
    wait "$STEP_PID" || status=$?
    STEP_PID=""
    line="$(tail -n 1 "$out")"
    if ((status != 0)) || [[ -z "$line" ]]; then
        log_error "step $key failed (exit $status); logs in $WORK/logs (kept)"
        KEEP=1
        exit 1
    fi
    log_info "    $line"
    printf '%s %s\n' "$key" "$line" >>"$RESULTS"
}

bench() {
    "$BENCH" --zk "$ZK" --server-pid "$ZKPID" --bin-dir "$BIN_DIR" --logs "$WORK/logs" "$@"
}

# The membership rows only (issue 15): their own server, no warm-up, their own table.
if [[ -n "$MEMBERSHIP" ]]; then
    start_server 500
    sizes=(10 100 1000) short_session=()
    [[ -z "$SHORT" ]] || { sizes=(5 20); short_session=(--session-timeout 2); }
    baseline=()
    [[ -z "$BASELINE_BIN" ]] || baseline=(--baseline-bin "$BASELINE_BIN")
    for n in "${sizes[@]}"; do
        run_one "membership-$n ($n baristas at once${BASELINE_BIN:+, and with $BASELINE_BIN})" \
            bench membership --baristas "$n" "${short_session[@]}" "${baseline[@]}"
    done
    COMMIT="$(cd "$REPO_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "zk-coffee membership benchmark: $(date -u '+%F %H:%M UTC'), commit $COMMIT; $(nproc) cores;" \
        "ZooKeeper ${ZK_VERSION:-?} standalone on loopback, forceSync=yes, tickTime 500 ms, maxClientCnxns=0;" \
        "load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg); steps took $((SECONDS - STARTED)) s."
    echo
    "$BENCH" table --membership "$RESULTS"
    exit 0
fi

# Debian's python with kazoo (the peer queue recipes) and selenium (the page, in chromium).
PY=/usr/bin/python3
ensure_python_module kazoo python3-kazoo
ensure_python_module selenium python3-selenium
ensure_command chromium chromium
ensure_command chromedriver chromium-driver

# ---------------------------------------------------------------------------------------
# Sizes

# tickTime 500 ms: ZooKeeper expires sessions on tick boundaries, so a dead barista's session
# ends up to one tick after its timeout; with the default 2000 ms tick the recovery step
# would measure ZooKeeper's rounding (up to timeout + 2 s), not the shop. The baristas'
# 10 s session timeout is within the 2-20 ticks a server allows.
if [[ -n "$SHORT" ]]; then
    TICK_MS=500 WARM_S=1 PAIRS_S=0.3 PAIRS_WARM_S=0.1 BOUND_S=0.2 WATCH_N=50 CALLS_N=100
    QUEUE_N=100 LOCKING_N=100 UNEVEN_N=100 BACKLOG_SMALL=10 BACKLOG_LARGE=200
    SCALE_B=10 SCALE_N=20 RSS_SETTLE=0.2 RECOVERY_TIMEOUT=2 RECOVERY_TRIALS=1
    MANAGER_N=128 MANAGER_SAMPLES=10 MANAGER_SHOPS=3 MANAGER_BARISTAS=2 MANAGER_SETTLE=0.2
    PAGE_BARISTAS=5 PAGE_UPDATES=3
    orders_for() { case "$1" in 1) echo 20 ;; 16) echo 64 ;; *) echo 128 ;; esac; }
else
    TICK_MS=500 WARM_S=10 PAIRS_S=4 PAIRS_WARM_S=1 BOUND_S=2 WATCH_N=1000 CALLS_N=2000
    QUEUE_N=3000 LOCKING_N=1000 UNEVEN_N=3000 BACKLOG_SMALL=100 BACKLOG_LARGE=10000
    SCALE_B=100 SCALE_N=1000 RSS_SETTLE=1 RECOVERY_TIMEOUT=10 RECOVERY_TRIALS=3
    MANAGER_N=12000 MANAGER_SAMPLES=200 MANAGER_SHOPS=100 MANAGER_BARISTAS=10 MANAGER_SETTLE=3
    PAGE_BARISTAS=100 PAGE_UPDATES=30
    orders_for() { case "$1" in 1) echo 2000 ;; 16) echo 6000 ;; *) echo 12000 ;; esac; }
fi

# ---------------------------------------------------------------------------------------
# The server

start_server "$TICK_MS"

# run KEY CMD...: runs one step in the background (so a signal reaches this script at once),
# and appends "KEY <its last stdout line>" to the results. With --compare, a step of the shop
# runs with both builds, the older one's line going to the other results file.
COMPARED=0
run() {
    if [[ -n "$COMPARE_DIR" && "$2" == bench && " shop backlog scale rss recovery restart " == *" $3 "* ]]; then
        COMPARED=$((COMPARED + 1))
        if ((COMPARED % 2)); then
            BIN_DIR="$COMPARE_DIR" RESULTS="$RESULTS_OLD" run_one "$1 (older build)" "${@:2}"
            run_one "$@"
        else
            run_one "$@"
            BIN_DIR="$COMPARE_DIR" RESULTS="$RESULTS_OLD" run_one "$1 (older build)" "${@:2}"
        fi
        BIN_DIR="$NEW_BIN_DIR"
    else
        run_one "$@"
    fi
}


# ---------------------------------------------------------------------------------------
# The steps

log_info "==> warming the server for ${WARM_S} s (16 threads of create+delete pairs)"
bench pairs --client zookeeper --threads 16 --seconds "$WARM_S" --warmup 0 >/dev/null

for client in zookeeper zookeeper-client; do
    short=zk
    [[ "$client" == zookeeper ]] || short=zkc
    for threads in 1 16 64; do
        run "pairs-$short-$threads" bench pairs --client "$client" --threads "$threads" \
            --seconds "$PAIRS_S" --warmup "$PAIRS_WARM_S"
    done
    run "watch-$short" bench watch-rtt --client "$client" --samples "$WATCH_N"
done
run calls bench calls --calls "$CALLS_N"

# The peers, before and after the shop's grid (the better figure counts: the machine may be
# busy with something else for a while).
peers() {
    run "peer-queue$1" "$PY" "$SCRIPT_DIR/bench/kazoo_queue.py" --zk "$ZK" --recipe queue --items "$QUEUE_N"
    run "peer-locking$1" "$PY" "$SCRIPT_DIR/bench/kazoo_queue.py" --zk "$ZK" --recipe locking --items "$LOCKING_N"
}
peers ""

# Each shop run right after its own raw bound at the same concurrency, so that both see the
# same machine.
for baristas in 1 4 16; do
    for customers in 1 16 64; do
        run "bound-${baristas}x${customers}" bench pairs --client zookeeper-client --threads "$customers" \
            --seconds "$BOUND_S" --warmup 0.5
        run "shop-${baristas}x${customers}" bench shop --baristas "$baristas" --concurrency "$customers" \
            --orders "$(orders_for "$customers")"
    done
done
# The same load from one shared session (customer --sessions 1), as a front end would place
# it: the requests of all the customers then travel together.
for grid in 1x64 4x64; do
    baristas="${grid%x*}" customers="${grid#*x}"
    run "bound-shared-$grid" bench pairs --client zookeeper-client --threads "$customers" \
        --seconds "$BOUND_S" --warmup 0.5
    run "shared-$grid" bench shop --baristas "$baristas" --concurrency "$customers" --sessions 1 \
        --orders "$(orders_for "$customers")"
done
peers "-2"

for choose in random shorter-of-two; do
    key=uneven-random
    [[ "$choose" == random ]] || key=uneven-shorter
    run "$key" bench shop --baristas 4 --slow 1 --slow-brew 20ms --concurrency 16 \
        --orders "$UNEVEN_N" --choose "$choose"
done

run backlog-small bench backlog --orders "$BACKLOG_SMALL" --repeat 5
run backlog-large bench backlog --orders "$BACKLOG_LARGE"
run scale bench scale --baristas "$SCALE_B" --orders "$SCALE_N"
run rss bench rss --settle "$RSS_SETTLE"
run recovery bench recovery --session-timeout "$RECOVERY_TIMEOUT" --trials "$RECOVERY_TRIALS"
run restart bench restart --session-timeout "$RECOVERY_TIMEOUT" --trials "$RECOVERY_TRIALS"
# The shop manager (issue 13): following the 4 × 64 shop (its CPU per order beside the
# baristas', then the lag to its /metrics), and following many shops (its memory beside
# following one). The newer build only: an older one may have no shop-manager.
run manager bench manager --baristas 4 --concurrency 64 --orders "$MANAGER_N" --samples "$MANAGER_SAMPLES"
run manager-rss bench manager-rss --shops "$MANAGER_SHOPS" --baristas "$MANAGER_BARISTAS" --settle "$MANAGER_SETTLE"
# The manager's page (issue 14), in a real browser: the first load, and one update with
# PAGE_BARISTAS real baristas on shift.
run page "$PY" "$SCRIPT_DIR/bench/page_bench.py" --zk "$ZK" --bin-dir "$BIN_DIR" --logs "$WORK/logs" \
    --baristas "$PAGE_BARISTAS" --updates "$PAGE_UPDATES"

# ---------------------------------------------------------------------------------------
# The table

ELAPSED=$((SECONDS - STARTED))
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
CPU="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
COMMIT="$(cd "$REPO_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(cd "$REPO_ROOT" && git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    COMMIT="$COMMIT + uncommitted changes"
fi
MODE="full"
[[ -z "$SHORT" ]] || MODE="short (--short: tiny sizes, the figures mean nothing)"
echo "zk-coffee benchmark, $MODE: $(date -u '+%F %H:%M UTC'), commit $COMMIT; $(nproc) cores ($CPU);" \
    "ZooKeeper ${ZK_VERSION:-?} standalone on loopback, forceSync=yes, tickTime ${TICK_MS} ms, warmed ${WARM_S} s;" \
    "load average before $LOAD_BEFORE, after $LOAD_AFTER; steps took ${ELAPSED} s."
echo
"$BENCH" table "$RESULTS"
if [[ -n "$COMPARE_DIR" ]]; then
    echo
    echo "Each step of the shop with this build (new) and with $COMPARE_DIR (old), interleaved step by step:"
    echo
    "${PY:-python3}" "$SCRIPT_DIR/bench/compare.py" "$RESULTS_OLD" "$RESULTS"
fi
