//! What the manager tells people: one [`Event`] per thing that happened to a shop, written as
//! one line in its log and one JSON object per line on its event stream.
//!
//! Every event has the time the manager learnt of it, the shop (the root shop is
//! [`ROOT_SHOP`]), the barista where there is one, and the facts known, flattened into the
//! JSON object. Its [`Event::key`] names the episode from facts read off the tree (a barista's
//! name and the session that held its membership, the order that waited too long), so that
//! several managers, each following the shop on its own, give one episode the same key: the
//! alert records under `/zk-coffee/alerts` are keyed by it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

/// How the root shop (no `--shop`) is named in events, metrics and the API: no named shop can
/// be called that (a shop's name is one path segment).
pub const ROOT_SHOP: &str = "/";

/// The kinds of event, by their names on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A barista came on shift (its membership node appeared).
    BaristaOnShift,
    /// A barista left on purpose: it marked its membership node as leaving, then deleted it.
    BaristaLeft,
    /// A barista's membership vanished without that mark: a crash, a kill, an expired session,
    /// a lost host. The facts say how many orders it stranded.
    BaristaLost,
    /// Another barista claimed an orphaned bucket.
    OrphanAdopted,
    /// An orphaned bucket is empty again.
    OrphanDrained,
    /// A barista rejected an order (the reason is in the facts).
    OrderRejected,
    /// A queue's oldest order has waited longer than `--alert-wait`; once per episode.
    QueueSlow,
    /// The queue of a `queue-slow` episode is fine again.
    QueueOk,
    /// Orders are waiting and nobody is on shift.
    ShopUnstaffed,
    /// A barista is on shift again in a shop that was unstaffed.
    ShopStaffed,
    /// A shop appeared while the manager was running.
    ShopCreated,
    /// The shop's menu changed.
    MenuChanged,
    /// The operator closed the shop (`shop-admin close`; the reason is in the facts).
    ShopClosed,
    /// The operator opened the shop again.
    ShopOpened,
    /// The operator sent a barista home (`shop-admin send-home`).
    BaristaSentHome,
    /// A ZooKeeper server stopped answering, or the ensemble lost a member.
    ZookeeperDegraded,
    /// Every ZooKeeper server answers again.
    ZookeeperOk,
}

impl Kind {
    /// Every kind, in the order above.
    pub const ALL: &'static [Kind] = &[
        Kind::BaristaOnShift,
        Kind::BaristaLeft,
        Kind::BaristaLost,
        Kind::OrphanAdopted,
        Kind::OrphanDrained,
        Kind::OrderRejected,
        Kind::QueueSlow,
        Kind::QueueOk,
        Kind::ShopUnstaffed,
        Kind::ShopStaffed,
        Kind::ShopCreated,
        Kind::MenuChanged,
        Kind::ShopClosed,
        Kind::ShopOpened,
        Kind::BaristaSentHome,
        Kind::ZookeeperDegraded,
        Kind::ZookeeperOk,
    ];

    /// The kinds that run the alert hook unless `--alert-on` says otherwise.
    pub const ALERTING: &'static [Kind] = &[Kind::BaristaLost, Kind::QueueSlow, Kind::ShopUnstaffed];

    /// The kind's name on the wire (`barista-lost`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::BaristaOnShift => "barista-on-shift",
            Kind::BaristaLeft => "barista-left",
            Kind::BaristaLost => "barista-lost",
            Kind::OrphanAdopted => "orphan-adopted",
            Kind::OrphanDrained => "orphan-drained",
            Kind::OrderRejected => "order-rejected",
            Kind::QueueSlow => "queue-slow",
            Kind::QueueOk => "queue-ok",
            Kind::ShopUnstaffed => "shop-unstaffed",
            Kind::ShopStaffed => "shop-staffed",
            Kind::ShopCreated => "shop-created",
            Kind::MenuChanged => "menu-changed",
            Kind::ShopClosed => "shop-closed",
            Kind::ShopOpened => "shop-opened",
            Kind::BaristaSentHome => "barista-sent-home",
            Kind::ZookeeperDegraded => "zookeeper-degraded",
            Kind::ZookeeperOk => "zookeeper-ok",
        }
    }

    /// The kind named `name` (as `--alert-on` lists them).
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One thing that happened to a shop.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When the manager learnt of it, RFC 3339 in UTC with milliseconds.
    pub time: String,
    pub event: Kind,
    pub shop: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barista: Option<String>,
    /// The episode this event belongs to, the same for every manager (see the module's text).
    pub key: String,
    /// What else is known (`stranded`, `reason`, `by`, `oldest_wait_seconds`...).
    #[serde(flatten)]
    pub facts: BTreeMap<String, Value>,
}

impl Event {
    /// An event of `kind` in `shop`, now, with no facts yet.
    pub fn new(kind: Kind, shop: &str, barista: Option<&str>, key: impl Into<String>) -> Event {
        Event {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            event: kind,
            shop: shop.to_owned(),
            barista: barista.map(str::to_owned),
            key: key.into(),
            facts: BTreeMap::new(),
        }
    }

    /// Adds a fact.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Event {
        self.facts.insert(name.to_owned(), value.into());
        self
    }

    /// The event as one line of JSON (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"event\":\"{}\",\"error\":\"{e}\"}}", self.event))
    }
}

impl fmt::Display for Event {
    /// The log line: `barista-lost shop=/ barista=b1 stranded=3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} shop={}", self.event, self.shop)?;
        if let Some(barista) = &self.barista {
            write!(f, " barista={barista}")?;
        }
        for (name, value) in &self.facts {
            match value {
                Value::String(s) => write!(f, " {name}={s:?}")?,
                other => write!(f, " {name}={other}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(*kind));
            let json = serde_json::to_string(kind).expect("serialise");
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
        assert_eq!(Kind::from_name("barista-gone"), None);
    }

    #[test]
    fn an_event_is_one_flat_json_object() {
        let event = Event::new(Kind::BaristaLost, ROOT_SHOP, Some("b1"), "barista-lost:b1:0x1").with("stranded", 3);
        let value: Value = serde_json::from_str(&event.to_json()).expect("json");
        assert_eq!(value["event"], "barista-lost");
        assert_eq!(value["shop"], "/");
        assert_eq!(value["barista"], "b1");
        assert_eq!(value["stranded"], 3);
        assert!(value["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{value}");
        assert_eq!(event.to_string(), "barista-lost shop=/ barista=b1 stranded=3");
    }
}
