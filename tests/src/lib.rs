//! Test harness for the zk-coffee integration tests.
//!
//! Modelled on ripgrep's test utilities: small guards and builders that make each test read like
//! the scene it checks, and that clean up after themselves whatever happens.
//!
//! - [`ZkServer`]: a private, real ZooKeeper server (Debian's 3.8, started by `scripts/zk.sh`) on
//!   a free port with its own data directory. It is stopped when the guard drops, also when the
//!   test panics, and by a detached watchdog when the test process is killed (even by SIGKILL).
//!   At most [`max_servers`] run at once in one test process.
//! - [`Role`] and [`TestCommand`]: run one of the workspace's binaries (`barista`, `customer`,
//!   `shop-init`) with `--zk` and arguments, either to completion ([`TestCommand::run`]) or in
//!   the background ([`TestCommand::spawn`] → [`Proc`]).
//! - [`Proc`]: a running role. Its stdout and stderr lines are collected by reader threads; it
//!   is killed when the guard drops. A test can only *wait* for what a running role prints
//!   ([`Proc::wait_log`] and the waits beside it, each with a deadline): a role logs after it
//!   acts, so reading its output once after waiting for an effect in ZooKeeper would race the
//!   line that reports it. What did *not* happen, or how often something was said, is checked
//!   on the [`Output`] once the role has exited ([`Proc::stop`]), with [`Mark`]s for windows.
//! - [`Output`]: what a finished role printed and how it exited: complete, so read it freely.
//! - [`Dir`]: a unique temporary directory, removed on drop.
//! - [`wait_until`]: wait for a condition with a deadline (no bare sleeps in tests).
//! - [`exit`]: the binaries' documented exit codes, the contract the tests check.
//!
//! The binaries are not built by `cargo test -p zk-coffee-tests` (a package cannot depend on
//! another package's binaries): run `cargo build --workspace --bins` first, as
//! `scripts/test.sh` does. The harness refuses binaries that are missing or older than the
//! sources under `crates/`, so a test never silently checks stale code.
//!
//! Environment knobs:
//! - `ZK_COFFEE_TESTS_MAX_SERVERS`: how many servers may run at once (default 3).
//! - `ZK_COFFEE_TESTS_KEEP=1`: keep the temporary directories of [`Dir`] (not the servers').

pub mod blackhole;
pub mod fault;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use zookeeper::{WatchedEvent, ZkError, ZooKeeper};

/// The exit codes documented in every binary's `--help`, from the library's one table
/// (`zk_coffee::error::exit`), as the `i32`s `ExitStatus::code` reports.
///
/// They are the contract with scripts and operators: `integration/docs.rs` checks them
/// against README.md's table, so a change on the product side shows up as a failing test.
pub use zk_coffee::error::exit::status as exit;

/// The seed program's menu, in menu order.
pub const MENU: [&str; 4] = ["tesora", "swisswater", "jacob", "sogood"];

/// A generous bound for a role that should finish promptly (a served customer, a barista
/// leaving on SIGTERM). Only exceeded when something hangs.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A generous bound for a log line that should appear promptly.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Paths

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// `scripts/zk.sh` of this workspace.
pub fn zk_script() -> PathBuf {
    workspace_root().join("scripts").join("zk.sh")
}

/// The directory the workspace's binaries are built into (e.g. `target/debug`), found from the
/// running test executable, which lives in its `deps/` subdirectory.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut dir = exe.parent().expect("the test executable has a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The newest modification time among the `.rs` files under `dir`, with that file.
fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension() == Some(OsStr::new("rs")) {
                if let Ok(m) = meta.modified() {
                    if newest.as_ref().is_none_or(|(t, _)| m > *t) {
                        newest = Some((m, path));
                    }
                }
            }
        }
    }
    newest
}

// ---------------------------------------------------------------------------------------------
// Roles and commands

/// One of the workspace's binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `barista`: serves orders.
    Barista,
    /// `customer`: orders one coffee.
    Customer,
    /// `shop-init`: creates the shop's top-level nodes.
    ShopInit,
}

impl Role {
    /// The binary's file name, which is also the program name in its error messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Barista => "barista",
            Role::Customer => "customer",
            Role::ShopInit => "shop-init",
        }
    }

    /// The built binary. Panics with instructions when it is missing or older than the
    /// sources under `crates/`.
    pub fn path(self) -> PathBuf {
        static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
        let path = bin_dir().join(self.name());
        let verdict = CHECKED.get_or_init(|| {
            let crates = workspace_root().join("crates");
            let library = newest_source(&crates.join("zk-coffee"));
            for role in [Role::Barista, Role::Customer, Role::ShopInit] {
                // A binary is stale when its own crate or the library changed after it was
                // linked (cargo does not relink a binary whose inputs did not change).
                let own = newest_source(&crates.join(role.name()));
                let newest = [library.clone(), own].into_iter().flatten().max_by_key(|(t, _)| *t);
                let bin = bin_dir().join(role.name());
                let built = match std::fs::metadata(&bin).and_then(|m| m.modified()) {
                    Ok(t) => t,
                    Err(_) => return Err(format!("{} is missing: run `cargo build --workspace --bins` first", bin.display())),
                };
                if let Some((source_time, source)) = &newest {
                    if *source_time > built {
                        return Err(format!(
                            "{} is older than {}: run `cargo build --workspace --bins` first",
                            bin.display(),
                            source.display()
                        ));
                    }
                }
            }
            Ok(())
        });
        if let Err(msg) = verdict {
            panic!("{msg}");
        }
        path
    }
}

/// The environment variables the binaries read (`zk_coffee::cli::ENVIRONMENT`, and systemd's
/// `NOTIFY_SOCKET`); cleared for every spawned role so the developer's shell cannot change what
/// a test does.
pub fn role_env() -> impl Iterator<Item = &'static str> {
    zk_coffee::cli::ENVIRONMENT.into_iter().chain(["NOTIFY_SOCKET"])
}

/// Removes [`role_env`] from `cmd`.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for key in role_env() {
        cmd.env_remove(key);
    }
    cmd
}

/// A command line for one role, built up and then [`run`](TestCommand::run) or
/// [`spawn`](TestCommand::spawn)ed.
///
/// The role gets `RUST_LOG=info` and none of the role environment variables (`ZK_SERVERS`,
/// `BARISTA_*`, ...) unless the test sets them with [`env`](TestCommand::env).
///
/// ```no_run
/// # use zk_coffee_tests::*;
/// # let server = ZkServer::start();
/// let out = server.cmd(Role::Customer).args(["--coffee", "latte"]).run(EXIT_TIMEOUT);
/// out.assert_code(exit::USAGE);
/// ```
#[derive(Debug, Clone)]
pub struct TestCommand {
    role: Role,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    /// A command the role runs under (it must exec the role, keeping its pid); empty: none.
    wrapper: Vec<OsString>,
}

impl TestCommand {
    /// The role with no arguments at all (not even `--zk`).
    pub fn new(role: Role) -> TestCommand {
        TestCommand { role, args: Vec::new(), env: vec![("RUST_LOG".into(), Some("info".into()))], wrapper: Vec::new() }
    }

    /// Adds `--zk CONNECT`.
    pub fn zk(self, connect: impl AsRef<OsStr>) -> TestCommand {
        self.arg("--zk").arg(connect)
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> TestCommand {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(mut self, args: I) -> TestCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable (overrides the defaults, e.g. `RUST_LOG`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> TestCommand {
        self.env.push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> TestCommand {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Runs the role under `wrapper`, a command line that ends by exec'ing the role's binary
    /// (appended to it, with the role's arguments) in the same process, so the pid is the
    /// role's: e.g. `unshare --mount ... --` to give it a sandbox.
    pub fn wrapped_in<S: AsRef<OsStr>>(mut self, wrapper: &[S]) -> TestCommand {
        self.wrapper = wrapper.iter().map(|w| w.as_ref().to_owned()).collect();
        self
    }

    /// The role this command runs.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The command line, for messages.
    pub fn display(&self) -> String {
        let mut s = self.role.name().to_owned();
        for a in &self.args {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(char::is_whitespace) {
                s.push_str(&format!(" {a:?}"));
            } else {
                s.push(' ');
                s.push_str(&a);
            }
        }
        s
    }

    /// Starts the role in the background.
    pub fn spawn(self) -> Proc {
        let mut cmd = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(self.role.path());
                cmd
            }
            None => Command::new(self.role.path()),
        };
        cmd.args(&self.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        clean_env(&mut cmd);
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        die_with_parent(&mut cmd);
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.display()));
        let lines = Arc::new(Lines::default());
        let readers = vec![
            read_lines(child.stdout.take().expect("piped stdout"), Arc::clone(&lines), Stream::Stdout),
            read_lines(child.stderr.take().expect("piped stderr"), Arc::clone(&lines), Stream::Stderr),
        ];
        let label = format!("{} (pid {})", self.display(), child.id());
        Proc { label, role: self.role, child, lines, readers, started, status: None }
    }

    /// Starts a barista in the background and waits until it logs that it is on shift.
    pub fn spawn_on_shift(self) -> Proc {
        let barista = self.spawn();
        barista.wait_for_stderr("is on shift", LOG_TIMEOUT);
        barista
    }

    /// Runs the role to completion. If it has not exited after `timeout`, kills it and panics
    /// with what it printed.
    pub fn run(self, timeout: Duration) -> Output {
        self.spawn().wait_exit(timeout)
    }
}

/// Makes the kernel SIGKILL the child when the thread that spawned it ends, so a role cannot
/// outlive a killed test process (Linux only; elsewhere a no-op). Uses no crate: `prctl` comes
/// from the C library std links anyway.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut Command) {
    use std::os::raw::{c_int, c_ulong};
    use std::os::unix::process::CommandExt;
    extern "C" {
        fn prctl(option: c_int, ...) -> c_int;
    }
    const PR_SET_PDEATHSIG: c_int = 1;
    const SIGKILL: c_ulong = 9;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut Command) {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// A position in a process's output (how many lines each stream had), from [`Proc::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    stdout: usize,
    stderr: usize,
}

impl Mark {
    /// Before the first line.
    pub const START: Mark = Mark { stdout: 0, stderr: 0 };
}

/// Lines collected from a process, shared with its reader threads.
#[derive(Default)]
struct Lines {
    state: Mutex<LinesState>,
    changed: Condvar,
}

#[derive(Default)]
struct LinesState {
    stdout: Vec<String>,
    stderr: Vec<String>,
    /// How many of the two streams reached end of file.
    closed: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_lines(stream: impl Read + Send + 'static, lines: Arc<Lines>, which: Stream) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_owned();
                    let mut state = lock(&lines.state);
                    match which {
                        Stream::Stdout => state.stdout.push(line),
                        Stream::Stderr => state.stderr.push(line),
                    }
                    lines.changed.notify_all();
                }
            }
        }
        lock(&lines.state).closed += 1;
        lines.changed.notify_all();
    })
}

/// A role running in the background. Killed (SIGKILL) when dropped if it is still running; if
/// the test is panicking, what it printed is written to the test's stderr.
pub struct Proc {
    label: String,
    role: Role,
    child: Child,
    lines: Arc<Lines>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
    status: Option<ExitStatus>,
}

impl Proc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Which binary this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the process's output stands now: a [`Mark`] to wait for (or, after it exited, to
    /// look at) only what it prints from here on.
    pub fn mark(&self) -> Mark {
        let state = lock(&self.lines.state);
        Mark { stdout: state.stdout.len(), stderr: state.stderr.len() }
    }

    /// Waits until `outcome` finds what it looks for in the stderr lines (the log) printed so
    /// far, and returns it. `outcome` is called again on every new line. Panics, with
    /// everything the process printed, if it finds nothing within `timeout` or the process
    /// closes its output (exits) first; `what` names the wait in that message.
    ///
    /// This (and its siblings below) is the only way to look at a running process's output:
    /// a role logs after it acts, so a test that waited for an effect in ZooKeeper must still
    /// wait for the line that reports it.
    pub fn wait_log<T>(&self, what: &str, timeout: Duration, outcome: impl FnMut(&[String]) -> Option<T>) -> T {
        self.wait_output(Stream::Stderr, Mark::START, what, timeout, outcome)
    }

    /// [`wait_log`](Proc::wait_log) over the stderr lines printed after `mark` only.
    pub fn wait_log_since<T>(&self, mark: Mark, what: &str, timeout: Duration, outcome: impl FnMut(&[String]) -> Option<T>) -> T {
        self.wait_output(Stream::Stderr, mark, what, timeout, outcome)
    }

    /// [`wait_log`](Proc::wait_log) over the stdout lines.
    pub fn wait_stdout<T>(&self, what: &str, timeout: Duration, outcome: impl FnMut(&[String]) -> Option<T>) -> T {
        self.wait_output(Stream::Stdout, Mark::START, what, timeout, outcome)
    }

    /// Waits until at least `n` stderr lines satisfy `pred` and returns all those that do
    /// (`n` or more, in log order).
    pub fn wait_lines(&self, what: &str, n: usize, timeout: Duration, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.wait_log(&format!("{n} lines: {what}"), timeout, |log| {
            let found: Vec<String> = log.iter().filter(|l| pred(l)).cloned().collect();
            (found.len() >= n).then_some(found)
        })
    }

    /// Waits until a barista has logged at least `n` orders as served ([`served_orders`]) and
    /// returns them all, in log order.
    pub fn wait_served(&self, n: usize, timeout: Duration) -> Vec<String> {
        self.wait_log(&format!("{n} orders served"), timeout, |log| {
            let served = served_orders(log);
            (served.len() >= n).then_some(served)
        })
    }

    /// Waits until a stderr line contains `needle` and returns the first such line. Panics, with
    /// everything the process printed, if none appears within `timeout` or the process closes
    /// its stderr (exits) without printing one.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> String {
        self.wait_for_stderr_matching(needle, timeout, |l| l.contains(needle))
    }

    /// Waits until a stderr line satisfies `pred`; `what` describes it in the panic message.
    pub fn wait_for_stderr_matching(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        self.wait_log(what, timeout, |log| log.iter().find(|l| pred(l)).cloned())
    }

    fn wait_output<T>(
        &self,
        which: Stream,
        from: Mark,
        what: &str,
        timeout: Duration,
        mut outcome: impl FnMut(&[String]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.lines.state);
        let mut seen = None;
        loop {
            let (lines, start) = match which {
                Stream::Stdout => (&state.stdout, from.stdout),
                Stream::Stderr => (&state.stderr, from.stderr),
            };
            // Look again only when something was printed (or at the start).
            if seen != Some(lines.len()) {
                seen = Some(lines.len());
                if let Some(found) = outcome(&lines[start.min(lines.len())..]) {
                    return found;
                }
            }
            let now = Instant::now();
            if now >= deadline || state.closed == 2 {
                let why = if state.closed == 2 { "it closed its output" } else { "timed out" };
                drop(state);
                // Drop prints what the process printed.
                panic!("{}: waited for {what} on {which:?} in vain ({why}; limit {timeout:?})", self.label);
            }
            state = self.lines.changed.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Sends a signal with the `kill` command, e.g. `proc.signal("TERM")`. Panics if the process
    /// was already reaped (its pid could belong to someone else by now).
    pub fn signal(&mut self, signal: &str) {
        assert!(self.status.is_none(), "{}: cannot send SIG{signal}: it has already exited", self.label);
        if let Ok(Some(status)) = self.child.try_wait() {
            self.status = Some(status);
            panic!("{}: cannot send SIG{signal}: it has already exited ({status})", self.label);
        }
        let ok = Command::new("kill")
            .args(["-s", signal, &self.pid().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("cannot run `kill`: {e}"));
        assert!(ok.success(), "{}: `kill -s {signal}` failed: {ok}", self.label);
    }

    /// Whether the process has exited (without collecting its output).
    pub fn has_exited(&mut self) -> bool {
        if self.status.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.status = Some(status);
            }
        }
        self.status.is_some()
    }

    /// Sends SIGTERM and waits (up to `timeout`) for the process to exit: then everything it
    /// printed is in the [`Output`], to check what did or did not happen.
    pub fn stop(mut self, timeout: Duration) -> Output {
        self.signal("TERM");
        self.wait_exit(timeout)
    }

    /// Waits for the process to exit and returns what it printed. If it is still running after
    /// `timeout`, kills it and panics with its output.
    pub fn wait_exit(mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.status {
                break status;
            }
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.status = Some(status);
                    break status;
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    self.status = self.child.try_wait().ok().flatten();
                    // Drop prints what the process printed.
                    panic!("{}: still running after {timeout:?}; killed it", self.label);
                }
                Err(e) => panic!("{}: cannot wait for it: {e}", self.label),
            }
        };
        let elapsed = self.started.elapsed();
        self.join_readers();
        let state = lock(&self.lines.state);
        Output {
            label: self.label.clone(),
            role: self.role,
            status,
            stdout: state.stdout.clone(),
            stderr: state.stderr.clone(),
            elapsed,
        }
    }

    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.join_readers();
        if std::thread::panicking() {
            let dump = dump_lines(&lock(&self.lines.state));
            eprintln!("---- {} ----\n{dump}", self.label);
        }
    }
}

fn dump_lines(state: &LinesState) -> String {
    let mut s = String::from("stdout:\n");
    for l in &state.stdout {
        s.push_str("  ");
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("stderr:\n");
    for l in &state.stderr {
        s.push_str("  ");
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// How a role ended and what it printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line and pid, for messages.
    pub label: String,
    /// Which binary ran.
    pub role: Role,
    /// The exit status.
    pub status: ExitStatus,
    /// Lines on stdout.
    pub stdout: Vec<String>,
    /// Lines on stderr (the log and error messages).
    pub stderr: Vec<String>,
    /// From spawning to exit.
    pub elapsed: Duration,
}

impl Output {
    /// The exit code (`None` if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics (showing everything printed) unless the exit code is `code`.
    pub fn assert_code(&self, code: i32) -> &Output {
        assert_eq!(self.code(), Some(code), "unexpected exit status\n{self}");
        self
    }

    /// Panics unless the role exited within `bound`.
    pub fn assert_within(&self, bound: Duration) -> &Output {
        assert!(self.elapsed <= bound, "took {:?}, more than {bound:?}\n{self}", self.elapsed);
        self
    }

    /// The role's one error line: the only stderr line starting with `{program}: error: ` (what
    /// the binaries print for a failed run) or, for a flag clap refused, with `error: `. Panics
    /// unless there is exactly one such line and it contains every one of `needles`.
    pub fn error_line(&self, needles: &[&str]) -> &str {
        let program = self.label.split_whitespace().next().unwrap_or_default();
        let ours = format!("{program}: error: ");
        let errors: Vec<&String> = self.stderr.iter().filter(|l| l.starts_with(&ours) || l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "expected exactly one error line on stderr\n{self}");
        let line = errors[0].as_str();
        for needle in needles {
            assert!(line.contains(needle), "the error line does not mention {needle:?}: {line:?}\n{self}");
        }
        line
    }

    /// For a customer that failed after parsing its flags: panics unless its stdout is the one
    /// outcome line for its exit code, `no-barista exit=4` or `failed exit=N`. Other roles print
    /// nothing on stdout when they fail.
    pub fn assert_failure_line(&self) -> &Output {
        let code = self.code().expect("an exit code");
        let expected = match (self.role, code) {
            (Role::Customer, exit::NO_BARISTA) => vec![format!("no-barista exit={code}")],
            (Role::Customer, _) => vec![format!("failed exit={code}")],
            _ => vec![],
        };
        assert_eq!(self.stdout, expected, "the outcome line on stdout\n{self}");
        self
    }

    /// The stderr lines printed after `mark` was taken (all of them for [`Mark::START`]).
    pub fn stderr_since(&self, mark: Mark) -> &[String] {
        &self.stderr[mark.stderr.min(self.stderr.len())..]
    }

    /// The stderr lines printed between two marks taken while the role ran.
    pub fn stderr_between(&self, from: Mark, to: Mark) -> &[String] {
        let end = to.stderr.min(self.stderr.len());
        &self.stderr[from.stderr.min(end)..end]
    }

    /// How many stderr lines contain `needle`.
    pub fn count_stderr(&self, needle: &str) -> usize {
        self.stderr.iter().filter(|l| l.contains(needle)).count()
    }

    /// The only stdout line; panics unless there is exactly one.
    pub fn single_stdout_line(&self) -> &str {
        assert_eq!(self.stdout.len(), 1, "expected exactly one line on stdout\n{self}");
        &self.stdout[0]
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "---- {}: {} after {:?} ----", self.label, self.status, self.elapsed)?;
        writeln!(f, "stdout:")?;
        for l in &self.stdout {
            writeln!(f, "  {l}")?;
        }
        writeln!(f, "stderr:")?;
        for l in &self.stderr {
            writeln!(f, "  {l}")?;
        }
        Ok(())
    }
}

/// A customer's result line: `served|gave-up order=PATH coffee=NAME barista=NAME wait_ms=N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `served` or `gave-up`.
    pub outcome: String,
    /// The order's full path, e.g. `/orders/b1/coffee0000000003`.
    pub order: String,
    /// The coffee ordered.
    pub coffee: String,
    /// The barista ordered from.
    pub barista: String,
    /// How long the customer waited.
    pub wait_ms: u64,
}

impl Receipt {
    /// Parses a customer's stdout line; panics with the line if it does not have the shape.
    pub fn parse(line: &str) -> Receipt {
        Receipt::try_parse(line).unwrap_or_else(|| panic!("not a customer result line: {line:?}"))
    }

    /// Like [`Receipt::parse`], `None` for a line without the shape.
    pub fn try_parse(line: &str) -> Option<Receipt> {
        let mut words = line.split(' ');
        let outcome = words.next()?.to_owned();
        let mut fields = BTreeMap::new();
        for word in words {
            let (k, v) = word.split_once('=')?;
            fields.insert(k, v);
        }
        let keys: Vec<&str> = fields.keys().copied().collect();
        if !(outcome == "served" || outcome == "gave-up") || keys != ["barista", "coffee", "order", "wait_ms"] {
            return None;
        }
        Some(Receipt {
            outcome,
            order: fields["order"].to_owned(),
            coffee: fields["coffee"].to_owned(),
            barista: fields["barista"].to_owned(),
            wait_ms: fields["wait_ms"].parse().ok()?,
        })
    }

    /// The order's name, e.g. `coffee0000000003`.
    pub fn order_name(&self) -> &str {
        self.order.rsplit('/').next().unwrap_or_default()
    }

    /// The order's sequence number.
    pub fn sequence(&self) -> u64 {
        order_sequence(self.order_name()).unwrap_or_else(|| panic!("bad order name in {self:?}"))
    }
}

/// The paths `shop-init` reports with `word` (`created` or `found`), in its order. Panics
/// unless every stdout line is such a report and the two original roots come first.
pub fn shop_init_report(out: &Output, word: &str) -> Vec<String> {
    let paths: Vec<String> = out
        .stdout
        .iter()
        .map(|l| l.strip_prefix(&format!("{word} ")).unwrap_or_else(|| panic!("not a `{word}` line: {l:?}\n{out}")).to_owned())
        .collect();
    assert!(paths.starts_with(&["/barista_group".to_owned(), "/orders".to_owned()]), "{out}");
    paths
}

/// The sequence number of an order name `coffee` + 10 digits, `None` for anything else.
pub fn order_sequence(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("coffee")?;
    if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// What a barista does with an order, as its log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Brew {
    /// `making {coffee} for {order}`
    Making,
    /// `served {coffee} ({order})`
    Served,
}

/// One line of a barista's log about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaristaEvent {
    /// Making or served.
    pub kind: Brew,
    /// The coffee.
    pub coffee: String,
    /// The order's name, e.g. `coffee0000000003`.
    pub order: String,
    /// For an order from an adopted bucket (` (adopted from NAME)` at the end of the line),
    /// the bucket's owner.
    pub adopted_from: Option<String>,
}

/// What a barista logged about orders, in log order: the lines `making {coffee} for {order}`
/// and `served {coffee} ({order})`, each possibly followed by ` (adopted from {owner})`.
pub fn barista_events(stderr: &[String]) -> Vec<BaristaEvent> {
    let mut events = Vec::new();
    for line in stderr {
        // Log lines look like `[2026-01-01T00:00:00Z INFO ] making jacob for coffee0000000001`.
        let Some((_, msg)) = line.split_once("] ") else { continue };
        let (msg, adopted_from) = match msg.strip_suffix(')').and_then(|m| m.split_once(" (adopted from ")) {
            Some((m, owner)) => (m, Some(owner.to_owned())),
            None => (msg, None),
        };
        let words: Vec<&str> = msg.split(' ').collect();
        let (kind, coffee, order) = match words.as_slice() {
            ["making", coffee, "for", order] => (Brew::Making, *coffee, *order),
            ["served", coffee, order] => {
                (Brew::Served, *coffee, order.strip_prefix('(').and_then(|o| o.strip_suffix(')')).unwrap_or(""))
            }
            _ => continue,
        };
        if order_sequence(order).is_some() {
            events.push(BaristaEvent { kind, coffee: coffee.to_owned(), order: order.to_owned(), adopted_from });
        }
    }
    events
}

/// The orders a barista logged as served, in log order.
pub fn served_orders(stderr: &[String]) -> Vec<String> {
    barista_events(stderr).into_iter().filter(|e| e.kind == Brew::Served).map(|e| e.order).collect()
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// Calls `cond` every 20 ms until it returns true; panics naming `what` if it has not after
/// `timeout`. Returns how long it took.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if cond() {
            return started.elapsed();
        }
        if started.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Temporary directories

/// The directory all the harness's temporary directories go in.
pub fn temp_root() -> PathBuf {
    std::env::temp_dir().join("zk-coffee-tests")
}

/// A name no other directory of this test run (or of another running test process) has:
/// `{name}-{pid}-{counter}`.
pub fn unique_name(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("{clean}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// A fresh, empty temporary directory, removed (with its contents) on drop unless
/// `ZK_COFFEE_TESTS_KEEP=1`.
#[derive(Debug)]
pub struct Dir {
    path: PathBuf,
}

impl Dir {
    /// Creates `{temp}/zk-coffee-tests/{name}-{pid}-{n}`.
    pub fn new(name: &str) -> Dir {
        let path = temp_root().join(unique_name(name));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Dir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside it.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if std::env::var_os("ZK_COFFEE_TESTS_KEEP").is_none_or(|v| v != "1") {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ZooKeeper servers

/// How many servers one test process runs at once (`ZK_COFFEE_TESTS_MAX_SERVERS`, default 3):
/// each is a JVM with up to 256 MiB of heap, and the machine may have 2 cores.
pub fn max_servers() -> usize {
    std::env::var("ZK_COFFEE_TESTS_MAX_SERVERS").ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(3)
}

struct Slots {
    used: Mutex<usize>,
    freed: Condvar,
}

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(|| Slots { used: Mutex::new(0), freed: Condvar::new() })
}

/// One of the [`max_servers`] slots; given back on drop.
struct Permit;

impl Permit {
    fn acquire() -> Permit {
        let slots = slots();
        let max = max_servers();
        let mut used = lock(&slots.used);
        while *used >= max {
            used = slots.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let slots = slots();
        *lock(&slots.used) -= 1;
        slots.freed.notify_one();
    }
}

/// A port nothing listens on (it was free a moment ago), for "unreachable" tests.
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// How a [`ZkServer`] is started.
#[derive(Debug, Clone)]
pub struct ZkServerBuilder {
    name: String,
    tick_ms: u32,
}

impl ZkServerBuilder {
    /// ZooKeeper's tickTime; session timeouts are negotiated into 2..20 ticks.
    pub fn tick_ms(mut self, ms: u32) -> ZkServerBuilder {
        self.tick_ms = ms;
        self
    }

    /// A name for the server's directory (e.g. the test's name), to find it when debugging.
    pub fn name(mut self, name: &str) -> ZkServerBuilder {
        self.name = name.to_owned();
        self
    }

    /// Starts the server and waits until it serves requests.
    pub fn start(self) -> ZkServer {
        let permit = Permit::acquire();
        std::fs::create_dir_all(temp_root()).expect("create the temp root");
        let dir = temp_root().join(format!("{}-zk", unique_name(&self.name)));
        let mut server = ZkServer {
            dir,
            connect: String::new(),
            tick_ms: self.tick_ms,
            running: false,
            watchdog: None,
            client: Mutex::new(None),
            _permit: permit,
        };
        // The watchdog first: a test process killed while the server starts still has it
        // stopped (`zk.sh start` itself dies with the test thread, see `launch`).
        server.watchdog = Some(spawn_watchdog(&server.dir));
        server.launch();
        server
    }
}

/// A private ZooKeeper server started by `scripts/zk.sh start --dir DIR`, on a free port of
/// 127.0.0.1 with its own data directory.
///
/// Dropping it stops the server and removes its directory (`zk.sh stop DIR`, which only ever
/// signals this server's own PID). A detached watchdog does the same if the test process dies
/// without dropping it (SIGKILL, abort).
///
/// Helper reads ([`tree`](ZkServer::tree), [`node`](ZkServer::node), ...) go through one raw
/// client that the server keeps; [`raw`](ZkServer::raw) hands out clients of your own.
pub struct ZkServer {
    dir: PathBuf,
    connect: String,
    tick_ms: u32,
    running: bool,
    watchdog: Option<Child>,
    client: Mutex<Option<Arc<ZooKeeper>>>,
    _permit: Permit,
}

/// One znode as the raw client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its data.
    pub data: Vec<u8>,
    /// Whether it is ephemeral (has an owning session).
    pub ephemeral: bool,
    /// How many children it has.
    pub num_children: i32,
}

impl ZkServer {
    /// Starts a server with the default settings (tickTime 500 ms: sessions of 1 to 10 s).
    pub fn start() -> ZkServer {
        ZkServer::builder().start()
    }

    /// A builder for a server with other settings.
    pub fn builder() -> ZkServerBuilder {
        let name = std::thread::current().name().unwrap_or("zk").rsplit("::").next().unwrap_or("zk").to_owned();
        ZkServerBuilder { name, tick_ms: 500 }
    }

    fn launch(&mut self) {
        let tick = self.tick_ms.to_string();
        let mut cmd = Command::new("bash");
        cmd.arg(zk_script())
            .args([OsStr::new("start"), OsStr::new("--dir"), self.dir.as_os_str(), OsStr::new("--tick-ms"), OsStr::new(&tick)])
            .stdin(Stdio::null());
        die_with_parent(&mut cmd);
        let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", zk_script().display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            panic!(
                "`zk.sh start --dir {}` failed ({}):\n{stdout}{}",
                self.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let line = stdout.lines().next().unwrap_or_default();
        let connect = line.split_whitespace().next().unwrap_or_default();
        assert!(connect.starts_with("127.0.0.1:"), "unexpected `zk.sh start` output: {stdout:?}");
        self.connect = connect.to_owned();
        self.running = true;
    }

    fn zk_stop(&self, keep: bool) {
        let mut cmd = Command::new("bash");
        cmd.arg(zk_script()).arg("stop").arg(&self.dir).stdin(Stdio::null());
        if keep {
            cmd.arg("--keep");
        }
        match cmd.output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "warning: `zk.sh stop {}` failed ({}): {}",
                self.dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("warning: cannot run zk.sh stop: {e}"),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn connect_string(&self) -> &str {
        &self.connect
    }

    /// `127.0.0.1:PORT/chroot`.
    pub fn connect_string_with_chroot(&self, chroot: &str) -> String {
        assert!(chroot.starts_with('/'), "a chroot starts with '/': {chroot:?}");
        format!("{}{chroot}", self.connect)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.connect.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port in the connect string")
    }

    /// The server's directory (`zoo.cfg`, `data/`, `server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the server is running (as far as this guard knows).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Stops the server, keeping its port and data for [`start_again`](ZkServer::start_again).
    pub fn stop(&mut self) {
        self.close_client();
        if self.running {
            self.zk_stop(true);
            self.running = false;
        }
    }

    /// Starts a stopped server again on the same port with the same data (sessions that
    /// reconnect soon enough are resumed).
    pub fn start_again(&mut self) {
        assert!(!self.running, "the server is already running");
        self.launch();
    }

    /// Stops and starts the server.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// A command for `role` with `--zk` set to this server.
    pub fn cmd(&self, role: Role) -> TestCommand {
        TestCommand::new(role).zk(&self.connect)
    }

    /// Runs `shop-init` and panics unless it succeeds.
    pub fn init_shop(&self) -> Output {
        let out = self.cmd(Role::ShopInit).run(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        out
    }

    /// A new raw client (the `zookeeper` crate, as the original program used), connected: waits
    /// until a call goes through, since `ZooKeeper::connect` returns before it is.
    pub fn raw(&self) -> ZooKeeper {
        connect_raw(&self.connect)
    }

    /// A new raw client chrooted at `chroot` (which must exist).
    pub fn raw_chroot(&self, chroot: &str) -> ZooKeeper {
        connect_raw(&self.connect_string_with_chroot(chroot))
    }

    /// The server's own helper client.
    fn client(&self) -> Arc<ZooKeeper> {
        assert!(self.running, "the server is stopped");
        let mut client = lock(&self.client);
        Arc::clone(client.get_or_insert_with(|| Arc::new(self.raw())))
    }

    fn close_client(&self) {
        if let Some(client) = lock(&self.client).take() {
            let _ = client.close();
        }
    }

    /// The node at `path`, or `None` if there is none.
    pub fn node(&self, path: &str) -> Option<Node> {
        match self.client().get_data(path, false) {
            Ok((data, stat)) => Some(Node { data, ephemeral: stat.is_ephemeral(), num_children: stat.num_children }),
            Err(ZkError::NoNode) => None,
            Err(e) => panic!("get_data {path}: {e:?}"),
        }
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        match self.client().exists(path, false) {
            Ok(stat) => stat.is_some(),
            Err(e) => panic!("exists {path}: {e:?}"),
        }
    }

    /// The names of `path`'s children, sorted; `None` if `path` does not exist.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        match self.client().get_children(path, false) {
            Ok(mut children) => {
                children.sort();
                Some(children)
            }
            Err(ZkError::NoNode) => None,
            Err(e) => panic!("get_children {path}: {e:?}"),
        }
    }

    /// Every node below `path` (not `path` itself), as full paths, sorted. ZooKeeper's own
    /// `/zookeeper` subtree is left out. Nodes that vanish while listing are skipped.
    pub fn tree(&self, path: &str) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            let Some(children) = self.children(&p) else { continue };
            for child in children {
                let full = if p == "/" { format!("/{child}") } else { format!("{p}/{child}") };
                if full == "/zookeeper" {
                    continue;
                }
                found.push(full.clone());
                stack.push(full);
            }
        }
        found.sort();
        found
    }

    /// The server's `mntr` four-letter-word report, e.g. `zk_ephemerals_count`.
    pub fn mntr(&self) -> BTreeMap<String, String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port())).expect("connect for mntr");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("set a read timeout");
        stream.write_all(b"mntr").expect("send mntr");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("read the mntr reply");
        reply.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_owned(), v.trim().to_owned())).collect()
    }

    /// The end of the server's log, for failure messages.
    /// Java stack-trace lines and the server's notes about `ruok`/`srvr` polling are left out.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let all: Vec<&str> = log
            .lines()
            .filter(|l| !l.starts_with('\t') && !l.contains(" command from /") && !l.starts_with("EndOfStreamException"))
            .collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        if std::thread::panicking() && self.running {
            eprintln!("---- end of {}/server.log ----\n{}", self.dir.display(), self.log_tail(30));
        }
        self.close_client();
        self.zk_stop(false);
        self.running = false;
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// Starts a detached shell that stops the server in `dir` once this test process is gone. It
/// is in its own session (setsid), so signals to the test's process group do not reach it.
fn spawn_watchdog(dir: &Path) -> Child {
    let script = "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; exec bash \"$2\" stop \"$3\"";
    Command::new("setsid")
        .args(["sh", "-c", script, "zk-coffee-watchdog"])
        .arg(std::process::id().to_string())
        .arg(zk_script())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the watchdog (setsid sh): {e}"))
}

/// Connects a raw client to `connect` and waits (up to 20 s) until a call goes through.
pub fn connect_raw(connect: &str) -> ZooKeeper {
    let zk = ZooKeeper::connect(connect, Duration::from_secs(10), |_: WatchedEvent| {})
        .unwrap_or_else(|e| panic!("ZooKeeper::connect({connect}): {e:?}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match zk.exists("/", false) {
            Ok(_) | Err(ZkError::NoNode) => return zk,
            Err(ZkError::ConnectionLoss) | Err(ZkError::OperationTimeout) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("raw client for {connect} not connected within 20 s: {e:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_parse() {
        let r = Receipt::parse("served order=/orders/b_1/coffee0000000012 coffee=jacob barista=b_1 wait_ms=207");
        assert_eq!(r.outcome, "served");
        assert_eq!(r.order_name(), "coffee0000000012");
        assert_eq!(r.sequence(), 12);
        assert_eq!((r.coffee.as_str(), r.barista.as_str(), r.wait_ms), ("jacob", "b_1", 207));
    }

    #[test]
    #[should_panic(expected = "not a customer result line")]
    fn receipts_refuse_other_lines() {
        Receipt::parse("served order=/orders/b/coffee0000000001 coffee=jacob");
    }

    #[test]
    fn barista_events_are_read_from_log_lines() {
        let log: Vec<String> = [
            "[2026-11-25T13:41:12Z INFO ] barista b1 is on shift (session 1)",
            "[2026-11-25T13:41:13Z INFO ] making jacob for coffee0000000000",
            "[2026-11-25T13:41:13Z INFO ] served jacob (coffee0000000000)",
            "[2026-11-25T13:41:13Z INFO ] served 2 orders",
            "[2026-11-25T13:41:14Z INFO ] making sogood for coffee0000000007 (adopted from b_2)",
            "[2026-11-25T13:41:14Z INFO ] served sogood (coffee0000000007) (adopted from b_2)",
        ]
        .map(String::from)
        .into();
        let event = |kind, coffee: &str, order: &str, from: Option<&str>| BaristaEvent {
            kind,
            coffee: coffee.into(),
            order: order.into(),
            adopted_from: from.map(String::from),
        };
        assert_eq!(
            barista_events(&log),
            [
                event(Brew::Making, "jacob", "coffee0000000000", None),
                event(Brew::Served, "jacob", "coffee0000000000", None),
                event(Brew::Making, "sogood", "coffee0000000007", Some("b_2")),
                event(Brew::Served, "sogood", "coffee0000000007", Some("b_2")),
            ]
        );
        assert_eq!(served_orders(&log), ["coffee0000000000", "coffee0000000007"]);
    }

    /// The waits look at what was printed before they began as well as after, and a wait for
    /// a line that never comes ends when the role closes its output, not at the deadline.
    /// (Runs the built `barista --help`: no server needed.)
    #[test]
    fn waits_see_the_whole_output_and_end_with_it() {
        let help = TestCommand::new(Role::Barista).arg("--help").spawn();
        let usage = help.wait_stdout("the usage line", LOG_TIMEOUT, |out| out.iter().find(|l| l.starts_with("Usage:")).cloned());
        assert_eq!(usage, "Usage: barista [OPTIONS]");
        let mark = help.mark();
        let out = help.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        assert!(out.stdout.len() > 10, "{out}");
        assert!(out.stderr_since(mark).is_empty() && out.stderr_between(Mark::START, mark).is_empty(), "{out}");

        let help = TestCommand::new(Role::Barista).arg("--help").spawn();
        let started = Instant::now();
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            help.wait_for_stderr("a line barista --help never prints", Duration::from_secs(60))
        }));
        let message = *waited.expect_err("the wait fails").downcast::<String>().expect("a panic message");
        assert!(message.contains("it closed its output"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(30), "the wait ran to its deadline");
    }

    #[test]
    fn order_sequences() {
        assert_eq!(order_sequence("coffee0000000042"), Some(42));
        assert_eq!(order_sequence("coffee42"), None);
        assert_eq!(order_sequence("tea0000000042"), None);
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("a/b"), unique_name("a/b"));
        assert!(!unique_name("a/b").contains('/'));
    }

    #[test]
    fn dirs_are_removed_on_drop() {
        let dir = Dir::new("dir-test");
        std::fs::write(dir.join("f"), b"x").unwrap();
        let path = dir.path().to_path_buf();
        assert!(path.is_dir());
        drop(dir);
        if std::env::var_os("ZK_COFFEE_TESTS_KEEP").is_none() {
            assert!(!path.exists());
        }
    }
}
