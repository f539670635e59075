//! Leader election, ZooKeeper's recipe: every candidate makes an EPHEMERAL_SEQUENTIAL node
//! under one directory, the lowest sequence leads, and every other candidate watches only the
//! node just below its own (no herd: a leader's end wakes one candidate, not all). After every
//! watch it lists the children again, since the node below may have gone without the leader
//! going.
//!
//! The node is made with a protected create, so a create whose reply was lost is found again
//! rather than made twice (a second node of ours would stand for us after we withdrew). When the
//! session is lost its node goes with it: the candidate makes a new one on the new session and
//! follows until the listing proves it lowest. A leader also stops claiming to lead as soon as
//! its connection drops: its session may expire before it hears so, and another candidate may
//! then lead (the bug Curator's `LeaderLatch` and kazoo's `Election` had: a process still
//! believing it leads after its session was lost). It leads again once reconnected and listed
//! lowest.
//!
//! One thread per [`Candidacy`] drives it: it waits for a watch, a change of the connection or
//! a stop, at most [`RECHECK`] at a time, and retries failures with backoff.
//!
//! (About 500 lines: the recipe, its thread and the session-loss rules are one protocol, best
//! read in one place; each step says which recipe rule it follows.)

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use log::{debug, info, warn};
use zookeeper_client as zkc;

use super::protected::split_prefix;
use super::{Session, SessionEvent, Subscription};
use crate::error::{Error, Result};
use crate::lock;

/// How long the election waits for news before it lists the candidates again anyway: a safety
/// net, not the way it learns (watches are kept across reconnects).
const RECHECK: Duration = Duration::from_secs(60);
/// First pause after a failed step; doubled on each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between failed steps.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What wakes the election's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// The watch on the node below ours fired.
    Watch,
    /// The connection of the session our node belongs to dropped.
    Disconnected,
    /// It is back (or the session was replaced): list again.
    Connected,
    /// A session was lost: our node may be gone.
    Lost,
    /// The candidacy was dropped.
    Stop,
}

/// What the thread and the owner share.
struct Shared {
    /// The prefix of candidates' nodes, e.g. `/dir/candidate-`.
    prefix: String,
    /// The directory, the prefix's parent.
    dir: String,
    /// The start of candidates' names (the prefix's last segment).
    base: String,
    /// What our node holds (told to others as the leader's data).
    data: Vec<u8>,
    /// Our node lists lowest (set by the thread).
    lowest: AtomicBool,
    /// The connection of our node's session is up (set by the connection follower).
    connected: AtomicBool,
    /// Our node's path, while we have one.
    node: Mutex<Option<String>>,
    /// The node just below ours, whose watch is set (none while we lead).
    watching: Mutex<Option<String>>,
    /// How many times a watch of ours fired: for tests and metrics (no herd).
    watches_fired: AtomicU64,
}

impl Shared {
    fn is_leader(&self) -> bool {
        self.lowest.load(Ordering::SeqCst) && self.connected.load(Ordering::SeqCst)
    }
}

/// Standing for election under a directory: leads while its node is the lowest and its session
/// connected. Dropping it withdraws (deletes its node); the candidate that watched it leads
/// next.
pub struct Candidacy {
    shared: Arc<Shared>,
    wake: Sender<Wake>,
    /// Told when the thread has withdrawn (behind a lock only so that a candidacy can be
    /// shared between threads).
    done: Mutex<Receiver<()>>,
    thread: Option<JoinHandle<()>>,
    /// How long dropping waits for the withdrawal: its calls are bounded by the session
    /// timeout.
    withdraw_wait: Duration,
    session: Session,
}

/// Our node, and the session that owns it.
struct Mine {
    path: String,
    sequence: u64,
    /// The session id owning it (its `ephemeral_owner`).
    owner: i64,
}

/// What one look at the candidates found.
enum Step {
    /// Nothing to do until woken.
    Wait,
    /// Look again at once (our node was just made, or the one below is gone).
    Again,
}

impl Session {
    /// Stands for election among the EPHEMERAL_SEQUENTIAL nodes `{prefix}{sequence}` (their
    /// directory must exist), with `data` in our node. `on_change` is told `true` when this
    /// candidate becomes leader and `false` when it stops (disconnected, session lost, node
    /// gone, withdrawn); it runs on the election's thread and should only record or send. The
    /// first node is made before this returns, so an error (no directory, no right to create
    /// there) is the caller's; later failures are retried with backoff.
    pub fn stand_for_election(
        &self,
        prefix: &str,
        data: &[u8],
        on_change: impl Fn(bool) + Send + Sync + 'static,
    ) -> Result<Candidacy> {
        let (dir, base) = split_prefix(prefix).ok_or_else(|| Error::internal(format!("bad election prefix {prefix:?}")))?;
        let shared = Arc::new(Shared {
            prefix: prefix.to_owned(),
            dir: dir.to_owned(),
            base: base.to_owned(),
            data: data.to_vec(),
            lowest: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            node: Mutex::new(None),
            watching: Mutex::new(None),
            watches_fired: AtomicU64::new(0),
        });
        let (wake, wakes) = mpsc::channel();
        let mut driver = Driver {
            session: self.clone(),
            shared: Arc::clone(&shared),
            wake: wake.clone(),
            mine: None,
            watched: None,
            follower: None,
            told: false,
            on_change: Box::new(on_change),
        };
        driver.make_node()?;
        let lost = wake.clone();
        let subscription = self.subscribe(move |event| {
            let _ = lost.send(if event == SessionEvent::Lost { Wake::Lost } else { Wake::Connected });
        });
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("election".into())
            .spawn(move || {
                let _subscription: Subscription = subscription;
                driver.run(&wakes);
                let _ = done_tx.send(());
            })
            .map_err(|e| Error::internal(format!("cannot start the election's thread: {e}")))?;
        Ok(Candidacy {
            shared,
            wake,
            done: Mutex::new(done),
            thread: Some(thread),
            withdraw_wait: self.session_timeout() * 2 + Duration::from_secs(1),
            session: self.clone(),
        })
    }
}

impl Candidacy {
    /// Whether this candidate leads now: its node lists lowest and its session is connected.
    pub fn is_leader(&self) -> bool {
        self.shared.is_leader()
    }

    /// Our node's path, while we have one (it changes after a lost session).
    pub fn node(&self) -> Option<String> {
        lock(&self.shared.node).clone()
    }

    /// The candidate node just below ours, which we watch (none while we lead or look).
    pub fn watching(&self) -> Option<String> {
        lock(&self.shared.watching).clone()
    }

    /// How many times a watch of this candidate fired (each wakes it to list the candidates):
    /// a candidate not next in line is not woken when the leader goes.
    pub fn watches_fired(&self) -> u64 {
        self.shared.watches_fired.load(Ordering::SeqCst)
    }

    /// The leader's data (read now; ours without a call when we lead), `None` while nobody
    /// stands.
    pub fn leader(&self) -> Result<Option<Vec<u8>>> {
        if self.is_leader() {
            return Ok(Some(self.shared.data.clone()));
        }
        // The lowest may go between the listing and the read: look again, a few times.
        for _ in 0..3 {
            let Some(children) = self.session.children(&self.shared.dir)? else { return Ok(None) };
            let Some((_, lowest)) = candidates(&self.shared.base, &children).into_iter().next() else { return Ok(None) };
            if let Some(data) = self.session.data(&child(&self.shared.dir, &lowest))? {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }
}

impl Drop for Candidacy {
    /// Withdraws: the thread deletes our node (the next candidate leads at once, not after our
    /// session expires). Waits for it at most twice the session timeout.
    fn drop(&mut self) {
        let _ = self.wake.send(Wake::Stop);
        let done = lock(&self.done).recv_timeout(self.withdraw_wait);
        match done {
            Ok(()) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            Err(_) => warn!("withdrawing from the election under {} took too long; leaving it", self.shared.dir),
        }
    }
}

/// The candidates among `children` (names `{base}{10 digits}`), lowest sequence first.
fn candidates(base: &str, children: &[String]) -> Vec<(u64, String)> {
    let mut found: Vec<(u64, String)> = children
        .iter()
        .filter_map(|c| {
            let digits = c.strip_prefix(base).filter(|d| d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()))?;
            Some((digits.parse().ok()?, c.clone()))
        })
        .collect();
    found.sort_unstable();
    found
}

/// `{dir}/{name}`.
fn child(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The sequence of a node made from `prefix`.
fn sequence_of(prefix: &str, path: &str) -> Option<u64> {
    path.strip_prefix(prefix)?.parse().ok()
}

/// The election's thread: its node, the watch it set, and what it told last.
struct Driver {
    session: Session,
    shared: Arc<Shared>,
    wake: Sender<Wake>,
    mine: Option<Mine>,
    /// The node below ours whose watch is set and has not fired yet.
    watched: Option<String>,
    /// Follows the connection of our node's session: its id, and how to stop it.
    follower: Option<(i64, Arc<asyncs::sync::Notify>)>,
    /// What `on_change` was told last.
    told: bool,
    on_change: Box<dyn Fn(bool) + Send + Sync>,
}

impl Driver {
    fn run(&mut self, wakes: &Receiver<Wake>) {
        let (mut pause, mut failures) = (FIRST_BACKOFF, 0u32);
        loop {
            let step = self.step();
            if step.is_ok() {
                (pause, failures) = (FIRST_BACKOFF, 0);
            }
            let wait = match step {
                Ok(Step::Again) => Duration::ZERO,
                Ok(Step::Wait) => RECHECK,
                Err(e) => {
                    // Not proven lowest: not leading.
                    self.shared.lowest.store(false, Ordering::SeqCst);
                    failures += 1;
                    // Once per run of failures: an outage is one piece of news.
                    if failures == 1 {
                        warn!("election under {}: {e}; trying again with backoff", self.shared.dir);
                    } else {
                        debug!("election under {}: {e}; trying again in {pause:?}", self.shared.dir);
                    }
                    let wait = pause;
                    pause = (pause * 2).min(MAX_BACKOFF);
                    wait
                }
            };
            self.tell();
            let first = match wakes.recv_timeout(wait) {
                Ok(wake) => Some(wake),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Wake::Stop),
            };
            // Everything that came meanwhile, at once: one look serves them all.
            for wake in first.into_iter().chain(wakes.try_iter()) {
                match wake {
                    Wake::Stop => return self.withdraw(),
                    Wake::Watch => {
                        self.shared.watches_fired.fetch_add(1, Ordering::SeqCst);
                        self.set_watched(None);
                    }
                    Wake::Disconnected => {
                        if self.shared.lowest.swap(false, Ordering::SeqCst) {
                            debug!("disconnected: no longer claiming to lead the election under {}", self.shared.dir);
                        }
                    }
                    Wake::Connected | Wake::Lost => {}
                }
            }
            self.tell();
        }
    }

    /// Tells `on_change` if leadership changed since it was last told.
    fn tell(&mut self) {
        let now = self.shared.is_leader();
        if now != self.told {
            self.told = now;
            // The caller tells operators, in its own words.
            if now {
                debug!("leading the election under {} as {}", self.shared.dir, self.node_name());
            } else {
                debug!("not leading the election under {}", self.shared.dir);
            }
            (self.on_change)(now);
        }
    }

    fn node_name(&self) -> String {
        self.mine.as_ref().map_or_else(|| "-".into(), |m| m.path.clone())
    }

    /// One look at the candidates: makes our node if we have none on the current session,
    /// then leads if it is lowest, else watches the one just below it.
    fn step(&mut self) -> Result<Step> {
        let dir = self.shared.dir.clone();
        let children = self.session.children(&dir)?.ok_or_else(|| no_dir(&dir))?;
        let current = self.session.session_id();
        if let Some(mine) = self.mine.take_if(|m| Some(m.owner) != current) {
            // Made on a session that is gone: it goes with it (or, if the server still holds
            // that session, now, so that it stops standing for us).
            debug!("my candidate {} belongs to an earlier session", mine.path);
            self.shared.lowest.store(false, Ordering::SeqCst);
            let _ = self.session.delete(&mine.path, None);
        }
        let Some(owner) = self.mine.as_ref().map(|m| m.owner) else {
            self.make_node()?;
            return Ok(Step::Again);
        };
        self.follow_connection(owner);
        let Some(mine) = &self.mine else { return Ok(Step::Again) };
        let listed = candidates(&self.shared.base, &children);
        let Some(position) = listed.iter().position(|(sequence, _)| *sequence == mine.sequence) else {
            info!("my candidate {} is gone; standing again", mine.path);
            self.shared.lowest.store(false, Ordering::SeqCst);
            self.mine = None;
            return Ok(Step::Again);
        };
        if position == 0 {
            self.shared.lowest.store(true, Ordering::SeqCst);
            return Ok(Step::Wait);
        }
        self.shared.lowest.store(false, Ordering::SeqCst);
        let below = child(&dir, &listed[position - 1].1);
        if self.watched.as_deref() == Some(below.as_str()) {
            return Ok(Step::Wait);
        }
        let wake = self.wake.clone();
        let there = self.session.watch_exists(&below, move || {
            let _ = wake.send(Wake::Watch);
        })?;
        debug!("{} follows {below}", mine.path);
        if there {
            self.set_watched(Some(below));
            Ok(Step::Wait)
        } else {
            // Gone since the listing (the watch now waits for a creation that never comes:
            // sequence numbers are not reused).
            Ok(Step::Again)
        }
    }

    /// Remembers the node whose watch is set (and tells the owner).
    fn set_watched(&mut self, below: Option<String>) {
        lock(&self.shared.watching).clone_from(&below);
        self.watched = below;
    }

    /// Makes our node on the current session.
    fn make_node(&mut self) -> Result<()> {
        let tag = format!("{:016x}", rand::random::<u64>());
        let made = self.session.create_ephemeral_sequential_protected(&self.shared.prefix, &self.shared.data, &tag)?;
        let (path, owner) = made.ok_or_else(|| no_dir(&self.shared.dir))?;
        let sequence =
            sequence_of(&self.shared.prefix, &path).ok_or_else(|| Error::internal(format!("{path} has no sequence")))?;
        debug!("standing for election as {path}");
        *lock(&self.shared.node) = Some(path.clone());
        self.set_watched(None);
        self.mine = Some(Mine { path, sequence, owner });
        self.follow_connection(owner);
        Ok(())
    }

    /// Follows the connection of session `owner` (our node's), unless it already is: sets
    /// `connected` and wakes the thread when it drops or comes back.
    fn follow_connection(&mut self, owner: i64) {
        if self.follower.as_ref().is_some_and(|(id, _)| *id == owner) {
            return;
        }
        if let Some((_, stop)) = self.follower.take() {
            stop.notify_one();
        }
        let Ok((client, _)) = self.session.client(self.session.session_timeout()) else { return };
        if client.session_id().0 != owner {
            // Replaced meanwhile: the next step sees it.
            self.shared.connected.store(false, Ordering::SeqCst);
            let _ = self.wake.send(Wake::Lost);
            return;
        }
        let stop = Arc::new(asyncs::sync::Notify::new());
        self.follower = Some((owner, Arc::clone(&stop)));
        let mut states = client.state_watcher();
        drop(client);
        let up = |state: zkc::SessionState| state == zkc::SessionState::SyncConnected;
        self.shared.connected.store(up(states.peek_state()), Ordering::SeqCst);
        let shared = Arc::downgrade(&self.shared);
        let wake = self.wake.clone();
        let _detached = asyncs::spawn(async move {
            loop {
                let next = futures_lite::future::or(async { Some(states.changed().await) }, async {
                    stop.notified().await;
                    None
                });
                let (Some(state), Some(shared)) = (next.await, shared.upgrade()) else { return };
                shared.connected.store(up(state), Ordering::SeqCst);
                let told = if state.is_terminated() {
                    Wake::Lost
                } else if up(state) {
                    Wake::Connected
                } else {
                    Wake::Disconnected
                };
                if wake.send(told).is_err() || state.is_terminated() {
                    return;
                }
            }
        });
    }

    /// Deletes our node (if our session still owns it) and stops following the connection.
    fn withdraw(&mut self) {
        self.shared.lowest.store(false, Ordering::SeqCst);
        if let Some((_, stop)) = self.follower.take() {
            stop.notify_one();
        }
        if let Some(mine) = self.mine.take() {
            if self.session.session_id() == Some(mine.owner) {
                match self.session.delete(&mine.path, None) {
                    Ok(_) => debug!("withdrew {} from the election", mine.path),
                    Err(e) => warn!("withdrawing {} from the election: {e}", mine.path),
                }
            }
        }
        *lock(&self.shared.node) = None;
        self.set_watched(None);
        self.tell();
    }
}

/// The error for an election whose directory does not exist.
fn no_dir(dir: &str) -> Error {
    Error::ZooKeeper { op: "stand for election under".into(), path: dir.into(), code: "the directory does not exist".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_sort_by_sequence_and_skip_strangers() {
        let children: Vec<String> =
            ["n-0000000010", "junk", "n-0000000002", "n-12", "m-0000000001", "n-0000000009"].map(String::from).into();
        let listed = candidates("n-", &children);
        assert_eq!(listed.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [2, 9, 10]);
        assert_eq!(listed[0].1, "n-0000000002");
        assert_eq!(sequence_of("/d/n-", "/d/n-0000000007"), Some(7));
        assert_eq!(child("/d", "n-1"), "/d/n-1");
        assert_eq!(child("/", "n-1"), "/n-1");
    }
}
