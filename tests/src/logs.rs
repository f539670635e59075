//! The one reader of what the roles print: a customer's result line ([`Receipt`]),
//! `shop-init`'s report, and a barista's log lines about orders ([`barista_events`]).

use std::collections::BTreeMap;

use crate::*;

/// A customer's result line: `served|gave-up order=PATH coffee=NAME barista=NAME wait_ms=N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `served` or `gave-up`.
    pub outcome: String,
    /// The order's full path, e.g. `/orders/b1/coffee0000000003`.
    pub order: String,
    /// The coffee ordered.
    pub coffee: String,
    /// The barista ordered from.
    pub barista: String,
    /// How long the customer waited.
    pub wait_ms: u64,
}

impl Receipt {
    /// Parses a customer's stdout line; panics with the line if it does not have the shape.
    pub fn parse(line: &str) -> Receipt {
        Receipt::try_parse(line).unwrap_or_else(|| panic!("not a customer result line: {line:?}"))
    }

    /// Like [`Receipt::parse`], `None` for a line without the shape.
    pub fn try_parse(line: &str) -> Option<Receipt> {
        let mut words = line.split(' ');
        let outcome = words.next()?.to_owned();
        let mut fields = BTreeMap::new();
        for word in words {
            let (k, v) = word.split_once('=')?;
            fields.insert(k, v);
        }
        let keys: Vec<&str> = fields.keys().copied().collect();
        if !(outcome == "served" || outcome == "gave-up") || keys != ["barista", "coffee", "order", "wait_ms"] {
            return None;
        }
        Some(Receipt {
            outcome,
            order: fields["order"].to_owned(),
            coffee: fields["coffee"].to_owned(),
            barista: fields["barista"].to_owned(),
            wait_ms: fields["wait_ms"].parse().ok()?,
        })
    }

    /// The order's name, e.g. `coffee0000000003`.
    pub fn order_name(&self) -> &str {
        self.order.rsplit('/').next().unwrap_or_default()
    }

    /// The order's sequence number.
    pub fn sequence(&self) -> u64 {
        order_sequence(self.order_name()).unwrap_or_else(|| panic!("bad order name in {self:?}"))
    }
}

/// The paths `shop-init` reports with `word` (`created` or `found`), in its order. Panics
/// unless every stdout line is such a report and the two original roots come first.
pub fn shop_init_report(out: &Output, word: &str) -> Vec<String> {
    let paths: Vec<String> = out
        .stdout
        .iter()
        .map(|l| l.strip_prefix(&format!("{word} ")).unwrap_or_else(|| panic!("not a `{word}` line: {l:?}\n{out}")).to_owned())
        .collect();
    assert!(paths.starts_with(&["/barista_group".to_owned(), "/orders".to_owned()]), "{out}");
    paths
}

/// The sequence number of an order name `coffee` + 10 digits, `None` for anything else.
pub fn order_sequence(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("coffee")?;
    if digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// What a barista does with an order, as its log says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Brew {
    /// `making {coffee} for {order}`
    Making,
    /// `served {coffee} ({order})`
    Served,
}

/// One line of a barista's log about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaristaEvent {
    /// Making or served.
    pub kind: Brew,
    /// The coffee.
    pub coffee: String,
    /// The order's name, e.g. `coffee0000000003`.
    pub order: String,
    /// For an order from an adopted bucket (` (adopted from NAME)` at the end of the line),
    /// the bucket's owner.
    pub adopted_from: Option<String>,
}

/// What a barista logged about orders, in log order: the lines `making {coffee} for {order}`
/// and `served {coffee} ({order})`, each possibly followed by ` (adopted from {owner})`.
pub fn barista_events(stderr: &[String]) -> Vec<BaristaEvent> {
    let mut events = Vec::new();
    for line in stderr {
        // Log lines look like `[2026-01-01T00:00:00Z INFO ] making jacob for coffee0000000001`.
        let Some((_, msg)) = line.split_once("] ") else { continue };
        let (msg, adopted_from) = match msg.strip_suffix(')').and_then(|m| m.split_once(" (adopted from ")) {
            Some((m, owner)) => (m, Some(owner.to_owned())),
            None => (msg, None),
        };
        let words: Vec<&str> = msg.split(' ').collect();
        let (kind, coffee, order) = match words.as_slice() {
            ["making", coffee, "for", order] => (Brew::Making, *coffee, *order),
            ["served", coffee, order] => {
                (Brew::Served, *coffee, order.strip_prefix('(').and_then(|o| o.strip_suffix(')')).unwrap_or(""))
            }
            _ => continue,
        };
        if order_sequence(order).is_some() {
            events.push(BaristaEvent { kind, coffee: coffee.to_owned(), order: order.to_owned(), adopted_from });
        }
    }
    events
}

/// The orders a barista logged as served, in log order.
pub fn served_orders(stderr: &[String]) -> Vec<String> {
    barista_events(stderr).into_iter().filter(|e| e.kind == Brew::Served).map(|e| e.order).collect()
}

/// The order names (e.g. `coffee0000000003`) for which the log lines say `making`
/// ([`barista_events`]).
pub fn made(lines: &[String]) -> Vec<String> {
    barista_events(lines).into_iter().filter(|e| e.kind == Brew::Making).map(|e| e.order).collect()
}

/// The order names for which the log lines say `served` ([`barista_events`]), with the owner
/// when adopted.
pub fn served(lines: &[String]) -> Vec<(String, Option<String>)> {
    barista_events(lines).into_iter().filter(|e| e.kind == Brew::Served).map(|e| (e.order, e.adopted_from)).collect()
}
