//! Alerts: the hook a shop's leading manager runs for each alerting event, and the records
//! that keep it from running twice.
//!
//! Every manager following a shop stands for the shop's election (`/zk-coffee/managers`) and
//! hands every event to [`Alerts::event`]. Only the leader runs hooks; every manager remembers
//! the recent alerting events it saw. The leader records each alert under `/zk-coffee/alerts`
//! once its hook has ended, and skips an event whose record is there (another manager, or an
//! earlier term, ran it). A manager that becomes leader runs the hooks of the events it
//! remembers that no record covers: those of the leaderless gap (the leader's host died with
//! its baristas) and those the old leader did not finish. So an alert runs once normally, and
//! at least once across a crash: a leader that dies in the middle of a hook leaves no record,
//! and the next leader runs that hook again.
//!
//! # Layout
//!
//! - `hooks`: running `sh -c CMD` bounded (timeout, process group, a cap, a bounded queue);
//! - `records`: the records' names, writing, listing and pruning;
//! - here: [`HookConfig`], [`Alerts`] (the election, the memory of recent events, the takeover
//!   and the keeper thread that prunes).
//!
//! (Over 400 lines with its tests: the alerting memory, the election's callbacks and the keeper
//! thread share one `Inner`; the hook pool and the records are in their own files.)

mod hooks;
mod records;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

pub use hooks::{HookCounts, Outcome};

use crate::duration::human;
use crate::error::{Error, Result};
use crate::layout;
use crate::lock;
use crate::manager::{Event, Kind};
use crate::session::{Candidacy, Session};
use crate::shop;
use crate::shop::security;

/// How often the keeper forgets old events and, while leading, prunes the records.
const KEEP_EVERY: Duration = Duration::from_secs(60);

/// What runs for which events, and the bounds on hooks, memory and records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    /// Run as `sh -c COMMAND` for each alerting event (`--on-event`); `None`: no hooks, no
    /// records (the manager still stands for election).
    pub command: Option<String>,
    /// The kinds that alert (`--alert-on`; [`Kind::ALERTING`] by default).
    pub kinds: Vec<Kind>,
    /// How long a hook may run before its process group is killed.
    pub timeout: Duration,
    /// How many hooks run at once.
    pub max_running: usize,
    /// How many wait for a free slot; when full, the oldest waiting is dropped.
    pub max_queued: usize,
    /// How long a manager remembers an alerting event it saw, to run it if it takes over.
    pub remember: Duration,
    /// How many such events it remembers at most.
    pub remember_max: usize,
    /// How many records the leader keeps at most.
    pub records_max: usize,
    /// How old a record may grow before the leader prunes it.
    pub records_max_age: Duration,
    /// When the manager stops, how long a running hook may go on before it is killed (then it
    /// is not recorded, and the next leader runs it again).
    pub stop_grace: Duration,
}

impl Default for HookConfig {
    fn default() -> HookConfig {
        HookConfig {
            command: None,
            kinds: Kind::ALERTING.to_vec(),
            timeout: Duration::from_secs(30),
            max_running: 4,
            max_queued: 64,
            remember: Duration::from_secs(600),
            remember_max: 1000,
            records_max: 1000,
            records_max_age: Duration::from_secs(3600),
            stop_grace: Duration::from_secs(5),
        }
    }
}

impl HookConfig {
    /// Checks the bounds: an empty command or a zero bound is a usage error.
    pub fn check(&self) -> Result<()> {
        if self.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(Error::usage("--on-event: the command is empty"));
        }
        for (what, n) in [("hooks running at once", self.max_running), ("hooks waiting", self.max_queued)] {
            if n == 0 {
                return Err(Error::usage(format!("the number of {what} must be at least 1")));
            }
        }
        if self.timeout.is_zero() {
            return Err(Error::usage("the alert hook's timeout must be longer than 0"));
        }
        Ok(())
    }
}

/// The kinds named in `list` (`--alert-on`: comma-separated names, e.g.
/// `barista-lost,queue-slow`).
pub fn parse_kinds(list: &str) -> Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = Kind::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            Error::usage(format!("--alert-on: unknown event {name:?} (known: {})", known.join(", ")))
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err(Error::usage("--alert-on: no event named"));
    }
    Ok(kinds)
}

/// Where a remembered event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Seen, not run by us: run it if we lead (now or later) and no record covers it.
    Pending,
    /// Queued or running.
    Queued,
    /// Ran, recorded by someone, or dropped: never again by us.
    Done,
}

/// One alerting event this manager saw.
struct Seen {
    event: Event,
    /// Its record's name.
    name: String,
    at: Instant,
    stage: Stage,
}

/// What the alerts' threads share.
struct Inner {
    session: Session,
    shop: String,
    config: HookConfig,
    /// Recent alerting events, oldest first.
    seen: Mutex<VecDeque<Seen>>,
    /// Set once the election stands (after [`Alerts::new`] made it); taken when stopping.
    /// Shared, so that reading the leader holds no lock over the network.
    candidacy: Mutex<Option<Arc<Candidacy>>>,
    pool: hooks::Pool,
    counters: hooks::Counters,
    /// The process groups of the hooks running.
    running: Mutex<Vec<u32>>,
    /// Set when stopping: a hook killed now is not recorded.
    stopping: AtomicBool,
    /// Tells the keeper that a record was written.
    keeper: Mutex<Sender<Keep>>,
}

impl Inner {
    fn is_leader(&self) -> bool {
        lock(&self.candidacy).as_ref().is_some_and(|c| c.is_leader())
    }
}

/// What the keeper thread hears.
enum Keep {
    /// Leadership changed.
    Leading(bool),
    /// A record was written.
    Recorded,
    Stop,
}

/// A shop's alerting: stands for its managers' election, remembers recent alerting events,
/// and, while leading, runs their hooks and records them. Dropping it stops: running hooks get
/// [`HookConfig::stop_grace`], then the candidacy is withdrawn (the next manager leads at once).
pub struct Alerts {
    inner: Arc<Inner>,
    keeper: Option<(Sender<Keep>, JoinHandle<()>)>,
}

impl Alerts {
    /// Stands for `shop`'s election on `session` (chrooted to the shop; in a secured shop
    /// with the staff credentials) and starts the hook workers. Creates `/zk-coffee/managers`
    /// and `/zk-coffee/alerts` in an open shop that lacks them (`shop-init` makes them; a
    /// secured shop set up by an older `shop-init` must run it again). `shop` names the shop
    /// in the log.
    pub fn new(session: &Session, shop: &str, config: HookConfig) -> Result<Alerts> {
        config.check()?;
        // In a secured shop, the nodes made here get the shop's ACLs (if the caller has not
        // asked for them already).
        security::install(session)?;
        for path in [layout::MANAGERS, layout::ALERTS] {
            match session.ensure_persistent(path, b"") {
                Ok(_) => {}
                Err(Error::NotAuthorized { .. }) => return Err(shop::not_initialised(session, path)),
                Err(e) => return Err(e),
            }
        }
        let workers = if config.command.is_some() { config.max_running } else { 0 };
        let pool = hooks::Pool::new(workers, config.max_queued)?;
        let (keeper_tx, keeper_rx) = mpsc::channel();
        let inner = Arc::new(Inner {
            session: session.clone(),
            shop: shop.to_owned(),
            config,
            seen: Mutex::new(VecDeque::new()),
            candidacy: Mutex::new(None),
            pool,
            counters: hooks::Counters::default(),
            running: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            keeper: Mutex::new(keeper_tx.clone()),
        });
        let mut alerts = Alerts { inner: Arc::clone(&inner), keeper: None };
        let keeper_inner = Arc::clone(&inner);
        let keeper = std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || keep(&keeper_inner, &keeper_rx))
            .map_err(|e| Error::internal(format!("cannot start the alerts' thread: {e}")))?;
        alerts.keeper = Some((keeper_tx.clone(), keeper));
        let host = hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
        let me = format!("{host} (pid {})", std::process::id());
        let told = Mutex::new(keeper_tx);
        let candidacy = session.stand_for_election(&layout::manager_prefix(), me.as_bytes(), move |leading| {
            let _ = lock(&told).send(Keep::Leading(leading));
        })?;
        *lock(&inner.candidacy) = Some(Arc::new(candidacy));
        Ok(alerts)
    }

    /// Hears one event (every event may come here; this picks the alerting ones): remembers it,
    /// and queues its hook if this manager leads. Returns at once; an episode told again (the
    /// same kind and key) is not run again.
    pub fn event(&self, event: &Event) {
        let inner = &self.inner;
        if inner.config.command.is_none() || !inner.config.kinds.contains(&event.event) {
            return;
        }
        let name = records::name(event);
        let mut seen = lock(&inner.seen);
        forget_old(&mut seen, &inner.config);
        if seen.iter().any(|s| s.name == name) {
            debug!("{event}: this episode was heard already");
            return;
        }
        seen.push_back(Seen { event: event.clone(), name, at: Instant::now(), stage: Stage::Pending });
        forget_old(&mut seen, &inner.config);
        // Looked at after remembering it: a manager becoming leader meanwhile finds it among
        // the events to take over.
        if inner.is_leader() {
            if let Some(last) = seen.len().checked_sub(1) {
                submit(inner, &mut seen, last);
            }
        }
    }

    /// Whether this manager leads the shop's election (for the `zk_coffee_manager_leader`
    /// gauge): it runs the hooks.
    pub fn is_leader(&self) -> bool {
        self.inner.is_leader()
    }

    /// Who leads (`host (pid N)`, read now), `None` while no manager stands.
    pub fn leader(&self) -> Result<Option<String>> {
        let Some(candidacy) = lock(&self.inner.candidacy).clone() else { return Ok(None) };
        Ok(candidacy.leader()?.map(|data| String::from_utf8_lossy(&data).into_owned()))
    }

    /// How the hooks run so far ended.
    pub fn counts(&self) -> HookCounts {
        self.inner.counters.snapshot()
    }
}

impl Drop for Alerts {
    fn drop(&mut self) {
        let inner = &self.inner;
        inner.stopping.store(true, Ordering::SeqCst);
        if let Some((stop, keeper)) = self.keeper.take() {
            let _ = stop.send(Keep::Stop);
            let _ = keeper.join();
        }
        let dropped = inner.pool.close();
        if !dropped.is_empty() {
            info!("shop {}: stopping with {} alerts waiting; the next leading manager runs them", inner.shop, dropped.len());
        }
        if !inner.pool.wait(inner.config.stop_grace) {
            let groups = lock(&inner.running).clone();
            warn!(
                "shop {}: stopping: killing {} alert hooks still running after {}",
                inner.shop,
                groups.len(),
                human(inner.config.stop_grace)
            );
            for group in groups.into_iter().filter_map(|g| rustix::process::Pid::from_raw(g as i32)) {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            if !inner.pool.wait(inner.config.stop_grace) {
                warn!("shop {}: alert hooks did not end; not waiting for them", inner.shop);
            }
        }
        // Withdraws: another manager leads at once.
        let candidacy = lock(&inner.candidacy).take();
        drop(candidacy);
    }
}

/// Forgets events older than [`HookConfig::remember`], and the oldest beyond
/// [`HookConfig::remember_max`].
fn forget_old(seen: &mut VecDeque<Seen>, config: &HookConfig) {
    while seen.front().is_some_and(|s| s.at.elapsed() > config.remember) || seen.len() > config.remember_max {
        seen.pop_front();
    }
}

/// Queues the hook of `seen[i]`; a job dropped from the full queue to make room is done with.
fn submit(inner: &Arc<Inner>, seen: &mut VecDeque<Seen>, i: usize) {
    let entry = &mut seen[i];
    entry.stage = Stage::Queued;
    let (event, name) = (entry.event.clone(), entry.name.clone());
    let job_inner = Arc::clone(inner);
    let Some(dropped) = inner.pool.submit(name.clone(), Box::new(move || alert(&job_inner, &event, &name))) else { return };
    inner.counters.dropped();
    if let Some(old) = seen.iter_mut().find(|s| s.name == dropped) {
        old.stage = Stage::Done;
        warn!("too many alert hooks waiting (at most {}): dropped the oldest, {}", inner.config.max_queued, old.event);
    }
}

/// The job of one alert, on a hook worker: runs the hook unless we no longer lead or a record
/// covers the event, then records it.
fn alert(inner: &Arc<Inner>, event: &Event, name: &str) {
    let stage = run_and_record(inner, event, name);
    if let Some(entry) = lock(&inner.seen).iter_mut().find(|s| s.name == name) {
        entry.stage = stage;
    }
}

fn run_and_record(inner: &Inner, event: &Event, name: &str) -> Stage {
    if !inner.is_leader() {
        debug!("{event}: no longer leading; the next leading manager runs its hook");
        return Stage::Pending;
    }
    match records::exists(&inner.session, name) {
        Ok(true) => {
            debug!("{event}: alerted already (recorded)");
            return Stage::Done;
        }
        Ok(false) => {}
        Err(e) => warn!("cannot tell whether {event} was alerted ({e}); running its hook"),
    }
    let Some(command) = &inner.config.command else { return Stage::Done };
    let outcome = hooks::run(command, event, inner.config.timeout, &inner.running);
    inner.counters.count(outcome);
    if outcome == Outcome::Stopped && inner.stopping.load(Ordering::SeqCst) {
        // Not recorded: the next leader runs it again (at least once).
        return Stage::Pending;
    }
    match records::write(&inner.session, name, event) {
        Ok(_) => {
            let _ = lock(&inner.keeper).send(Keep::Recorded);
        }
        Err(e) => warn!("cannot record the alert for {event}: {e}; the next leading manager may run it again"),
    }
    Stage::Done
}

/// The keeper thread: takes over when this manager comes to lead, prunes the records while it
/// leads, forgets old events.
fn keep(inner: &Arc<Inner>, keeps: &Receiver<Keep>) {
    loop {
        match keeps.recv_timeout(KEEP_EVERY) {
            Ok(Keep::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Ok(Keep::Leading(true)) => {
                info!("shop {}: this manager leads; it runs the alert hooks", inner.shop);
                take_over(inner);
                prune(inner);
            }
            Ok(Keep::Leading(false)) => info!("shop {}: this manager no longer leads; it runs no alert hooks", inner.shop),
            Ok(Keep::Recorded) => {
                let full = records::count(&inner.session).is_ok_and(|n| n as usize > inner.config.records_max);
                if full && inner.is_leader() {
                    prune(inner);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                forget_old(&mut lock(&inner.seen), &inner.config);
                if inner.is_leader() {
                    prune(inner);
                }
            }
        }
    }
}

/// Runs the hooks of the remembered events that no record covers (the leaderless gap, or
/// what the last leader did not finish).
fn take_over(inner: &Arc<Inner>) {
    if inner.config.command.is_none() || !inner.is_leader() {
        return;
    }
    let covered = match records::listed(&inner.session) {
        Ok(names) => names,
        Err(e) => {
            // Each hook's job looks for its record again before it runs.
            warn!("shop {}: cannot list the alert records ({e}); looking for each", inner.shop);
            Default::default()
        }
    };
    let mut seen = lock(&inner.seen);
    forget_old(&mut seen, &inner.config);
    let (mut run, mut recorded) = (0, 0);
    for i in 0..seen.len() {
        if seen[i].stage != Stage::Pending {
            continue;
        }
        if covered.contains(&seen[i].name) {
            seen[i].stage = Stage::Done;
            recorded += 1;
        } else {
            submit(inner, &mut seen, i);
            run += 1;
        }
    }
    if run + recorded > 0 {
        info!(
            "shop {}: taking over the alerts: {run} recent alerting events no record covers run now, {recorded} recorded already",
            inner.shop
        );
    }
}

fn prune(inner: &Inner) {
    if inner.config.command.is_none() {
        return;
    }
    if let Err(e) = records::prune(&inner.session, inner.config.records_max, inner.config.records_max_age) {
        warn!("shop {}: pruning the alert records: {e}", inner.shop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_on_lists_name_kinds_and_refuse_strangers() {
        assert_eq!(parse_kinds("barista-lost, queue-slow,barista-lost"), Ok(vec![Kind::BaristaLost, Kind::QueueSlow]));
        let unknown = parse_kinds("barista-lost,barista-gone").expect_err("an unknown kind");
        assert!(unknown.to_string().contains("\"barista-gone\"") && unknown.to_string().contains("queue-slow"), "{unknown}");
        assert_eq!(unknown.exit_code(), crate::error::exit::USAGE);
        assert!(parse_kinds(" , ").is_err());
    }

    #[test]
    fn bounds_must_be_usable() {
        assert_eq!(HookConfig::default().check(), Ok(()));
        assert_eq!(HookConfig::default().kinds, Kind::ALERTING);
        for bad in [
            HookConfig { command: Some(" ".into()), ..HookConfig::default() },
            HookConfig { max_running: 0, ..HookConfig::default() },
            HookConfig { max_queued: 0, ..HookConfig::default() },
            HookConfig { timeout: Duration::ZERO, ..HookConfig::default() },
        ] {
            assert!(matches!(bad.check(), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn old_events_are_forgotten_and_memory_is_bounded() {
        let config = HookConfig { remember_max: 2, remember: Duration::from_secs(600), ..HookConfig::default() };
        let mut seen: VecDeque<Seen> = ["b1", "b2", "b3"]
            .iter()
            .map(|b| {
                let event = Event::new(Kind::BaristaLost, "/", Some(b), format!("k-{b}"));
                Seen { name: records::name(&event), event, at: Instant::now(), stage: Stage::Pending }
            })
            .collect();
        forget_old(&mut seen, &config);
        assert_eq!(seen.iter().map(|s| s.event.key.as_str()).collect::<Vec<_>>(), ["k-b2", "k-b3"]);
        forget_old(&mut seen, &HookConfig { remember: Duration::ZERO, ..config });
        assert!(seen.is_empty());
    }
}
