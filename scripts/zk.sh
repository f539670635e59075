#!/usr/bin/env bash
#
# scripts/zk.sh — start and stop throwaway private ZooKeeper servers (a single
# standalone server or a 3-member loopback ensemble) for the zk-coffee demo and
# the integration tests. Uses the Debian `zookeeper` package (installed on
# demand when running as root).
#
# Every server lives in its own directory:
#   DIR/zoo.cfg     configuration (clientPort, dataDir=DIR/data, ...)
#   DIR/data/       snapshots + transaction logs (and `myid` for ensembles)
#   DIR/zk.pid      PID of the running java process
#   DIR/server.log  stdout+stderr of the server (appended on every start)
#   DIR/tls/        with --tls: the throwaway CA, the server's certificate and
#                   keystores, a client identity (an ensemble's is ENSEMBLE/tls)
# An ensemble directory holds one such directory per member: DIR/1, DIR/2, ...
#
# Servers are started detached (setsid), so Ctrl-C in the caller's terminal and
# process-group kills do not reach them: always `stop` what you `start`.
#
# Run `scripts/zk.sh --help` for the command line.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$SCRIPT_DIR/lib.sh"

PROG="$(basename "$0")"
START_TIMEOUT="${ZK_START_TIMEOUT:-30}"
ENSEMBLE_TIMEOUT="${ZK_ENSEMBLE_TIMEOUT:-60}"
STOP_GRACE=5
HOST=127.0.0.1
# First line of every zoo.cfg this script writes. `stop` only touches
# directories whose zoo.cfg carries it.
ZK_MARKER="# Throwaway ZooKeeper written by scripts/zk.sh"

usage() {
    cat <<EOF
Usage:
  $PROG start [--port N] [--dir DIR] [--tick-ms MS] [--fsync] [--ruok-only] [--address A]
              [--4lw LIST] [--tls [--client-auth none|want|need] [--tls-expired]]
  $PROG start-ensemble [--dir DIR] [--tick-ms MS] [--size N] [--tls [--client-auth MODE]]
  $PROG tls-cert TLSDIR NAME [--expired]
  $PROG stop DIR [--keep]
  $PROG status DIR
  $PROG leader DIR [--wait SECS]
  $PROG addr DIR
  $PROG --help

Start and stop throwaway private ZooKeeper servers on 127.0.0.1 (or, for
'start --address', on another address of the host or network namespace).

Commands:
  start           Start one server and wait (up to ${START_TIMEOUT}s) until it answers
                  'ruok' with 'imok' and serves requests ('srvr' works). Prints
                  exactly one line on stdout:
                      127.0.0.1:PORT DIR
                  --dir DIR     server directory (default: a new
                                mktemp -d /tmp/zk-coffee-zk.XXXXXX). If DIR/zoo.cfg
                                exists it is reused (same port, same data dir: a
                                restart; sessions are recovered from DIR/data);
                                --port/--tick-ms then override its values.
                  --port N      client port (default: a free port, or the one in
                                an existing DIR/zoo.cfg)
                  --tick-ms MS  tickTime (default 2000). Session timeouts are
                                negotiated into [2, 20] x tickTime.
                  --fsync       forceSync=yes: fsync the transaction log on
                                every commit, as production servers do (the
                                default here is forceSync=no). For benchmarks.
                  --address A   listen on the IPv4 address A instead of
                                127.0.0.1 (clientPortAddress=A); A must be an
                                address of the host, or of the network
                                namespace zk.sh runs in, e.g.
                                  ip netns exec NS $PROG start --address 10.201.1.1
                                The printed line is then A:PORT DIR. A restart
                                of DIR keeps the address its zoo.cfg has.
                  --4lw LIST    4lw.commands.whitelist=LIST instead of * (keep
                                ruok and srvr in it: start waits with them),
                                e.g. --4lw ruok,srvr for a server that refuses
                                mntr.
                  --tls         a TLS-only server: secureClientPort (Netty) and
                                no clientPort. Makes, in DIR/tls, a CA (ca.pem),
                                the server's certificate for 127.0.0.1/localhost
                                (server.p12 keystore, truststore.p12 with the CA,
                                PKCS12, password $TLS_PASSWORD) and a client
                                identity (client.pem, client.key, CN
                                zk-coffee-client) with openssl and keytool. The
                                printed line is the same; clients need --tls-ca
                                DIR/tls/ca.pem. 4lw go over TLS (openssl
                                s_client). A restart keeps DIR/tls.
                  --client-auth M  ssl.clientAuth=M (default none): need makes
                                the server refuse clients without a certificate
                                signed by DIR/tls/ca.pem, and enables the x509
                                auth scheme (authProvider.x509).
                  --tls-expired the server's certificate expired yesterday
                                (for tests: clients must refuse it).
                  If DIR/zoo.cfg has server.N lines (an ensemble member, e.g.
                  DIR=ENSEMBLE/2), the member is started with QuorumPeerMain and
                  start also waits until it has joined a quorum ('srvr' reports
                  Mode: leader/follower); --ruok-only skips that wait (use it
                  to start a member while the rest of its ensemble is down).
                  On failure: prints the end of DIR/server.log to stderr, kills
                  the server it started and exits 1.
  start-ensemble  Start a loopback ensemble (default 3 members, in DIR/1..DIR/N,
                  all ports free ones), wait (up to ${ENSEMBLE_TIMEOUT}s) until every member
                  answers imok and is leader or follower. Prints one line:
                      127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 DIR
                  If DIR/1/zoo.cfg exists, the existing ensemble is restarted
                  (members that are still running are left alone).
                  --tls, --client-auth: as for start, with one CA and one
                  server certificate in DIR/tls for all members. The quorum
                  (the ports between members, on 127.0.0.1) stays plaintext.
  tls-cert TLSDIR NAME
                  Sign a client certificate (CN NAME) with the CA of TLSDIR (a
                  --tls server's DIR/tls): writes TLSDIR/NAME.pem and
                  TLSDIR/NAME.key and prints their paths. --expired: its
                  validity ended yesterday.
  stop DIR        Stop the server of DIR (DIR/zk.pid), or every member of an
                  ensemble DIR (DIR/N/zk.pid): SIGTERM, SIGKILL after ${STOP_GRACE}s. Only a
                  PID whose /proc cmdline is java with that dir's zoo.cfg is
                  signalled. Removes the pid files and, unless --keep is given,
                  the server directory (an ensemble's DIR/N member directories,
                  then DIR if it is left empty). Only directories whose zoo.cfg
                  was written by $PROG are touched; anything else is an error.
                  Stopping a stopped server is OK.
  status DIR      Server dir: prints 'running PID' (exit 0) or 'stopped' (exit 1).
                  Ensemble dir: one line per member, 'N running PID' or
                  'N stopped'; exit 0 only if all members run.
  leader DIR      Prints the member number whose 'srvr' reports 'Mode: leader'.
                  Waits up to --wait SECS (default 10) for one; exit 1 if none.
  addr DIR        Prints the connect string of DIR (server or ensemble).

Environment:
  ZK_START_TIMEOUT     seconds 'start' waits for a server (default 30)
  ZK_ENSEMBLE_TIMEOUT  seconds 'start-ensemble' waits (default 60)
  ZK_JAVA_OPTS         extra JVM options for the servers

Examples:
  read -r ZK_SERVERS DIR < <($PROG start --tick-ms 200)
  (source scripts/lib.sh && zk_4lw 127.0.0.1 "\${ZK_SERVERS##*:}" mntr)
  $PROG stop "\$DIR" --keep && $PROG start --dir "\$DIR"   # restart, same port
  $PROG stop "\$DIR"
EOF
}

die() {
    log_error "$*"
    exit 1
}

is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

abs_dir() {
    (cd "$1" && pwd -P)
}

# cfg_get FILE KEY: value of KEY= in a zoo.cfg (last one wins).
cfg_get() {
    sed -n "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" | tail -n 1 | tr -d '[:space:]'
}

# cfg_address FILE: the clientPortAddress of a zoo.cfg (127.0.0.1 if it has none).
cfg_address() {
    local a
    a="$(cfg_get "$1" clientPortAddress)"
    [[ -n "$a" ]] || a="$(cfg_get "$1" secureClientPortAddress)"
    echo "${a:-127.0.0.1}"
}

# cfg_set FILE KEY VALUE: replace (or append) KEY=VALUE.
cfg_set() {
    local file="$1" key="$2" value="$3"
    if grep -q "^[[:space:]]*${key}[[:space:]]*=" "$file"; then
        sed -i "s|^[[:space:]]*${key}[[:space:]]*=.*|$key=$value|" "$file"
    else
        printf '%s=%s\n' "$key" "$value" >>"$file"
    fi
}

# cfg_port FILE: the client port of a zoo.cfg (secureClientPort for a TLS server).
cfg_port() {
    local p
    p="$(cfg_get "$1" clientPort)"
    [[ -n "$p" ]] || p="$(cfg_get "$1" secureClientPort)"
    echo "$p"
}

# cfg_tls_dir FILE: the TLS directory of a TLS server's zoo.cfg (fails for a plain one).
cfg_tls_dir() {
    local store
    store="$(cfg_get "$1" ssl.trustStore.location)"
    [[ -n "$store" ]] || return 1
    dirname "$store"
}

# cfg_4lw FILE HOST PORT CMD SECS: zk_4lw, over TLS for a TLS server (with its client
# identity, which a server with ssl.clientAuth=need wants).
cfg_4lw() {
    local cfg="$1" tls
    if ! tls="$(cfg_tls_dir "$cfg")"; then
        zk_4lw "$2" "$3" "$4" "$5"
        return
    fi
    printf "%s" "$4" | timeout "$5" openssl s_client -quiet -ign_eof \
        -connect "$2:$3" -CAfile "$tls/ca.pem" -cert "$tls/client.pem" -key "$tls/client.key" 2>/dev/null
}

# Password of the throwaway keystores --tls makes (they guard nothing worth one).
TLS_PASSWORD=zk-coffee

# tls_sign TLSDIR NAME SUBJECT EXT EXPIRED: a P-256 key TLSDIR/NAME.key and a certificate
# TLSDIR/NAME.pem for SUBJECT signed by TLSDIR's CA, with the x509v3 extensions EXT (lines);
# with EXPIRED its validity ended yesterday (openssl ca: OpenSSL 3.0's x509 cannot backdate).
tls_sign() {
    local tls="$1" name="$2" subject="$3" ext="$4" expired="$5"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tls/$name.key" 2>/dev/null
    openssl req -new -key "$tls/$name.key" -subj "$subject" -out "$tls/$name.csr"
    printf '%s\n' "$ext" >"$tls/$name.ext"
    if [[ -z "$expired" ]]; then
        openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
            -days 30 -sha256 -extfile "$tls/$name.ext" -out "$tls/$name.pem" 2>/dev/null
    else
        mkdir -p "$tls/ca.db"
        : >"$tls/ca.db/index.txt"
        [[ -f "$tls/ca.db/serial" ]] || echo 1000 >"$tls/ca.db/serial"
        printf '%s\n' "[ca]" "default_ca = throwaway" "[throwaway]" \
            "database = $tls/ca.db/index.txt" "new_certs_dir = $tls/ca.db" "serial = $tls/ca.db/serial" \
            "default_md = sha256" "policy = anything" "unique_subject = no" \
            "[anything]" "commonName = supplied" >"$tls/ca.db/ca.cnf"
        openssl ca -batch -notext -config "$tls/ca.db/ca.cnf" -cert "$tls/ca.pem" -keyfile "$tls/ca.key" \
            -startdate "$(date -u -d '-2 days' +%Y%m%d%H%M%SZ)" -enddate "$(date -u -d '-1 day' +%Y%m%d%H%M%SZ)" \
            -extfile "$tls/$name.ext" -in "$tls/$name.csr" -out "$tls/$name.pem" 2>/dev/null
    fi
    rm -f "$tls/$name.csr" "$tls/$name.ext"
    [[ -s "$tls/$name.pem" ]] || { log_error "openssl could not sign $tls/$name.pem"; return 1; }
    chmod 600 "$tls/$name.key"
}

# make_tls TLSDIR ADDRESS EXPIRED: the CA, the server's certificate (127.0.0.1, localhost and
# ADDRESS; expired with EXPIRED) in a PKCS12 keystore, the CA in a PKCS12 truststore, and a
# client identity. Kept if TLSDIR/ca.pem exists (a restart).
make_tls() {
    local tls="$1" address="$2" expired="$3" san nl=$'\n'
    [[ -f "$tls/ca.pem" ]] && return 0
    ensure_command openssl openssl || return 1
    ensure_command keytool openjdk-17-jre-headless || return 1
    mkdir -p "$tls"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tls/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$tls/ca.key" -subj "/CN=zk-coffee throwaway CA" -days 30 -sha256 \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        -out "$tls/ca.pem" 2>/dev/null
    san="subjectAltName=IP:127.0.0.1,DNS:localhost"
    [[ -z "$address" || "$address" == 127.0.0.1 ]] || san+=",IP:$address"
    tls_sign "$tls" server "/CN=zk-coffee ZooKeeper" \
        "$san${nl}extendedKeyUsage=serverAuth,clientAuth${nl}keyUsage=critical,digitalSignature" "$expired" || return 1
    tls_sign "$tls" client "/CN=zk-coffee-client" \
        "extendedKeyUsage=clientAuth${nl}keyUsage=critical,digitalSignature" "" || return 1
    openssl pkcs12 -export -in "$tls/server.pem" -inkey "$tls/server.key" -certfile "$tls/ca.pem" \
        -name server -passout "pass:$TLS_PASSWORD" -out "$tls/server.p12"
    keytool -importcert -noprompt -alias ca -file "$tls/ca.pem" -keystore "$tls/truststore.p12" \
        -storetype PKCS12 -storepass "$TLS_PASSWORD" >/dev/null 2>&1 || true
    [[ -s "$tls/truststore.p12" ]] || { log_error "keytool could not write $tls/truststore.p12"; return 1; }
}

# tls_secure_cfg CFG TLSDIR CLIENT_AUTH: turns a freshly written zoo.cfg into a TLS-only one:
# its clientPort becomes the secureClientPort (Netty, TLSDIR's keystores), with no plain port.
tls_secure_cfg() {
    local cfg="$1" tls="$2" auth="$3" port host
    port="$(cfg_get "$cfg" clientPort)"
    host="$(cfg_address "$cfg")"
    sed -i -e '/^clientPort=/d' -e '/^clientPortAddress=/d' "$cfg"
    {
        echo "# TLS only (scripts/zk.sh --tls): no clientPort."
        echo "secureClientPort=$port"
        echo "secureClientPortAddress=$host"
        echo "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory"
        echo "ssl.keyStore.location=$tls/server.p12"
        echo "ssl.keyStore.password=$TLS_PASSWORD"
        echo "ssl.keyStore.type=PKCS12"
        echo "ssl.trustStore.location=$tls/truststore.p12"
        echo "ssl.trustStore.password=$TLS_PASSWORD"
        echo "ssl.trustStore.type=PKCS12"
        echo "ssl.clientAuth=$auth"
        if [[ "$auth" == need ]]; then
            echo "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider"
        fi
    } >>"$cfg"
}

# is_zk_dir DIR: DIR/zoo.cfg exists and was written by this script.
is_zk_dir() {
    [[ -f "$1/zoo.cfg" ]] && head -n 1 "$1/zoo.cfg" | grep -qxF "$ZK_MARKER"
}

# Directories no command of this script ever removes.
is_protected_dir() {
    local d="$1" p
    for p in / /tmp /var/tmp /root /home /usr /etc /var /opt /srv "${HOME:-/}" \
        "$(abs_dir "$SCRIPT_DIR/..")" "$SCRIPT_DIR"; do
        [[ "$d" == "$p" || "$d" == "${p%/}" ]] && return 0
    done
    return 1
}

is_quorum_cfg() {
    grep -qE '^[[:space:]]*server\.[0-9]+[[:space:]]*=' "$1"
}

# write_cfg DIR PORT TICK [SERVER_LINES...]
write_cfg() {
    local dir="$1" port="$2" tick="$3"
    shift 3
    {
        echo "$ZK_MARKER"
        echo "tickTime=$tick"
        echo "dataDir=$dir/data"
        echo "clientPort=$port"
        echo "clientPortAddress=$HOST"
        echo "admin.enableServer=false"
        echo "4lw.commands.whitelist=*"
        echo "maxClientCnxns=0"
        echo "# min/maxSessionTimeout left at their defaults: 2 and 20 x tickTime"
        echo "initLimit=5"
        echo "syncLimit=2"
        echo "# Test server: no fsync per transaction (a killed process loses nothing,"
        echo "# only a machine crash could)."
        echo "forceSync=no"
        local line
        for line in "$@"; do
            echo "$line"
        done
    } >"$dir/zoo.cfg"
}

# pid_matches PID DIR: PID is a live java process whose command line contains
# DIR/zoo.cfg. Zombies have an empty cmdline and do not match.
pid_matches() {
    local pid="$1" dir="$2" arg first=1 is_java="" has_cfg=""
    is_uint "$pid" || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    while IFS= read -r -d '' arg; do
        if [[ -n "$first" ]]; then
            [[ "$(basename "$arg")" == java ]] && is_java=1
            first=""
        fi
        [[ "$arg" == "$dir/zoo.cfg" ]] && has_cfg=1
    done 2>/dev/null <"/proc/$pid/cmdline" || true
    [[ -n "$is_java" && -n "$has_cfg" ]]
}

# running_pid DIR: echo the PID of DIR's live server, or return 1.
running_pid() {
    local dir="$1" pid
    [[ -f "$dir/zk.pid" ]] || return 1
    pid="$(tr -d '[:space:]' <"$dir/zk.pid" 2>/dev/null || true)"
    if pid_matches "$pid" "$dir"; then
        echo "$pid"
        return 0
    fi
    return 1
}

# servers_gone_within SECS: waits until none of the caller's pids (still running with its
# dirs, the arrays `pids` and `dirs` of terminate_dirs) is alive; fails after SECS seconds.
servers_gone_within() {
    local deadline=$((SECONDS + $1)) alive i
    while :; do
        alive=0
        for i in "${!pids[@]}"; do
            pid_matches "${pids[$i]}" "${dirs[$i]}" && alive=1
        done
        ((alive)) || return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# terminate_dirs DIR...: SIGTERM the live verified servers of the given dirs,
# SIGKILL those still alive after STOP_GRACE seconds, remove the pid files.
terminate_dirs() {
    local -a dirs=() pids=()
    local dir pid i
    for dir in "$@"; do
        if pid="$(running_pid "$dir")"; then
            dirs+=("$dir")
            pids+=("$pid")
            kill -TERM "$pid" 2>/dev/null || true
            log_info "stopping ZooKeeper pid $pid ($dir)"
        elif [[ -f "$dir/zk.pid" ]]; then
            log_info "$dir/zk.pid is stale (no java process with $dir/zoo.cfg); removing it"
            rm -f "$dir/zk.pid"
        fi
    done
    ((${#pids[@]} > 0)) || return 0
    if ! servers_gone_within "$STOP_GRACE"; then
        for i in "${!pids[@]}"; do
            if pid_matches "${pids[$i]}" "${dirs[$i]}"; then
                log_info "pid ${pids[$i]} still alive after ${STOP_GRACE}s; sending SIGKILL"
                kill -KILL "${pids[$i]}" 2>/dev/null || true
            fi
        done
        servers_gone_within 5 || {
            log_error "could not kill ZooKeeper pid(s) ${pids[*]}"
            return 1
        }
    fi
    for dir in "${dirs[@]}"; do
        rm -f "$dir/zk.pid"
    done
}

# launch DIR: start the server described by DIR/zoo.cfg in the background,
# detached; the java PID ends up in DIR/zk.pid.
launch() {
    local dir="$1" cfg="$1/zoo.cfg" main data cp i
    if is_quorum_cfg "$cfg"; then
        main=org.apache.zookeeper.server.quorum.QuorumPeerMain
    else
        main=org.apache.zookeeper.server.ZooKeeperServerMain
    fi
    data="$(cfg_get "$cfg" dataDir)"
    mkdir -p "${data:-$dir/data}"
    cp="$(zk_classpath)"
    rm -f "$dir/zk.pid" "$dir/zk.pid.tmp"
    printf '==== %s: scripts/zk.sh starting %s\n' "$(date '+%F %T')" "$main" >>"$dir/server.log"
    local -a java_opts=()
    if [[ -n "${ZK_JAVA_OPTS:-}" ]]; then
        read -r -a java_opts <<<"$ZK_JAVA_OPTS"
    fi
    # The inner shell records its own PID, then execs java (same PID), so the
    # pid file is right even if setsid has to fork.
    # shellcheck disable=SC2016
    setsid bash -c 'echo "$$" >"$1.tmp" && mv "$1.tmp" "$1" && shift && exec "$@"' zk-launch \
        "$dir/zk.pid" \
        java -Xmx256m "${java_opts[@]}" -cp "$cp" \
        "-Dzookeeper.log.dir=$dir" \
        -Dzookeeper.root.logger=INFO,CONSOLE \
        "$main" "$cfg" \
        </dev/null >>"$dir/server.log" 2>&1 &
    # The pid file appears just before the inner shell execs java: wait for the exec too,
    # or a busy machine makes await_server see a PID that is not java yet ("exited during
    # startup").
    local pid
    for ((i = 0; i < 200; i++)); do
        if [[ -s "$dir/zk.pid" ]]; then
            pid="$(tr -d '[:space:]' <"$dir/zk.pid")"
            pid_matches "$pid" "$dir" && return 0
            kill -0 "$pid" 2>/dev/null || break
        fi
        sleep 0.05
    done
    log_error "server process for $dir did not start"
    return 1
}

# serving CFG HOST PORT: srvr reports a quorum mode (leader/follower/observer) or
# standalone.
serving() {
    cfg_4lw "$1" "$2" "$3" srvr 2 | grep -qE '^Mode: (leader|follower|observer|standalone)'
}

# await DIR TIMEOUT_SECS RUOK_ONLY: wait until DIR's server answers imok and,
# unless RUOK_ONLY, serves requests ('srvr' reports its Mode; the server
# answers ruok while it is still loading its data, and an ensemble member
# answers ruok before it has joined a quorum).
await_server() {
    local dir="$1" secs="$2" ruok_only="$3" port pid quorum="" serve=""
    port="$(cfg_port "$dir/zoo.cfg")"
    is_quorum_cfg "$dir/zoo.cfg" && quorum=1
    [[ -n "$ruok_only" ]] || serve=1
    local deadline=$((SECONDS + secs))
    while :; do
        if ! pid="$(running_pid "$dir")"; then
            log_error "ZooKeeper in $dir exited during startup"
            return 1
        fi
        if [[ "$(cfg_4lw "$dir/zoo.cfg" "$HOST" "$port" ruok 2 || true)" == imok ]]; then
            if [[ -z "$serve" ]] || serving "$dir/zoo.cfg" "$HOST" "$port"; then
                return 0
            fi
        fi
        if ((SECONDS >= deadline)); then
            if [[ -n "$quorum" && -n "$serve" ]]; then
                log_error "ZooKeeper in $dir (pid $pid, port $port) did not join a quorum within ${secs}s"
            else
                log_error "ZooKeeper in $dir (pid $pid, port $port) did not answer ruok/imok within ${secs}s"
            fi
            return 1
        fi
        sleep 0.2
    done
}

show_log_tail() {
    local dir="$1"
    if [[ -f "$dir/server.log" ]]; then
        echo "---- last lines of $dir/server.log ----" >&2
        # (leave out the lines logged for our own ruok/srvr polling)
        grep -v 'NIOServerCnxn@[0-9]*\] - Processing [a-z]* command from' "$dir/server.log" |
            tail -n 40 >&2 || true
        echo "----" >&2
    fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# member_dirs DIR: ensemble members DIR/N (N a number, zoo.cfg written by this
# script), in numeric order.
member_dirs() {
    local d
    for d in "$1"/*/; do
        d="${d%/}"
        if [[ "$(basename "$d")" =~ ^[0-9]+$ ]] && is_zk_dir "$d"; then
            echo "$d"
        fi
    done | sort -V
}

# prepare_dir DIR KIND: makes DIR (a new /tmp/zk-coffee-zk.XXXXXX when DIR is empty) and
# refuses a protected one; KIND ("a server", "an ensemble") names it in the error. Sets PREPARED_DIR
# (absolute) and PREPARED_CREATED (1 if this call made a new temporary directory).
prepare_dir() {
    local dir="$1" kind="$2"
    PREPARED_CREATED=""
    if [[ -n "$dir" ]]; then
        mkdir -p "$dir"
    else
        dir="$(mktemp -d /tmp/zk-coffee-zk.XXXXXX)"
        PREPARED_CREATED=1
    fi
    PREPARED_DIR="$(abs_dir "$dir")"
    if is_protected_dir "$PREPARED_DIR"; then
        die "refusing to use $PREPARED_DIR as $kind directory"
    fi
}

cmd_start() {
    local port="" dir="" tick="" ruok_only="" created="" fsync="" address="" words=""
    local tls="" client_auth="" tls_expired=""
    while (($#)); do
        case "$1" in
            --fsync) fsync=1; shift ;;
            --tls) tls=1; shift ;;
            --tls-expired) tls_expired=1; shift ;;
            --client-auth) client_auth="${2:-}"; shift 2 || die "--client-auth needs a value" ;;
            --client-auth=*) client_auth="${1#*=}"; shift ;;
            --port) port="${2:-}"; shift 2 || die "--port needs a value" ;;
            --port=*) port="${1#*=}"; shift ;;
            --dir) dir="${2:-}"; shift 2 || die "--dir needs a value" ;;
            --dir=*) dir="${1#*=}"; shift ;;
            --tick-ms) tick="${2:-}"; shift 2 || die "--tick-ms needs a value" ;;
            --tick-ms=*) tick="${1#*=}"; shift ;;
            --ruok-only) ruok_only=1; shift ;;
            --address) address="${2:-}"; shift 2 || die "--address needs a value" ;;
            --address=*) address="${1#*=}"; shift ;;
            --4lw) words="${2:-}"; shift 2 || die "--4lw needs a value" ;;
            --4lw=*) words="${1#*=}"; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "start: unknown argument '$1' (see --help)" ;;
        esac
    done
    [[ -z "$port" ]] || { is_uint "$port" && ((port > 0 && port < 65536)); } || die "bad --port '$port'"
    [[ -z "$tick" ]] || { is_uint "$tick" && ((tick > 0)); } || die "bad --tick-ms '$tick'"
    [[ -z "$words" || "$words" =~ ^[a-z]{4}(,[a-z]{4})*$ ]] || die "bad --4lw '$words' (four-letter words, comma-separated)"
    [[ -z "$address" || "$address" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "bad --address '$address' (an IPv4 address)"
    [[ -z "$client_auth" || "$client_auth" =~ ^(none|want|need)$ ]] || die "bad --client-auth '$client_auth' (none, want or need)"
    [[ -n "$tls" || -z "$client_auth$tls_expired" ]] || die "--client-auth and --tls-expired need --tls"

    ensure_zookeeper
    prepare_dir "$dir" "a server"
    dir="$PREPARED_DIR" created="$PREPARED_CREATED"
    local pid
    if pid="$(running_pid "$dir")"; then
        die "a ZooKeeper server is already running in $dir (pid $pid)"
    fi

    if [[ -f "$dir/zoo.cfg" ]]; then
        is_zk_dir "$dir" || die "$dir/zoo.cfg was not written by $PROG; refusing to use it"
        if [[ -n "$port" ]]; then
            if cfg_tls_dir "$dir/zoo.cfg" >/dev/null; then
                cfg_set "$dir/zoo.cfg" secureClientPort "$port"
            else
                cfg_set "$dir/zoo.cfg" clientPort "$port"
            fi
        fi
        if [[ -n "$tick" ]]; then
            cfg_set "$dir/zoo.cfg" tickTime "$tick"
        fi
        if [[ -n "$address" ]]; then
            if cfg_tls_dir "$dir/zoo.cfg" >/dev/null; then
                cfg_set "$dir/zoo.cfg" secureClientPortAddress "$address"
            else
                cfg_set "$dir/zoo.cfg" clientPortAddress "$address"
            fi
        fi
        HOST="$(cfg_address "$dir/zoo.cfg")"
        port="$(cfg_port "$dir/zoo.cfg")"
        is_uint "$port" || die "$dir/zoo.cfg has no usable clientPort"
    else
        HOST="${address:-$HOST}"
        port="${port:-$(free_port)}"
        write_cfg "$dir" "$port" "${tick:-2000}"
        if [[ -n "$tls" ]]; then
            make_tls "$dir/tls" "$address" "$tls_expired" || {
                [[ -z "$created" ]] || rm -rf "$dir"
                die "could not make the TLS certificates in $dir/tls"
            }
            tls_secure_cfg "$dir/zoo.cfg" "$dir/tls" "${client_auth:-none}"
        fi
    fi
    if [[ -n "$words" ]]; then
        cfg_set "$dir/zoo.cfg" 4lw.commands.whitelist "$words"
    fi
    if [[ -n "$fsync" ]]; then
        sed -i -e 's|^# Test server: no fsync per transaction.*|# Started with --fsync: the transaction log is fsynced on every commit.|' \
            -e '/^# only a machine crash could)\.$/d' "$dir/zoo.cfg"
        cfg_set "$dir/zoo.cfg" forceSync yes
    fi

    if port_in_use "$port"; then
        [[ -z "$created" ]] || rm -rf "$dir"
        die "port $port on $HOST is already in use"
    fi

    local ok=1
    launch "$dir" || ok=""
    if [[ -n "$ok" ]]; then
        await_server "$dir" "$START_TIMEOUT" "$ruok_only" || ok=""
    fi
    if [[ -z "$ok" ]]; then
        show_log_tail "$dir"
        terminate_dirs "$dir" || true
        if [[ -n "$created" ]]; then
            rm -rf "$dir"
        fi
        exit 1
    fi
    echo "$HOST:$port $dir"
}

cmd_start_ensemble() {
    local dir="" tick="" size=3 created="" tls="" client_auth=""
    while (($#)); do
        case "$1" in
            --tls) tls=1; shift ;;
            --client-auth) client_auth="${2:-}"; shift 2 || die "--client-auth needs a value" ;;
            --client-auth=*) client_auth="${1#*=}"; shift ;;
            --dir) dir="${2:-}"; shift 2 || die "--dir needs a value" ;;
            --dir=*) dir="${1#*=}"; shift ;;
            --tick-ms) tick="${2:-}"; shift 2 || die "--tick-ms needs a value" ;;
            --tick-ms=*) tick="${1#*=}"; shift ;;
            --size) size="${2:-}"; shift 2 || die "--size needs a value" ;;
            --size=*) size="${1#*=}"; shift ;;
            -h | --help) usage; exit 0 ;;
            *) die "start-ensemble: unknown argument '$1' (see --help)" ;;
        esac
    done
    [[ -z "$tick" ]] || { is_uint "$tick" && ((tick > 0)); } || die "bad --tick-ms '$tick'"
    { is_uint "$size" && ((size >= 1 && size <= 9)); } || die "bad --size '$size' (1..9)"
    [[ -z "$client_auth" || "$client_auth" =~ ^(none|want|need)$ ]] || die "bad --client-auth '$client_auth' (none, want or need)"
    [[ -n "$tls" || -z "$client_auth" ]] || die "--client-auth needs --tls"

    ensure_zookeeper
    prepare_dir "$dir" "an ensemble"
    dir="$PREPARED_DIR" created="$PREPARED_CREATED"
    local -a members=()
    local m pid port
    if [[ -f "$dir/1/zoo.cfg" ]]; then
        mapfile -t members < <(member_dirs "$dir")
        ((${#members[@]} > 0)) || die "$dir/1/zoo.cfg was not written by $PROG; refusing to use it"
        for m in "${members[@]}"; do
            if [[ -n "$tick" ]]; then
                cfg_set "$m/zoo.cfg" tickTime "$tick"
            fi
        done
    else
        local -a ports=() servers=()
        mapfile -t ports < <(free_ports $((3 * size)))
        ((${#ports[@]} == 3 * size)) || die "could not allocate free ports"
        local n
        if [[ -n "$tls" ]]; then
            make_tls "$dir/tls" "" "" || {
                [[ -z "$created" ]] || rm -rf "$dir"
                die "could not make the TLS certificates in $dir/tls"
            }
        fi
        for ((n = 1; n <= size; n++)); do
            servers+=("server.$n=$HOST:${ports[$((size + 2 * (n - 1)))]}:${ports[$((size + 2 * (n - 1) + 1))]}")
        done
        for ((n = 1; n <= size; n++)); do
            m="$dir/$n"
            mkdir -p "$m/data"
            echo "$n" >"$m/data/myid"
            write_cfg "$m" "${ports[$((n - 1))]}" "${tick:-2000}" "${servers[@]}"
            if [[ -n "$tls" ]]; then
                tls_secure_cfg "$m/zoo.cfg" "$dir/tls" "${client_auth:-none}"
            fi
            members+=("$m")
        done
    fi

    # Members that are already running are left alone (restarting a partly
    # stopped ensemble starts only the stopped members).
    local -a to_start=()
    for m in "${members[@]}"; do
        if pid="$(running_pid "$m")"; then
            log_info "member $m is already running (pid $pid)"
            continue
        fi
        port="$(cfg_port "$m/zoo.cfg")"
        if port_in_use "$port"; then
            [[ -z "$created" ]] || rm -rf "$dir"
            die "port $port on $HOST is already in use"
        fi
        to_start+=("$m")
    done

    local ok=1 deadline=$((SECONDS + ENSEMBLE_TIMEOUT)) left
    for m in "${to_start[@]}"; do
        launch "$m" || { ok=""; break; }
    done
    if [[ -n "$ok" ]]; then
        for m in "${members[@]}"; do
            left=$((deadline - SECONDS))
            ((left > 0)) || left=1
            await_server "$m" "$left" "" || { ok=""; break; }
        done
    fi
    if [[ -z "$ok" ]]; then
        for m in "${members[@]}"; do
            show_log_tail "$m"
        done
        if ((${#to_start[@]} > 0)); then
            terminate_dirs "${to_start[@]}" || true
        fi
        if [[ -n "$created" ]]; then
            rm -rf "$dir"
        fi
        exit 1
    fi
    echo "$(connect_string "$dir") $dir"
}

# connect_string DIR: host:port[,host:port...] of a server or ensemble dir.
connect_string() {
    local dir="$1" m out=""
    if is_zk_dir "$dir"; then
        echo "$(cfg_address "$dir/zoo.cfg"):$(cfg_port "$dir/zoo.cfg")"
        return
    fi
    while IFS= read -r m; do
        out+="${out:+,}$HOST:$(cfg_port "$m/zoo.cfg")"
    done < <(member_dirs "$dir")
    [[ -n "$out" ]] || return 1
    echo "$out"
}

cmd_stop() {
    local dir="" keep=""
    while (($#)); do
        case "$1" in
            --keep) keep=1; shift ;;
            -h | --help) usage; exit 0 ;;
            -*) die "stop: unknown option '$1' (see --help)" ;;
            *)
                [[ -z "$dir" ]] || die "stop: only one DIR allowed"
                dir="$1"
                shift
                ;;
        esac
    done
    [[ -n "$dir" ]] || die "stop: DIR is required (see --help)"
    if [[ ! -d "$dir" ]]; then
        log_info "$dir does not exist; nothing to stop"
        return 0
    fi
    dir="$(abs_dir "$dir")"

    # Only a server directory (DIR/zoo.cfg written by this script) or an
    # ensemble directory (DIR/N/zoo.cfg written by this script) is touched.
    local -a dirs=()
    local single=""
    if is_zk_dir "$dir"; then
        single=1
        dirs=("$dir")
    else
        mapfile -t dirs < <(member_dirs "$dir")
    fi
    if ((${#dirs[@]} == 0)); then
        die "$dir is neither a $PROG server directory (DIR/zoo.cfg) nor an ensemble directory (DIR/N/zoo.cfg); nothing stopped or removed"
    fi
    if [[ -z "$keep" ]] && is_protected_dir "$dir"; then
        die "refusing to stop and remove $dir"
    fi
    terminate_dirs "${dirs[@]}"

    if [[ -z "$keep" ]]; then
        if [[ -n "$single" ]]; then
            rm -rf "$dir"
        else
            # Remove the members, then DIR only if nothing else is left in it.
            rm -rf "${dirs[@]}"
            rmdir "$dir" 2>/dev/null || log_info "kept $dir: it holds files $PROG did not create"
        fi
    fi
}

cmd_status() {
    local dir="${1:-}"
    [[ -n "$dir" ]] || die "status: DIR is required (see --help)"
    [[ -d "$dir" ]] || { echo stopped; return 1; }
    dir="$(abs_dir "$dir")"
    local pid m rc=0
    if is_zk_dir "$dir"; then
        if pid="$(running_pid "$dir")"; then
            echo "running $pid"
            return 0
        fi
        echo stopped
        return 1
    fi
    local -a members=()
    mapfile -t members < <(member_dirs "$dir")
    if ((${#members[@]} == 0)); then
        echo stopped
        return 1
    fi
    for m in "${members[@]}"; do
        if pid="$(running_pid "$m")"; then
            echo "$(basename "$m") running $pid"
        else
            echo "$(basename "$m") stopped"
            rc=1
        fi
    done
    return "$rc"
}

cmd_leader() {
    local dir="" wait=10
    while (($#)); do
        case "$1" in
            --wait) wait="${2:-}"; shift 2 || die "--wait needs a value" ;;
            --wait=*) wait="${1#*=}"; shift ;;
            -h | --help) usage; exit 0 ;;
            -*) die "leader: unknown option '$1' (see --help)" ;;
            *) dir="$1"; shift ;;
        esac
    done
    [[ -n "$dir" ]] || die "leader: DIR is required (see --help)"
    is_uint "$wait" || die "bad --wait '$wait'"
    [[ -d "$dir" ]] || die "$dir does not exist"
    dir="$(abs_dir "$dir")"
    local -a members=()
    mapfile -t members < <(member_dirs "$dir")
    ((${#members[@]} > 0)) || die "$dir is not an ensemble directory (no DIR/N/zoo.cfg)"
    local m port deadline=$((SECONDS + wait))
    while :; do
        for m in "${members[@]}"; do
            port="$(cfg_port "$m/zoo.cfg")"
            if cfg_4lw "$m/zoo.cfg" "$HOST" "$port" srvr 2 | grep -qx 'Mode: leader'; then
                basename "$m"
                return 0
            fi
        done
        if ((SECONDS >= deadline)); then
            log_error "no member of $dir reports 'Mode: leader'"
            return 1
        fi
        sleep 0.2
    done
}

cmd_tls_cert() {
    local tls="" name="" expired=""
    while (($#)); do
        case "$1" in
            --expired) expired=1; shift ;;
            -h | --help) usage; exit 0 ;;
            -*) die "tls-cert: unknown option '$1' (see --help)" ;;
            *)
                if [[ -z "$tls" ]]; then tls="$1"; elif [[ -z "$name" ]]; then name="$1"; else die "tls-cert: too many arguments"; fi
                shift
                ;;
        esac
    done
    [[ -n "$tls" && -n "$name" ]] || die "tls-cert: TLSDIR and NAME are required (see --help)"
    [[ -f "$tls/ca.pem" && -f "$tls/ca.key" ]] || die "$tls has no ca.pem and ca.key (a --tls server's DIR/tls)"
    [[ "$name" =~ ^[A-Za-z0-9._-]+$ && "$name" != ca && "$name" != server ]] || die "bad tls-cert NAME '$name'"
    tls_sign "$tls" "$name" "/CN=$name" "extendedKeyUsage=clientAuth"$'\n'"keyUsage=critical,digitalSignature" "$expired" ||
        exit 1
    echo "$tls/$name.pem $tls/$name.key"
}

cmd_addr() {
    local dir="${1:-}"
    [[ -n "$dir" && -d "$dir" ]] || die "addr: DIR is required and must exist"
    dir="$(abs_dir "$dir")"
    connect_string "$dir" || die "$dir is not a zk.sh server or ensemble directory"
}

main() {
    local cmd="${1:-}"
    (($#)) && shift
    case "$cmd" in
        start) cmd_start "$@" ;;
        start-ensemble) cmd_start_ensemble "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        leader) cmd_leader "$@" ;;
        addr) cmd_addr "$@" ;;
        tls-cert) cmd_tls_cert "$@" ;;
        -h | --help | help) usage ;;
        "") usage >&2; exit 2 ;;
        *) log_error "unknown command '$cmd'"; usage >&2; exit 2 ;;
    esac
}

main "$@"
