//! What every step shares: a raw client that waits for its connection, latency statistics,
//! the server's own counters (`mntr`), and the shop's binaries as child processes that are
//! killed if the benchmark dies.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use zookeeper::{Acl, CreateMode, WatchedEvent, ZkError, ZooKeeper};

/// The result type of every step: a failed step says why in one line.
pub type Result<T> = std::result::Result<T, String>;

/// How long a raw client waits for its first answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the benchmark runs: the server, the shop's binaries, where their logs go.
#[derive(Debug, Clone)]
pub struct Env {
    /// `host:port` of the server, without a chroot.
    pub servers: String,
    /// Where `barista`, `customer`, `shop-init` and `shop-manager` are.
    pub bin_dir: PathBuf,
    /// Where the children's stderr goes, one file each.
    pub logs: PathBuf,
    /// The server's PID, to read its CPU time (it must run on this host).
    pub server_pid: Option<u32>,
}

impl Env {
    /// A chroot of its own for one step, so that steps never see each other's nodes.
    pub fn chroot(&self, step: &str) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        format!("/zk-coffee-bench/{step}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
    }

    /// The connect string of `chroot`.
    pub fn connect_string(&self, chroot: &str) -> String {
        format!("{}{chroot}", self.servers)
    }

    /// A log file for a child.
    fn log(&self, name: &str) -> Result<File> {
        let path = self.logs.join(format!("{name}.log"));
        File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))
    }

    /// One of the shop's binaries, with the role environment cleared.
    pub fn command(&self, program: &str, chroot: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        for var in zk_coffee::cli::ENVIRONMENT.iter().chain(&["RUST_LOG"]) {
            cmd.env_remove(var);
        }
        cmd.arg("--zk").arg(self.connect_string(chroot)).stdin(Stdio::null());
        // SAFETY: prctl(2) only, between fork and exec. The child is killed if the benchmark
        // dies (e.g. on Ctrl-C or SIGTERM), so no barista outlives it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd
    }

    /// Runs `shop-init` on `chroot` (which creates the chroot node too).
    pub fn shop_init(&self, chroot: &str) -> Result<()> {
        let out = self
            .command("shop-init", chroot)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run shop-init: {e}"))?;
        if !out.status.success() {
            return Err(format!("shop-init failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(())
    }

    /// Starts a barista process named `name` on `chroot`.
    pub fn barista(&self, chroot: &str, name: &str, brew: Duration, extra: &[&str]) -> Result<Proc> {
        self.barista_logged(chroot, name, name, brew, extra)
    }

    /// [`Env::barista`] with its stderr in the log `log` (a second process under the same
    /// name keeps the first one's log).
    pub fn barista_logged(&self, chroot: &str, name: &str, log: &str, brew: Duration, extra: &[&str]) -> Result<Proc> {
        let mut cmd = self.command("barista", chroot);
        cmd.args(["--name", name, "--brew-time", &format!("{}ms", brew.as_millis())]).args(extra);
        Proc::spawn(cmd, name, self.log(log)?)
    }

    /// Starts `cmd` (one of [`Env::command`]) with its stderr in the log `log`.
    pub fn spawn(&self, cmd: Command, log: &str) -> Result<Proc> {
        Proc::spawn(cmd, log, self.log(log)?)
    }

    /// What a child logged so far in `log` (see [`Env::barista_logged`]).
    pub fn log_text(&self, log: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{log}.log"))).unwrap_or_default()
    }

    /// Starts `customer` with `args` (its stdout is piped, stderr goes to a log).
    pub fn customer(&self, chroot: &str, log: &str, args: &[String]) -> Result<Proc> {
        let mut cmd = self.command("customer", chroot);
        cmd.args(args).stdout(Stdio::piped());
        Proc::spawn(cmd, log, self.log(log)?)
    }

    /// Runs the customer load generator and returns its `summary` line's fields.
    pub fn load(&self, chroot: &str, log: &str, args: &[String]) -> Result<Fields> {
        let proc = self.customer(chroot, log, args)?;
        let (status, stdout) = proc.finish()?;
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("summary "))
            .ok_or_else(|| format!("customer load ({log}) printed no summary line (exit {status}); see its log"))?;
        let fields = Fields::parse(line);
        if fields.num("served")? == 0.0 {
            return Err(format!("customer load ({log}) served nothing: {line}"));
        }
        Ok(fields)
    }
}

/// `key=value` fields of one line.
#[derive(Debug, Clone, Default)]
pub struct Fields(pub BTreeMap<String, String>);

impl Fields {
    pub fn parse(line: &str) -> Fields {
        Fields(line.split_whitespace().filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    pub fn num(&self, key: &str) -> Result<f64> {
        let v = self.0.get(key).ok_or_else(|| format!("no {key}= in the summary"))?;
        v.parse().map_err(|_| format!("{key}={v} is not a number"))
    }
}

/// A child process that is SIGKILLed (and reaped) if dropped while it runs.
pub struct Proc {
    child: Option<Child>,
    name: String,
}

impl Proc {
    fn spawn(mut cmd: Command, name: &str, stderr: File) -> Result<Proc> {
        cmd.stderr(stderr);
        let child = cmd.spawn().map_err(|e| format!("cannot start {name} ({:?}): {e}", cmd.get_program()))?;
        Ok(Proc { child: Some(child), name: name.to_owned() })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on the PID of our own child, which is not reaped yet (we hold it).
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for the process to exit and returns its status and stdout.
    pub fn finish(mut self) -> Result<(ExitStatus, String)> {
        let child = self.child.take().ok_or("already finished")?;
        let out = child.wait_with_output().map_err(|e| format!("waiting for {}: {e}", self.name))?;
        Ok((out.status, String::from_utf8_lossy(&out.stdout).into_owned()))
    }

    /// A line of `/proc/PID/status`, e.g. `VmRSS` → its number (kB for sizes).
    pub fn status_field(&self, key: &str) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .ok_or_else(|| format!("{path} has no {key}"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Stops baristas the way an operator would: SIGTERM to all, then waits for each (SIGKILL
/// after `grace`). Returns how many exited cleanly (status 0).
pub fn stop_all(procs: &mut [Proc], grace: Duration) -> usize {
    for p in procs.iter() {
        p.signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut clean = 0;
    for p in procs.iter_mut() {
        match p.wait_exit(deadline.saturating_duration_since(Instant::now())) {
            Some(status) if status.success() => clean += 1,
            Some(status) => eprintln!("zk-coffee-bench: {} exited with {status}", p.name()),
            None => eprintln!("zk-coffee-bench: {} did not exit within {grace:?} of SIGTERM; killing it", p.name()),
        }
    }
    clean
}

/// A raw client of the `zookeeper` crate on `connect` (which may carry a chroot), once a call
/// has gone through.
pub fn connect(connect: &str, session_timeout: Duration) -> Result<ZooKeeper> {
    let zk = ZooKeeper::connect(connect, session_timeout, |_: WatchedEvent| {})
        .map_err(|e| format!("cannot connect to {connect}: {e:?}"))?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match zk.exists("/", false) {
            Ok(_) => return Ok(zk),
            Err(e) if Instant::now() >= deadline => return Err(format!("{connect} does not answer: {e:?}")),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Creates `path` and its missing ancestors (persistent, empty).
pub fn ensure_path(zk: &ZooKeeper, path: &str) -> Result<()> {
    let mut at = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        at.push('/');
        at.push_str(segment);
        match zk.create(&at, Vec::new(), Acl::open_unsafe().clone(), CreateMode::Persistent) {
            Ok(_) | Err(ZkError::NodeExists) => {}
            Err(e) => return Err(format!("create {at}: {e:?}")),
        }
    }
    Ok(())
}

/// Deletes `path` and everything under it; gone already is fine.
pub fn delete_tree(zk: &ZooKeeper, path: &str) -> Result<()> {
    let children = match zk.get_children(path, false) {
        Ok(c) => c,
        Err(ZkError::NoNode) => return Ok(()),
        Err(e) => return Err(format!("list {path}: {e:?}")),
    };
    for child in children {
        let sub = if path == "/" { format!("/{child}") } else { format!("{path}/{child}") };
        delete_tree(zk, &sub)?;
    }
    match zk.delete(path, None) {
        Ok(()) | Err(ZkError::NoNode) => Ok(()),
        Err(e) => Err(format!("delete {path}: {e:?}")),
    }
}

/// Removes a step's chroot when the step is done (a best effort: leftovers only cost space).
pub fn remove_chroot(env: &Env, chroot: &str) {
    if let Ok(zk) = connect(&env.servers, Duration::from_secs(10)) {
        if let Err(e) = delete_tree(&zk, chroot) {
            eprintln!("zk-coffee-bench: cleaning {chroot}: {e}");
        }
        let _ = zk.close();
    }
}

/// Waits (polling the raw client; the benchmark's own setup, not the shop's) until
/// `/barista_group` has at least `n` members.
pub fn await_members(zk: &ZooKeeper, n: usize, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let have = zk.get_children("/barista_group", false).map(|c| c.len()).unwrap_or(0);
        if have >= n {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= timeout {
            return Err(format!("only {have} of {n} baristas came on shift within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Latencies of one kind, for percentiles.
#[derive(Debug, Clone, Default)]
pub struct Stats(Vec<Duration>);

impl Stats {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Stats) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The nearest-rank `p`-th percentile in milliseconds (NaN if empty).
    pub fn ms(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1].as_secs_f64() * 1000.0
    }
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The server's `mntr` counters (four-letter word over a plain TCP connection).
pub fn mntr(servers: &str) -> Result<BTreeMap<String, String>> {
    let addr = servers.split(',').next().unwrap_or(servers);
    let mut s = TcpStream::connect(addr).map_err(|e| format!("mntr: cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(b"mntr").map_err(|e| format!("mntr: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| format!("mntr: {e}"))?;
    Ok(text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_owned(), v.trim().to_owned())).collect())
}

/// `zk_packets_received`: every request (and ping) the server got so far.
pub fn packets_received(servers: &str) -> Result<u64> {
    let m = mntr(servers)?;
    m.get("zk_packets_received").and_then(|v| v.parse().ok()).ok_or_else(|| "mntr has no zk_packets_received".to_owned())
}

/// A directory that must exist.
pub fn dir(path: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    Ok(path.to_path_buf())
}

/// CPU time (user + system) used so far by this process's reaped children.
pub fn children_cpu() -> Duration {
    rusage(libc::RUSAGE_CHILDREN)
}

/// CPU time (user + system) used so far by this process.
pub fn own_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage fills the zeroed struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time (user + system) used so far by process `pid` (the server), from /proc.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// CPU time of the server, measured around some work.
#[derive(Debug, Clone, Copy)]
pub struct ServerCpu {
    pid: Option<u32>,
    start: Option<Duration>,
}

impl ServerCpu {
    pub fn start(pid: Option<u32>) -> ServerCpu {
        ServerCpu { pid, start: pid.and_then(process_cpu) }
    }

    /// The server's CPU time since `start`, if known.
    pub fn used(&self) -> Option<Duration> {
        Some(self.pid.and_then(process_cpu)?.saturating_sub(self.start?))
    }

    /// Microseconds of server CPU per unit of work since `start`, or `nan` if unknown.
    pub fn us_per(&self, units: f64) -> String {
        per_unit(self.used(), units)
    }
}

/// Microseconds of `cpu` per unit, or `nan`.
pub fn per_unit(cpu: Option<Duration>, units: f64) -> String {
    match cpu {
        Some(cpu) if units > 0.0 => format!("{:.0}", cpu.as_secs_f64() * 1e6 / units),
        _ => "nan".into(),
    }
}
