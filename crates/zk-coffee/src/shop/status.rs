//! The shop at a glance, for operators: who is on shift (with the facts they registered), which
//! members are not baristas, how long each queue is and how old its oldest order, which buckets
//! are orphaned (and who adopts them), and what has been sold, per coffee and per barista.
//!
//! [`ShopStatus`] is also the JSON document (`shop-status --json`): one serde model that the
//! binary writes and whoever reads that JSON (the tests) deserialises. [`AllShops`] is every
//! shop of an ensemble at once (`shop-status --all`): the root shop (named
//! [`ROOT_SHOP`]) and every `/shops/NAME`, each with its status or
//! the error that kept it from being read, and the totals across them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config;
use crate::error::Result;
use crate::layout::{self, BaristaName, ShopName};
use crate::manager::ROOT_SHOP;
use crate::registration::Registration;
use crate::sales::{self, Counts, Sales};
use crate::session::{Session, SessionConfig};
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

/// Every shop of an ensemble at once (`shop-status --all`, `--json`): one serde model, like
/// [`ShopStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllShops {
    /// The root shop first (if it is initialised, even half), then the named shops by name.
    pub shops: Vec<NamedShop>,
    pub totals: Totals,
}

/// One shop of [`AllShops`]: its status, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedShop {
    /// `/` for the root shop, else the NAME of `/shops/NAME`.
    pub name: String,
    pub status: Option<ShopStatus>,
    /// The one-line error that kept the shop from being read (half-initialised, no rights...).
    pub error: Option<String>,
}

/// Sums across the shops that could be read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Shops listed, readable or not.
    pub shops: u32,
    /// Shops shown with an error instead of a status.
    pub unreadable: u32,
    /// Baristas on shift.
    pub on_shift: u32,
    /// Orders waiting, in the queues of baristas on shift and in orphaned buckets.
    pub waiting: u64,
    /// Served orders in all.
    pub sold: u64,
    /// Served orders per coffee.
    pub sold_per_coffee: Counts,
}

impl Totals {
    fn add(&mut self, shop: &NamedShop) {
        self.shops += 1;
        let Some(status) = &shop.status else {
            self.unreadable += 1;
            return;
        };
        self.on_shift += status.on_shift.len() as u32;
        let queues = status.on_shift.iter().map(|b| &b.queue).chain(status.orphans.iter().map(|o| &o.queue));
        self.waiting += queues.map(|q| u64::from(q.orders)).sum::<u64>();
        self.sold += status.sales.total;
        for (coffee, n) in &status.sales.per_coffee {
            *self.sold_per_coffee.entry(coffee.clone()).or_default() += n;
        }
    }
}

/// Reads every shop under `config`'s servers and chroot: the root shop there, if any of its
/// top-level nodes exists, and each child of `/shops`, each through a session of its own. A
/// shop that cannot be read (half-initialised, no rights, a bad configuration) is shown with
/// its error; only ZooKeeper being unreachable ends the view.
pub fn gather_all(config: &SessionConfig) -> Result<AllShops> {
    let root = Session::connect(config.clone())?;
    let listed = list_shops(&root).map(|(initialised, names)| (initialised.then(|| named(ROOT_SHOP, gather(&root))), names));
    root.close();
    let (root_shop, names) = listed?;
    let mut shops: Vec<NamedShop> = root_shop.into_iter().collect();
    for name in names {
        let status = ShopName::new(&name).and_then(|shop| {
            let mut config = config.clone();
            config.servers = config.servers.under(&layout::shop_root(&shop));
            let session = Session::connect(config)?;
            let status = gather(&session);
            session.close();
            status
        });
        match status {
            Err(e) if e.is_transient() => return Err(e),
            status => shops.push(named(&name, status)),
        }
    }
    let mut totals = Totals::default();
    for shop in &shops {
        totals.add(shop);
    }
    Ok(AllShops { shops, totals })
}

/// Whether the root shop has any of its top-level nodes, and the names under `/shops`, sorted.
fn list_shops(root: &Session) -> Result<(bool, Vec<String>)> {
    let mut initialised = false;
    for path in [layout::BARISTA_GROUP, layout::ORDERS] {
        initialised |= root.exists(path)?;
    }
    let mut names = root.children(layout::SHOPS)?.unwrap_or_default();
    names.sort();
    Ok((initialised, names))
}

fn named(name: &str, status: Result<ShopStatus>) -> NamedShop {
    match status {
        Ok(status) => NamedShop { name: name.to_owned(), status: Some(status), error: None },
        Err(e) => NamedShop { name: name.to_owned(), status: None, error: Some(e.to_string()) },
    }
}

impl AllShops {
    /// Plain text for people: each shop under a `== shop NAME` heading (its status as
    /// `shop-status` shows it, indented, or its error), then the totals.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for shop in &self.shops {
            let _ = writeln!(out, "== shop {}", shop.name);
            match (&shop.status, &shop.error) {
                (Some(status), _) => {
                    for line in status.text().lines() {
                        let _ = writeln!(out, "  {line}");
                    }
                }
                (None, error) => {
                    let _ = writeln!(out, "  error: {}", error.as_deref().unwrap_or("unreadable"));
                }
            }
        }
        let t = &self.totals;
        let unreadable = if t.unreadable > 0 { format!(" ({} unreadable)", t.unreadable) } else { String::new() };
        let _ = writeln!(out, "== all {} shops{unreadable}", t.shops);
        let _ = writeln!(out, "  on shift: {}", t.on_shift);
        let _ = writeln!(out, "  waiting: {}", t.waiting);
        let _ = writeln!(out, "  sold: {}", t.sold);
        let _ = write!(out, "  per coffee: {}", counts(&t.sold_per_coffee));
        out
    }

    /// One JSON object for scripts.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a status serialises: plain fields, maps keyed by strings")
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

    #[test]
    fn all_shops_add_up_and_show_their_errors() {
        let mut sales = Sales::default();
        sales.per_barista.insert("b1".into(), coffees(&[("jacob", 2), ("tesora", 1)]));
        let queue = |orders| QueueStatus { orders, oldest_ms: Some(5) };
        let busy = ShopStatus {
            menu: vec!["jacob".into()],
            on_shift: vec![
                OnShift { name: "b1".into(), facts: None, queue: queue(2) },
                OnShift { name: "b2".into(), facts: None, queue: queue(0) },
            ],
            not_baristas: vec![],
            orphans: vec![Orphan { owner: "gone".into(), queue: queue(3), adopter: None }],
            sales: sales.clone().into(),
        };
        let shops = vec![
            named(ROOT_SHOP, Ok(busy.clone())),
            named("a", Ok(busy)),
            named("half", Err(crate::Error::ShopNotInitialised { missing: "/shops/half/orders".into() })),
        ];
        let mut totals = Totals::default();
        shops.iter().for_each(|s| totals.add(s));
        assert_eq!(
            totals,
            Totals {
                shops: 3,
                unreadable: 1,
                on_shift: 4,
                waiting: 10,
                sold: 6,
                sold_per_coffee: coffees(&[("jacob", 4), ("tesora", 2)])
            }
        );
        let all = AllShops { shops, totals };
        let text = all.text();
        assert!(text.starts_with("== shop /\n  menu: jacob\n  on shift: 2\n"), "{text}");
        assert!(text.contains("== shop half\n  error: the shop is not initialised: /shops/half/orders does not exist"), "{text}");
        assert!(
            text.ends_with(
                "== all 3 shops (1 unreadable)\n  on shift: 4\n  waiting: 10\n  sold: 6\n  per coffee: jacob 4, tesora 2"
            ),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<AllShops>(&all.json()).expect("its own JSON"), all);
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
