//! Keeping a [`Picture`] current: one full read of a shop, and the reads that each change a
//! tree watch reports calls for.
//!
//! The manager follows every shop on one session without a chroot, so every path here is
//! the shop's path put under its chroot by [`layout::in_shop`]. A watch event carries only a
//! path; what it means is decided by where the node sits ([`layout::kind_of`]), and the few
//! that need facts (a member that came, a claim, a ledger, the menu, an order whose data
//! changed) are read at once. The order placed and the order deleted need no read: the
//! manager's own clock times them.
//!
//! A full read (at start, and after a reconnect or a new session, when events may have been
//! missed) is applied through the same methods of the picture as the events, so whatever
//! differs from what the manager knew is reported just the same; the caller marks those
//! events as inferred.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, warn};

use crate::config::ShopConfig;
use crate::error::Result;
use crate::layout::{self, NodeKind, OrderName, ShopName, UnderOrders};
use crate::order::REJECTED_PREFIX;
use crate::registration::Registration;
use crate::sales;
use crate::session::{NodeData, Session};

use super::picture::{is_marked_leaving, Member, Order, Picture};

/// How many nodes one multi-read asks for at most (a reply must fit ZooKeeper's 1 MiB buffer).
const READ_CHUNK: usize = 500;

/// What a watch event says happened to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Changed,
    Deleted,
}

/// Reads `paths` in chunks, the answers in the same order (`None`: gone, or unreadable, which
/// is logged).
fn read_all(session: &Session, paths: &[String]) -> Result<Vec<Option<NodeData>>> {
    let mut nodes = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(READ_CHUNK) {
        for (answer, path) in session.read_many(chunk)?.into_iter().zip(chunk) {
            nodes.push(answer.unwrap_or_else(|e| {
                warn!("cannot read {path}: {e}");
                None
            }));
        }
    }
    Ok(nodes)
}

fn wall_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

fn member_of(node: &NodeData) -> Member {
    Member {
        registration: Registration::decode(&node.data),
        session: node.ephemeral_owner,
        leaving: is_marked_leaving(&node.data),
    }
}

fn rejection(data: &[u8]) -> Option<String> {
    data.strip_prefix(REJECTED_PREFIX.as_bytes()).map(|reason| String::from_utf8_lossy(reason).into_owned())
}

fn menu_of(data: Option<&[u8]>) -> Vec<String> {
    let config = match data.map(ShopConfig::decode) {
        Some(Ok(config)) => config,
        Some(Err(e)) => {
            warn!("{e}; showing the default menu");
            ShopConfig::default()
        }
        None => ShopConfig::default(),
    };
    config.menu.coffees().to_vec()
}

/// Reads all of `shop` and applies what differs from `picture` (see the module's text).
/// `first`: the first reading, which says nothing and takes the ledgers as they are.
pub fn read_shop(session: &Session, shop: Option<&ShopName>, picture: &mut Picture, first: bool) -> Result<()> {
    let at = |path: &str| layout::in_shop(shop, path);
    let now = Instant::now();
    let quiet = first;

    // The orders first: a barista found gone stranded what its bucket holds now.
    let buckets = session.children(&at(layout::ORDERS))?.unwrap_or_default();
    let mut found: BTreeMap<String, BTreeMap<String, NodeData>> = BTreeMap::new();
    for bucket in &buckets {
        let children = session.children(&at(&layout::child(layout::ORDERS, bucket)))?.unwrap_or_default();
        let (orders, _foreign) = layout::orders_in_placement_order(&children);
        let names: Vec<String> = orders.iter().map(OrderName::to_string).collect();
        let paths: Vec<String> = names.iter().map(|n| at(&layout::child(&layout::child(layout::ORDERS, bucket), n))).collect();
        let nodes = read_all(session, &paths)?;
        let entry = found.entry(bucket.clone()).or_default();
        for (name, node) in names.into_iter().zip(nodes) {
            if let Some(node) = node {
                entry.insert(name, node);
            }
        }
    }
    let known: Vec<(String, Vec<String>)> =
        picture.buckets.iter().map(|(b, orders)| (b.clone(), orders.keys().cloned().collect())).collect();
    for (bucket, orders) in known {
        for child in orders {
            if !found.get(&bucket).is_some_and(|f| f.contains_key(&child)) {
                picture.order_deleted(&bucket, &child, now, quiet);
            }
        }
        if !found.contains_key(&bucket) {
            picture.bucket_went(&bucket);
        }
    }
    for (bucket, orders) in &found {
        picture.bucket_came(bucket);
        for (child, node) in orders {
            let order = Order { placed: wall_ms(node.mtime_ms), seen: None, rejected: false };
            picture.order_placed(bucket, child, order);
            picture.order_changed(bucket, child, rejection(&node.data), quiet);
        }
    }

    // Who is on shift.
    let names = session.children(&at(layout::BARISTA_GROUP))?.unwrap_or_default();
    let paths: Vec<String> = names.iter().map(|n| at(&layout::child(layout::BARISTA_GROUP, n))).collect();
    let mut members = BTreeMap::new();
    for (name, node) in names.into_iter().zip(read_all(session, &paths)?) {
        if let Some(node) = node {
            members.insert(name, member_of(&node));
        }
    }
    let gone: Vec<String> = picture.members.keys().filter(|n| !members.contains_key(*n)).cloned().collect();
    for name in gone {
        picture.member_went(&name, quiet);
    }
    for (name, member) in members {
        picture.member_came(&name, member, quiet);
    }

    // The claims.
    let owners = session.children(&at(layout::CLAIMS))?.unwrap_or_default();
    let paths: Vec<String> = owners.iter().map(|o| at(&layout::child(layout::CLAIMS, o))).collect();
    let mut claims = BTreeMap::new();
    for (owner, node) in owners.into_iter().zip(read_all(session, &paths)?) {
        if let Some(node) = node {
            claims.insert(owner, node.ephemeral_owner);
        }
    }
    let released: Vec<String> = picture.claims.keys().filter(|o| !claims.contains_key(*o)).cloned().collect();
    for owner in released {
        picture.claim_went(&owner);
    }
    for (owner, holder) in claims {
        picture.claim_came(&owner, holder, quiet);
    }

    // The ledgers.
    let baristas = session.children(&at(layout::SALES))?.unwrap_or_default();
    let paths: Vec<String> = baristas.iter().map(|b| at(&layout::child(layout::SALES, b))).collect();
    let mut seen = BTreeSet::new();
    for (barista, node) in baristas.into_iter().zip(read_all(session, &paths)?) {
        let Some(node) = node else { continue };
        match sales::decode(&node.data) {
            Ok(counts) => {
                picture.ledger_read(&barista, counts, first);
                seen.insert(barista);
            }
            Err(e) => warn!("{}: {e}", at(&layout::child(layout::SALES, &barista))),
        }
    }
    let removed: Vec<String> = picture.ledgers.keys().filter(|b| !seen.contains(*b)).cloned().collect();
    for barista in removed {
        picture.ledger_went(&barista);
    }

    let config = session.data(&at(layout::CONFIG))?;
    picture.menu_read(menu_of(config.as_deref()), quiet);
    debug!("read shop {}: {} members, {} buckets", picture.shop, picture.members.len(), picture.buckets.len());
    Ok(())
}

/// Applies what a watch said happened at `path` (the shop's own path, not under its chroot).
pub fn apply(session: &Session, shop: Option<&ShopName>, picture: &mut Picture, path: &str, change: Change) -> Result<()> {
    let at = layout::in_shop(shop, path);
    let name = layout::last_segment(path);
    let now = Instant::now();
    match (layout::kind_of(path), change) {
        (NodeKind::Member, Change::Deleted) => picture.member_went(name, false),
        (NodeKind::Member, Change::Created) => {
            if let Some(node) = session.read(&at)? {
                picture.member_came(name, member_of(&node), false);
            }
        }
        (NodeKind::Member, Change::Changed) => match session.read(&at)? {
            // Gone already: only a leaving barista writes its node and then deletes it.
            None => picture.member_marked(name),
            Some(node) if is_marked_leaving(&node.data) => picture.member_marked(name),
            Some(node) => picture.member_came(name, member_of(&node), false),
        },
        (NodeKind::Bucket, Change::Created) => picture.bucket_came(name),
        (NodeKind::Bucket, Change::Deleted) => picture.bucket_went(name),
        (NodeKind::Order, change) => {
            let UnderOrders::Child { barista, child } = layout::under_orders(path) else { return Ok(()) };
            if OrderName::parse(child).is_none() {
                return Ok(());
            }
            match change {
                Change::Created => {
                    let order = Order { placed: SystemTime::now(), seen: Some(now), rejected: false };
                    picture.order_placed(barista, child, order);
                }
                Change::Changed => {
                    if let Some(node) = session.read(&at)? {
                        picture.order_changed(barista, child, rejection(&node.data), false);
                    }
                }
                Change::Deleted => picture.order_deleted(barista, child, now, false),
            }
        }
        (NodeKind::Claim, Change::Deleted) => picture.claim_went(name),
        (NodeKind::Claim, _) => {
            if let Some(node) = session.read(&at)? {
                picture.claim_came(name, node.ephemeral_owner, false);
            }
        }
        (NodeKind::Ledger, Change::Deleted) => picture.ledger_went(name),
        (NodeKind::Ledger, _) => {
            if let Some(node) = session.read(&at)? {
                match sales::decode(&node.data) {
                    Ok(counts) => picture.ledger_read(name, counts, false),
                    Err(e) => warn!("{at}: {e}"),
                }
            }
        }
        (NodeKind::Settings, _) if path == layout::CONFIG => {
            let data = session.data(&at)?;
            picture.menu_read(menu_of(data.as_deref()), false);
        }
        _ => {}
    }
    Ok(())
}
