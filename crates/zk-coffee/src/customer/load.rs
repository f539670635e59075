//! The load generator: many customers ordering at once from one process, and the summary of
//! what happened to their orders.
//!
//! `concurrency` customers order one coffee after another, waiting to be served each time,
//! until `orders` orders have been placed in total or `duration` has passed. By default each
//! holds its own ZooKeeper session (as separate customer processes would); `sessions` spreads
//! them over fewer, shared sessions instead (as a front end ordering for many people would),
//! whose requests then travel together. The customers of one session share its view of the
//! baristas on shift and of the menu, each kept under a watch. All the customers of the
//! process share one [`Board`] (one watch on all of `/orders`), which gives them the queue
//! lengths and tells each when its order is served, so that placing it is their only request.
//! That watch hears of every order in the shop: a load is best made by few processes with many
//! customers each, not by many load processes. Each outcome is counted; the
//! served orders' latencies (from placing the order to learning it was served) give the
//! percentiles.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use log::{info, warn};

use crate::board::Board;
use crate::config;
use crate::config::ShopConfig;
use crate::customer::{self, CustomerConfig, Outcome};
use crate::error::{Error, Result};
use crate::lock;
use crate::roster::Roster;
use crate::session::{Session, SessionConfig};
use crate::shop;
use crate::shutdown::{Shutdown, Stop};

/// How often a long run reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What load to make.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Stop after placing this many orders in total (`None`: until `duration`).
    pub orders: Option<u64>,
    /// Stop placing orders after this long (`None`: until `orders`).
    pub duration: Option<Duration>,
    /// How many customers order at the same time.
    pub concurrency: usize,
    /// How many ZooKeeper sessions they share (`None`: one each).
    pub sessions: Option<usize>,
    /// What each customer orders and how patient it is.
    pub customer: CustomerConfig,
}

/// What happened to the orders of a load run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Orders served.
    pub served: u64,
    /// Orders withdrawn when patience ran out.
    pub gave_up: u64,
    /// Orders a barista rejected.
    pub rejected: u64,
    /// Visits that found no barista on shift.
    pub no_barista: u64,
    /// Visits that found every queue full.
    pub shop_full: u64,
    /// Visits that ended in any other error.
    pub failed: u64,
    /// From the first order to the last outcome.
    pub elapsed: Duration,
    /// Latencies of the served orders, sorted.
    pub latencies: Vec<Duration>,
    /// Served orders per barista.
    pub per_barista: BTreeMap<String, u64>,
}

impl Summary {
    /// Every visit counted.
    pub fn visits(&self) -> u64 {
        self.served + self.gave_up + self.rejected + self.no_barista + self.shop_full + self.failed
    }

    /// Orders served per second over the run.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.served as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`-th percentile (0-100) of the served orders' latencies.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        Some(self.latencies[rank.clamp(1, self.latencies.len()) - 1])
    }

    /// A few lines for people.
    pub fn report(&self) -> String {
        let ms = |d: Option<Duration>| d.map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "-".into());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} visits in {:.2}s: {} served, {} gave up, {} rejected, {} no barista, {} shop full, {} failed",
            self.visits(),
            self.elapsed.as_secs_f64(),
            self.served,
            self.gave_up,
            self.rejected,
            self.no_barista,
            self.shop_full,
            self.failed
        );
        let _ = writeln!(out, "throughput: {:.1} orders served/s", self.throughput());
        let _ = writeln!(
            out,
            "latency ms: p50 {}  p95 {}  p99 {}  max {}",
            ms(self.percentile(50.0)),
            ms(self.percentile(95.0)),
            ms(self.percentile(99.0)),
            ms(self.latencies.last().copied())
        );
        let per: Vec<String> = self.per_barista.iter().map(|(b, n)| format!("{b} {n}")).collect();
        let _ = write!(out, "served per barista: {}", if per.is_empty() { "-".into() } else { per.join(", ") });
        out
    }

    /// One `key=value` line for scripts, starting with `summary`.
    pub fn line(&self) -> String {
        let ms = |d: Option<Duration>| d.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "nan".into());
        let per: Vec<String> = self.per_barista.iter().map(|(b, n)| format!("{b}:{n}")).collect();
        format!(
            "summary visits={} served={} gave_up={} rejected={} no_barista={} shop_full={} failed={} elapsed_s={:.3} \
             throughput={:.1} p50_ms={} p95_ms={} p99_ms={} max_ms={} per_barista={}",
            self.visits(),
            self.served,
            self.gave_up,
            self.rejected,
            self.no_barista,
            self.shop_full,
            self.failed,
            self.elapsed.as_secs_f64(),
            self.throughput(),
            ms(self.percentile(50.0)),
            ms(self.percentile(95.0)),
            ms(self.percentile(99.0)),
            ms(self.latencies.last().copied()),
            if per.is_empty() { "-".into() } else { per.join(",") }
        )
    }

    fn count(&mut self, outcome: &Result<Outcome>) {
        match outcome {
            Ok(Outcome::Served(receipt)) => {
                self.served += 1;
                self.latencies.push(receipt.waited);
                *self.per_barista.entry(receipt.barista.to_string()).or_default() += 1;
            }
            Ok(Outcome::GaveUp(_)) => self.gave_up += 1,
            Ok(Outcome::Rejected(..)) => self.rejected += 1,
            Err(Error::NoBarista(_)) => self.no_barista += 1,
            Err(Error::ShopFull { .. }) => self.shop_full += 1,
            Err(_) => self.failed += 1,
        }
    }

    fn merge(&mut self, other: Summary) {
        self.served += other.served;
        self.gave_up += other.gave_up;
        self.rejected += other.rejected;
        self.no_barista += other.no_barista;
        self.shop_full += other.shop_full;
        self.failed += other.failed;
        self.latencies.extend(other.latencies);
        for (barista, n) in other.per_barista {
            *self.per_barista.entry(barista).or_default() += n;
        }
    }
}

/// Runs the load and returns its summary. Fails only if the shop cannot be reached at all;
/// errors of single visits are counted. A stop request ends the run early (waiting customers
/// withdraw their orders).
pub fn run(session_config: &SessionConfig, config: &LoadConfig, shutdown: &Shutdown) -> Result<Summary> {
    if config.orders.is_none() && config.duration.is_none() {
        return Err(Error::usage("a load run needs a number of orders or a duration"));
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
    let sessions = config.sessions.unwrap_or(concurrency).clamp(1, concurrency);
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
    // One watch for the whole process, on the first session.
    let board = parties.iter().flatten().next().map(|p| Board::new(&p.session));
    let placed = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicU64::new(0));
    let total = Arc::new(Mutex::new(Summary::default()));
    let started = Instant::now();
    // When the last customer was done (the progress loop below only looks every 50 ms).
    let last_done = Arc::new(Mutex::new(started));
    let stop_at = config.duration.map(|d| started + d);
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let party = parties[i % sessions].clone();
            let (config, shutdown, board) = (config.clone(), shutdown.clone(), board.clone());
            let (placed, finished, total) = (Arc::clone(&placed), Arc::clone(&finished), Arc::clone(&total));
            let last_done = Arc::clone(&last_done);
            thread::Builder::new().name(format!("customer-{i}")).spawn(move || {
                let mut mine = Summary::default();
                let Some(party) = party else {
                    mine.failed += 1;
                    lock(&total).merge(mine);
                    return;
                };
                loop {
                    let shop = party.menu(i);
                    let budget_left = config.orders.is_none_or(|n| placed.fetch_add(1, Ordering::SeqCst) < n);
                    let time_left = stop_at.is_none_or(|t| Instant::now() < t);
                    if !budget_left || !time_left || shutdown.state() != Stop::No {
                        break;
                    }
                    let outcome = customer::order_and_wait(
                        &party.session,
                        &party.roster,
                        board.as_ref(),
                        &config.customer,
                        &shop,
                        &shutdown,
                    );
                    mine.count(&outcome);
                    finished.fetch_add(1, Ordering::SeqCst);
                }
                let mut last = lock(&last_done);
                *last = (*last).max(Instant::now());
                drop(last);
                lock(&total).merge(mine);
            })
        })
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::internal(format!("cannot start the customer threads: {e}")))?;

    let mut last_report = Instant::now();
    while workers.iter().any(|w| !w.is_finished()) {
        thread::sleep(Duration::from_millis(50));
        if last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            let done = finished.load(Ordering::SeqCst);
            let of = config.orders.map(|n| format!("/{n}")).unwrap_or_default();
            info!("progress: {done}{of} orders done, {:.1}/s", done as f64 / started.elapsed().as_secs_f64());
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = lock(&last_done).duration_since(started);
    drop(board);
    for party in parties.into_iter().flatten() {
        party.session.close();
    }
    let mut summary = std::mem::take(&mut *lock(&total));
    summary.elapsed = elapsed;
    summary.latencies.sort_unstable();
    Ok(summary)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Absence;

    fn summary(latencies_ms: &[u64]) -> Summary {
        Summary {
            served: latencies_ms.len() as u64,
            latencies: latencies_ms.iter().map(|&ms| Duration::from_millis(ms)).collect(),
            elapsed: Duration::from_secs(2),
            ..Summary::default()
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s = summary(&(1..=100).collect::<Vec<_>>());
        assert_eq!(s.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(s.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(s.percentile(100.0), Some(Duration::from_millis(100)));
        assert_eq!(summary(&[7]).percentile(1.0), Some(Duration::from_millis(7)));
        assert_eq!(summary(&[]).percentile(50.0), None);
    }

    #[test]
    fn the_line_has_every_count_and_figure() {
        let mut s = summary(&[10, 20]);
        s.gave_up = 1;
        s.per_barista.insert("b1".into(), 2);
        let line = s.line();
        for field in [
            "visits=3",
            "served=2",
            "gave_up=1",
            "failed=0",
            "throughput=1.0",
            "p50_ms=10.000",
            "max_ms=20.000",
            "per_barista=b1:2",
        ] {
            assert!(line.contains(field), "{field} missing from {line}");
        }
    }

    #[test]
    fn failed_visits_are_counted_by_kind() {
        let mut s = Summary::default();
        s.count(&Err(Error::NoBarista(Absence::AllLeft { left: 3 })));
        s.count(&Err(Error::ShopFull { max_queue: 2, baristas: 1 }));
        s.count(&Err(Error::ShopFull { max_queue: 9, baristas: 4 }));
        s.count(&Err(Error::usage("x")));
        assert_eq!((s.no_barista, s.shop_full, s.failed), (1, 2, 1));
    }
}
