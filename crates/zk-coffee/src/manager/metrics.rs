//! The manager's metrics, by Prometheus' conventions: prefix `zk_coffee_`, base units, counters
//! ending `_total`, and no order or customer ids as labels. Every shop-level series carries
//! `ensemble` and `shop` (the root shop is [`super::ROOT_SHOP`]).
//!
//! Two kinds: what happens once and is counted as it happens ([`Recorded`]: events, and the
//! wait from an order's creation to its deletion as this manager saw both), and what the
//! pictures hold, encoded afresh on every scrape by [`ShopSeries`] (baristas on shift, orders
//! waiting and the oldest one's time, served counts straight from the sales ledgers, so each
//! served order counts exactly once whoever watches, rejections and withdrawals, and whether
//! this manager leads the shop's election). A barista gone for `--forget-after` loses its
//! series.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::event::Event;
use super::Shared;

/// Label pairs, in order.
pub type Labels = Vec<(String, String)>;

/// The upper bounds of the wait histogram's buckets, in seconds: from a few milliseconds (a
/// barista with nothing to do) to a minute (a customer's patience is 10 s by default).
pub const WAIT_BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0];

fn new_wait_histogram() -> Histogram {
    Histogram::new(WAIT_BUCKETS)
}

/// What is counted as it happens.
#[derive(Debug, Clone)]
pub struct Recorded {
    ensemble: String,
    events: Family<Labels, Counter>,
    waits: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Recorded {
    /// Counters for the ensemble named `ensemble`.
    pub fn new(ensemble: &str) -> Recorded {
        Recorded {
            ensemble: ensemble.to_owned(),
            events: Family::default(),
            waits: Family::new_with_constructor(new_wait_histogram as fn() -> Histogram),
        }
    }

    fn shop_labels(&self, shop: &str) -> Labels {
        vec![("ensemble".to_owned(), self.ensemble.clone()), ("shop".to_owned(), shop.to_owned())]
    }

    /// Counts an event.
    pub fn count_event(&self, event: &Event) {
        let mut labels = self.shop_labels(&event.shop);
        labels.push(("event".to_owned(), event.event.name().to_owned()));
        self.events.get_or_create(&labels).inc();
    }

    /// Records the wait of an order served in `shop`.
    pub fn observe_wait(&self, shop: &str, wait: Duration) {
        self.waits.get_or_create(&self.shop_labels(shop)).observe(wait.as_secs_f64());
    }

    /// Registers these counters with `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("zk_coffee_events", "Events the manager reported, by kind", self.events.clone());
        registry.register_with_unit(
            "zk_coffee_order_wait",
            "Orders served, by their wait from creation to deletion as this manager saw both (withdrawals not included)",
            Unit::Seconds,
            self.waits.clone(),
        );
    }
}

/// The series encoded from the pictures on every scrape.
#[derive(Debug)]
pub struct ShopSeries(pub Arc<Shared>);

/// Registers everything the manager serves at `/metrics` (the `process_*` metrics and
/// `zk_coffee_build_info` are the HTTP side's).
pub fn register(registry: &mut Registry, shared: &Arc<Shared>) {
    shared.metrics.register(registry);
    registry.register_collector(Box::new(ShopSeries(Arc::clone(shared))));
}

struct Series {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    samples: Vec<(Labels, f64)>,
}

impl Series {
    fn new(name: &'static str, help: &'static str, unit: Option<Unit>, kind: MetricType) -> Series {
        Series { name, help, unit, kind, samples: Vec::new() }
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        for (labels, value) in &self.samples {
            match self.kind {
                MetricType::Counter => ConstCounter::new(*value as u64).encode(metric.encode_family(labels)?)?,
                _ => ConstGauge::new(*value).encode(metric.encode_family(labels)?)?,
            }
        }
        Ok(())
    }
}

impl Collector for ShopSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let shared = &self.0;
        let mut on_shift = Series::new("zk_coffee_baristas_on_shift", "Baristas on shift", None, MetricType::Gauge);
        let mut waiting = Series::new(
            "zk_coffee_orders_waiting",
            "Orders waiting in each bucket (one being made included)",
            None,
            MetricType::Gauge,
        );
        let mut oldest = Series::new(
            "zk_coffee_oldest_order_timestamp",
            "When the oldest order waiting in each bucket was placed, in seconds since the Unix epoch (absent while the bucket is empty)",
            Some(Unit::Seconds),
            MetricType::Gauge,
        );
        let mut served = Series::new(
            "zk_coffee_orders_served",
            "Orders served, from the sales ledgers (each order counted once, by the barista that served it)",
            None,
            MetricType::Counter,
        );
        let mut rejected = Series::new(
            "zk_coffee_orders_rejected",
            "Orders a barista rejected, since this manager started",
            None,
            MetricType::Counter,
        );
        let mut withdrawn = Series::new(
            "zk_coffee_orders_withdrawn",
            "Orders deleted without being served (their customers gave up), since this manager started",
            None,
            MetricType::Counter,
        );
        let mut leader = Series::new(
            "zk_coffee_manager_leader",
            "1 where this manager leads the shop's manager election (runs its alert hooks), else 0",
            None,
            MetricType::Gauge,
        );
        shared.with_shops(|shops| {
            for (label, followed) in shops {
                let picture = &followed.picture;
                let base = vec![("ensemble".to_owned(), shared.ensemble.clone()), ("shop".to_owned(), label.clone())];
                let with = |name: &str, value: &str| {
                    let mut labels = base.clone();
                    labels.push((name.to_owned(), value.to_owned()));
                    labels
                };
                on_shift.samples.push((base.clone(), picture.on_shift().count() as f64));
                for (bucket, orders) in &picture.buckets {
                    if !picture.remembers(bucket) {
                        continue;
                    }
                    waiting.samples.push((with("barista", bucket), orders.len() as f64));
                    if let Some(first) = orders.values().map(|o| o.placed).min() {
                        let at = first.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
                        oldest.samples.push((with("barista", bucket), at));
                    }
                }
                for (barista, counts) in &picture.ledgers {
                    if !picture.remembers(barista) {
                        continue;
                    }
                    for (coffee, n) in counts {
                        let mut labels = with("barista", barista);
                        labels.push(("coffee".to_owned(), coffee.clone()));
                        served.samples.push((labels, *n as f64));
                    }
                }
                rejected.samples.push((base.clone(), picture.rejected as f64));
                withdrawn.samples.push((base.clone(), picture.withdrawn as f64));
                leader.samples.push((base, if followed.leader { 1.0 } else { 0.0 }));
            }
        });
        for series in [on_shift, waiting, oldest, served, rejected, withdrawn, leader] {
            series.encode(&mut encoder)?;
        }
        Ok(())
    }
}
