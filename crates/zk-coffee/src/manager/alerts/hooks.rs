//! Running the alert hook, bounded: `sh -c CMD` in its own process group, with the event in
//! its environment and on stdin, killed (the whole group) when it runs over its timeout; at
//! most a few at once, the rest waiting in a bounded queue that drops its oldest when full. The
//! caller only queues: it never waits for a hook. What a hook prints goes to our log, line by
//! line.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use rustix::process::{kill_process_group, waitid, Pid, Signal, WaitId, WaitIdOptions};

use crate::duration::human;
use crate::error::{Error, Result};
use crate::lock;
use crate::manager::Event;

/// How long a worker waits for work before it looks whether it should stop: a safety net, the
/// queue wakes it.
const IDLE_WAIT: Duration = Duration::from_secs(60);
/// How long a killed hook's process is given to be gone before we stop waiting for it.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// Environment variables a hook does not inherit: they may hold the manager's credentials.
const WITHHELD: [&str; 2] = ["ZK_CREDENTIALS", "ZK_CREDENTIALS_FILE"];

/// How one run of a hook ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It exited 0.
    Succeeded,
    /// It exited non-zero or was killed by a signal not ours.
    Failed,
    /// It ran over its timeout and its process group was killed.
    TimedOut,
    /// `sh` could not be started.
    NotStarted,
    /// The manager stopped while it ran, and killed it.
    Stopped,
}

/// How many hooks ended how, since the manager started: for its log and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HookCounts {
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub not_started: u64,
    /// Dropped from a full queue, never run.
    pub dropped: u64,
}

/// The counters behind [`HookCounts`].
#[derive(Default)]
pub(super) struct Counters {
    succeeded: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
    not_started: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    pub(super) fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Succeeded => &self.succeeded,
            Outcome::Failed => &self.failed,
            Outcome::TimedOut => &self.timed_out,
            Outcome::NotStarted => &self.not_started,
            Outcome::Stopped => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> HookCounts {
        HookCounts {
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            not_started: self.not_started.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Runs `command` for `event` and waits for it at most `timeout`; kills its process group
/// then. `running` hears the group's id while it runs (so that a stopping manager can kill
/// it).
pub(super) fn run(command: &str, event: &Event, timeout: Duration, running: &Mutex<Vec<u32>>) -> Outcome {
    let started = Instant::now();
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .env("ZK_COFFEE_EVENT", event.event.name())
        .env("ZK_COFFEE_SHOP", &event.shop)
        .env("ZK_COFFEE_BARISTA", event.barista.as_deref().unwrap_or(""))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for name in WITHHELD {
        sh.env_remove(name);
    }
    let mut child = match sh.spawn() {
        Ok(child) => child,
        Err(e) => {
            warn!("alert hook for {event}: cannot start sh: {e}");
            return Outcome::NotStarted;
        }
    };
    let pid = child.id();
    lock(running).push(pid);
    let label = format!("alert hook [{pid}] ({})", event.event);
    // Each in its own thread: a hook that reads no stdin, or prints more than a pipe holds,
    // must not hold us up; the timeout below bounds us, not them.
    if let Some(mut stdin) = child.stdin.take() {
        let json = format!("{}\n", event.to_json());
        spawn_detached("alert-hook-in", move || {
            if let Err(e) = stdin.write_all(json.as_bytes()) {
                debug!("alert hook [{pid}]: writing the event to its stdin: {e}");
            }
        });
    }
    if let Some(out) = child.stdout.take() {
        let label = label.clone();
        spawn_detached("alert-hook-out", move || relay(out, &label, false));
    }
    if let Some(err) = child.stderr.take() {
        let label = label.clone();
        spawn_detached("alert-hook-err", move || relay(err, &label, true));
    }
    // Waits for the exit without reaping it: until we reap it, its pid (and group id) cannot be
    // reused, so killing the group after the timeout cannot hit another process.
    let (exited_tx, exited) = mpsc::channel();
    spawn_detached("alert-hook-wait", move || {
        let Some(target) = Pid::from_raw(pid as i32) else { return };
        // Interrupted: wait again; ended, or not ours to wait for: it has exited.
        while let Err(rustix::io::Errno::INTR) = waitid(WaitId::Pid(target), WaitIdOptions::EXITED | WaitIdOptions::NOWAIT) {}
        let _ = exited_tx.send(());
    });
    let mut timed_out = false;
    if exited.recv_timeout(timeout).is_err() {
        timed_out = true;
        let killed = Pid::from_raw(pid as i32).map(|group| kill_process_group(group, Signal::KILL));
        warn!("{label} for {event} ran over its timeout of {}: killed its process group {pid} ({killed:?})", human(timeout));
        if exited.recv_timeout(KILL_WAIT).is_err() {
            warn!("{label} is still there {} after SIGKILL; no longer waiting for it", human(KILL_WAIT));
            lock(running).retain(|p| *p != pid);
            spawn_detached("alert-hook-reap", move || {
                let _ = child.wait();
            });
            return Outcome::TimedOut;
        }
    }
    // It has exited: this returns at once.
    let status = child.wait();
    lock(running).retain(|p| *p != pid);
    let took = human(started.elapsed());
    match status {
        Ok(status) if timed_out => {
            debug!("{label} ended {}", describe(status));
            Outcome::TimedOut
        }
        Ok(status) if status.success() => {
            info!("{label} for {event}: done in {took}");
            Outcome::Succeeded
        }
        Ok(status) if status.signal() == Some(Signal::KILL.as_raw()) => {
            // Killed, by us when stopping or by someone else: not the hook's own failure.
            warn!("{label} for {event} was killed after {took}");
            Outcome::Stopped
        }
        Ok(status) => {
            warn!("{label} for {event} failed after {took}: {}", describe(status));
            Outcome::Failed
        }
        Err(e) => {
            warn!("{label} for {event}: cannot tell how it ended: {e}");
            Outcome::Failed
        }
    }
}

/// `exit status 3`, `killed by signal 15`.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}

/// Logs each line a hook prints (stderr at `warn`, stdout at `info`) until it closes the pipe.
fn relay(stream: impl Read, label: &str, stderr: bool) {
    for line in BufReader::new(stream).lines() {
        match line {
            Ok(line) if stderr => warn!("{label} stderr: {line}"),
            Ok(line) => info!("{label}: {line}"),
            Err(e) => {
                debug!("{label}: reading its output: {e}");
                return;
            }
        }
    }
}

/// Starts a helper thread that ends by itself; if the system refuses a thread, the helper's
/// work is skipped (logged), never the manager's.
fn spawn_detached(name: &str, work: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(work) {
        warn!("cannot start a thread for an alert hook: {e}");
    }
}

/// A job for the pool: it runs one alert (see `super`), with an id to tell it apart.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// The queue and what the workers share.
struct Queue {
    jobs: VecDeque<(String, Job)>,
    stopping: bool,
}

/// A fixed number of workers taking jobs from a bounded queue.
pub(super) struct Pool {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    max_queued: usize,
    workers: Mutex<Workers>,
}

/// The workers' threads, and how many have ended.
struct Workers {
    handles: Vec<JoinHandle<()>>,
    /// Each worker sends once when it ends.
    ended_rx: mpsc::Receiver<()>,
    ended: usize,
}

impl Pool {
    /// `workers` threads, at most `max_queued` jobs waiting.
    pub(super) fn new(workers: usize, max_queued: usize) -> Result<Pool> {
        let queue = Arc::new((Mutex::new(Queue { jobs: VecDeque::new(), stopping: false }), Condvar::new()));
        let (ended_tx, ended_rx) = mpsc::channel();
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let queue = Arc::clone(&queue);
            let ended = ended_tx.clone();
            let worker = std::thread::Builder::new()
                .name("alert-hooks".into())
                .spawn(move || {
                    work(&queue);
                    let _ = ended.send(());
                })
                .map_err(|e| Error::internal(format!("cannot start an alert hook worker: {e}")))?;
            handles.push(worker);
        }
        Ok(Pool { queue, max_queued, workers: Mutex::new(Workers { handles, ended_rx, ended: 0 }) })
    }

    /// Queues `job` (named `what` in the log); returns the name of the oldest job dropped to
    /// make room, if the queue was full. Never waits for a hook.
    pub(super) fn submit(&self, what: String, job: Job) -> Option<String> {
        let (queue, ready) = &*self.queue;
        let mut queue = lock(queue);
        let dropped = if queue.jobs.len() >= self.max_queued { queue.jobs.pop_front().map(|(what, _)| what) } else { None };
        queue.jobs.push_back((what, job));
        ready.notify_one();
        dropped
    }

    /// Stops taking jobs: what is queued is dropped (returned, by name); the workers end
    /// after the job they run.
    pub(super) fn close(&self) -> Vec<String> {
        let (queue, ready) = &*self.queue;
        let dropped = {
            let mut queue = lock(queue);
            queue.stopping = true;
            queue.jobs.drain(..).map(|(what, _)| what).collect()
        };
        ready.notify_all();
        dropped
    }

    /// Waits at most `wait` for the workers of a closed pool to end; `true` if they all did.
    pub(super) fn wait(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut workers = lock(&self.workers);
        while workers.ended < workers.handles.len() {
            if workers.ended_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
                return false;
            }
            workers.ended += 1;
        }
        for worker in workers.handles.drain(..) {
            let _ = worker.join();
        }
        workers.ended = 0;
        true
    }
}

/// A worker: runs jobs until the pool stops.
fn work(queue: &(Mutex<Queue>, Condvar)) {
    let (queue, ready) = queue;
    loop {
        let job = {
            let mut waiting = lock(queue);
            loop {
                if waiting.stopping {
                    return;
                }
                if let Some((_, job)) = waiting.jobs.pop_front() {
                    break job;
                }
                waiting = ready.wait_timeout(waiting, IDLE_WAIT).unwrap_or_else(|p| p.into_inner()).0;
            }
        };
        job();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_its_oldest_and_the_caller_never_waits() {
        // No workers: nothing is taken from the queue.
        let pool = Pool::new(0, 2).expect("a pool");
        assert_eq!(pool.submit("a".into(), Box::new(|| ())), None);
        assert_eq!(pool.submit("b".into(), Box::new(|| ())), None);
        assert_eq!(pool.submit("c".into(), Box::new(|| ())), Some("a".into()));
        assert_eq!(pool.close(), ["b", "c"]);
        assert!(pool.wait(Duration::ZERO));
    }

    #[test]
    fn exit_statuses_are_described_for_people() {
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit status 3");
        assert_eq!(describe(ExitStatus::from_raw(15)), "killed by signal 15");
    }
}
