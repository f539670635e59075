//! The sales ledger: what each barista has served, per coffee, counted exactly once per served
//! order.
//!
//! Each barista keeps its own ledger node, `/zk-coffee/sales/{barista}`, whose data is
//! `coffee=count` lines. Serving an order is one ZooKeeper transaction: delete the order and
//! write the ledger at the version last read. Either both happen or neither, so an order is
//! counted exactly once whoever serves it (its barista or an adopter), however many baristas
//! serve at once, and across crashes and restarts (a barista restarted under its name carries
//! on with its ledger). An order withdrawn by its customer is never counted: deleted, it is
//! gone; marked withdrawn (a secured shop, see [`crate::order`]), it is no longer at the
//! version the barista read, and the transaction deletes an order only at that version.

use std::collections::BTreeMap;

use log::{debug, warn};

use crate::error::{Error, Result};
use crate::layout::{self, BaristaName};
use crate::session::{Session, Transaction};

/// How often serving retries when its ledger moved under it.
const MAX_TRIES: usize = 5;

/// Served orders per coffee.
pub type Counts = BTreeMap<String, u64>;

/// One barista's ledger, as last read or written.
#[derive(Debug, Clone)]
pub struct Ledger {
    path: String,
    counts: Counts,
    version: i32,
}

/// What serving an order came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sale {
    /// The order was deleted (served) and counted.
    Served,
    /// The order was gone: withdrawn by its customer, or served by another barista (who
    /// counted it).
    Gone,
    /// The order changed since it was read (its customer marked it withdrawn): neither
    /// served nor counted; read it again.
    Changed,
}

/// An order to serve: its path, its coffee, and the version it was read at (`None`: delete
/// it whatever its version).
pub type ToServe = (String, String, Option<i32>);

impl Ledger {
    /// Opens `barista`'s ledger, creating it empty if needed.
    pub fn open(session: &Session, barista: &BaristaName) -> Result<Ledger> {
        let path = layout::ledger(barista);
        session.ensure_persistent(&path, b"")?;
        let mut ledger = Ledger { path, counts: Counts::new(), version: 0 };
        ledger.reload(session)?;
        Ok(ledger)
    }

    /// What this ledger has counted.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    fn reload(&mut self, session: &Session) -> Result<()> {
        match session.read(&self.path)? {
            Some(node) => {
                self.counts = decode(&node.data).unwrap_or_else(|e| {
                    warn!("{}: {e}; counting on from zero", self.path);
                    Counts::new()
                });
                self.version = node.version;
            }
            None => {
                // Someone removed it: write back what we know.
                warn!("{} vanished; writing it again", self.path);
                session.ensure_persistent(&self.path, &encode(&self.counts))?;
                self.version = 0;
            }
        }
        Ok(())
    }

    /// Serves `orders` (each a path and its coffee) by deleting them and counting them, all in
    /// one transaction. An order found gone (withdrawn by its customer, or served by another
    /// barista, who counted it) is left out and the others are served. Returns what became of
    /// each order, in the same order.
    pub fn serve(&mut self, session: &Session, orders: &[(String, String)]) -> Result<Vec<Sale>> {
        let orders: Vec<ToServe> = orders.iter().map(|(path, coffee)| (path.clone(), coffee.clone(), None)).collect();
        self.serve_as_read(session, &orders)
    }

    /// [`Ledger::serve`], deleting each order only at the version it was read at: one that
    /// changed since is left out as [`Sale::Changed`].
    pub fn serve_as_read(&mut self, session: &Session, orders: &[ToServe]) -> Result<Vec<Sale>> {
        let mut sales = vec![Sale::Gone; orders.len()];
        // Indices of the orders still to serve; each missing order found shrinks it.
        let mut left: Vec<usize> = (0..orders.len()).collect();
        let mut moved = 0;
        while !left.is_empty() {
            let mut next = self.counts.clone();
            for &i in &left {
                *next.entry(orders[i].1.clone()).or_default() += 1;
            }
            let paths: Vec<(String, Option<i32>)> = left.iter().map(|&i| (orders[i].0.clone(), orders[i].2)).collect();
            let expected = self.version;
            let outcome = session.delete_and_set(&paths, &self.path, &encode(&next), expected)?;
            if let Transaction::Done { version } = outcome {
                self.counts = next;
                self.version = version;
                left.iter().for_each(|&i| sales[i] = Sale::Served);
                return Ok(sales);
            }
            self.reload(session)?;
            // A transaction that committed just before a lost connection looks like this on
            // the retry: the ledger one version on, holding our new counts. (Sound because only
            // this barista writes its ledger: its name is held by one process at a time.)
            if self.version == expected + 1 && self.counts == next {
                left.iter().for_each(|&i| sales[i] = Sale::Served);
                return Ok(sales);
            }
            match outcome {
                Transaction::DeleteMissing { index } => {
                    left.remove(index);
                }
                Transaction::DeleteMoved { index } => {
                    sales[left.remove(index)] = Sale::Changed;
                }
                _ => {
                    moved += 1;
                    if moved >= MAX_TRIES {
                        return Err(Error::ZooKeeper {
                            op: "count the sale of".into(),
                            path: paths[0].0.clone(),
                            code: format!("{} kept changing under me", self.path),
                        });
                    }
                    debug!("{} moved under me; serving again", self.path);
                }
            }
        }
        Ok(sales)
    }
}

/// Everything sold, per barista and per coffee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sales {
    /// Each barista's ledger (baristas that have left included).
    pub per_barista: BTreeMap<String, Counts>,
}

impl Sales {
    /// Served orders per coffee, over all baristas.
    pub fn per_coffee(&self) -> Counts {
        let mut total = Counts::new();
        for counts in self.per_barista.values() {
            for (coffee, n) in counts {
                *total.entry(coffee.clone()).or_default() += n;
            }
        }
        total
    }

    /// Served orders in all.
    pub fn total(&self) -> u64 {
        self.per_barista.values().flat_map(|c| c.values()).sum()
    }
}

/// Reads every ledger of the shop. A ledger that cannot be read, or whose name no barista
/// can have (a foreign client's node), is reported and skipped.
pub fn read_all(session: &Session) -> Result<Sales> {
    let mut sales = Sales::default();
    for child in session.children(layout::SALES)?.unwrap_or_default() {
        let barista = match BaristaName::new(&child) {
            Ok(barista) => barista,
            Err(e) => {
                warn!("{}: skipping {child:?}, no barista's ledger: {e}", layout::SALES);
                continue;
            }
        };
        let path = layout::ledger(&barista);
        let Some(data) = session.data(&path)? else { continue };
        match decode(&data) {
            Ok(counts) => {
                sales.per_barista.insert(child, counts);
            }
            Err(e) => warn!("{path}: {e}"),
        }
    }
    Ok(sales)
}

/// The ledger's data: `coffee=count` lines, in coffee order.
pub fn encode(counts: &Counts) -> Vec<u8> {
    counts.iter().map(|(coffee, n)| format!("{coffee}={n}\n")).collect::<String>().into_bytes()
}

/// Parses a ledger's data.
pub fn decode(data: &[u8]) -> std::result::Result<Counts, String> {
    let text = std::str::from_utf8(data).map_err(|_| "the ledger is not UTF-8".to_owned())?;
    let mut counts = Counts::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (coffee, n) = line.split_once('=').ok_or_else(|| format!("ledger line {line:?} is not coffee=count"))?;
        let n = n.trim().parse().map_err(|_| format!("ledger line {line:?} has no count"))?;
        counts.insert(coffee.trim().to_owned(), n);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledgers_round_trip() {
        let counts: Counts = [("jacob".to_owned(), 3), ("tesora".to_owned(), 12)].into();
        assert_eq!(decode(&encode(&counts)), Ok(counts));
        assert_eq!(decode(b""), Ok(Counts::new()));
        assert!(decode(b"jacob").is_err());
        assert!(decode(b"jacob=x").is_err());
    }

    #[test]
    fn totals_add_up_across_baristas() {
        let mut sales = Sales::default();
        sales.per_barista.insert("a".into(), [("jacob".to_owned(), 2)].into());
        sales.per_barista.insert("b".into(), [("jacob".to_owned(), 1), ("tesora".to_owned(), 4)].into());
        assert_eq!(sales.total(), 7);
        assert_eq!(sales.per_coffee(), [("jacob".to_owned(), 3), ("tesora".to_owned(), 4)].into());
    }
}
