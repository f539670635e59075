//! The load generator: many customers ordering at once from one process.
//!
//! Closed loop (`concurrency`): that many customers order one coffee after another, waiting to
//! be served each time, until `orders` orders have been placed in total or `duration` has
//! passed; a served order's latency counts from placing it. Open loop (`rate`): orders become
//! due at `rate` per second whatever the shop does, on a schedule fixed at the start (order
//! `k` is due `k / rate` seconds in), and a customer arrives for each when it is due. At most
//! `max_outstanding` orders are placed and not yet done at once; an order due while that many
//! are is held back until one finishes, and keeps its due time. An open-loop order's latency
//! counts from when it was due, and a give-up counts too (at its wait, patience or more), as
//! wrk2 and vegeta measure: a stall of the shop then shows in the percentiles instead of
//! slowing the arrivals down and hiding itself (coordinated omission).
//!
//! By default each closed-loop customer holds its own ZooKeeper session (as separate customer
//! processes would); `sessions` spreads them over fewer, shared sessions instead (as a front
//! end ordering for many people would), whose requests then travel together. Open-loop
//! customers share [`DEFAULT_OPEN_SESSIONS`] sessions unless `sessions` says otherwise. The
//! customers of one session share its view of the baristas on shift and of the menu, each kept
//! under a watch.
//!
//! Each customer's watches cover its own order only, as a lone customer's do: it reads the
//! queue lengths of its two picks when choosing (their stats' `numChildren`, in one round
//! trip) and sets a watch on its order after placing it, so a load process costs the servers
//! O(its own orders), and N load processes cost no more than one with as many customers.
//! With `watch_all_orders` the customers of the process share one [`Board`] instead (one
//! watch on all of `/orders`), which gives them the queue lengths and tells each when its
//! order is served, so that placing it is their only request; but that watch hears of every
//! order in the shop, so it pays only for one load process alone with a shop. Each outcome is
//! counted in a [`Summary`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use log::{info, warn};

use crate::board::Board;
use crate::config;
use crate::config::ShopConfig;
use crate::customer::{self, CustomerConfig};
use crate::error::{Error, Result};
use crate::lock;
use crate::roster::Roster;
use crate::session::{Session, SessionConfig};
use crate::shop;
use crate::shutdown::{Shutdown, Stop};
pub use crate::summary::{OpenLoop, Summary};

/// How often a long run reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long the open loop's scheduler sleeps at most before looking at the clock, the stop
/// request and the progress again.
const SCHEDULER_TICK: Duration = Duration::from_millis(100);
/// The most orders an open-loop run has placed and not yet done at once, by default: far more
/// than a shop that keeps up has (rate × latency), so that the cap is met only by a stall, and
/// few enough threads (one per outstanding order) for any machine.
pub const DEFAULT_MAX_OUTSTANDING: usize = 1000;
/// How many ZooKeeper sessions an open-loop run's customers share by default.
pub const DEFAULT_OPEN_SESSIONS: usize = 4;
/// The highest open-loop rate accepted, orders per second.
pub const MAX_RATE: f64 = 100_000.0;

/// What load to make.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Stop after placing this many orders in total (`None`: until `duration`).
    pub orders: Option<u64>,
    /// Stop placing orders after this long (`None`: until `orders`).
    pub duration: Option<Duration>,
    /// Closed loop: how many customers order at the same time.
    pub concurrency: usize,
    /// How many ZooKeeper sessions they share (`None`: closed loop, one each; open loop,
    /// [`DEFAULT_OPEN_SESSIONS`]).
    pub sessions: Option<usize>,
    /// Open loop: orders due per second (`None`: closed loop).
    pub rate: Option<f64>,
    /// Open loop: the most orders placed and not yet done at once.
    pub max_outstanding: usize,
    /// Share one watch on all of `/orders` (a [`Board`]) instead of a watch per order.
    pub watch_all_orders: bool,
    /// What each customer orders and how patient it is.
    pub customer: CustomerConfig,
}

impl LoadConfig {
    /// A closed-loop load of `concurrency` customers, each with its own session.
    pub fn closed(orders: Option<u64>, duration: Option<Duration>, concurrency: usize, customer: CustomerConfig) -> LoadConfig {
        LoadConfig {
            orders,
            duration,
            concurrency,
            sessions: None,
            rate: None,
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
            watch_all_orders: false,
            customer,
        }
    }
}

/// Checks an open-loop rate (orders per second): a number above zero, at most [`MAX_RATE`].
pub fn parse_rate(s: &str) -> Result<f64> {
    match s.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= MAX_RATE => Ok(rate),
        Ok(_) => Err(Error::usage(format!("rate {s:?} must be above 0 and at most {MAX_RATE} orders per second"))),
        Err(_) => Err(Error::usage(format!("rate {s:?} is not a number of orders per second"))),
    }
}

/// What the customer threads of a run share.
struct Shared {
    parties: Vec<Option<Arc<Party>>>,
    board: Option<Board>,
    config: LoadConfig,
    shutdown: Shutdown,
    /// Visits ended so far.
    finished: AtomicU64,
    total: Mutex<Summary>,
    /// When the last visit ended (the progress loop only looks every 50 ms).
    last_done: Mutex<Instant>,
}

impl Shared {
    /// Counts a visit's outcome (`from_due`: open loop, see [`Summary::count`]).
    fn done(&self, outcome: &Result<customer::Outcome>, from_due: Option<Duration>) {
        lock(&self.total).count(outcome, from_due);
        self.finished.fetch_add(1, Ordering::SeqCst);
        let mut last = lock(&self.last_done);
        *last = (*last).max(Instant::now());
    }

    /// One visit by a customer of `party`.
    fn visit(&self, party: &Party, i: usize) -> Result<customer::Outcome> {
        let shop = party.menu(i);
        customer::order_and_wait(&party.session, &party.roster, self.board.as_ref(), &self.config.customer, &shop, &self.shutdown)
    }
}

/// Runs the load and returns its summary. Fails only if the shop cannot be reached at all;
/// errors of single visits are counted. A stop request ends the run early (waiting customers
/// withdraw their orders; open loop: no more orders become due).
pub fn run(session_config: &SessionConfig, config: &LoadConfig, shutdown: &Shutdown) -> Result<Summary> {
    if config.orders.is_none() && config.duration.is_none() {
        return Err(Error::usage("a load run needs a number of orders or a duration"));
    }
    if let Some(rate) = config.rate {
        parse_rate(&rate.to_string())?;
    }
    // Fail early, once, with a clear error if the shop is not there or the coffee not on its
    // menu.
    let probe = Session::connect(session_config.clone())?;
    let checked = shop::check_initialised(&probe).and_then(|()| config::load_or_default(&probe)).and_then(|shop| {
        config.customer.coffee.as_deref().map(|c| shop.menu.check(c)).transpose()?;
        Ok(shop)
    });
    probe.close();
    let shop = checked?;

    let concurrency = config.concurrency.max(1);
    let max_outstanding = config.max_outstanding.max(1);
    let sessions = match config.rate {
        None => config.sessions.unwrap_or(concurrency).clamp(1, concurrency),
        Some(_) => config.sessions.unwrap_or(DEFAULT_OPEN_SESSIONS).clamp(1, max_outstanding),
    };
    let parties: Vec<Option<Arc<Party>>> = (0..sessions)
        // Each session creates its orders with the shop's ACLs (in a secured shop).
        .map(|p| match Session::connect(session_config.clone()).and_then(|s| crate::security::install(&s).map(|_| s)) {
            Ok(session) => Some(Arc::new(Party::new(session, shop.clone()))),
            Err(e) => {
                warn!("session {p}: {e}");
                None
            }
        })
        .collect();
    // With `watch_all_orders`, one watch for the whole process, on the first session.
    let board = parties.iter().flatten().next().filter(|_| config.watch_all_orders).map(|p| Board::new(&p.session));
    let wall_start = SystemTime::now();
    let started = Instant::now();
    let shared = Arc::new(Shared {
        parties,
        board,
        config: config.clone(),
        shutdown: shutdown.clone(),
        finished: AtomicU64::new(0),
        total: Mutex::new(Summary::default()),
        last_done: Mutex::new(started),
    });
    let open = match config.rate {
        None => {
            closed_loop(&shared, concurrency, started)?;
            None
        }
        Some(rate) => Some(open_loop(&shared, rate, max_outstanding, started)?),
    };
    let elapsed = lock(&shared.last_done).duration_since(started);
    let mut summary = std::mem::take(&mut *lock(&shared.total));
    if let Ok(shared) = Arc::try_unwrap(shared) {
        drop(shared.board);
        for party in shared.parties.into_iter().flatten() {
            party.session.close();
        }
    }
    summary.elapsed = elapsed;
    summary.open = open;
    summary.span = Some((wall_start, wall_start + elapsed));
    Ok(summary)
}

/// Logs the progress every [`PROGRESS_EVERY`].
struct Progress {
    last: Instant,
    started: Instant,
}

impl Progress {
    fn tick(&mut self, shared: &Shared, also: impl FnOnce() -> String) {
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            let done = shared.finished.load(Ordering::SeqCst);
            let of = shared.config.orders.map(|n| format!("/{n}")).unwrap_or_default();
            info!("progress: {done}{of} orders done, {:.1}/s{}", done as f64 / self.started.elapsed().as_secs_f64(), also());
        }
    }
}

/// Waits for the customer threads, logging the progress.
fn join_all(workers: Vec<thread::JoinHandle<()>>, shared: &Shared, progress: &mut Progress, also: impl Fn() -> String) {
    while workers.iter().any(|w| !w.is_finished()) {
        thread::sleep(Duration::from_millis(50));
        progress.tick(shared, &also);
    }
    for worker in workers {
        let _ = worker.join();
    }
}

/// `concurrency` customers, each ordering again as soon as its last order is done.
fn closed_loop(shared: &Arc<Shared>, concurrency: usize, started: Instant) -> Result<()> {
    let placed = Arc::new(AtomicU64::new(0));
    let stop_at = shared.config.duration.map(|d| started + d);
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let (shared, placed) = (Arc::clone(shared), Arc::clone(&placed));
            thread::Builder::new().name(format!("customer-{i}")).spawn(move || {
                let Some(party) = shared.parties[i % shared.parties.len()].clone() else {
                    shared.done(&Err(Error::internal("no session")), None);
                    return;
                };
                loop {
                    let budget_left = shared.config.orders.is_none_or(|n| placed.fetch_add(1, Ordering::SeqCst) < n);
                    let time_left = stop_at.is_none_or(|t| Instant::now() < t);
                    if !budget_left || !time_left || shared.shutdown.state() != Stop::No {
                        break;
                    }
                    let outcome = shared.visit(&party, i);
                    shared.done(&outcome, None);
                }
            })
        })
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::internal(format!("cannot start the customer threads: {e}")))?;
    join_all(workers, shared, &mut Progress { last: Instant::now(), started }, String::new);
    Ok(())
}

/// The places for outstanding orders under the cap.
struct Slots {
    outstanding: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn release(&self) {
        *lock(&self.outstanding) -= 1;
        self.freed.notify_one();
    }
}

/// Orders due at `rate` per second from `started`, each taken by a customer thread (one per
/// outstanding order, started as needed, reused when idle), at most `max_outstanding` at once.
fn open_loop(shared: &Arc<Shared>, rate: f64, max_outstanding: usize, started: Instant) -> Result<OpenLoop> {
    let config = &shared.config;
    let stop_at = config.duration.map(|d| started + d);
    let slots = Arc::new(Slots { outstanding: Mutex::new(0), freed: Condvar::new() });
    // Idle customer threads wait on `jobs` for the due time of their next order; `idle` counts
    // those not yet promised one.
    let (tx, jobs) = mpsc::channel::<Instant>();
    let jobs = Arc::new(Mutex::new(jobs));
    let idle = Arc::new(AtomicUsize::new(0));
    let mut workers: Vec<thread::JoinHandle<()>> = Vec::new();
    let mut progress = Progress { last: Instant::now(), started };
    fn outstanding(slots: &Slots) -> impl Fn() -> String + '_ {
        move || format!(", {} outstanding", lock(&slots.outstanding))
    }
    let mut open = OpenLoop { rate, due: 0, max_outstanding: max_outstanding as u64, capped: 0, max_held: Duration::ZERO };
    'schedule: loop {
        if config.orders.is_some_and(|n| open.due >= n) {
            break;
        }
        let due = started + Duration::from_secs_f64(open.due as f64 / rate);
        if stop_at.is_some_and(|t| due >= t) {
            break;
        }
        loop {
            if shared.shutdown.state() != Stop::No {
                break 'schedule;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            progress.tick(shared, outstanding(&slots));
            thread::sleep((due - now).min(SCHEDULER_TICK));
        }
        // A place under the cap; the order keeps its due time while it waits for one.
        let mut taken = lock(&slots.outstanding);
        if *taken >= max_outstanding {
            open.capped += 1;
            if open.capped == 1 {
                warn!(
                    "{max_outstanding} orders outstanding (--max-outstanding): orders wait for a place,                      their latency counting from when they were due"
                );
            }
            while *taken >= max_outstanding {
                if shared.shutdown.state() != Stop::No {
                    break 'schedule;
                }
                taken = slots.freed.wait_timeout(taken, SCHEDULER_TICK).unwrap_or_else(|p| p.into_inner()).0;
                let n = *taken;
                progress.tick(shared, || format!(", {n} outstanding"));
            }
            open.max_held = open.max_held.max(due.elapsed());
        }
        *taken += 1;
        drop(taken);
        let i = open.due as usize;
        open.due += 1;
        if idle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            if tx.send(due).is_ok() {
                continue;
            }
            idle.fetch_add(1, Ordering::SeqCst);
        }
        let n = workers.len();
        let spawned = thread::Builder::new().name(format!("customer-{n}")).spawn({
            let (shared, slots, jobs, idle) = (Arc::clone(shared), Arc::clone(&slots), Arc::clone(&jobs), Arc::clone(&idle));
            move || {
                let party = shared.parties[n % shared.parties.len()].clone();
                let mut next = Some(due);
                while let Some(due) = next {
                    let outcome = match &party {
                        Some(party) => shared.visit(party, n),
                        None => Err(Error::internal("no session")),
                    };
                    shared.done(&outcome, Some(due.elapsed()));
                    slots.release();
                    idle.fetch_add(1, Ordering::SeqCst);
                    next = lock(&jobs).recv().ok();
                }
            }
        });
        match spawned {
            Ok(worker) => workers.push(worker),
            Err(e) => {
                warn!("order {i}: cannot start a customer thread: {e}");
                shared.done(&Err(Error::internal(format!("cannot start a customer thread: {e}"))), None);
                slots.release();
            }
        }
    }
    // No more orders: idle customers go home, busy ones when done.
    drop(tx);
    join_all(workers, shared, &mut progress, outstanding(&slots));
    if open.capped > 0 {
        info!("{} of {} orders were held back by the cap of {max_outstanding} outstanding", open.capped, open.due);
    }
    Ok(open)
}

/// A party of customers: those sharing one session, and what they share: the baristas on
/// shift and the menu, each followed under a watch. (Not to be confused with the baristas'
/// group, `/barista_group`.)
struct Party {
    session: Session,
    roster: Roster,
    shop: Mutex<ShopConfig>,
    /// The shop's configuration changed (or was never watched) since it was last read.
    menu_changed: Arc<AtomicBool>,
}

impl Party {
    fn new(session: Session, shop: ShopConfig) -> Party {
        let roster = Roster::new(&session);
        Party { session, roster, shop: Mutex::new(shop), menu_changed: Arc::new(AtomicBool::new(true)) }
    }

    /// The menu as it is now, as arriving customers would see it: read again (by customer `i`,
    /// for all) when it changed.
    fn menu(&self, i: usize) -> ShopConfig {
        if self.menu_changed.swap(false, Ordering::SeqCst) {
            let flag = Arc::clone(&self.menu_changed);
            match config::watch(&self.session, move || flag.store(true, Ordering::SeqCst)) {
                Ok(new) => *lock(&self.shop) = new,
                Err(e) => {
                    // Look again next time if ZooKeeper was only out of reach.
                    self.menu_changed.store(e.is_transient(), Ordering::SeqCst);
                    warn!("customer {i}: {e}; keeping the menu I have");
                }
            }
        }
        lock(&self.shop).clone()
    }
}
