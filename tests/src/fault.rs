//! Fault injection for the integration tests, and the "nothing lost" audit the fault tests end
//! with.
//!
//! - [`Ensemble`]: a private three-server loopback ensemble (`scripts/zk.sh start-ensemble`),
//!   holding three of the harness's server slots; members can be killed, stopped and started
//!   again, and asked four-letter words. Stopped (all members, directories removed) on drop,
//!   and by a detached watchdog if the test process dies.
//! - [`Frozen`]: a process stopped with SIGSTOP, continued (SIGCONT) when the guard drops, so a
//!   failing test never leaves a frozen ZooKeeper behind.
//! - [`CpuMeter`]: CPU time (utime + stime from `/proc/PID/stat`) a process used over a span of
//!   wall time.
//! - [`tcp_connections`] / [`member_serving`]: which server a role is connected to (its sockets
//!   from `/proc/PID/fd` and `/proc/net/tcp`, matched against the servers' `cons` reports).
//! - [`Gate`]: a loopback TCP proxy in front of a server that can cut every connection and
//!   refuse new ones (a partition: the server keeps running and expires the sessions it no
//!   longer hears from), then let clients through again; or mute the clients (what they send
//!   is held back while the server's replies and events still reach them).
//! - [`audit`] / [`Audit`]: the shop's tree as a raw client sees it: buckets and their orders,
//!   members on shift, claims. [`settle_customers`] checks every customer ended properly.
//! - [`role`]: a role command with the short session timeout the fault tests use.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zookeeper::{ZkError, ZooKeeper};

use crate::{
    barista_events, connect_raw, exit, lock, max_servers, slots, spawn_watchdog, temp_root, unique_name, wait_until, zk_script,
    Brew, Output, Permit, Proc, Receipt, Role, TestCommand,
};

/// The session timeout (seconds) the fault tests give every role: short, so that expiry and
/// adoption happen within a few seconds. Servers run with `tickTime` 200 ms, which lets
/// sessions be negotiated into 0.4–4 s.
pub const SESSION_TIMEOUT_SECS: u64 = 2;

/// The `tickTime` of the fault tests' servers.
pub const TICK_MS: u32 = 200;

/// A role command for `connect` with `--session-timeout` [`SESSION_TIMEOUT_SECS`].
pub fn role(connect: &str, role: Role) -> TestCommand {
    TestCommand::new(role).zk(connect).args(["--session-timeout", &SESSION_TIMEOUT_SECS.to_string()])
}

/// A barista named `name` brewing for `brew` (e.g. `"0.3"` seconds).
pub fn barista(connect: &str, name: &str, brew: &str) -> TestCommand {
    role(connect, Role::Barista).args(["--name", name, "--brew-time", brew])
}

/// A customer ordering `coffee` (from `barista`, if given) with `patience` seconds.
pub fn customer(connect: &str, barista: Option<&str>, coffee: &str, patience: &str) -> TestCommand {
    let cmd = role(connect, Role::Customer).args(["--coffee", coffee, "--patience", patience]);
    match barista {
        Some(b) => cmd.args(["--barista", b]),
        None => cmd,
    }
}

/// The current test's name (the last part of the thread name), for directory names.
fn test_name() -> String {
    std::thread::current().name().unwrap_or("fault").rsplit("::").next().unwrap_or("fault").to_owned()
}

// ---------------------------------------------------------------------------------------------
// Signals and /proc

/// Sends `signal` (e.g. `"STOP"`) to `pid` with the `kill` command; panics if it fails.
pub fn signal_pid(pid: u32, signal: &str) {
    let ok =
        Command::new("kill").args(["-s", signal, &pid.to_string()]).status().unwrap_or_else(|e| panic!("cannot run `kill`: {e}"));
    assert!(ok.success(), "`kill -s {signal} {pid}` failed: {ok}");
}

/// The signal number of a name the tests use.
fn signal_number(signal: &str) -> u32 {
    match signal {
        "HUP" => 1,
        "INT" => 2,
        "KILL" => 9,
        "TERM" => 15,
        "CONT" => 18,
        "STOP" => 19,
        other => panic!("unknown signal {other}"),
    }
}

/// Waits until `signal`, sent to `pid`, is no longer pending (a thread of the process has taken
/// it). Two standard signals sent back to back may merge into one while the first is pending;
/// waiting for delivery in between makes "a second signal" a real second signal.
pub fn wait_signal_taken(pid: u32, signal: &str, timeout: Duration) {
    let bit = 1u64 << (signal_number(signal) - 1);
    wait_until(timeout, &format!("SIG{signal} to be taken by pid {pid}"), || {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return true };
        status
            .lines()
            .filter_map(|l| l.strip_prefix("ShdPnd:").or_else(|| l.strip_prefix("SigPnd:")))
            .all(|mask| u64::from_str_radix(mask.trim(), 16).map_or(true, |m| m & bit == 0))
    });
}

/// The PID of the server whose directory is `dir` (its `zk.pid`), checked to be a live java
/// process started with `dir/zoo.cfg` so that a stale pid file never makes us signal a stranger.
pub fn server_pid(dir: &Path) -> u32 {
    let text = std::fs::read_to_string(dir.join("zk.pid")).unwrap_or_else(|e| panic!("{}/zk.pid: {e}", dir.display()));
    let pid: u32 = text.trim().parse().unwrap_or_else(|_| panic!("{}/zk.pid holds {text:?}", dir.display()));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let cfg = dir.join("zoo.cfg");
    let matches = cmdline.split(|b| *b == 0).any(|arg| Path::new(std::str::from_utf8(arg).unwrap_or("")) == cfg);
    assert!(matches, "pid {pid} from {}/zk.pid is not the server of {}", dir.display(), cfg.display());
    pid
}

/// A process stopped with SIGSTOP; continued with SIGCONT on [`thaw`](Frozen::thaw) or drop.
pub struct Frozen {
    pid: u32,
    frozen_at: Instant,
    thawed: bool,
}

impl Frozen {
    /// Stops `pid` (SIGSTOP).
    pub fn freeze(pid: u32) -> Frozen {
        signal_pid(pid, "STOP");
        Frozen { pid, frozen_at: Instant::now(), thawed: false }
    }

    /// How long it has been frozen.
    pub fn elapsed(&self) -> Duration {
        self.frozen_at.elapsed()
    }

    /// Continues the process (SIGCONT); returns how long it was frozen.
    pub fn thaw(mut self) -> Duration {
        signal_pid(self.pid, "CONT");
        self.thawed = true;
        self.frozen_at.elapsed()
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            let _ = Command::new("kill").args(["-s", "CONT", &self.pid.to_string()]).status();
        }
    }
}

/// The CPU time (user + system) `pid` has used so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')').expect("a command name in /proc/PID/stat") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

fn clock_ticks_per_second() -> u64 {
    extern "C" {
        fn sysconf(name: std::os::raw::c_int) -> std::os::raw::c_long;
    }
    const SC_CLK_TCK: std::os::raw::c_int = 2; // Linux
                                               // SAFETY: sysconf only reads a constant of the C library.
    let ticks = unsafe { sysconf(SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// Measures the CPU a process uses over a span of wall time.
pub struct CpuMeter {
    pid: u32,
    started: Instant,
    cpu: Duration,
}

/// What a [`CpuMeter`] measured.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// Wall time measured over.
    pub wall: Duration,
    /// CPU time used meanwhile.
    pub cpu: Duration,
}

impl CpuUse {
    /// CPU time per wall time: 1.0 is one core busy all the time.
    pub fn share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

impl CpuMeter {
    /// Starts measuring `pid`.
    pub fn start(pid: u32) -> CpuMeter {
        CpuMeter { pid, started: Instant::now(), cpu: cpu_time(pid) }
    }

    /// What was used since [`start`](CpuMeter::start).
    pub fn read(&self) -> CpuUse {
        CpuUse { wall: self.started.elapsed(), cpu: cpu_time(self.pid).saturating_sub(self.cpu) }
    }
}

/// One TCP connection of a process: its local and remote ports (loopback tests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpConn {
    pub local: u16,
    pub remote: u16,
}

/// The established TCP connections of `pid` (its socket inodes from `/proc/PID/fd`, looked up
/// in `/proc/PID/net/tcp` and `tcp6`).
pub fn tcp_connections(pid: u32) -> Vec<TcpConn> {
    let mut inodes = BTreeSet::new();
    if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    let mut conns = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else { continue };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "01" || !inodes.contains(f[9]) {
                continue;
            }
            let port = |addr: &str| addr.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if let (Some(local), Some(remote)) = (port(f[1]), port(f[2])) {
                conns.push(TcpConn { local, remote });
            }
        }
    }
    conns
}

/// Sends a four-letter word to the server on `127.0.0.1:port` and returns its reply (empty if
/// it cannot be reached within a few seconds).
pub fn four_letter(port: u16, word: &str) -> String {
    let Ok(mut stream) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream.write_all(word.as_bytes()).is_err() {
        return String::new();
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply
}

/// Whether the server on `port` lists, in its `cons` report, a client connection from one of
/// `local_ports`.
pub fn serves_connection_from(port: u16, local_ports: &[u16]) -> bool {
    let cons = four_letter(port, "cons");
    local_ports.iter().any(|p| cons.contains(&format!("/127.0.0.1:{p}[")))
}

/// Which of the servers on `ports` (index into it) `pid` is connected to, if any: its
/// connections to one of those ports, confirmed by that server's `cons` report.
pub fn member_serving(pid: u32, ports: &[u16]) -> Option<usize> {
    let conns = tcp_connections(pid);
    ports.iter().position(|port| {
        let locals: Vec<u16> = conns.iter().filter(|c| c.remote == *port).map(|c| c.local).collect();
        !locals.is_empty() && serves_connection_from(*port, &locals)
    })
}

// ---------------------------------------------------------------------------------------------
// A gate in front of a server

/// A loopback TCP proxy in front of a server. While open it forwards every connection both
/// ways; [`cut`](Gate::cut) closes every forwarded connection and from then on closes new ones
/// at once, until [`open`](Gate::open). For the clients that is a network outage; the server
/// behind it keeps running and expires the sessions it stops hearing from.
pub struct Gate {
    port: u16,
    state: Arc<GateState>,
}

struct GateState {
    closed: AtomicBool,
    /// What clients send is held back (not lost) until unmuted.
    muted: AtomicBool,
    stop: AtomicBool,
    /// Both sockets of every forwarded connection, to cut them.
    conns: Mutex<Vec<TcpStream>>,
}

impl Gate {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target_port`.
    pub fn start(target_port: u16) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate");
        let port = listener.local_addr().expect("gate address").port();
        let state = Arc::new(GateState {
            closed: AtomicBool::new(false),
            muted: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if accept_state.closed.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let mut conns = lock(&accept_state.conns);
                conns.retain(|s| s.peer_addr().is_ok());
                if let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) {
                    conns.push(c);
                    conns.push(s);
                }
                drop(conns);
                forward_unless_muted(client.try_clone().expect("clone"), server.try_clone().expect("clone"), &accept_state);
                forward(server, client);
            }
        });
        Gate { port, state }
    }

    /// The gate's port, to put in a connect string.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT` of the gate.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
        for s in lock(&self.state.conns).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Lets connections through again.
    pub fn open(&self) {
        self.state.closed.store(false, Ordering::SeqCst);
    }

    /// Holds back what clients send, on every connection, new ones included: their requests
    /// (and pings) go unanswered, while what the server sends them (replies to earlier
    /// requests, watch events) still arrives. Nothing is dropped: [`unmute`](Gate::unmute)
    /// sends it on.
    pub fn mute(&self) {
        self.state.muted.store(true, Ordering::SeqCst);
    }

    /// Forwards what clients send again, starting with what was held back.
    pub fn unmute(&self) {
        self.state.muted.store(false, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` (a client) to `to` (the server) on a thread until either side closes,
/// holding each chunk back while the gate is muted.
fn forward_unless_muted(mut from: TcpStream, mut to: TcpStream, state: &Arc<GateState>) {
    let state = Arc::clone(state);
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while state.muted.load(Ordering::SeqCst) && !state.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// Copies `from` to `to` on a thread until either side closes.
fn forward(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

// ---------------------------------------------------------------------------------------------
// Ensembles

/// Takes `n` of the harness's server slots at once (all or nothing, so two ensembles never
/// deadlock holding a part each). Capped at [`max_servers`].
fn acquire_permits(n: usize) -> Vec<Permit> {
    let n = n.min(max_servers());
    let slots = slots();
    let mut used = lock(&slots.used);
    while *used + n > max_servers() {
        // Polls as well as waits: a release wakes only one waiter, perhaps a single-server test.
        used = slots.freed.wait_timeout(used, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
    }
    *used += n;
    (0..n).map(|_| Permit).collect()
}

/// One member of an [`Ensemble`].
#[derive(Debug)]
struct Member {
    dir: PathBuf,
    port: u16,
    running: bool,
}

/// A private loopback ensemble of three ZooKeeper servers started by
/// `scripts/zk.sh start-ensemble`, members numbered 1 to 3 as in the script.
pub struct Ensemble {
    dir: PathBuf,
    connect: String,
    members: Vec<Member>,
    watchdog: Option<Child>,
    _permits: Vec<Permit>,
}

impl Ensemble {
    /// Starts three members with `tickTime` `tick_ms` and waits until each is leader or
    /// follower.
    pub fn start(tick_ms: u32) -> Ensemble {
        let permits = acquire_permits(3);
        std::fs::create_dir_all(temp_root()).expect("create the temp root");
        let dir = temp_root().join(format!("{}-ens", unique_name(&test_name())));
        let out = Command::new("bash")
            .arg(zk_script())
            .arg("start-ensemble")
            .arg("--dir")
            .arg(&dir)
            .args(["--tick-ms", &tick_ms.to_string()])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run zk.sh: {e}"));
        let mut ensemble = Ensemble { dir, connect: String::new(), members: Vec::new(), watchdog: None, _permits: permits };
        ensemble.watchdog = Some(spawn_watchdog(&ensemble.dir));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "`zk.sh start-ensemble` failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        ensemble.connect = stdout.split_whitespace().next().unwrap_or_default().to_owned();
        for (i, host) in ensemble.connect.split(',').enumerate() {
            let port: u16 = host.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
            let dir = ensemble.dir.join((i + 1).to_string());
            let cfg = std::fs::read_to_string(dir.join("zoo.cfg")).expect("member zoo.cfg");
            assert!(cfg.lines().any(|l| l == format!("clientPort={port}")), "member {} is not on port {port}", i + 1);
            ensemble.members.push(Member { dir, port, running: true });
        }
        assert_eq!(ensemble.members.len(), 3, "three members: {stdout}");
        ensemble
    }

    /// `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`.
    pub fn connect_string(&self) -> &str {
        &self.connect
    }

    /// The members' client ports, member 1 first.
    pub fn ports(&self) -> Vec<u16> {
        self.members.iter().map(|m| m.port).collect()
    }

    /// A connect string listing the members in the order of `numbers` (1-based).
    pub fn connect_string_ordered(&self, numbers: &[usize]) -> String {
        numbers.iter().map(|n| format!("127.0.0.1:{}", self.member(*n).port)).collect::<Vec<_>>().join(",")
    }

    fn member(&self, n: usize) -> &Member {
        assert!((1..=self.members.len()).contains(&n), "no member {n}");
        &self.members[n - 1]
    }

    /// The number of the member that is leader (waits up to 20 s for one).
    pub fn leader(&self) -> usize {
        let out = Command::new("bash")
            .arg(zk_script())
            .arg("leader")
            .arg(&self.dir)
            .args(["--wait", "20"])
            .stdin(Stdio::null())
            .output()
            .expect("run zk.sh leader");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "no leader: {text}{}", String::from_utf8_lossy(&out.stderr));
        text.trim().parse().unwrap_or_else(|_| panic!("zk.sh leader printed {text:?}"))
    }

    /// Kills member `n` with SIGKILL (a crash) and waits until its port is closed.
    pub fn kill(&mut self, n: usize) {
        let member = self.member(n);
        assert!(member.running, "member {n} is not running");
        let pid = server_pid(&member.dir);
        signal_pid(pid, "KILL");
        let port = member.port;
        wait_until(Duration::from_secs(10), &format!("member {n} to be gone"), || {
            TcpStream::connect(("127.0.0.1", port)).is_err()
        });
        self.members[n - 1].running = false;
    }

    /// Starts member `n` again (same port, same data) and waits until it has joined a quorum.
    pub fn start_member(&mut self, n: usize) {
        let dir = self.member(n).dir.clone();
        let out = Command::new("bash")
            .arg(zk_script())
            .arg("start")
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("run zk.sh start");
        assert!(
            out.status.success(),
            "`zk.sh start --dir {}` failed:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.members[n - 1].running = true;
    }

    /// A raw client connected to the running members.
    pub fn raw(&self) -> ZooKeeper {
        let running: Vec<String> = self.members.iter().filter(|m| m.running).map(|m| format!("127.0.0.1:{}", m.port)).collect();
        connect_raw(&running.join(","))
    }

    /// A four-letter word sent to member `n`.
    pub fn four_letter(&self, n: usize, word: &str) -> String {
        four_letter(self.member(n).port, word)
    }

    /// The members' log tails, for failure messages.
    fn log_tails(&self) -> String {
        let mut s = String::new();
        for (i, m) in self.members.iter().enumerate() {
            let log = std::fs::read_to_string(m.dir.join("server.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().filter(|l| !l.starts_with('\t') && !l.contains(" command from /")).collect();
            s.push_str(&format!("---- member {} ({}) ----\n", i + 1, m.dir.display()));
            s.push_str(&lines[lines.len().saturating_sub(15)..].join("\n"));
            s.push('\n');
        }
        s
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails());
        }
        let _ = Command::new("bash").arg(zk_script()).arg("stop").arg(&self.dir).stdin(Stdio::null()).output();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The audit

/// The shop's tree as a raw client saw it at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Each bucket under `/orders` with its children (sorted).
    pub buckets: BTreeMap<String, Vec<String>>,
    /// The members of `/barista_group`.
    pub on_shift: BTreeSet<String>,
    /// The claims under `/zk-coffee/claims`.
    pub claims: BTreeSet<String>,
}

impl Audit {
    /// How many orders are queued in all buckets.
    pub fn orders(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }

    /// The non-empty buckets whose owner is not on shift and that nobody has claimed.
    pub fn unowned(&self) -> Vec<String> {
        self.buckets
            .iter()
            .filter(|(b, orders)| !orders.is_empty() && !self.on_shift.contains(*b) && !self.claims.contains(*b))
            .map(|(b, _)| b.clone())
            .collect()
    }

    /// The non-empty buckets whose owner is not on shift (claimed or not).
    pub fn memberless(&self) -> Vec<String> {
        self.buckets.iter().filter(|(b, o)| !o.is_empty() && !self.on_shift.contains(*b)).map(|(b, _)| b.clone()).collect()
    }
}

fn sorted_children(zk: &ZooKeeper, path: &str) -> Vec<String> {
    match zk.get_children(path, false) {
        Ok(mut c) => {
            c.sort();
            c
        }
        Err(ZkError::NoNode) => Vec::new(),
        Err(e) => panic!("get_children {path}: {e:?}"),
    }
}

/// Reads the shop's tree with `zk`.
pub fn audit(zk: &ZooKeeper) -> Audit {
    let mut a = Audit::default();
    for bucket in sorted_children(zk, "/orders") {
        let orders = sorted_children(zk, &format!("/orders/{bucket}"));
        a.buckets.insert(bucket, orders);
    }
    a.on_shift = sorted_children(zk, "/barista_group").into_iter().collect();
    a.claims = sorted_children(zk, "/zk-coffee/claims").into_iter().collect();
    a
}

/// Waits (up to `timeout`) until no order is left anywhere and every bucket is either empty or
/// owned by a barista on shift; returns the last audit. Panics with it otherwise.
pub fn assert_nothing_left(zk: &ZooKeeper, timeout: Duration) -> Audit {
    let deadline = Instant::now() + timeout;
    loop {
        let a = audit(zk);
        if a.orders() == 0 && a.memberless().is_empty() {
            return a;
        }
        assert!(Instant::now() < deadline, "orders left behind after {timeout:?}: {a:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How one customer ended.
#[derive(Debug, Clone)]
pub struct Settled {
    pub out: Output,
    pub receipt: Receipt,
}

impl Settled {
    pub fn served(&self) -> bool {
        self.receipt.outcome == "served"
    }
}

/// Waits for every customer: each must exit within `bound` of its start, either 0 with a
/// `served` line or 3 with a `gave-up` line and its order gone (checked with `zk`). Panics
/// otherwise (a hung customer is killed and shown).
pub fn settle_customers(customers: Vec<Proc>, bound: Duration, zk: &ZooKeeper) -> Vec<Settled> {
    let mut settled = Vec::new();
    for c in customers {
        let out = c.wait_exit(bound);
        out.assert_within(bound);
        let receipt = match out.code() {
            Some(exit::OK) => {
                let r = Receipt::parse(out.single_stdout_line());
                assert_eq!(r.outcome, "served", "{out}");
                r
            }
            Some(exit::GAVE_UP) => {
                let r = Receipt::parse(out.single_stdout_line());
                assert_eq!(r.outcome, "gave-up", "{out}");
                let gone = matches!(zk.exists(&r.order, false), Ok(None));
                assert!(gone, "a customer gave up but its order {} is still there\n{out}", r.order);
                r
            }
            _ => panic!("a customer neither was served nor gave up\n{out}"),
        };
        settled.push(Settled { out, receipt });
    }
    settled
}

/// Starts a customer and waits until it has placed its order (its `ordered` log line).
pub fn place(cmd: TestCommand) -> Proc {
    let c = cmd.spawn();
    c.wait_for_stderr("ordered ", crate::LOG_TIMEOUT);
    c
}

/// The order names (e.g. `coffee0000000003`) for which the log lines say `making`
/// ([`barista_events`]).
pub fn made(lines: &[String]) -> Vec<String> {
    barista_events(lines).into_iter().filter(|e| e.kind == Brew::Making).map(|e| e.order).collect()
}

/// The order names for which the log lines say `served` ([`barista_events`]), with the owner
/// when adopted.
pub fn served(lines: &[String]) -> Vec<(String, Option<String>)> {
    barista_events(lines).into_iter().filter(|e| e.kind == Brew::Served).map(|e| (e.order, e.adopted_from)).collect()
}
