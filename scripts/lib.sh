# shellcheck shell=bash
#
# scripts/lib.sh — shared helpers for the zk-coffee shell scripts.
#
# Source it (it does nothing when executed on its own):
#
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# The sourcing script is expected to run with `set -euo pipefail`.
#
# Sets REPO_ROOT: the repository's root (the folder above this file's), wherever the script
# was called from.
#
# Functions:
#   ensure_zookeeper              make sure the Debian `zookeeper` package (and
#                                 java) is installed; installs it with apt-get
#                                 when running as root, otherwise prints how to
#                                 install it and returns 1.
#   zk_classpath                  echo the Java classpath for the ZooKeeper
#                                 server/CLI shipped by Debian.
#   free_port                     echo one free loopback TCP port.
#   free_ports N                  echo N distinct free loopback TCP ports, one
#                                 per line.
#   zk_4lw HOST PORT CMD [SECS]   send a ZooKeeper four-letter word (ruok, srvr,
#                                 mntr, ...) and echo the reply.
#   wait_for_zk HOST PORT SECS    poll `ruok` until the server answers `imok`;
#                                 returns 1 after SECS seconds.
#   die MSG, note MSG, q WORD     a usage error (exit 2), a line on stderr, a word
#                                 quoted for a POSIX shell.
#   run_on_host SHELL HOST SCRIPT run SCRIPT here (`local`) or over ssh.
#   zk_cli HOST:PORT ARGS...      run one ZooKeeperMain (zkCli) command, e.g.
#                                 `zk_cli 127.0.0.1:2181 ls /`; only the
#                                 command's own output is printed.
#   zk_children HOST:PORT PATH    echo the children of PATH, one per line
#                                 (nothing if PATH does not exist).
#   ensure_command CMD PACKAGE    install the Debian PACKAGE (as root) when CMD is
#                                 missing, or print how to and return 1.
#   ensure_python_module MODULE PACKAGE
#                                 the same for a module of Debian's /usr/bin/python3.
#   ensure_cargo                  return 1 (with install hints) if cargo is missing.
#   log_info / log_error MSG...   print a message to stderr.
#   script_help SCRIPT            print SCRIPT's header comment (its --help).

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    echo "lib.sh is meant to be sourced, not executed" >&2
    exit 2
fi

# shellcheck disable=SC2034 # for the scripts that source this file
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Where Debian puts the jars and the example configuration (log4j.properties).
ZK_JAVA_DIR="${ZK_JAVA_DIR:-/usr/share/java}"
ZK_CONF_DIR="${ZK_CONF_DIR:-/etc/zookeeper/conf_example}"

# Jars the ZooKeeper server and CLI need, by their unversioned Debian names.
ZK_JARS=(
    zookeeper
    zookeeper-jute
    slf4j-api
    slf4j-log4j12
    log4j-1.2
    commons-io
    commons-cli
    snappy-java
    netty-all
    metrics-core
    # Debian's netty-all is an empty aggregate: the Netty connection factory (TLS,
    # zk.sh --tls) needs the jars themselves.
    netty-buffer
    netty-codec
    netty-common
    netty-handler
    netty-resolver
    netty-transport
    netty-transport-native-unix-common
    netty-transport-native-epoll
)

log_info() {
    printf '%s\n' "$*" >&2
}

log_error() {
    printf 'error: %s\n' "$*" >&2
}

# die MESSAGE: `$PROG: error: MESSAGE` on stderr, and exit 2 (what the user typed is wrong).
die() {
    printf '%s: error: %s\n' "${PROG:-$(basename "$0")}" "$*" >&2
    exit 2
}

note() {
    printf '%s\n' "$*" >&2
}

# q WORD: WORD quoted for a POSIX shell (single quotes).
q() {
    local s="$1"
    printf "'%s'" "${s//\'/\'\\\'\'}"
}

# run_on_host SHELL HOST SCRIPT: runs SCRIPT with SHELL (sh or bash) on HOST: here for
# `local`, else over $SSH_CMD (default ssh; no password prompts, 10 s to connect). The exit
# status is the script's (255: ssh failed).
run_on_host() {
    local shell="$1" host="$2" script="$3"
    if [[ "$host" == local ]]; then
        "$shell" -c "$script" </dev/null
    else
        local -a ssh=()
        read -r -a ssh <<<"${SSH_CMD:-ssh}"
        "${ssh[@]}" -o BatchMode=yes -o ConnectTimeout=10 "$host" "$shell -c $(q "$script")" </dev/null
    fi
}

# script_help SCRIPT: print the comment block at the head of SCRIPT, from its third line (after
# the #! line and a bare #) to the first line that is not a comment, without the #s.
script_help() {
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$1"
}

# Set once `apt-get update` has run in this shell.
_ZK_APT_UPDATED=""

_zk_installed() {
    [[ -e "$ZK_JAVA_DIR/zookeeper.jar" ]] && command -v java >/dev/null 2>&1
}

# _install_package WHAT PACKAGE: WHAT is missing; install the Debian PACKAGE (as root, with
# one `apt-get update` a shell), or print the exact command to run and return 1.
_install_package() {
    local what="$1" package="$2"
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "$what is not installed; run: sudo apt-get install -y $package" >&2
        return 1
    fi
    log_info "$what is missing; installing the Debian package '$package' ..."
    if [[ -z "$_ZK_APT_UPDATED" ]]; then
        apt-get update >&2 || return 1
        _ZK_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$package" >&2
}

ensure_zookeeper() {
    if _zk_installed; then
        return 0
    fi
    _install_package zookeeper zookeeper || return 1
    if ! _zk_installed; then
        log_error "installed 'zookeeper' but $ZK_JAVA_DIR/zookeeper.jar or java is still missing"
        return 1
    fi
}

# ensure_command CMD PACKAGE: install the Debian PACKAGE when CMD is missing (as root), or
# print the exact command to run.
ensure_command() {
    local cmd="$1" package="$2"
    if ! command -v "$cmd" >/dev/null 2>&1; then
        _install_package "$cmd" "$package"
    fi
}

# ensure_python_module MODULE PACKAGE: install the Debian PACKAGE when Debian's python
# (/usr/bin/python3, not a pyenv or venv one) cannot import MODULE.
ensure_python_module() {
    local module="$1" package="$2"
    if ! /usr/bin/python3 -c "import $module" >/dev/null 2>&1; then
        _install_package "python module $module" "$package"
    fi
}

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "Rust is not installed; install it with rustup (https://rustup.rs) or apt-get install -y cargo" >&2
        return 1
    fi
}

# Echo the classpath: the example conf dir (for log4j.properties) and the jars.
# Prefers the unversioned symlink (foo.jar), falls back to foo-<version>.jar.
zk_classpath() {
    local cp="$ZK_CONF_DIR" name jar candidate
    for name in "${ZK_JARS[@]}"; do
        jar=""
        if [[ -e "$ZK_JAVA_DIR/$name.jar" ]]; then
            jar="$ZK_JAVA_DIR/$name.jar"
        else
            for candidate in "$ZK_JAVA_DIR/$name"-[0-9]*.jar; do
                if [[ -e "$candidate" ]]; then
                    jar="$candidate"
                fi
            done
        fi
        if [[ -z "$jar" ]]; then
            log_error "required jar $ZK_JAVA_DIR/$name.jar not found (is the 'zookeeper' package installed?)"
            return 1
        fi
        cp="$cp:$jar"
    done
    printf '%s\n' "$cp"
}

# Echo N distinct free loopback TCP ports (all sockets are bound at the same
# time, so the ports are distinct from each other).
free_ports() {
    local n="${1:-1}"
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$n" <<'EOF'
import socket, sys
n = int(sys.argv[1])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
EOF
        return
    fi
    # Fallback without python3: random ports that are not in /proc/net/tcp{,6}
    # and refuse a connection.
    local -a chosen=()
    local port used tries=0 p dup
    local _sl local_addr _rest
    used=""
    for p in /proc/net/tcp /proc/net/tcp6; do
        [[ -r "$p" ]] || continue
        while read -r _sl local_addr _rest; do
            [[ "$local_addr" == *:* ]] || continue
            used+="$((16#${local_addr##*:}))"$'\n'
        done <"$p"
    done
    while ((${#chosen[@]} < n)); do
        ((tries += 1))
        if ((tries > 1000)); then
            log_error "could not find $n free TCP ports"
            return 1
        fi
        port=$((20000 + RANDOM % 30000))
        if grep -qx "$port" <<<"$used"; then
            continue
        fi
        dup=""
        for p in "${chosen[@]}"; do
            if [[ "$p" == "$port" ]]; then
                dup=1
            fi
        done
        [[ -z "$dup" ]] || continue
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            continue
        fi
        chosen+=("$port")
    done
    printf '%s\n' "${chosen[@]}"
}

free_port() {
    free_ports 1
}

# zk_4lw HOST PORT CMD [TIMEOUT_SECS]: echo the server's reply to a 4lw command.
zk_4lw() {
    local host="$1" port="$2" cmd="$3" secs="${4:-5}"
    # shellcheck disable=SC2016 # expanded by the inner shell
    timeout "$secs" bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "%s" "$3" >&3
        cat <&3
    ' zk_4lw "$host" "$port" "$cmd" 2>/dev/null
}

# wait_for_zk HOST PORT TIMEOUT_SECS: poll `ruok` until `imok`.
wait_for_zk() {
    local host="$1" port="$2" secs="$3"
    local deadline=$((SECONDS + secs))
    while :; do
        if [[ "$(zk_4lw "$host" "$port" ruok 2 || true)" == "imok" ]]; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            log_error "ZooKeeper at $host:$port did not answer ruok with imok within ${secs}s"
            return 1
        fi
        sleep 0.2
    done
}

# zk_cli HOST:PORT ARGS...: run one ZooKeeperMain command. The JVM logs only
# errors, so what remains on stdout is the command's own output.
zk_cli() {
    local server="$1"
    shift
    local cp
    cp="$(zk_classpath)" || return 1
    java -Xmx64m -XX:TieredStopAtLevel=1 -cp "$cp" \
        -Dzookeeper.root.logger=ERROR,CONSOLE \
        -Dzookeeper.log.dir=/tmp \
        org.apache.zookeeper.ZooKeeperMain -server "$server" "$@" </dev/null
}

# zk_children HOST:PORT PATH: children of PATH, one per line.
zk_children() {
    local out line
    out="$(zk_cli "$1" ls "$2" 2>/dev/null || true)"
    line="$(grep -E '^\[.*\]$' <<<"$out" | tail -n 1 || true)"
    line="${line#[}"
    line="${line%]}"
    if [[ -n "$line" ]]; then
        tr -d ' ' <<<"$line" | tr ',' '\n'
    fi
}
