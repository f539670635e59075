//! The shop at a glance, for operators: who is on shift (with the facts they registered), which
//! members are not baristas, how long each queue is and how old its oldest order, which buckets
//! are orphaned (and who adopts them), and what has been sold, per coffee and per barista.
//!
//! [`ShopStatus`] is also the JSON document (`shop-status --json`): one serde model that the
//! binary writes and whoever reads that JSON (the tests) deserialises.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config;
use crate::error::Result;
use crate::layout::{self, BaristaName};
use crate::registration::Registration;
use crate::sales::{self, Counts, Sales};
use crate::session::Session;
use crate::shop::{self, Members};

/// Everything `shop-status` shows. `shop-status --json` prints it serialised, field for field
/// and in this order (README's JSON); whoever reads that JSON deserialises it into this same
/// type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShopStatus {
    /// The coffees on offer, in menu order.
    pub menu: Vec<String>,
    pub on_shift: Vec<OnShift>,
    /// Members of the group that are not baristas: persistent nodes (a foreign client's),
    /// which never go; their buckets are orphans.
    pub not_baristas: Vec<String>,
    pub orphans: Vec<Orphan>,
    pub sales: SalesStatus,
}

/// One barista on shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnShift {
    pub name: String,
    /// What it registered (`None` for a barista that writes no facts, e.g. the original).
    pub facts: Option<Facts>,
    pub queue: QueueStatus,
}

/// The facts a barista registered that an operator wants to see (see [`Registration`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub host: String,
    pub pid: u32,
    /// The zk-coffee version it runs.
    pub version: String,
    /// When its process started, in seconds since the Unix epoch.
    pub started: u64,
    /// How long it brews one coffee, in milliseconds.
    pub brew_ms: u64,
}

impl From<&Registration> for Facts {
    fn from(r: &Registration) -> Facts {
        Facts { host: r.host.clone(), pid: r.pid, version: r.version.clone(), started: r.started, brew_ms: r.brew_ms }
    }
}

/// How full one bucket is.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueStatus {
    /// Orders waiting (including one being made).
    pub orders: u32,
    /// Age of the oldest waiting order, in milliseconds.
    pub oldest_ms: Option<u64>,
}

/// A bucket whose barista is not on shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orphan {
    pub owner: String,
    pub queue: QueueStatus,
    /// The barista adopting it (`host (pid N)`, `?` if its claim is unreadable), if any.
    pub adopter: Option<String>,
}

/// Everything sold, with its totals.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SalesStatus {
    /// Served orders in all.
    pub total: u64,
    /// Served orders per coffee, over all baristas.
    pub per_coffee: Counts,
    /// Each barista's ledger (baristas that have left included).
    pub per_barista: BTreeMap<String, Counts>,
}

impl From<Sales> for SalesStatus {
    fn from(sales: Sales) -> SalesStatus {
        SalesStatus { total: sales.total(), per_coffee: sales.per_coffee(), per_barista: sales.per_barista }
    }
}

/// Reads the shop's state. Each part is read on its own, so the picture may be a few
/// milliseconds wide.
pub fn gather(session: &Session) -> Result<ShopStatus> {
    shop::check_initialised(session)?;
    let menu = config::load_or_default(session)?.menu.coffees().iter().map(|c| c.to_string()).collect();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let mut group = Members::new(false);
    let members = group.list(session)?;
    let mut on_shift = Vec::new();
    for name in &members {
        let facts = session.data(&layout::member(name))?.and_then(|d| Registration::decode(&d)).map(|r| Facts::from(&r));
        on_shift.push(OnShift { name: name.to_string(), facts, queue: queue(session, name, now_ms)? });
    }
    let mut orphans = Vec::new();
    for bucket in session.children(layout::ORDERS)?.unwrap_or_default() {
        let Ok(owner) = BaristaName::new(&bucket) else { continue };
        if members.contains(&owner) {
            continue;
        }
        let adopter = session
            .data(&layout::claim(&owner))?
            .map(|d| Registration::decode(&d).map(|r| format!("{} (pid {})", r.host, r.pid)).unwrap_or_else(|| "?".into()));
        orphans.push(Orphan { owner: bucket, queue: queue(session, &owner, now_ms)?, adopter });
    }
    let sales = sales::read_all(session)?.into();
    Ok(ShopStatus { menu, on_shift, not_baristas: group.not_baristas(), orphans, sales })
}

fn queue(session: &Session, owner: &BaristaName, now_ms: i64) -> Result<QueueStatus> {
    let children = session.children(&layout::bucket(owner))?.unwrap_or_default();
    let (orders, _) = layout::orders_in_placement_order(&children);
    let oldest_ms = match orders.first() {
        Some(first) => session.created_ms(&layout::order(owner, *first))?.map(|c| (now_ms - c).max(0) as u64),
        None => None,
    };
    Ok(QueueStatus { orders: orders.len() as u32, oldest_ms })
}

impl ShopStatus {
    /// Plain text for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "menu: {}", self.menu.join(", "));
        let _ = writeln!(out, "on shift: {}", self.on_shift.len());
        for b in &self.on_shift {
            let facts = match &b.facts {
                Some(r) => format!("host {} pid {} v{} brew {}ms", r.host, r.pid, r.version, r.brew_ms),
                None => "no facts".to_owned(),
            };
            let _ = writeln!(out, "  {:<24} queue {:>5}{}  ({facts})", b.name, b.queue.orders, oldest(&b.queue));
        }
        if !self.not_baristas.is_empty() {
            let _ = writeln!(out, "not baristas: {}", self.not_baristas.len());
            for name in &self.not_baristas {
                let _ = writeln!(out, "  {name:<24} (persistent node: never on shift; its bucket is an orphan)");
            }
        }
        let _ = writeln!(out, "orphaned buckets: {}", self.orphans.len());
        for o in &self.orphans {
            let adopter = o.adopter.as_deref().map(|a| format!("adopted by {a}")).unwrap_or_else(|| "not adopted".into());
            let _ = writeln!(out, "  {:<24} queue {:>5}{}  ({adopter})", o.owner, o.queue.orders, oldest(&o.queue));
        }
        let _ = writeln!(out, "sold: {}", self.sales.total);
        let _ = writeln!(out, "  per coffee: {}", counts(&self.sales.per_coffee));
        let per_barista: BTreeMap<&String, u64> = self.sales.per_barista.iter().map(|(b, c)| (b, c.values().sum())).collect();
        let per: Vec<String> = per_barista.iter().map(|(b, n)| format!("{b} {n}")).collect();
        let _ = write!(out, "  per barista: {}", if per.is_empty() { "-".into() } else { per.join(", ") });
        out
    }

    /// One JSON object for scripts: this status, serialised.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a status serialises: plain fields, maps keyed by strings")
    }

    /// `NAME<TAB>ORDERS` for each barista on shift, one a line, in the order of [`Self::text`]:
    /// for shell scripts (`shop-status --on-shift`).
    pub fn on_shift_lines(&self) -> String {
        self.on_shift.iter().map(|b| format!("{}\t{}", b.name, b.queue.orders)).collect::<Vec<_>>().join("\n")
    }
}

fn oldest(q: &QueueStatus) -> String {
    q.oldest_ms.map(|ms| format!(", oldest {:.1}s", ms as f64 / 1000.0)).unwrap_or_default()
}

fn counts(c: &Counts) -> String {
    if c.is_empty() {
        return "-".into();
    }
    c.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ShopConfig;

    fn coffees(items: &[(&str, u64)]) -> Counts {
        items.iter().map(|(c, n)| (c.to_string(), *n)).collect()
    }

    #[test]
    fn an_empty_shop_renders() {
        let status = ShopStatus {
            menu: ShopConfig::default().menu.coffees().iter().map(|c| c.to_string()).collect(),
            on_shift: vec![],
            not_baristas: vec![],
            orphans: vec![],
            sales: Sales::default().into(),
        };
        assert!(status.text().contains("on shift: 0"));
        assert_eq!(
            status.json(),
            "{\"menu\":[\"tesora\",\"swisswater\",\"jacob\",\"sogood\"],\"on_shift\":[],\"not_baristas\":[],\"orphans\":[],\"sales\":{\"total\":0,\"per_coffee\":{},\"per_barista\":{}}}"
        );
        assert_eq!(status.on_shift_lines(), "");
    }

    /// The JSON keeps the shape scripts rely on (field names and order, `null` for what is
    /// unknown, strings escaped), and reads back into the same status.
    #[test]
    fn a_busy_shop_round_trips_through_its_json() {
        let facts = Facts { host: "h\"1".into(), pid: 42, version: "0.1.0".into(), started: 1_700_000_000, brew_ms: 50 };
        let mut sales = Sales::default();
        sales.per_barista.insert("b1".into(), coffees(&[("jacob", 2)]));
        sales.per_barista.insert("gone".into(), coffees(&[("jacob", 1), ("tesora", 4)]));
        let status = ShopStatus {
            menu: vec!["tesora".into(), "jacob".into()],
            on_shift: vec![
                OnShift { name: "b1".into(), facts: Some(facts), queue: QueueStatus { orders: 3, oldest_ms: Some(400) } },
                OnShift { name: "orig".into(), facts: None, queue: QueueStatus::default() },
            ],
            not_baristas: vec!["ghost".into()],
            orphans: vec![Orphan {
                owner: "ghost".into(),
                queue: QueueStatus { orders: 1, oldest_ms: Some(7) },
                adopter: Some("h1 (pid 42)".into()),
            }],
            sales: sales.into(),
        };
        let json = status.json();
        assert_eq!(
            json,
            concat!(
                r#"{"menu":["tesora","jacob"],"on_shift":[{"name":"b1","facts":{"host":"h\"1","pid":42,"version":"0.1.0","#,
                r#""started":1700000000,"brew_ms":50},"queue":{"orders":3,"oldest_ms":400}},"#,
                r#"{"name":"orig","facts":null,"queue":{"orders":0,"oldest_ms":null}}],"not_baristas":["ghost"],"#,
                r#""orphans":[{"owner":"ghost","queue":{"orders":1,"oldest_ms":7},"adopter":"h1 (pid 42)"}],"#,
                r#""sales":{"total":7,"per_coffee":{"jacob":3,"tesora":4},"per_barista":{"b1":{"jacob":2},"#,
                r#""gone":{"jacob":1,"tesora":4}}}}"#
            )
        );
        assert_eq!(serde_json::from_str::<ShopStatus>(&json).expect("its own JSON"), status);
        assert_eq!(status.on_shift_lines(), "b1\t3\norig\t0");
        assert!(
            status.text().contains("sold: 7\n  per coffee: jacob 3, tesora 4\n  per barista: b1 2, gone 5"),
            "{}",
            status.text()
        );
    }
}
