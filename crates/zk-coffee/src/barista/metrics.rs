//! The barista's metrics: what it served, rejected and adopted, its sessions, its queue, and
//! how long its coffees and its serving transactions were.
//!
//! [`Metrics`] owns the handles; the parts of the shift count into them where they learn
//! each fact (`serving`: served, found gone, rejected, brewed, batches; `adoption`: orphans
//! claimed; the shift loop: the queue). Counters and gauges are atomics, so a barista that
//! serves no metrics pays next to nothing for them. The session's figures (sessions
//! established, connected now) are read from the [`Session`] at each scrape. A barista is
//! one endpoint, so no series carries a `barista` label (Prometheus adds `instance`), and
//! none an order or customer id.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::session::Session;

/// Upper bounds of the brew-time buckets, in seconds: around the default brew time of 2 s,
/// down to the near-zero of `--brew-time 0`.
const BREW_BUCKETS: [f64; 12] = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0];

/// The barista's metric handles. Clones share them.
#[derive(Clone, Debug)]
pub struct Metrics {
    served: Counter,
    rejected: Counter,
    withdrawn_while_brewing: Counter,
    orphans_adopted: Counter,
    queue_length: Gauge,
    brew_seconds: Histogram,
    batch_size: Histogram,
    session: SessionFigures,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            served: Counter::default(),
            rejected: Counter::default(),
            withdrawn_while_brewing: Counter::default(),
            orphans_adopted: Counter::default(),
            queue_length: Gauge::default(),
            brew_seconds: Histogram::new(BREW_BUCKETS),
            // 1, 2, 4 ... 64: a serving transaction holds at most `serving::MAX_BATCH` (64).
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 7)),
            session: SessionFigures::default(),
        }
    }
}

impl Metrics {
    /// Handles counting from zero.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Registers every barista metric in `registry` (the caller adds `build_info`).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "zk_coffee_barista_orders_served",
            "Orders this barista served (deleted and counted in its ledger)",
            self.served.clone(),
        );
        r.register(
            "zk_coffee_barista_orders_rejected",
            "Orders this barista rejected as unreadable or not on the menu",
            self.rejected.clone(),
        );
        r.register(
            "zk_coffee_barista_withdrawn_while_brewing",
            "Orders found gone when the barista came to serve the coffee it made (withdrawn by their customer, or served by their returning owner)",
            self.withdrawn_while_brewing.clone(),
        );
        r.register(
            "zk_coffee_barista_orphans_adopted",
            "Orphaned buckets this barista claimed to serve",
            self.orphans_adopted.clone(),
        );
        r.register(
            "zk_coffee_barista_queue_length",
            "Orders waiting in the buckets this barista serves (its own and the adopted ones)",
            self.queue_length.clone(),
        );
        r.register_with_unit(
            "zk_coffee_barista_brew",
            "How long each coffee took to make",
            Unit::Seconds,
            self.brew_seconds.clone(),
        );
        r.register(
            "zk_coffee_barista_batch_size",
            "Orders served per serving transaction (one delete of each and one ledger write)",
            self.batch_size.clone(),
        );
        r.register_collector(Box::new(self.session.clone()));
    }

    /// Reads the session's figures from `session` from now on.
    pub(super) fn follow(&self, session: &Session) {
        // A second shift on another session would be a new process: keep the first.
        let _ = self.session.0.set(session.clone());
    }

    /// `n` orders were served in one transaction.
    pub(super) fn served(&self, n: usize) {
        if n > 0 {
            self.served.inc_by(n as u64);
            self.batch_size.observe(n as f64);
        }
    }

    /// An order made was found gone when it was to be served.
    pub(super) fn found_gone(&self) {
        self.withdrawn_while_brewing.inc();
    }

    /// An order was rejected.
    pub(super) fn rejected(&self) {
        self.rejected.inc();
    }

    /// An orphaned bucket was claimed.
    pub(super) fn adopted(&self) {
        self.orphans_adopted.inc();
    }

    /// A coffee took `took` to make.
    pub(super) fn brewed(&self, took: Duration) {
        self.brew_seconds.observe(took.as_secs_f64());
    }

    /// `n` orders wait in the buckets served.
    pub(super) fn queue(&self, n: usize) {
        self.queue_length.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// `zk_coffee_barista_sessions_total` and `zk_coffee_barista_connected`, read from the
/// session at each scrape (0 before the first connection).
#[derive(Clone, Default)]
struct SessionFigures(Arc<OnceLock<Session>>);

impl fmt::Debug for SessionFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionFigures").field("following", &self.0.get().is_some()).finish()
    }
}

impl Collector for SessionFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let session = self.0.get();
        let sessions = ConstCounter::new(session.map_or(0, Session::sessions_opened));
        sessions.encode(encoder.encode_descriptor(
            "zk_coffee_barista_sessions",
            "ZooKeeper sessions established (the first, and one after each lost session).",
            None,
            sessions.metric_type(),
        )?)?;
        let connected = ConstGauge::new(i64::from(session.is_some_and(Session::is_connected)));
        connected.encode(encoder.encode_descriptor(
            "zk_coffee_barista_connected",
            "1 while connected to a ZooKeeper server, else 0.",
            None,
            connected.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_there_from_the_start_and_counts() {
        let metrics = Metrics::new();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let page = crate::metrics::encode(&registry);
        for line in [
            "zk_coffee_barista_orders_served_total 0",
            "zk_coffee_barista_orders_rejected_total 0",
            "zk_coffee_barista_withdrawn_while_brewing_total 0",
            "zk_coffee_barista_orphans_adopted_total 0",
            "zk_coffee_barista_sessions_total 0",
            "zk_coffee_barista_connected 0",
            "zk_coffee_barista_queue_length 0",
            "zk_coffee_barista_brew_seconds_count 0",
            "zk_coffee_barista_batch_size_count 0",
        ] {
            assert!(page.contains(&format!("\n{line}\n")), "{line} missing from:\n{page}");
        }
        metrics.served(3);
        metrics.served(0);
        metrics.served(1);
        metrics.brewed(Duration::from_millis(20));
        metrics.queue(7);
        let page = crate::metrics::encode(&registry);
        for line in [
            "zk_coffee_barista_orders_served_total 4",
            "zk_coffee_barista_batch_size_count 2",
            "zk_coffee_barista_batch_size_sum 4.0",
            "zk_coffee_barista_batch_size_bucket{le=\"1.0\"} 1",
            "zk_coffee_barista_batch_size_bucket{le=\"4.0\"} 2",
            "zk_coffee_barista_brew_seconds_bucket{le=\"0.01\"} 0",
            "zk_coffee_barista_brew_seconds_bucket{le=\"0.05\"} 1",
            "zk_coffee_barista_queue_length 7",
        ] {
            assert!(page.contains(&format!("\n{line}\n")), "{line} missing from:\n{page}");
        }
    }
}
