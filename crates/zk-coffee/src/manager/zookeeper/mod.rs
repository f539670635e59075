//! ZooKeeper's own health, as the manager watches it: each server of the connect string asked
//! `mntr` (a four-letter word over plain TCP, or over TLS with the manager's `--tls-ca` for a
//! TLS-only server) every few seconds, the latest answer kept per
//! server, transitions told as [`Event`]s, and the readings exported as Prometheus gauges.
//!
//! `mntr` has no watch, so this is a poll by nature ([`DEFAULT_INTERVAL`]). A server is
//! *up* when it answers: with its statistics, or with a refusal because `mntr` is not in its
//! `4lw.commands.whitelist` (up but unreadable: said once in the log, not a fault). It is
//! *wrong* when it does not answer within [`TIMEOUT`] (down), answers that it is not serving
//! (no quorum, still loading), or, when it leads, has fewer followers in sync than the other
//! servers of the connect string (the ensemble lost a member). An episode starts with the
//! first thing that goes wrong, one `zookeeper-degraded` event for each thing that goes wrong
//! during it (facts `server`, `problem`, `detail`), and ends with one `zookeeper-ok` when
//! nothing is wrong any more (facts `servers`, `degraded_seconds`). Its key is
//! `zookeeper:{ensemble}:{start in ms since the epoch}` (`:{server}` appended for each
//! degraded event). Managers poll on their own clocks, so two managers give the same outage
//! different keys: unlike a barista's episodes, nothing in the tree names it (and neither
//! kind alerts by default).
//!
//! In this folder: [`ask`] reads one server, [`Answer::parse`] one answer, [`problems`] what is wrong with a
//! round of answers, [`Episodes`] turns rounds into events; [`Poller`] runs the rounds on its
//! thread, and [`ZookeeperCollector`] exports its latest readings.

mod collector;
mod episodes;
mod mntr;
#[cfg(test)]
mod tests;

pub use collector::ZookeeperCollector;
pub use episodes::Episodes;
pub use mntr::*;

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::event::Event;
use crate::error::{Error, Result};
use crate::lock;
use crate::session::{ConnectString, Tls};

/// How a [`Poller`] runs.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// The `ensemble` label and the events' shop: a name for the connect string.
    pub ensemble: String,
    /// The servers to ask, `host:port` each (e.g. [`ConnectString::hosts`]).
    pub servers: Vec<String>,
    /// How often to ask every server.
    pub interval: Duration,
    /// Ask over TLS with these settings (the servers' secureClientPort), if set.
    pub tls: Option<Tls>,
}

impl PollerConfig {
    /// Every server of `servers` (the chroot does not matter), every [`DEFAULT_INTERVAL`],
    /// labelled `ensemble`.
    pub fn new(ensemble: &str, servers: &ConnectString) -> PollerConfig {
        PollerConfig { ensemble: ensemble.to_owned(), servers: servers.hosts().to_vec(), interval: DEFAULT_INTERVAL, tls: None }
    }
}

/// The latest readings, shared by the poller's thread and its collectors.
#[derive(Debug, Default)]
struct Shared {
    readings: BTreeMap<String, Reading>,
    /// How many rounds have been read.
    rounds: u64,
}

/// The poller's thread, its readings, and its stop request.
struct Inner {
    ensemble: String,
    servers: Vec<String>,
    tls: Option<Tls>,
    shared: Mutex<Shared>,
    /// Set to stop; the thread waits on `wake` between rounds.
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Asks every server for `mntr` every `interval` on a thread of its own, keeps the latest
/// reading of each, and reports each episode of trouble through a callback (see the module's
/// text). Stopped by [`Poller::stop`] or on drop.
pub struct Poller {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    /// Starts polling: the first round at once, `on_event` called on the poller's thread for
    /// each event (it should only record or send). An empty server list, or a zero interval,
    /// is a usage error.
    pub fn start(config: PollerConfig, on_event: impl FnMut(Event) + Send + 'static) -> Result<Poller> {
        if config.servers.is_empty() {
            return Err(Error::usage("no ZooKeeper server to watch"));
        }
        if config.interval.is_zero() {
            return Err(Error::usage("the ZooKeeper poll interval must be more than zero"));
        }
        let inner = Arc::new(Inner {
            ensemble: config.ensemble,
            servers: config.servers,
            tls: config.tls,
            shared: Mutex::new(Shared::default()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let thread = {
            let inner = Arc::clone(&inner);
            let interval = config.interval;
            std::thread::Builder::new()
                .name("zookeeper-health".into())
                .spawn(move || run(&inner, interval, on_event))
                .map_err(|e| Error::internal(format!("cannot start the ZooKeeper health thread: {e}")))?
        };
        Ok(Poller { inner, thread: Some(thread) })
    }

    /// The latest reading of every server that has been read, by server.
    pub fn readings(&self) -> BTreeMap<String, Reading> {
        lock(&self.inner.shared).readings.clone()
    }

    /// How many rounds (every server asked once) have been read.
    pub fn rounds(&self) -> u64 {
        lock(&self.inner.shared).rounds
    }

    /// The Prometheus collector of the latest readings (cheap; as many as wanted).
    pub fn collector(&self) -> ZookeeperCollector {
        ZookeeperCollector { inner: Arc::clone(&self.inner) }
    }

    /// Stops the thread and waits for it (at most one round: [`TIMEOUT`] twice).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        *lock(&self.inner.stop) = true;
        self.inner.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.halt();
    }
}

/// An episode of trouble: its key, since when, and who had a problem during it.
fn run(inner: &Inner, interval: Duration, mut on_event: impl FnMut(Event)) {
    let mut episodes = Episodes::new(&inner.ensemble);
    loop {
        let started = Instant::now();
        let answers: BTreeMap<String, Answer> = std::thread::scope(|scope| {
            let tls = inner.tls.as_ref();
            let asks: Vec<_> = inner.servers.iter().map(|s| (s.clone(), scope.spawn(move || ask_over(s, tls)))).collect();
            asks.into_iter().map(|(s, h)| (s, h.join().unwrap_or_else(|_| Answer::Down("the poll panicked".into())))).collect()
        });
        if *lock(&inner.stop) {
            return;
        }
        // The readings first: whoever hears of an event finds the round that caused it.
        {
            let at = SystemTime::now();
            let mut shared = lock(&inner.shared);
            for (server, answer) in &answers {
                shared.readings.insert(server.clone(), Reading { answer: answer.clone(), at });
            }
            shared.rounds += 1;
        }
        for event in episodes.observe(&answers) {
            log::info!("{event}");
            on_event(event);
        }
        let next = started + interval;
        let mut stop = lock(&inner.stop);
        while !*stop {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            stop = inner.wake.wait_timeout(stop, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        if *stop {
            return;
        }
    }
}
