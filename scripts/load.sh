#!/usr/bin/env bash
#
# scripts/load.sh — run customers' load on several hosts at once and merge the results.
#
#   scripts/load.sh --hosts LIST --zk CONNECT [--shop NAME] (--orders N | --duration SECS)
#                   [--concurrency C | --rate R | --process-per-order [--concurrency C]]
#                   [OPTIONS] [-- EXTRA CUSTOMER ARGS...]
#
# On every host of --hosts (comma-separated; `local` is this host, anything else an ssh
# destination [user@]host reached with `ssh -o BatchMode=yes`, as in launch.sh) it runs
# one of three loads, all at the same time:
#   closed loop (default)  one `customer` load process with --concurrency C customers
#                          (default 1), each ordering again when served;
#   --rate R               one open-loop `customer` process with R/HOSTS orders due a
#                          second (R is the total, split evenly over the hosts); latency
#                          counts from when each order was due;
#   --process-per-order    the original program's model: one `customer` process per
#                          order, C of them at a time on each host.
# --orders N is the total, split over the hosts (the first N % HOSTS get one more);
# --duration SECS is how long every host places orders. Every customer process writes its
# summary with its latency histogram (customer --summary-json); the summaries of one host
# (process-per-order: of each process) are merged there, then those of all hosts here, by
# `customer --merge-summaries`: percentiles come from the added histograms, never from
# averaged percentiles.
#
# Output: every --progress SECS (default 5) one line per host on stderr with its latest
# progress; at the end one line per host on stdout, `HOST summary visits=... served=...`,
# and last the merged `summary visits=... served=...` line, in the form `customer` prints
# (README, "The summary line and file"); the merged report for people goes to stderr.
# Exit 0 only if every order on every host was served, 1 otherwise (a host unreachable, a
# process that left no summary, any order not served), 2 for bad arguments.
#
# Options:
#   --hosts LIST        e.g. "local,ops@hostA,hostB"; a host may be listed twice
#   --zk CONNECT        connect string, reachable from every host (default: $ZK_SERVERS)
#   --shop NAME         the shop (chroot /shops/NAME) (default: $ZK_SHOP)
#   --orders N          orders in total, over all hosts
#   --duration SECS     how long each host places orders (whole seconds)
#   --concurrency C     customers at once per host (closed loop, process-per-order)
#   --rate R            open loop: orders due per second in total (e.g. 200 or 0.5)
#   --process-per-order one customer process per order (needs bash on the hosts)
#   --customer PATH     the customer binary on every host (default: `customer` on
#                       the PATH of the ssh session / of this shell)
#   --merge-with PATH   the customer binary here that merges the hosts' summaries
#                       (default: --customer)
#   --ssh CMD           the ssh command, split on spaces (default: $ZK_COFFEE_SSH,
#                       else `ssh`); called as CMD -o BatchMode=yes
#                       -o ConnectTimeout=10 DESTINATION COMMAND
#   --progress SECS     how often to print the hosts' progress (default 5)
#   --keep DIR          keep each host's summary file in DIR/HOSTINDEX-HOST.json and
#                       the merged one in DIR/merged.json
#   -h, --help          this text
# Anything after -- goes to every customer (e.g. --patience 30, --max-outstanding 500,
# --coffee jacob, --credentials-file FILE); not the flags load.sh sets itself.
#
# The hosts need bash and mktemp. The customers log at warn (and their progress); set
# RUST_LOG here to change that on every host. Runs are meant to start together: the merged
# elapsed time is from the earliest start to the latest end over all hosts, by their
# clocks (keep them synchronised).
#
# Examples:
#   scripts/load.sh --hosts "local,ops@10.0.0.7" --zk zk1:2181,zk2:2181,zk3:2181 \
#       --shop downtown --duration 60 --concurrency 16 -- --patience 30
#   scripts/load.sh --hosts "10.0.0.7,10.0.0.8" --zk zk1:2181 --duration 60 --rate 400
#   scripts/load.sh --hosts local --zk 127.0.0.1:2181 --orders 200 --process-per-order \
#       --concurrency 20

set -euo pipefail

PROG="load.sh"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh" # die, note, q, run_on_host

usage() {
    script_help "${BASH_SOURCE[0]}"
}

# ------------------------------------------------------------------ options --

HOSTS=""
ZK="${ZK_SERVERS:-}"
SHOP="${ZK_SHOP:-}"
ORDERS=""
DURATION=""
CONCURRENCY=""
RATE=""
PER_ORDER=""
CUSTOMER=customer
MERGE_WITH=""
SSH_CMD="${ZK_COFFEE_SSH:-ssh}"
PROGRESS=5
KEEP=""
EXTRA=()

need() {
    [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"
}

while (($#)); do
    case "$1" in
        --hosts) need "$@"; HOSTS="$2"; shift 2 ;;
        --zk) need "$@"; ZK="$2"; shift 2 ;;
        --shop) need "$@"; SHOP="$2"; shift 2 ;;
        --orders) need "$@"; ORDERS="$2"; shift 2 ;;
        --duration) need "$@"; DURATION="$2"; shift 2 ;;
        --concurrency) need "$@"; CONCURRENCY="$2"; shift 2 ;;
        --rate) need "$@"; RATE="$2"; shift 2 ;;
        --process-per-order) PER_ORDER=1; shift ;;
        --customer) need "$@"; CUSTOMER="$2"; shift 2 ;;
        --merge-with) need "$@"; MERGE_WITH="$2"; shift 2 ;;
        --ssh) need "$@"; SSH_CMD="$2"; shift 2 ;;
        --progress) need "$@"; PROGRESS="$2"; shift 2 ;;
        --keep) need "$@"; KEEP="$2"; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

[[ -n "$HOSTS" ]] || die "--hosts is required (see --help)"
[[ -n "$ZK" ]] || die "--zk is required (or set ZK_SERVERS)"
[[ "$ZK" =~ ^[^[:space:]\']+$ ]] || die "bad --zk '$ZK'"
[[ -z "$SHOP" || "$SHOP" =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad --shop '$SHOP' (letters, digits, '_', '-', '.')"
[[ -n "$ORDERS" || -n "$DURATION" ]] || die "give --orders N or --duration SECS"
[[ -z "$ORDERS" || "$ORDERS" =~ ^[1-9][0-9]*$ ]] || die "bad --orders '$ORDERS' (a count above 0)"
[[ -z "$DURATION" || "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "bad --duration '$DURATION' (whole seconds above 0)"
[[ "$PROGRESS" =~ ^[1-9][0-9]*$ ]] || die "bad --progress '$PROGRESS' (whole seconds above 0)"
if [[ -n "$CONCURRENCY" ]]; then
    { [[ "$CONCURRENCY" =~ ^[1-9][0-9]*$ ]] && ((CONCURRENCY <= 1000)); } || die "bad --concurrency '$CONCURRENCY' (1-1000)"
fi
if [[ -n "$RATE" ]]; then
    if ! [[ "$RATE" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || ! awk -v r="$RATE" 'BEGIN { exit !(r > 0) }'; then
        die "bad --rate '$RATE' (orders per second above 0)"
    fi
    [[ -z "$CONCURRENCY" ]] || die "--rate and --concurrency do not go together: an open loop has no fixed number of customers"
    [[ -z "$PER_ORDER" ]] || die "--rate and --process-per-order do not go together"
fi
for arg in "${EXTRA[@]}"; do
    case "$arg" in
        --zk | --zk=* | --shop | --shop=* | --orders | --orders=* | --duration | --duration=* | \
            --concurrency | --concurrency=* | --rate | --rate=* | --summary-json | --summary-json=* | \
            --merge-summaries | --merge-summaries=*)
            die "do not pass $arg after --: load.sh sets it itself" ;;
    esac
done

HOST_LIST=()
IFS=',' read -r -a HOST_LIST <<<"$HOSTS"
((${#HOST_LIST[@]} > 0)) || die "--hosts lists no host"
for h in "${HOST_LIST[@]}"; do
    [[ "$h" =~ ^[A-Za-z0-9_.@-]+$ ]] || die "bad host '$h' in --hosts (e.g. local,user@host)"
done
NHOSTS=${#HOST_LIST[@]}
if [[ -n "$ORDERS" ]] && ((ORDERS < NHOSTS)); then
    die "--orders $ORDERS is fewer than the $NHOSTS hosts"
fi

MERGE_WITH="${MERGE_WITH:-$CUSTOMER}"
command -v "$MERGE_WITH" >/dev/null 2>&1 || die "$MERGE_WITH not found here (it merges the summaries: see --merge-with)"

# ------------------------------------------------------------------ helpers --

# run_on HOST SCRIPT: runs the bash SCRIPT on HOST (here for `local`, else over ssh); the
# exit status is the script's (255: ssh failed).
run_on() {
    run_on_host bash "$@"
}

# customer_words ORDERS: the customer's command line for this host (quoted), without the
# load flags.
customer_words() {
    local words arg
    words="$(q "$CUSTOMER") --zk $(q "$ZK")"
    [[ -z "$SHOP" ]] || words+=" --shop $(q "$SHOP")"
    for arg in "${EXTRA[@]}"; do
        words+=" $(q "$arg")"
    done
    printf '%s' "$words"
}

# What every host script starts with. It prints `progress TEXT` lines while the load runs,
# then `json SUMMARY` (the host's summary file), a few `log LINE`s of the customers' stderr,
# and `exit CODE`.
PRELUDE="$(
    cat <<'EOF'
set -u
export RUST_LOG="${RUST_LOG:-warn,zk_coffee::customer::load=info}"
d=$(mktemp -d) || { echo "exit 1"; exit 1; }
trap 'rm -rf "$d"' EXIT
finish() {
    rc=$1
    if [ -s "$d/host.json" ]; then echo "json $(cat "$d/host.json")"; fi
    if [ "$rc" != 0 ]; then tail -n 5 "$d/err" 2>/dev/null | sed 's/^/log /'; fi
    echo "exit $rc"
}
EOF
)"

# host_script INDEX: the script for host INDEX.
host_script() {
    local k="$1" script="$PRELUDE" orders="" words
    words="$(customer_words)"
    if [[ -n "$ORDERS" ]]; then
        orders=$((ORDERS / NHOSTS + (k < ORDERS % NHOSTS ? 1 : 0)))
    fi
    script+=$'\n'"command -v $(q "$CUSTOMER") >/dev/null 2>&1 || { echo \"log $(q "$CUSTOMER") not found on \$(uname -n)\"; echo 'exit 127'; exit 0; }"
    if [[ -z "$PER_ORDER" ]]; then
        local load=""
        [[ -z "$orders" ]] || load+=" --orders $orders"
        [[ -z "$DURATION" ]] || load+=" --duration $DURATION"
        if [[ -n "$RATE" ]]; then
            load+=" --rate $(awk -v r="$RATE" -v h="$NHOSTS" 'BEGIN { printf "%.6g", r / h }')"
        else
            load+=" --concurrency ${CONCURRENCY:-1}"
        fi
        script+=$'\n'"$words$load --summary-json \"\$d/host.json\" >\"\$d/out\" 2>\"\$d/err\" &
pid=\$!
last=''
while kill -0 \$pid 2>/dev/null; do
    sleep 1
    line=\$(grep -a 'progress:' \"\$d/err\" | tail -n 1)
    if [ -n \"\$line\" ] && [ \"\$line\" != \"\$last\" ]; then echo \"progress \${line#*progress: }\"; last=\$line; fi
done
wait \$pid
finish \$?"
    else
        script+=$'\n'"n=$(q "$orders"); c=${CONCURRENCY:-1}; secs=$(q "$DURATION")
i=0; running=0; shown=\$SECONDS
mkdir \"\$d/v\"
while :; do
    if [ -n \"\$n\" ] && [ \$i -ge \$n ]; then break; fi
    if [ -n \"\$secs\" ] && [ \$SECONDS -ge \$secs ]; then break; fi
    while [ \$running -ge \$c ]; do wait -n || true; running=\$((running - 1)); done
    $words --summary-json \"\$d/v/\$i.json\" >/dev/null 2>>\"\$d/err\" &
    running=\$((running + 1)); i=\$((i + 1))
    if [ \$((SECONDS - shown)) -ge 5 ]; then
        shown=\$SECONDS
        echo \"progress \$(ls \"\$d/v\" | wc -l) of \$i customer processes done, \$running running\"
    fi
done
wait
set -- \"\$d\"/v/*.json
[ -e \"\$1\" ] || { echo 'log no customer process left a summary'; finish 1; exit 0; }
[ \$# -eq \$i ] || echo \"missing \$((i - \$#))\"
$(q "$CUSTOMER") --merge-summaries \"\$@\" --summary-json \"\$d/host.json\" >/dev/null 2>>\"\$d/err\"
rc=\$?
[ \$# -eq \$i ] || rc=1
finish \$rc"
    fi
    printf '%s\n' "$script"
}

# --------------------------------------------------------------------- run --

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'note "interrupted: closing the connections to the hosts"; exit 1' INT TERM

mode="closed loop, ${CONCURRENCY:-1} customers per host"
[[ -z "$RATE" ]] || mode="open loop, $RATE orders/s in all"
[[ -z "$PER_ORDER" ]] || mode="one customer process per order, ${CONCURRENCY:-1} at a time per host"
note "load on $NHOSTS host(s): $mode; ${ORDERS:+$ORDERS orders in all}${ORDERS:+${DURATION:+, }}${DURATION:+${DURATION}s}"

for k in "${!HOST_LIST[@]}"; do
    (
        rc=0
        run_on "${HOST_LIST[$k]}" "$(host_script "$k")" >"$TMP/$k.out" 2>"$TMP/$k.err" || rc=$?
        echo "$rc" >"$TMP/$k.rc"
    ) &
    PIDS+=("$!")
done

started=$SECONDS
shown=$SECONDS
while :; do
    left=0
    for k in "${!HOST_LIST[@]}"; do
        [[ -e "$TMP/$k.rc" ]] || left=$((left + 1))
    done
    ((left > 0)) || break
    sleep 0.5
    if ((SECONDS - shown >= PROGRESS)); then
        shown=$SECONDS
        for k in "${!HOST_LIST[@]}"; do
            line="$(grep -a '^progress ' "$TMP/$k.out" 2>/dev/null | tail -n 1 || true)"
            if [[ -e "$TMP/$k.rc" ]]; then
                line="done"
            fi
            line="${line#progress }"
            printf '%4ds %-20s %s\n' "$((SECONDS - started))" "${HOST_LIST[$k]}" "${line:-running}" >&2
        done
    fi
done
wait

ok=1
FILES=()
for k in "${!HOST_LIST[@]}"; do
    h="${HOST_LIST[$k]}"
    out="$TMP/$k.out"
    json="$(grep -a '^json ' "$out" | tail -n 1 || true)"
    code="$(grep -a '^exit ' "$out" | tail -n 1 || true)"
    code="${code#exit }"
    missing="$(grep -a '^missing ' "$out" | tail -n 1 || true)"
    if [[ -n "$missing" ]]; then
        note "$h: ${missing#missing } customer process(es) left no summary (killed?)"
        ok=""
    fi
    if [[ -z "$json" ]]; then
        note "$h: no summary (ssh exit $(cat "$TMP/$k.rc"), customer exit ${code:-unknown}):"
        sed -n 's/^log /    /p' "$out" >&2
        sed 's/^/    /' "$TMP/$k.err" | tail -n 5 >&2
        ok=""
        continue
    fi
    file="$TMP/$k.json"
    printf '%s\n' "${json#json }" >"$file"
    FILES+=("$file")
    if [[ "$code" != 0 ]]; then
        ok=""
        sed -n 's/^log /    /p' "$out" >&2
    fi
    line="$("$MERGE_WITH" --merge-summaries "$file" 2>/dev/null | tail -n 1 || true)"
    printf '%s %s\n' "$h" "$line"
    if [[ -n "$KEEP" ]]; then
        mkdir -p "$KEEP"
        cp "$file" "$KEEP/$k-$h.json"
    fi
done

((${#FILES[@]} > 0)) || { note "no host returned a summary"; exit 1; }
merge=("$MERGE_WITH" --merge-summaries "${FILES[@]}")
[[ -z "$KEEP" ]] || merge+=(--summary-json "$KEEP/merged.json")
rc=0
"${merge[@]}" || rc=$?
((${#FILES[@]} == NHOSTS)) || ok=""
[[ -n "$ok" && "$rc" == 0 ]] || exit 1
