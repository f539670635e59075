//! The poller's latest readings as Prometheus gauges, encoded on every scrape.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::lock;

use super::mntr::*;
use super::Inner;

/// The latest readings as Prometheus gauges, each labelled `ensemble` and `server` (register
/// it in a registry without a prefix: the names carry theirs):
///
/// - `zk_coffee_zookeeper_up`: 1 while the server answers (also when `mntr` is not
///   whitelisted), else 0; every server of the connect string, from the first round on.
/// - `zk_coffee_zookeeper_mode{mode}`: 1 for its current mode, 0 for the other three; all 0
///   while it is down, not serving or unreadable.
/// - From servers that answer `mntr` only: `zk_coffee_zookeeper_{avg,min,max}_latency_seconds`,
///   `..._outstanding_requests`, `..._znodes`, `..._approximate_data_size_bytes`,
///   `..._alive_connections`, and from a leader `..._synced_followers`.
#[derive(Clone)]
pub struct ZookeeperCollector {
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for ZookeeperCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZookeeperCollector").field("ensemble", &self.inner.ensemble).finish()
    }
}

/// One gauge family: its name, help, unit and the value each server's statistics give.
type Family = (&'static str, &'static str, Option<Unit>, fn(&Stats) -> Option<f64>);

const FAMILIES: &[Family] = &[
    ("zk_coffee_zookeeper_avg_latency", "Average request latency the server measured.", Some(Unit::Seconds), |s| {
        Some(s.avg_latency_seconds)
    }),
    ("zk_coffee_zookeeper_min_latency", "Smallest request latency the server measured.", Some(Unit::Seconds), |s| {
        Some(s.min_latency_seconds)
    }),
    ("zk_coffee_zookeeper_max_latency", "Largest request latency the server measured.", Some(Unit::Seconds), |s| {
        Some(s.max_latency_seconds)
    }),
    ("zk_coffee_zookeeper_outstanding_requests", "Requests queued on the server, not yet answered.", None, |s| {
        Some(s.outstanding_requests as f64)
    }),
    ("zk_coffee_zookeeper_znodes", "Znodes in the server's tree.", None, |s| Some(s.znodes as f64)),
    (
        "zk_coffee_zookeeper_approximate_data_size",
        "The data of all znodes, as the server approximates it.",
        Some(Unit::Bytes),
        |s| Some(s.approximate_data_size_bytes as f64),
    ),
    ("zk_coffee_zookeeper_alive_connections", "Client connections open on the server.", None, |s| {
        Some(s.alive_connections as f64)
    }),
    ("zk_coffee_zookeeper_synced_followers", "A leader's voting followers in sync.", None, |s| {
        s.synced_followers.map(|n| n as f64)
    }),
];

impl Collector for ZookeeperCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::result::Result<(), fmt::Error> {
        let readings = lock(&self.inner.shared).readings.clone();
        let ensemble = self.inner.ensemble.as_str();
        let read: Vec<(&str, &Answer)> =
            self.inner.servers.iter().filter_map(|s| readings.get(s).map(|r| (s.as_str(), &r.answer))).collect();
        {
            let mut up = encoder.encode_descriptor(
                "zk_coffee_zookeeper_up",
                "Whether the server answers (1) or not (0).",
                None,
                MetricType::Gauge,
            )?;
            for (server, answer) in &read {
                ConstGauge::new(i64::from(answer.is_up()))
                    .encode(up.encode_family(&[("ensemble", ensemble), ("server", server)])?)?;
            }
        }
        {
            let mut mode = encoder.encode_descriptor(
                "zk_coffee_zookeeper_mode",
                "The server's mode: 1 for the current one (all 0 while it is down or unreadable).",
                None,
                MetricType::Gauge,
            )?;
            for (server, answer) in &read {
                let current = match answer {
                    Answer::Stats(stats) => Some(stats.mode),
                    _ => None,
                };
                for m in Mode::ALL {
                    let labels = [("ensemble", ensemble), ("server", server), ("mode", m.name())];
                    ConstGauge::new(i64::from(current == Some(m))).encode(mode.encode_family(&labels)?)?;
                }
            }
        }
        for (name, help, unit, value) in FAMILIES {
            let values: Vec<(&str, f64)> = read
                .iter()
                .filter_map(|(server, answer)| match answer {
                    Answer::Stats(stats) => value(stats).map(|v| (*server, v)),
                    _ => None,
                })
                .collect();
            if values.is_empty() {
                continue;
            }
            let mut family = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for (server, v) in values {
                ConstGauge::new(v).encode(family.encode_family(&[("ensemble", ensemble), ("server", server)])?)?;
            }
        }
        Ok(())
    }
}
