#!/usr/bin/env bash
#
# scripts/launch.sh — start N baristas on each of several hosts, see them, stop them.
#
#   scripts/launch.sh [start] --hosts LIST --per-host N --zk CONNECT [--shop NAME]
#                             [OPTIONS] [-- EXTRA BARISTA ARGS...]
#   scripts/launch.sh status [--state FILE]
#   scripts/launch.sh stop [--state FILE] [--timeout SECS]
#
# start   Starts --per-host baristas on every host of --hosts (comma-separated):
#         `local` is this host (no ssh); anything else is an ssh destination
#         ([user@]host), reached with `ssh -o BatchMode=yes` (keys or an agent, never
#         a password prompt). Each barista runs detached (setsid) as
#             BARISTA --zk CONNECT --name NAME [--shop NAME] EXTRA...
#         with its log in LOG_DIR/NAME.log on its host. Names are {host}_{i}: the
#         host as given without `user@` (`local` becomes this host's short name),
#         i = 1, 2, ... counted per host name and skipping names already on shift,
#         so every name is unique across hosts. A name is stable: launching again
#         after a stop reuses it, and the barista takes its own bucket back.
#         What was started (host, pid, name, log) goes to the state file; then it
#         waits up to --wait SECS until shop-status lists every one on shift.
#         Exit 0 if all of them came on shift, 1 otherwise (the state file then
#         still records what did start, for `status` and `stop`).
# status  For each recorded barista: whether its process still runs on its host
#         (checked over ssh: the pid's command line must hold --name NAME),
#         whether it is on shift and its queue (shop-status --on-shift); then the
#         shop as `shop-status` shows it. Exit 0 only if every recorded barista
#         runs and is on shift.
# stop    Sends SIGTERM to every recorded barista (all hosts at once), which
#         makes it leave the group, finish the order in hand and hand its queue
#         over (or serve it, up to its drain timeout, when nobody else is on
#         shift); waits up to --timeout SECS (default 60) for each to exit and
#         reports each one with the last line of its log. Stopped baristas are
#         dropped from the state file (removed once empty). Exit 0 if every one
#         is gone, 1 if some still run or a host could not be reached.
#
# Options:
#   --hosts LIST        e.g. "local,ops@hostA,hostB"; a host may be listed twice
#                       (it then runs 2N baristas)
#   --per-host N        baristas per listed host (1-1000)
#   --zk CONNECT        connect string the baristas use, reachable from every
#                       host (default: $ZK_SERVERS)
#   --shop NAME         the shop (chroot /shops/NAME) (default: $ZK_SHOP)
#   --barista PATH      the barista binary on every host (default: `barista`
#                       on the PATH of the ssh session / of this shell)
#   --shop-status PATH  the shop-status binary on this host (default:
#                       `shop-status` on PATH); without it start does not wait
#                       and status shows processes only
#   --log-dir DIR       where each host keeps the logs (default
#                       /tmp/zk-coffee-launch)
#   --state FILE        the state file (default: $ZK_COFFEE_LAUNCH_STATE, else
#                       ${XDG_STATE_HOME:-~/.local/state}/zk-coffee/launch.state)
#   --ssh CMD           the ssh command, split on spaces (default: $ZK_COFFEE_SSH,
#                       else `ssh`); called as CMD -o BatchMode=yes
#                       -o ConnectTimeout=10 DESTINATION COMMAND
#   --wait SECS         start: how long to wait for the baristas to come on
#                       shift (default 30)
#   --timeout SECS      stop: how long to wait for each barista to exit
#                       (default 60; keep it above the baristas' --drain-timeout)
#   -h, --help          this text
#
# The hosts must run Linux (the pid checks read /proc) and have `setsid`.
# shop-status runs with this shell's environment: for a secured shop set
# ZK_CREDENTIALS_FILE here, and give the baristas theirs as an extra argument,
# e.g. `-- --credentials-file /etc/zk-coffee/staff.cred` (a path on each host).
# status and stop use the connect string, shop and ssh command recorded at start
# unless given again.
#
# Examples:
#   scripts/launch.sh --hosts "local,ops@10.0.0.7,10.0.0.8" --per-host 2 \
#       --zk "zk1:2181,zk2:2181,zk3:2181" --shop downtown -- --brew-time 1.5
#   scripts/launch.sh status
#   scripts/launch.sh stop

set -euo pipefail

PROG="launch.sh"
DEFAULT_LOG_DIR=/tmp/zk-coffee-launch

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh" # die, note, q, run_on_host

usage() {
    script_help "${BASH_SOURCE[0]}"
}

is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

# ------------------------------------------------------------------ options --

COMMAND=start
case "${1:-}" in
    start | status | stop) COMMAND="$1"; shift ;;
esac

HOSTS=""
PER_HOST=""
ZK="${ZK_SERVERS:-}"
ZK_GIVEN=""
SHOP="${ZK_SHOP:-}"
SHOP_GIVEN=""
BARISTA=barista
SHOP_STATUS=""
LOG_DIR="$DEFAULT_LOG_DIR"
STATE="${ZK_COFFEE_LAUNCH_STATE:-${XDG_STATE_HOME:-${HOME:-/root}/.local/state}/zk-coffee/launch.state}"
SSH_CMD="${ZK_COFFEE_SSH:-ssh}"
SSH_GIVEN=""
WAIT=30
TIMEOUT=60
EXTRA=()

need() {
    [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"
}

while (($#)); do
    case "$1" in
        --hosts) need "$@"; HOSTS="$2"; shift 2 ;;
        --per-host) need "$@"; PER_HOST="$2"; shift 2 ;;
        --zk) need "$@"; ZK="$2"; ZK_GIVEN=1; shift 2 ;;
        --shop) need "$@"; SHOP="$2"; SHOP_GIVEN=1; shift 2 ;;
        --barista) need "$@"; BARISTA="$2"; shift 2 ;;
        --shop-status) need "$@"; SHOP_STATUS="$2"; shift 2 ;;
        --log-dir) need "$@"; LOG_DIR="$2"; shift 2 ;;
        --state) need "$@"; STATE="$2"; shift 2 ;;
        --ssh) need "$@"; SSH_CMD="$2"; SSH_GIVEN=1; shift 2 ;;
        --wait) need "$@"; WAIT="$2"; shift 2 ;;
        --timeout) need "$@"; TIMEOUT="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

is_uint "$WAIT" || die "bad --wait '$WAIT' (whole seconds)"
is_uint "$TIMEOUT" || die "bad --timeout '$TIMEOUT' (whole seconds)"
[[ -z "$SHOP" || "$SHOP" =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad --shop '$SHOP' (letters, digits, '_', '-', '.')"

# ------------------------------------------------------------------ helpers --

# run_on HOST SCRIPT: runs the POSIX sh SCRIPT on HOST (here for `local`, else over
# ssh) and prints its output; the exit status is the script's (255: ssh failed).
run_on() {
    run_on_host sh "$@"
}

# host_label HOST: the host part of a barista's name.
host_label() {
    local h="$1"
    if [[ "$h" == local ]]; then
        h="$(hostname 2>/dev/null || uname -n)"
        h="${h%%.*}"
    else
        h="${h##*@}"
    fi
    h="${h//[^A-Za-z0-9_.-]/-}"
    printf '%s\n' "${h:-host}"
}

# The POSIX sh function every remote script uses: ours PID NAME succeeds if PID is a
# live process whose command line holds `--name NAME` (a zombie's is empty).
OURS_FN="$(
    cat <<'EOF'
ours() {
    [ -r "/proc/$1/cmdline" ] &&
        tr '\000' '\n' <"/proc/$1/cmdline" 2>/dev/null |
        awk -v n="$2" 'p == "--name" && $0 == n { f = 1 } { p = $0 } END { exit !f }'
}
EOF
)"

# The end of the remote stop script: waits (up to $t seconds) for the signalled
# baristas in $sig (PID:NAME words) to exit, reporting each one.
STOP_WAIT="$(
    cat <<'EOF'
start=$(date +%s)
while :; do
    left=""
    for e in $sig; do
        p=${e%%:*}; n=${e#*:}
        if ours "$p" "$n"; then
            left="$left $e"
        else
            echo "stopped $p $n $(( $(date +%s) - start ))s: $(tail -n 1 "$(log_of "$n")" 2>/dev/null)"
        fi
    done
    sig=$left
    [ -n "$sig" ] || break
    [ $(( $(date +%s) - start )) -lt "$t" ] || break
    sleep 0.2
done
for e in $sig; do
    echo "running ${e%%:*} ${e#*:}"
done
EOF
)"

# shop_status_bin: the shop-status binary, or nothing if there is none.
shop_status_bin() {
    local bin="${SHOP_STATUS:-shop-status}"
    if command -v "$bin" >/dev/null 2>&1; then
        command -v "$bin"
    fi
}

# shop_status [ARGS]: runs shop-status for the recorded shop.
shop_status() {
    local bin
    bin="$(shop_status_bin)"
    [[ -n "$bin" ]] || return 127
    local -a args=(--zk "$ZK")
    [[ -z "$SHOP" ]] || args+=(--shop "$SHOP")
    RUST_LOG=error "$bin" "${args[@]}" --connect-timeout 5 "$@"
}

# on_shift_lines: `NAME<TAB>QUEUE` for every barista on shift (shop-status --on-shift);
# fails if shop-status cannot read the shop.
on_shift_lines() {
    shop_status --on-shift 2>/dev/null
}

# -------------------------------------------------------------------- state --

# The state file: tab-separated lines
#   zk CONNECT | shop NAME | ssh CMD | shop_status PATH | barista HOST PID NAME LOG
S_HOSTS=()
S_PIDS=()
S_NAMES=()
S_LOGS=()

read_state() {
    [[ -f "$STATE" ]] || return 1
    local kind a b c d
    while IFS=$'\t' read -r kind a b c d; do
        case "$kind" in
            zk) [[ -n "$ZK_GIVEN" ]] || ZK="$a" ;;
            shop) [[ -n "$SHOP_GIVEN" ]] || SHOP="$a" ;;
            ssh) [[ -n "$SSH_GIVEN" ]] || SSH_CMD="$a" ;;
            shop_status) [[ -n "$SHOP_STATUS" ]] || SHOP_STATUS="$a" ;;
            barista)
                { is_uint "$b" && [[ "$c" =~ ^[A-Za-z0-9_.-]+$ ]]; } || die "$STATE: bad line: barista $a $b $c $d"
                S_HOSTS+=("$a")
                S_PIDS+=("$b")
                S_NAMES+=("$c")
                S_LOGS+=("$d")
                ;;
        esac
    done <"$STATE"
}

write_header() {
    mkdir -p "$(dirname "$STATE")"
    {
        printf '# scripts/launch.sh state, written %s; see scripts/launch.sh --help\n' "$(date '+%F %T')"
        printf 'zk\t%s\n' "$ZK"
        printf 'shop\t%s\n' "$SHOP"
        printf 'ssh\t%s\n' "$SSH_CMD"
        printf 'shop_status\t%s\n' "$(shop_status_bin)"
    } >"$STATE"
}

# rewrite_state KEEP...: keeps the barista entries whose indexes are given.
rewrite_state() {
    local -a keep=("$@")
    if ((${#keep[@]} == 0)); then
        rm -f "$STATE"
        return
    fi
    local tmp="$STATE.tmp" i
    grep -v $'^barista\t' "$STATE" >"$tmp" || true
    for i in "${keep[@]}"; do
        printf 'barista\t%s\t%s\t%s\t%s\n' "${S_HOSTS[$i]}" "${S_PIDS[$i]}" "${S_NAMES[$i]}" "${S_LOGS[$i]}" >>"$tmp"
    done
    mv "$tmp" "$STATE"
}

# distinct_hosts: the recorded hosts, each once, in order.
distinct_hosts() {
    local -A seen=()
    local h
    for h in "${S_HOSTS[@]}"; do
        if [[ -z "${seen[$h]:-}" ]]; then
            seen[$h]=1
            printf '%s\n' "$h"
        fi
    done
}

# check_host HOST: prints `running|gone PID NAME` for the recorded baristas of HOST.
check_host() {
    local host="$1" script="$OURS_FN" i
    for i in "${!S_HOSTS[@]}"; do
        [[ "${S_HOSTS[$i]}" == "$host" ]] || continue
        script+=$'\n'"if ours ${S_PIDS[$i]} $(q "${S_NAMES[$i]}"); then echo running ${S_PIDS[$i]} $(q "${S_NAMES[$i]}"); else echo gone ${S_PIDS[$i]} $(q "${S_NAMES[$i]}"); fi"
    done
    run_on "$host" "$script"
}

# -------------------------------------------------------------------- start --

cmd_start() {
    [[ -n "$HOSTS" ]] || die "--hosts is required (see --help)"
    { [[ "$PER_HOST" =~ ^[1-9][0-9]*$ ]] && ((PER_HOST <= 1000)); } || die "bad --per-host '$PER_HOST' (1-1000)"
    [[ -n "$ZK" ]] || die "--zk is required (or set ZK_SERVERS)"
    [[ "$ZK" =~ ^[^[:space:]\']+$ ]] || die "bad --zk '$ZK'"
    local arg
    for arg in "${EXTRA[@]}"; do
        case "$arg" in
            --name | --name=* | --zk | --zk=* | --shop | --shop=*)
                die "do not pass $arg after --: launch.sh sets --name, --zk and --shop itself" ;;
        esac
    done
    if [[ -f "$STATE" ]] && grep -q $'^barista\t' "$STATE"; then
        die "$STATE already records baristas: run '$PROG status' / '$PROG stop' first, or use another --state"
    fi

    local -a hosts=()
    IFS=',' read -r -a hosts <<<"$HOSTS"
    local h
    for h in "${hosts[@]}"; do
        [[ "$h" =~ ^[A-Za-z0-9_.@-]+$ ]] || die "bad host '$h' in --hosts (e.g. local,user@host)"
    done

    # Names already on shift are skipped, so a new barista never waits for (and then
    # fails on) a name a live barista holds, e.g. one run by systemd as {host}_{instance}.
    local -A taken=() next=()
    local have_status=""
    local line name
    if [[ -n "$(shop_status_bin)" ]]; then
        have_status=1
        if ! line="$(on_shift_lines)"; then
            note "warning: shop-status could not read the shop; is it initialised? (run shop-init)"
            line=""
        fi
        while read -r name _; do
            [[ -z "$name" ]] || taken[$name]=1
        done <<<"$line"
    else
        note "warning: ${SHOP_STATUS:-shop-status} not found: names on shift are not checked and start does not wait for the baristas"
    fi

    write_header
    local started=0 failed_hosts=0 label i n script out pid
    local -a new_names=()
    for h in "${hosts[@]}"; do
        label="$(host_label "$h")"
        n="${next[$label]:-1}"
        script="mkdir -p $(q "$LOG_DIR") || exit 1
command -v $(q "$BARISTA") >/dev/null 2>&1 || { echo \"error: $(q "$BARISTA") not found on \$(uname -n)\"; exit 127; }
start() { n=\$1; shift; setsid \"\$@\" </dev/null >>$(q "$LOG_DIR")/\"\$n.log\" 2>&1 & echo \"started \$! \$n\"; }"
        local -a names=()
        for ((i = 0; i < PER_HOST; i++)); do
            while [[ -n "${taken[${label}_$n]:-}" ]]; do
                n=$((n + 1))
            done
            name="${label}_$n"
            taken[$name]=1
            names+=("$name")
            local cmd
            cmd="start $(q "$name") $(q "$BARISTA") --zk $(q "$ZK") --name $(q "$name")"
            [[ -z "$SHOP" ]] || cmd+=" --shop $(q "$SHOP")"
            for arg in "${EXTRA[@]}"; do
                cmd+=" $(q "$arg")"
            done
            script+=$'\n'"$cmd"
        done
        next[$label]="$n"
        if ! out="$(run_on "$h" "$script" 2>&1)"; then
            note "$h: could not start baristas: ${out:-ssh failed}"
            failed_hosts=$((failed_hosts + 1))
        fi
        while read -r word pid name; do
            [[ "$word" == started ]] || continue
            printf 'barista\t%s\t%s\t%s\t%s\n' "$h" "$pid" "$name" "$LOG_DIR/$name.log" >>"$STATE"
            printf 'started %-16s %-24s pid %s\n' "$h" "$name" "$pid"
            new_names+=("$name")
            started=$((started + 1))
        done <<<"$out"
    done
    note "started $started baristas on ${#hosts[@]} host(s); state in $STATE"

    if ((started == 0)); then
        rm -f "$STATE"
        exit 1
    fi
    if [[ -z "$have_status" ]]; then
        ((failed_hosts == 0)) || exit 1
        exit 0
    fi

    # Wait until every new barista is on shift; every 2 s also look whether the missing ones
    # still run (a barista refusing its flags or its shop exits at once).
    read_state || true
    local deadline=$((SECONDS + WAIT)) rounds=0 all_gone word
    local -a missing=()
    local -A on=() gone=()
    while :; do
        on=()
        while read -r name _; do
            [[ -z "$name" ]] || on[$name]=1
        done < <(on_shift_lines || true)
        missing=()
        for name in "${new_names[@]}"; do
            [[ -n "${on[$name]:-}" ]] || missing+=("$name")
        done
        ((${#missing[@]} > 0)) || break
        rounds=$((rounds + 1))
        all_gone=""
        if ((rounds % 4 == 0)); then
            gone=()
            while read -r h; do
                while read -r word pid name; do
                    [[ "$word" != gone ]] || gone[$name]=1
                done < <(check_host "$h" 2>/dev/null || true)
            done < <(distinct_hosts)
            all_gone=1
            for name in "${missing[@]}"; do
                [[ -n "${gone[$name]:-}" ]] || all_gone=""
            done
        fi
        if [[ -n "$all_gone" ]] || ((SECONDS >= deadline)); then
            if [[ -n "$all_gone" ]]; then
                note "exited before coming on shift: ${missing[*]}"
            else
                note "not on shift after ${WAIT}s: ${missing[*]}"
            fi
            for i in "${!S_NAMES[@]}"; do
                for name in "${missing[@]}"; do
                    [[ "${S_NAMES[$i]}" == "$name" ]] || continue
                    note "---- ${S_HOSTS[$i]}: end of ${S_LOGS[$i]} ----"
                    run_on "${S_HOSTS[$i]}" "tail -n 5 $(q "${S_LOGS[$i]}")" >&2 || true
                done
            done
            exit 1
        fi
        sleep 0.5
    done
    note "all $started on shift"
    ((failed_hosts == 0)) || exit 1
}

# ------------------------------------------------------------------- status --

cmd_status() {
    if ! read_state || ((${#S_NAMES[@]} == 0)); then
        note "no baristas recorded in $STATE"
        exit 1
    fi
    local -A proc=() on=()
    local h word pid name queue ok=1
    while read -r h; do
        local out
        if out="$(check_host "$h" 2>&1)"; then
            while read -r word pid name; do
                [[ "$word" == running || "$word" == gone ]] && proc["$h $name"]="$word"
            done <<<"$out"
        else
            note "$h: unreachable: $out"
        fi
    done < <(distinct_hosts)
    local status_ok=1
    local shift_lines
    if ! shift_lines="$(on_shift_lines)"; then
        status_ok=""
    fi
    while read -r name queue; do
        [[ -z "$name" ]] || on[$name]="$queue"
    done <<<"$shift_lines"

    printf '%-16s %-24s %-8s %-12s %-9s %s\n' HOST NAME PID PROCESS "ON SHIFT" QUEUE
    local i p s qd
    for i in "${!S_NAMES[@]}"; do
        h="${S_HOSTS[$i]}"
        name="${S_NAMES[$i]}"
        p="${proc["$h $name"]:-unreachable}"
        if [[ -z "$status_ok" ]]; then
            s="?"
            qd="?"
        elif [[ -n "${on[$name]+x}" ]]; then
            s=yes
            qd="${on[$name]}"
        else
            s=no
            qd="-"
        fi
        [[ "$p" == running && "$s" == yes ]] || ok=""
        printf '%-16s %-24s %-8s %-12s %-9s %s\n' "$h" "$name" "${S_PIDS[$i]}" "$p" "$s" "$qd"
    done
    echo
    if [[ -n "$(shop_status_bin)" ]]; then
        shop_status || ok=""
    else
        note "(shop-status not found: set --shop-status to see the shop)"
    fi
    [[ -n "$ok" ]] || exit 1
}

# --------------------------------------------------------------------- stop --

cmd_stop() {
    if ! read_state || ((${#S_NAMES[@]} == 0)); then
        note "nothing to stop: no baristas recorded in $STATE"
        exit 0
    fi
    note "stopping ${#S_NAMES[@]} baristas: SIGTERM, then waiting up to ${TIMEOUT}s for each to drain and exit"
    local tmp
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now
    trap "rm -rf '$tmp'" EXIT
    local -a hosts=()
    mapfile -t hosts < <(distinct_hosts)
    local h k i script
    for k in "${!hosts[@]}"; do
        h="${hosts[$k]}"
        # Names are letters, digits, '_', '-', '.' (checked when the state is read), so
        # PID:NAME words split safely; log paths are looked up by name.
        script="$OURS_FN
t=$TIMEOUT
sig=''
log_of() {
    case \"\$1\" in"
        for i in "${!S_HOSTS[@]}"; do
            [[ "${S_HOSTS[$i]}" == "$h" ]] || continue
            script+=$'\n'"        ${S_NAMES[$i]}) echo $(q "${S_LOGS[$i]}") ;;"
        done
        script+=$'\n    esac\n}\n'
        for i in "${!S_HOSTS[@]}"; do
            [[ "${S_HOSTS[$i]}" == "$h" ]] || continue
            script+="if ours ${S_PIDS[$i]} ${S_NAMES[$i]} && kill -TERM ${S_PIDS[$i]} 2>/dev/null; then sig=\"\$sig ${S_PIDS[$i]}:${S_NAMES[$i]}\"; else echo gone ${S_PIDS[$i]} ${S_NAMES[$i]}; fi
"
        done
        script+="$STOP_WAIT"
        (run_on "$h" "$script" >"$tmp/$k.out" 2>"$tmp/$k.err"; echo "$?" >"$tmp/$k.rc") &
    done
    wait

    local -A result=()
    local word pid name rest rc ok=1
    for k in "${!hosts[@]}"; do
        h="${hosts[$k]}"
        rc="$(cat "$tmp/$k.rc" 2>/dev/null || echo 255)"
        if [[ "$rc" != 0 ]]; then
            note "$h: unreachable or failed (exit $rc): $(tr '\n' ' ' <"$tmp/$k.err")"
            ok=""
        fi
        while read -r word pid name rest; do
            case "$word" in
                stopped | gone | running) result["$h $name"]="$word $rest" ;;
            esac
        done <"$tmp/$k.out"
    done
    local -a keep=()
    local r stopped=0
    for i in "${!S_NAMES[@]}"; do
        h="${S_HOSTS[$i]}"
        name="${S_NAMES[$i]}"
        r="${result["$h $name"]:-unknown}"
        case "$r" in
            stopped*) printf '%-16s %-24s pid %-8s stopped after %s\n' "$h" "$name" "${S_PIDS[$i]}" "${r#stopped }"; stopped=$((stopped + 1)) ;;
            gone*) printf '%-16s %-24s pid %-8s was not running\n' "$h" "$name" "${S_PIDS[$i]}" ;;
            running*) printf '%-16s %-24s pid %-8s STILL RUNNING after %ss\n' "$h" "$name" "${S_PIDS[$i]}" "$TIMEOUT"; keep+=("$i"); ok="" ;;
            *) printf '%-16s %-24s pid %-8s unknown (host unreachable)\n' "$h" "$name" "${S_PIDS[$i]}"; keep+=("$i"); ok="" ;;
        esac
    done
    rewrite_state "${keep[@]}"
    note "stopped $stopped of ${#S_NAMES[@]}; ${#keep[@]} left in ${STATE}"
    [[ -n "$ok" ]] || exit 1
}

case "$COMMAND" in
    start) cmd_start ;;
    status) cmd_status ;;
    stop) cmd_stop ;;
esac
