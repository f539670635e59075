//! The shop at a glance, for operators: who is on shift (with the facts they registered), which
//! members are not baristas, how long each queue is and how old its oldest order, which buckets
//! are orphaned (and who adopts them), and what has been sold, per coffee and per barista.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{self, ShopConfig};
use crate::error::Result;
use crate::layout::{self, BaristaName};
use crate::registration::Registration;
use crate::sales::{self, Counts, Sales};
use crate::session::Session;
use crate::shop::{self, Members};

/// One barista on shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnShift {
    pub name: String,
    /// What it registered (`None` for a barista that writes no facts, e.g. the original).
    pub facts: Option<Registration>,
    pub queue: Queue,
}

/// A bucket's queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Queue {
    /// Orders waiting (including one being made).
    pub orders: u32,
    /// Age of the oldest waiting order, in milliseconds.
    pub oldest_ms: Option<u64>,
}

/// A bucket whose barista is not on shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub owner: String,
    pub queue: Queue,
    /// The barista adopting it, if any.
    pub adopter: Option<String>,
}

/// Everything `shop-status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopStatus {
    pub config: ShopConfig,
    pub on_shift: Vec<OnShift>,
    /// Members of the group that are not baristas: persistent nodes (a foreign client's),
    /// which never go; their buckets are orphans.
    pub not_baristas: Vec<String>,
    pub orphans: Vec<Orphan>,
    pub sales: Sales,
}

/// Reads the shop's state. Each part is read on its own, so the picture may be a few
/// milliseconds wide.
pub fn gather(session: &Session) -> Result<ShopStatus> {
    shop::check_initialised(session)?;
    let config = config::load_or_default(session)?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let mut group = Members::new(false);
    let members = group.list(session)?;
    let mut on_shift = Vec::new();
    for name in &members {
        let facts = session.data(&layout::member(name))?.and_then(|d| Registration::decode(&d));
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
    let sales = sales::read_all(session)?;
    Ok(ShopStatus { config, on_shift, not_baristas: group.not_baristas(), orphans, sales })
}

fn queue(session: &Session, owner: &BaristaName, now_ms: i64) -> Result<Queue> {
    let children = session.children(&layout::bucket(owner))?.unwrap_or_default();
    let (orders, _) = layout::orders_in_placement_order(&children);
    let oldest_ms = match orders.first() {
        Some(first) => session.created_ms(&layout::order(owner, *first))?.map(|c| (now_ms - c).max(0) as u64),
        None => None,
    };
    Ok(Queue { orders: orders.len() as u32, oldest_ms })
}

impl ShopStatus {
    /// Plain text for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "menu: {}", self.config.menu.coffees().join(", "));
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
        let _ = writeln!(out, "sold: {}", self.sales.total());
        let _ = writeln!(out, "  per coffee: {}", counts(&self.sales.per_coffee()));
        let per_barista: BTreeMap<&String, u64> = self.sales.per_barista.iter().map(|(b, c)| (b, c.values().sum())).collect();
        let per: Vec<String> = per_barista.iter().map(|(b, n)| format!("{b} {n}")).collect();
        let _ = write!(out, "  per barista: {}", if per.is_empty() { "-".into() } else { per.join(", ") });
        out
    }

    /// One JSON object for scripts.
    pub fn json(&self) -> String {
        let queue = |q: &Queue| {
            format!(
                "{{\"orders\":{},\"oldest_ms\":{}}}",
                q.orders,
                q.oldest_ms.map(|m| m.to_string()).unwrap_or_else(|| "null".into())
            )
        };
        let on_shift: Vec<String> = self
            .on_shift
            .iter()
            .map(|b| {
                let facts = match &b.facts {
                    Some(r) => format!(
                        "{{\"host\":{},\"pid\":{},\"version\":{},\"started\":{},\"brew_ms\":{}}}",
                        json_string(&r.host),
                        r.pid,
                        json_string(&r.version),
                        r.started,
                        r.brew_ms
                    ),
                    None => "null".into(),
                };
                format!("{{\"name\":{},\"facts\":{facts},\"queue\":{}}}", json_string(&b.name), queue(&b.queue))
            })
            .collect();
        let orphans: Vec<String> = self
            .orphans
            .iter()
            .map(|o| {
                let adopter = o.adopter.as_deref().map(json_string).unwrap_or_else(|| "null".into());
                format!("{{\"owner\":{},\"queue\":{},\"adopter\":{adopter}}}", json_string(&o.owner), queue(&o.queue))
            })
            .collect();
        let per_barista: Vec<String> =
            self.sales.per_barista.iter().map(|(b, c)| format!("{}:{}", json_string(b), json_counts(c))).collect();
        let menu: Vec<String> = self.config.menu.coffees().iter().map(|c| json_string(c)).collect();
        let not_baristas: Vec<String> = self.not_baristas.iter().map(|n| json_string(n)).collect();
        format!(
            "{{\"menu\":[{}],\"on_shift\":[{}],\"not_baristas\":[{}],\"orphans\":[{}],\"sales\":{{\"total\":{},\"per_coffee\":{},\"per_barista\":{{{}}}}}}}",
            menu.join(","),
            on_shift.join(","),
            not_baristas.join(","),
            orphans.join(","),
            self.sales.total(),
            json_counts(&self.sales.per_coffee()),
            per_barista.join(",")
        )
    }
}

fn oldest(q: &Queue) -> String {
    q.oldest_ms.map(|ms| format!(", oldest {:.1}s", ms as f64 / 1000.0)).unwrap_or_default()
}

fn counts(c: &Counts) -> String {
    if c.is_empty() {
        return "-".into();
    }
    c.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
}

fn json_counts(c: &Counts) -> String {
    let items: Vec<String> = c.iter().map(|(k, n)| format!("{}:{n}", json_string(k))).collect();
    format!("{{{}}}", items.join(","))
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn an_empty_shop_renders() {
        let status = ShopStatus {
            config: ShopConfig::default(),
            on_shift: vec![],
            not_baristas: vec![],
            orphans: vec![],
            sales: Sales::default(),
        };
        assert!(status.text().contains("on shift: 0"));
        assert_eq!(
            status.json(),
            "{\"menu\":[\"tesora\",\"swisswater\",\"jacob\",\"sogood\"],\"on_shift\":[],\"not_baristas\":[],\"orphans\":[],\"sales\":{\"total\":0,\"per_coffee\":{},\"per_barista\":{}}}"
        );
    }
}
