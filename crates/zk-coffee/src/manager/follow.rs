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
//! A ledger's change is not read at once: the loop collects the ledgers a batch of events
//! changed and reads each once, all together ([`read_ledgers`]): under load a barista writes
//! its ledger with every transaction, and one read per write would double the manager's
//! requests for nothing (the counts only grow).
//!
//! Reading and applying are apart ([`fetch`] then [`Fact::apply`], [`read_shop`] then
//! [`Snapshot::apply`]): the reads wait on ZooKeeper, the applying happens under the lock the
//! metrics and the API read the pictures through, which is so never held across a network
//! wait. A full read (at start, and after a reconnect or a new session, when events may have
//! been missed) is applied through the same methods of the picture as the events, so whatever
//! differs from what the manager knew is reported just the same; the caller marks those
//! events as inferred.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, warn};

use crate::config::ShopConfig;
use crate::error::Result;
use crate::layout::{self, NodeKind, OrderName, ShopName, UnderOrders};
use crate::order::REJECTED_PREFIX;
use crate::registration::Registration;
use crate::sales;
use crate::session::{NodeData, Session};
use crate::shop::layout_version;

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

fn closed_of(node: Option<NodeData>) -> Option<(String, i64)> {
    node.map(|n| (String::from_utf8_lossy(&n.data).into_owned(), n.mtime_ms))
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

/// What a watch event came to, with the facts read for it.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    MemberCame(String, Member),
    MemberMarked(String),
    MemberWent(String),
    BucketCame(String),
    BucketWent(String),
    OrderPlaced {
        bucket: String,
        child: String,
    },
    OrderChanged {
        bucket: String,
        child: String,
        rejection: Option<String>,
    },
    OrderDeleted {
        bucket: String,
        child: String,
    },
    ClaimCame(String, i64),
    ClaimWent(String),
    LedgerRead(String, sales::Counts),
    /// A ledger was created or written; [`read_ledgers`] reads it.
    LedgerChanged(String),
    LedgerWent(String),
    Menu(Vec<String>),
    /// The closed sign as it is now: its reason and when it went up.
    Closed(Option<(String, i64)>),
    /// A send-home request for a barista, for its session.
    SentHome(String, String),
    /// Nothing the picture keeps (a node that is gone by now, or not one of the shop's).
    Nothing,
}

/// Reads what a watch said happened at `path` (the shop's own path, not under its chroot)
/// calls for.
pub fn fetch(session: &Session, shop: Option<&ShopName>, path: &str, change: Change) -> Result<Fact> {
    let at = layout::in_shop(shop, path);
    let name = layout::last_segment(path).to_owned();
    let fact = match (layout::kind_of(path), change) {
        (NodeKind::Member, Change::Deleted) => Fact::MemberWent(name),
        (NodeKind::Member, Change::Created) => match session.read(&at)? {
            Some(node) => Fact::MemberCame(name, member_of(&node)),
            None => Fact::Nothing,
        },
        (NodeKind::Member, Change::Changed) => match session.read(&at)? {
            // Gone already: only a leaving barista writes its node and then deletes it.
            None => Fact::MemberMarked(name),
            Some(node) if is_marked_leaving(&node.data) => Fact::MemberMarked(name),
            Some(node) => Fact::MemberCame(name, member_of(&node)),
        },
        (NodeKind::Bucket, Change::Created) => Fact::BucketCame(name),
        (NodeKind::Bucket, Change::Deleted) => Fact::BucketWent(name),
        (NodeKind::Order, change) => {
            let UnderOrders::Child { barista, child } = layout::under_orders(path) else { return Ok(Fact::Nothing) };
            if OrderName::parse(child).is_none() {
                return Ok(Fact::Nothing);
            }
            let (bucket, child) = (barista.to_owned(), child.to_owned());
            match change {
                Change::Created => Fact::OrderPlaced { bucket, child },
                Change::Deleted => Fact::OrderDeleted { bucket, child },
                Change::Changed => match session.read(&at)? {
                    Some(node) => Fact::OrderChanged { bucket, child, rejection: rejection(&node.data) },
                    None => Fact::Nothing,
                },
            }
        }
        (NodeKind::Claim, Change::Deleted) => Fact::ClaimWent(name),
        (NodeKind::Claim, _) => match session.read(&at)? {
            Some(node) => Fact::ClaimCame(name, node.ephemeral_owner),
            None => Fact::Nothing,
        },
        (NodeKind::Ledger, Change::Deleted) => Fact::LedgerWent(name),
        // Not read here: the loop reads the ledgers a batch changed together (read_ledgers).
        (NodeKind::Ledger, _) => Fact::LedgerChanged(name),
        (NodeKind::Settings, _) if path == layout::CONFIG => Fact::Menu(menu_of(session.data(&at)?.as_deref())),
        (NodeKind::Request, _) if path == layout::CLOSED => Fact::Closed(closed_of(session.read(&at)?)),
        (NodeKind::Request, Change::Created) => match (name.strip_prefix(layout::HOME_PREFIX), session.data(&at)?) {
            (Some(barista), Some(data)) => Fact::SentHome(barista.to_owned(), String::from_utf8_lossy(&data).into_owned()),
            _ => Fact::Nothing,
        },
        _ => Fact::Nothing,
    };
    Ok(fact)
}

impl Fact {
    /// Applies the fact to the picture, at `now` (when the event was heard).
    pub fn apply(self, picture: &mut Picture, now: Instant) {
        match self {
            Fact::MemberCame(name, member) => picture.member_came(&name, member, false),
            Fact::MemberMarked(name) => picture.member_marked(&name),
            Fact::MemberWent(name) => picture.member_went(&name, false),
            Fact::BucketCame(bucket) => picture.bucket_came(&bucket),
            Fact::BucketWent(bucket) => picture.bucket_went(&bucket),
            Fact::OrderPlaced { bucket, child } => {
                picture.order_placed(&bucket, &child, Order { placed: SystemTime::now(), seen: Some(now), rejected: false })
            }
            Fact::OrderChanged { bucket, child, rejection } => picture.order_changed(&bucket, &child, rejection, false),
            Fact::OrderDeleted { bucket, child } => picture.order_deleted(&bucket, &child, now, false),
            Fact::ClaimCame(owner, session) => picture.claim_came(&owner, session, false),
            Fact::ClaimWent(owner) => picture.claim_went(&owner),
            Fact::LedgerRead(barista, counts) => picture.ledger_read(&barista, counts, false),
            // Nothing known yet: the counts come with the read.
            Fact::LedgerChanged(_) => {}
            Fact::LedgerWent(barista) => picture.ledger_went(&barista),
            Fact::Menu(menu) => picture.menu_read(menu, false),
            Fact::Closed(closed) => picture.closed_read(closed, false),
            Fact::SentHome(barista, session) => picture.sent_home(&barista, &session),
            Fact::Nothing => {}
        }
    }
}

/// Reads the ledgers of `baristas` in `shop` together (one multi-read per chunk): after a
/// batch of watch events, each changed ledger is read once however often it changed.
pub fn read_ledgers(session: &Session, shop: Option<&ShopName>, baristas: &[String]) -> Result<Vec<Fact>> {
    let paths: Vec<String> = baristas.iter().map(|b| layout::in_shop(shop, &layout::child(layout::SALES, b))).collect();
    let mut facts = Vec::with_capacity(baristas.len());
    for ((barista, node), path) in baristas.iter().zip(read_all(session, &paths)?).zip(&paths) {
        match node.map(|n| sales::decode(&n.data)) {
            Some(Ok(counts)) => facts.push(Fact::LedgerRead(barista.clone(), counts)),
            Some(Err(e)) => warn!("{path}: {e}"),
            None => {}
        }
    }
    Ok(facts)
}

/// Everything one full read of a shop found.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Orders per bucket, with the node each was read from.
    pub buckets: BTreeMap<String, BTreeMap<String, NodeData>>,
    pub members: BTreeMap<String, Member>,
    pub claims: BTreeMap<String, i64>,
    pub ledgers: BTreeMap<String, sales::Counts>,
    pub menu: Vec<String>,
    pub closed: Option<(String, i64)>,
}

/// Reads all of `shop`.
pub fn read_shop(session: &Session, shop: Option<&ShopName>) -> Result<Snapshot> {
    // At the start and after every new session (the full reads): a shop in a newer layout is
    // not misread.
    layout_version::check(session, shop)?;
    let at = |path: &str| layout::in_shop(shop, path);
    let mut snapshot = Snapshot::default();
    for bucket in session.children(&at(layout::ORDERS))?.unwrap_or_default() {
        let bucket_path = layout::child(layout::ORDERS, &bucket);
        let children = session.children(&at(&bucket_path))?.unwrap_or_default();
        let (orders, _foreign) = layout::orders_in_placement_order(&children);
        let names: Vec<String> = orders.iter().map(OrderName::to_string).collect();
        let paths: Vec<String> = names.iter().map(|n| at(&layout::child(&bucket_path, n))).collect();
        let found: BTreeMap<String, NodeData> =
            names.into_iter().zip(read_all(session, &paths)?).filter_map(|(n, node)| Some((n, node?))).collect();
        snapshot.buckets.insert(bucket, found);
    }
    let names = session.children(&at(layout::BARISTA_GROUP))?.unwrap_or_default();
    let paths: Vec<String> = names.iter().map(|n| at(&layout::child(layout::BARISTA_GROUP, n))).collect();
    for (name, node) in names.into_iter().zip(read_all(session, &paths)?) {
        if let Some(node) = node {
            snapshot.members.insert(name, member_of(&node));
        }
    }
    let owners = session.children(&at(layout::CLAIMS))?.unwrap_or_default();
    let paths: Vec<String> = owners.iter().map(|o| at(&layout::child(layout::CLAIMS, o))).collect();
    for (owner, node) in owners.into_iter().zip(read_all(session, &paths)?) {
        if let Some(node) = node {
            snapshot.claims.insert(owner, node.ephemeral_owner);
        }
    }
    let baristas = session.children(&at(layout::SALES))?.unwrap_or_default();
    for fact in read_ledgers(session, shop, &baristas)? {
        if let Fact::LedgerRead(barista, counts) = fact {
            snapshot.ledgers.insert(barista, counts);
        }
    }
    snapshot.menu = menu_of(session.data(&at(layout::CONFIG))?.as_deref());
    snapshot.closed = closed_of(session.read(&at(layout::CLOSED))?);
    Ok(snapshot)
}

impl Snapshot {
    /// Applies what differs from `picture` (see the module's text). `first`: the first
    /// reading, which says nothing and takes the ledgers as they are.
    pub fn apply(self, picture: &mut Picture, first: bool) {
        let now = Instant::now();
        let quiet = first;
        // The orders first: a barista found gone stranded what its bucket holds now.
        let known: Vec<(String, Vec<String>)> =
            picture.buckets.iter().map(|(b, orders)| (b.clone(), orders.keys().cloned().collect())).collect();
        for (bucket, orders) in known {
            let found = self.buckets.get(&bucket);
            for child in orders {
                if !found.is_some_and(|f| f.contains_key(&child)) {
                    picture.order_deleted(&bucket, &child, now, quiet);
                }
            }
            if found.is_none() {
                picture.bucket_went(&bucket);
            }
        }
        for (bucket, orders) in &self.buckets {
            picture.bucket_came(bucket);
            for (child, node) in orders {
                let order = Order { placed: wall_ms(node.mtime_ms), seen: None, rejected: false };
                picture.order_placed(bucket, child, order);
                picture.order_changed(bucket, child, rejection(&node.data), quiet);
            }
        }
        let gone: Vec<String> = picture.members.keys().filter(|n| !self.members.contains_key(*n)).cloned().collect();
        for name in gone {
            picture.member_went(&name, quiet);
        }
        for (name, member) in self.members {
            picture.member_came(&name, member, quiet);
        }
        let released: Vec<String> = picture.claims.keys().filter(|o| !self.claims.contains_key(*o)).cloned().collect();
        for owner in released {
            picture.claim_went(&owner);
        }
        for (owner, holder) in self.claims {
            picture.claim_came(&owner, holder, quiet);
        }
        let removed: Vec<String> = picture.ledgers.keys().filter(|b| !self.ledgers.contains_key(*b)).cloned().collect();
        for barista in removed {
            picture.ledger_went(&barista);
        }
        for (barista, counts) in self.ledgers {
            if first && !picture.members.contains_key(&barista) {
                // Gone before we came: its series are forgotten in time, like a leaver's.
                picture.gone_since.entry(barista.clone()).or_insert(now);
            }
            picture.ledger_read(&barista, counts, first);
        }
        picture.menu_read(self.menu, quiet);
        picture.closed_read(self.closed, quiet);
        debug!("read shop {}: {} members, {} buckets", picture.shop, picture.members.len(), picture.buckets.len());
    }
}
