//! A role running in the background ([`Proc`]) and what a finished one printed ([`Output`]).
//!
//! A running role's output is collected by reader threads and can only be *waited* for, with
//! a deadline ([`Proc::wait_log`] and its siblings): a role logs after it acts, so reading its
//! output once after waiting for an effect in ZooKeeper races the line that reports it. What
//! did not happen, or how often something was said, is read from the [`Output`] once the role
//! has exited, with [`Mark`]s for windows. [`wait_until`] waits for any other condition.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::*;

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

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
    /// Starts `cmd` (stdout and stderr piped) as `role`; `display` is its command line, for
    /// messages.
    pub(crate) fn start(mut cmd: Command, role: Role, display: &str) -> Proc {
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start `{display}`: {e}"));
        let lines = Arc::new(Lines::default());
        let readers = vec![
            read_lines(child.stdout.take().expect("piped stdout"), Arc::clone(&lines), Stream::Stdout),
            read_lines(child.stderr.take().expect("piped stderr"), Arc::clone(&lines), Stream::Stderr),
        ];
        let label = format!("{display} (pid {})", child.id());
        Proc { label, role, child, lines, readers, started, status: None }
    }

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
