#!/usr/bin/env bash
#
# scripts/demo.sh — the coffee-shop scene, end to end, on a throwaway ZooKeeper.
#
#   scripts/demo.sh [--baristas N] [--customers N] [--idle SECS]
#
# 1. builds the binaries (cargo build --release --workspace --bins),
# 2. starts a private ZooKeeper with scripts/zk.sh and exports ZK_SERVERS,
# 3. runs shop-init,
# 4. starts 3 baristas (`barista --leave-after-idle 10`) in the background and
#    waits (up to 30 s) until all of them are listed under /barista_group,
# 5. starts 6 customers, each its own process, a random 0-1 s apart, and waits
#    for them; a customer's exit code says how it went: 0 served, 3 gave up
#    waiting, 4 no barista available, anything else is an error,
# 6. prints `tally: S served, G gave up, N no barista, F failed`,
# 7. waits (up to 30 s) for the baristas to leave on their own after 10 s
#    without orders, killing them if they do not.
#
# Every process's stdout and stderr are shown, each line prefixed with the
# process's role and number (`barista-2 | ...`, `customer-5 | ...`).
# On exit, Ctrl-C or SIGTERM every process the demo started (only those) is
# killed and the ZooKeeper server is stopped and its directory removed.
#
# Exit status: 0 if every customer was served, 1 otherwise (130 on Ctrl-C).
#
# Environment:
#   RUST_LOG            log filter for the binaries (default: info)
#   ZK_COFFEE_BIN_DIR   directory holding shop-init, barista and customer; when
#                       set, nothing is built (default: target/release, built)
#   CARGO_TARGET_DIR    honoured when locating target/release

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh" # also sets REPO_ROOT

N_BARISTAS=3
N_CUSTOMERS=6
IDLE_SECS=10
REGISTER_TIMEOUT=30  # seconds to wait for the baristas to register
CUSTOMER_TIMEOUT=120 # seconds to wait for the customers to finish
LEAVE_TIMEOUT=30     # seconds to wait for the baristas to leave by themselves

while (($#)); do
    case "$1" in
        --baristas) N_BARISTAS="${2:-}"; shift 2 || true ;;
        --customers) N_CUSTOMERS="${2:-}"; shift 2 || true ;;
        --idle) IDLE_SECS="${2:-}"; shift 2 || true ;;
        -h | --help) script_help "${BASH_SOURCE[0]}"; exit 0 ;;
        *) log_error "unknown argument '$1' (see --help)"; exit 2 ;;
    esac
done
for v in "$N_BARISTAS" "$N_CUSTOMERS" "$IDLE_SECS"; do
    if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
        log_error "expected a positive number, got '$v' (see --help)"
        exit 2
    fi
done

say() {
    printf 'demo | %s\n' "$*"
}

# ---------------------------------------------------------------- processes --

# Everything we started: PIDS[i] is a process, NAMES[i] its label, STARTS[i]
# its start time (field 22 of /proc/PID/stat) so a recycled PID is never
# mistaken for ours.
PIDS=()
NAMES=()
STARTS=()
ZK_DIR=""
CLEANED_UP=""
INTERRUPTED=""  # set when the demo got SIGINT (Ctrl-C)
SKIP_GRACE=""   # set by a second Ctrl-C / SIGTERM during clean-up
INT_GRACE=10    # seconds the processes get to finish after a Ctrl-C

proc_start_time() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }" # drop "pid (comm) "; comm may contain spaces
    # shellcheck disable=SC2086 # split the remaining fields on purpose
    set -- $stat
    echo "${20}" # field 22 overall = 20th after pid and comm
}

proc_state() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    echo "${stat%% *}"
}

# alive INDEX: the process we started as PIDS[INDEX] still runs (not a zombie).
alive() {
    local pid="${PIDS[$1]}" start state
    start="$(proc_start_time "$pid")" || return 1
    [[ "$start" == "${STARTS[$1]}" ]] || return 1
    state="$(proc_state "$pid")" || return 1
    [[ "$state" != Z ]]
}

# spawn NAME CMD...: run CMD in the background, its stdout+stderr prefixed with
# "NAME | ". Sets SPAWNED to its index in PIDS.
spawn() {
    local name="$1"
    shift
    # The prefixer ignores SIGINT so that it outlives a Ctrl-C and still shows
    # what the process logs while it winds down.
    "$@" > >(trap '' INT && exec sed -u "s/^/$name | /") 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    NAMES+=("$name")
    STARTS+=("$(proc_start_time "$pid" || echo gone)")
    SPAWNED=$((${#PIDS[@]} - 1))
}

# reap INDEX: wait for PIDS[INDEX] and set RC to its exit status. (Not in a
# $(...) subshell: only this shell can wait for its children.)
reap() {
    RC=0
    wait "${PIDS[$1]}" 2>/dev/null || RC=$?
}

# wait_all DEADLINE_SECS INDEX...: wait until none of the processes runs;
# returns 1 if some still run after DEADLINE_SECS seconds.
wait_all() {
    local deadline=$((SECONDS + $1)) i running
    shift
    while :; do
        running=0
        for i in "$@"; do
            if alive "$i"; then
                running=1
                break
            fi
        done
        ((running)) || return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# stop_procs SIGNAL_GRACE_SECS INDEX...: SIGTERM, then SIGKILL the ones that
# are still alive after the grace period.
stop_procs() {
    local grace="$1" i
    shift
    for i in "$@"; do
        if alive "$i"; then
            kill -TERM "${PIDS[$i]}" 2>/dev/null || true
        fi
    done
    if ! wait_all "$grace" "$@"; then
        for i in "$@"; do
            if alive "$i"; then
                say "${NAMES[$i]} did not stop; killing it"
                kill -KILL "${PIDS[$i]}" 2>/dev/null || true
            fi
        done
        wait_all 5 "$@" || true
    fi
}

# shellcheck disable=SC2317 # invoked from the traps below
cleanup() {
    [[ -z "$CLEANED_UP" ]] || return 0
    CLEANED_UP=1
    trap 'SKIP_GRACE=1' INT TERM
    local -a running=()
    local i
    for i in "${!PIDS[@]}"; do
        if alive "$i"; then
            running+=("$i")
        fi
    done
    if ((${#running[@]} > 0)) && [[ -n "$INTERRUPTED" ]]; then
        # A terminal's Ctrl-C reached every process: the binaries are already
        # winding down gracefully (a barista serves what is queued). Give them
        # some time; a second signal to them makes them exit at once.
        say "waiting up to ${INT_GRACE}s for ${#running[@]} process(es) to finish (Ctrl-C again to stop them now)"
        local deadline=$((SECONDS + INT_GRACE)) still
        while [[ -z "$SKIP_GRACE" ]] && ((SECONDS < deadline)); do
            still=0
            for i in "${running[@]}"; do
                if alive "$i"; then
                    still=1
                fi
            done
            ((still)) || break
            sleep 0.2 || true
        done
        local -a left=()
        for i in "${running[@]}"; do
            if alive "$i"; then
                left+=("$i")
            fi
        done
        running=("${left[@]}")
    fi
    if ((${#running[@]} > 0)); then
        say "stopping ${#running[@]} process(es) the demo started"
        stop_procs 5 "${running[@]}"
    fi
    if [[ -n "$ZK_DIR" && -d "$ZK_DIR" ]]; then
        if [[ -f "$ZK_DIR/zoo.cfg" || -f "$ZK_DIR/zk.pid" ]]; then
            "$SCRIPT_DIR/zk.sh" stop "$ZK_DIR" >/dev/null 2>&1 ||
                log_error "could not stop the ZooKeeper server in $ZK_DIR"
        else
            rm -rf "$ZK_DIR"
        fi
    fi
}

# shellcheck disable=SC2317 # invoked from the traps below
on_signal() {
    echo >&2
    say "interrupted; cleaning up"
    if [[ "$1" == 130 ]]; then
        INTERRUPTED=1
    fi
    cleanup
    exit "$1"
}

trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# -------------------------------------------------------------------- build --

if [[ -n "${ZK_COFFEE_BIN_DIR:-}" ]]; then
    BIN_DIR="$ZK_COFFEE_BIN_DIR"
    say "using binaries from $BIN_DIR (ZK_COFFEE_BIN_DIR; not building)"
else
    ensure_cargo
    say "building: cargo build --release --workspace --bins"
    (cd "$REPO_ROOT" && cargo build --release --workspace --bins)
    BIN_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release"
fi
for bin in shop-init barista customer; do
    if [[ ! -x "$BIN_DIR/$bin" ]]; then
        log_error "$BIN_DIR/$bin not found or not executable"
        exit 1
    fi
done

export RUST_LOG="${RUST_LOG:-info}"

# ---------------------------------------------------------------- zookeeper --

ensure_zookeeper
# Create the directory ourselves so the trap can clean up even if zk.sh is
# interrupted half-way.
ZK_DIR="$(mktemp -d /tmp/zk-coffee-zk.XXXXXX)"
say "starting a throwaway ZooKeeper in $ZK_DIR"
zk_line="$("$SCRIPT_DIR/zk.sh" start --dir "$ZK_DIR")"
read -r ZK_SERVERS _ <<<"$zk_line"
export ZK_SERVERS
say "ZooKeeper is up: ZK_SERVERS=$ZK_SERVERS"

# ---------------------------------------------------------------- the scene --

say "opening the shop: shop-init"
if ! "$BIN_DIR/shop-init" 2>&1 | sed -u 's/^/shop-init | /'; then
    say "shop-init failed"
    exit 1
fi

say "$N_BARISTAS baristas arrive (each leaves after ${IDLE_SECS}s without orders)"
BARISTAS=()
for ((n = 1; n <= N_BARISTAS; n++)); do
    spawn "barista-$n" "$BIN_DIR/barista" --leave-after-idle "$IDLE_SECS"
    BARISTAS+=("$SPAWNED")
done

say "waiting (up to ${REGISTER_TIMEOUT}s) for $N_BARISTAS baristas under /barista_group"
deadline=$((SECONDS + REGISTER_TIMEOUT))
while :; do
    count="$(zk_children "$ZK_SERVERS" /barista_group | grep -c . || true)"
    if ((count >= N_BARISTAS)); then
        say "$count baristas are behind the counter"
        break
    fi
    any=""
    for i in "${BARISTAS[@]}"; do
        if alive "$i"; then
            any=1
        fi
    done
    if [[ -z "$any" ]]; then
        say "every barista exited before registering"
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        say "only $count of $N_BARISTAS baristas registered within ${REGISTER_TIMEOUT}s"
        exit 1
    fi
    sleep 0.5
done

say "$N_CUSTOMERS customers come in"
CUSTOMERS=()
for ((n = 1; n <= N_CUSTOMERS; n++)); do
    if ((n > 1)); then
        sleep "0.$((RANDOM % 10))"
    fi
    spawn "customer-$n" "$BIN_DIR/customer"
    CUSTOMERS+=("$SPAWNED")
done

if ! wait_all "$CUSTOMER_TIMEOUT" "${CUSTOMERS[@]}"; then
    say "some customers are still waiting after ${CUSTOMER_TIMEOUT}s; sending them home"
    stop_procs 5 "${CUSTOMERS[@]}"
fi

served=0 gave_up=0 no_barista=0 failed=0
for i in "${CUSTOMERS[@]}"; do
    reap "$i"
    case "$RC" in
        0) served=$((served + 1)) ;;
        3) gave_up=$((gave_up + 1)) ;;
        4) no_barista=$((no_barista + 1)) ;;
        *)
            failed=$((failed + 1))
            say "${NAMES[$i]} failed with exit code $RC"
            ;;
    esac
done

say "waiting (up to ${LEAVE_TIMEOUT}s) for the baristas to leave after ${IDLE_SECS}s idle"
if ! wait_all "$LEAVE_TIMEOUT" "${BARISTAS[@]}"; then
    say "baristas still there after ${LEAVE_TIMEOUT}s; sending them home"
    stop_procs 5 "${BARISTAS[@]}"
fi
for i in "${BARISTAS[@]}"; do
    reap "$i"
    if [[ "$RC" != 0 ]]; then
        say "${NAMES[$i]} exited with code $RC"
    fi
done

echo "tally: $served served, $gave_up gave up, $no_barista no barista, $failed failed"
if ((served == N_CUSTOMERS)); then
    exit 0
fi
exit 1
