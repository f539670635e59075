//! One shop as the manager sees it: who is on shift, every bucket's orders, the claims, the
//! ledgers and the menu, and the episodes it is in the middle of (a slow queue, nobody on
//! shift). It is plain data: [`super::follow`] reads the tree and calls the methods here, which
//! change the picture and say what happened as [`Event`]s. Nothing here talks to ZooKeeper,
//! so the rules are unit-tested on their own.
//!
//! **Left or lost.** A barista that leaves on purpose marks its membership node (it writes
//! its registration again with a `leaving=1` line, [`crate::registration::LEAVING_MARK`]) before deleting it; one whose node
//! vanishes unmarked was lost (a crash, a kill, an expired session, a lost host). An empty or
//! full bucket alone says nothing: a barista that leaves may hand over a full queue, a killed
//! one may have had nothing to do.
//!
//! **Served or withdrawn.** Every served order is counted in its server's ledger in the same
//! transaction that deletes it, and ZooKeeper reports the deletions before the ledger's
//! change. So an order's deletion waits in `pending` until a ledger grows: each unit of growth
//! of barista B's ledger takes the oldest pending deletion of B's own bucket, then of any
//! bucket (B may be adopting), and that order was served (its wait, creation to deletion as
//! this manager saw both, goes to the histogram); growth beyond the deletions heard so far (a
//! ledger read after the event that caused it may show later transactions too) is kept as
//! credit for the next deletions. A deletion no ledger counts within
//! [`WITHDRAWAL_GRACE`] was a withdrawal by its customer (or a serving by a client that keeps
//! no ledger, such as the original program's barista).
//!
//! (Over 400 lines with its unit tests, which are a quarter of it: the rules of one shop's
//! picture read best side by side, each method a rule; split, the episodes and the counts
//! would reach into each other's state.)

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

pub use crate::registration::is_marked_leaving;
use crate::registration::Registration;
use crate::sales::Counts;

use super::event::{Event, Kind};

/// How long a deleted order waits for a ledger to count it before it counts as withdrawn.
pub const WITHDRAWAL_GRACE: Duration = Duration::from_secs(3);

/// One member of `/barista_group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// What it registered (`None`: a barista that writes no facts, such as the original).
    pub registration: Option<Registration>,
    /// The session holding its ephemeral node; 0 for a persistent node (no barista).
    pub session: i64,
    /// It marked its node: it is leaving on purpose.
    pub leaving: bool,
}

impl Member {
    /// A persistent member never goes and serves nobody: it is no barista.
    pub fn is_barista(&self) -> bool {
        self.session != 0
    }
}

/// One order waiting in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// When it was placed: the manager's clock when it heard of it, or the server's when it
    /// found it in a full read.
    pub placed: SystemTime,
    /// When this manager heard of its creation (`None`: found by a full read), the start of
    /// its wait in the histogram.
    pub seen: Option<Instant>,
    /// A barista rejected it.
    pub rejected: bool,
}

/// A deleted order no ledger has counted yet.
#[derive(Debug, Clone)]
struct Deletion {
    bucket: String,
    at: Instant,
    /// Creation to deletion, if this manager saw both.
    wait: Option<Duration>,
}

/// Everything the tree says about one shop (see the module's text), and the counters the
/// manager keeps for it.
#[derive(Debug, Clone, Default)]
pub struct Picture {
    /// The shop's name in events ([`super::ROOT_SHOP`] for the root shop).
    pub shop: String,
    pub menu: Vec<String>,
    /// The operator's closed sign: its reason and when it was put up (ms since the epoch,
    /// the server's clock: the episode's key); `None` while the shop is open.
    pub closed: Option<(String, i64)>,
    pub members: BTreeMap<String, Member>,
    /// Every bucket (by its barista) and its orders, by the child's name (which sorts in
    /// placement order).
    pub buckets: BTreeMap<String, BTreeMap<String, Order>>,
    /// The claims on orphaned buckets: owner → the claiming session.
    pub claims: BTreeMap<String, i64>,
    /// Each barista's ledger, as last read.
    pub ledgers: BTreeMap<String, Counts>,
    /// Orders rejected, and deletions counted as withdrawals, since the manager started.
    pub rejected: u64,
    pub withdrawn: u64,
    /// Waits of orders served since the caller last took them (for the histogram).
    pub served_waits: Vec<Duration>,
    /// When each barista not on shift was last on shift or busy (for forgetting its series).
    pub gone_since: BTreeMap<String, Instant>,
    /// Baristas gone long enough that their series are no longer shown.
    forgotten: BTreeSet<String>,
    pending: VecDeque<Deletion>,
    /// Served orders a ledger counted before their deletion was heard (a ledger read after the
    /// event that caused it may already show later transactions).
    served_ahead: u64,
    /// Buckets left with orders by a lost barista or one that handed its queue over, until
    /// they are empty again or their owner is back.
    orphaned: BTreeMap<String, ()>,
    /// Buckets in a `queue-slow` episode, with the episode's key.
    slow: BTreeMap<String, String>,
    /// The key of the `shop-unstaffed` episode, if one is open.
    unstaffed: Option<String>,
    /// Events said since the caller last took them.
    events: Vec<Event>,
}

impl Picture {
    /// An empty picture of `shop`.
    pub fn new(shop: &str) -> Picture {
        Picture { shop: shop.to_owned(), ..Picture::default() }
    }

    /// The events said since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    fn say(&mut self, kind: Kind, barista: Option<&str>, key: String, facts: Vec<(&str, serde_json::Value)>) {
        let mut event = Event::new(kind, &self.shop, barista, key);
        for (name, value) in facts {
            event = event.with(name, value);
        }
        self.events.push(event);
    }

    /// The baristas on shift (ephemeral members), by name.
    pub fn on_shift(&self) -> impl Iterator<Item = (&String, &Member)> {
        self.members.iter().filter(|(_, m)| m.is_barista())
    }

    /// Orders waiting in `bucket` (rejected ones included: they wait for their customer).
    pub fn waiting(&self, bucket: &str) -> usize {
        self.buckets.get(bucket).map_or(0, BTreeMap::len)
    }

    /// The member holding `session`, by name.
    fn holder_of(&self, session: i64) -> Option<&str> {
        self.members.iter().find(|(_, m)| m.session == session && session != 0).map(|(name, _)| name.as_str())
    }

    // ---- members ----

    /// A member's node appeared (or was found by a full read with other facts than known).
    pub fn member_came(&mut self, name: &str, member: Member, quiet: bool) {
        if let Some(known) = self.members.get_mut(name) {
            if known.session == member.session {
                // The same node, read again: new facts, or its leaving mark.
                let leaving = known.leaving || member.leaving;
                *known = Member { leaving, ..member };
                return;
            }
        }
        if self.members.contains_key(name) {
            // Another session under the same name: the old one went first.
            self.member_went(name, quiet);
        }
        let is_barista = member.is_barista();
        let facts = match &member.registration {
            Some(r) => vec![("host", r.host.clone().into()), ("pid", r.pid.into()), ("version", r.version.clone().into())],
            None => Vec::new(),
        };
        self.members.insert(name.to_owned(), member.clone());
        if !is_barista {
            return;
        }
        self.gone_since.remove(name);
        self.forgotten.remove(name);
        self.orphaned.remove(name);
        if !quiet {
            self.say(Kind::BaristaOnShift, Some(name), format!("barista-on-shift:{name}:{:x}", member.session), facts);
        }
    }

    /// A member marked its node as leaving.
    pub fn member_marked(&mut self, name: &str) {
        if let Some(member) = self.members.get_mut(name) {
            member.leaving = true;
        }
    }

    /// A member's node vanished: `barista-left` if it was marked, else `barista-lost`.
    pub fn member_went(&mut self, name: &str, quiet: bool) {
        let Some(member) = self.members.remove(name) else { return };
        if !member.is_barista() {
            return;
        }
        self.gone_since.insert(name.to_owned(), Instant::now());
        let queued = self.waiting(name);
        if queued > 0 {
            self.orphaned.insert(name.to_owned(), ());
        }
        if quiet {
            return;
        }
        let key = format!("{}:{name}:{:x}", if member.leaving { "barista-left" } else { "barista-lost" }, member.session);
        if member.leaving {
            self.say(Kind::BaristaLeft, Some(name), key, vec![("handed_over", queued.into())]);
        } else {
            self.say(Kind::BaristaLost, Some(name), key, vec![("stranded", queued.into())]);
        }
    }

    // ---- buckets and orders ----

    /// A bucket appeared.
    pub fn bucket_came(&mut self, bucket: &str) {
        self.buckets.entry(bucket.to_owned()).or_default();
    }

    /// A bucket vanished (its orders went before it).
    pub fn bucket_went(&mut self, bucket: &str) {
        self.buckets.remove(bucket);
        self.orphaned.remove(bucket);
    }

    /// An order was placed (or found by a full read).
    pub fn order_placed(&mut self, bucket: &str, child: &str, order: Order) {
        let orders = self.buckets.entry(bucket.to_owned()).or_default();
        if !orders.contains_key(child) {
            orders.insert(child.to_owned(), order);
        }
    }

    /// An order's data changed: `rejected` says whether it now holds a rejection, and why.
    pub fn order_changed(&mut self, bucket: &str, child: &str, rejection: Option<String>, quiet: bool) {
        let Some(reason) = rejection else { return };
        let Some(order) = self.buckets.get_mut(bucket).and_then(|orders| orders.get_mut(child)) else { return };
        if order.rejected {
            return;
        }
        order.rejected = true;
        self.rejected += 1;
        if !quiet {
            let key = format!("order-rejected:{bucket}/{child}");
            self.say(Kind::OrderRejected, Some(bucket), key, vec![("order", child.into()), ("reason", reason.into())]);
        }
    }

    /// An order was deleted: served or withdrawn, as the ledgers will tell.
    pub fn order_deleted(&mut self, bucket: &str, child: &str, now: Instant, quiet: bool) {
        let Some(order) = self.buckets.get_mut(bucket).and_then(|orders| orders.remove(child)) else { return };
        if !order.rejected {
            let wait = order.seen.map(|seen| now.saturating_duration_since(seen));
            if self.served_ahead > 0 {
                // A ledger already counted it.
                self.served_ahead -= 1;
                self.served_waits.extend(wait);
            } else {
                self.pending.push_back(Deletion { bucket: bucket.to_owned(), at: now, wait });
            }
        }
        if self.waiting(bucket) == 0 && self.orphaned.remove(bucket).is_some() && !quiet {
            let by = self.claims.get(bucket).and_then(|s| self.holder_of(*s)).map(str::to_owned);
            let mut facts = vec![("last_order", child.into())];
            if let Some(by) = by {
                facts.push(("by", by.into()));
            }
            self.say(Kind::OrphanDrained, Some(bucket), format!("orphan-drained:{bucket}/{child}"), facts);
        }
    }

    // ---- claims ----

    /// A claim on `owner`'s bucket appeared, held by `session`. Only a barista on shift
    /// claiming another's bucket, whose owner is not on shift, adopts it: a barista claims its
    /// own bucket while joining (before its membership node exists) and while leaving.
    pub fn claim_came(&mut self, owner: &str, session: i64, quiet: bool) {
        if self.claims.insert(owner.to_owned(), session) == Some(session) {
            return;
        }
        let Some(by) = self.holder_of(session).map(str::to_owned) else { return };
        if by == owner || self.members.get(owner).is_some_and(Member::is_barista) || quiet {
            return;
        }
        let facts = vec![("orders", self.waiting(owner).into()), ("by", by.into())];
        self.say(Kind::OrphanAdopted, Some(owner), format!("orphan-adopted:{owner}:{session:x}"), facts);
    }

    /// A claim went.
    pub fn claim_went(&mut self, owner: &str) {
        self.claims.remove(owner);
    }

    // ---- ledgers and menu ----

    /// A ledger was read: its growth since the last reading counts served orders.
    pub fn ledger_read(&mut self, barista: &str, counts: Counts, baseline: bool) {
        let before: u64 = self.ledgers.get(barista).map_or(0, |c| c.values().sum());
        let after: u64 = counts.values().sum();
        let known = self.ledgers.contains_key(barista);
        self.ledgers.insert(barista.to_owned(), counts);
        if baseline && !known {
            return;
        }
        for _ in 0..after.saturating_sub(before) {
            let own = self.pending.iter().position(|d| d.bucket == barista);
            let Some(at) = own.or(if self.pending.is_empty() { None } else { Some(0) }) else {
                // A reading newer than the deletions heard so far (the ledger was read after a
                // later transaction): the next deletions were served.
                self.served_ahead += 1;
                continue;
            };
            if let Some(deletion) = self.pending.remove(at) {
                if let Some(wait) = deletion.wait {
                    self.served_waits.push(wait);
                }
            }
        }
        if after > before {
            // Busy: served (perhaps while adopting) since it went.
            self.gone_since.entry(barista.to_owned()).and_modify(|t| *t = Instant::now());
            if self.forgotten.remove(barista) {
                self.gone_since.insert(barista.to_owned(), Instant::now());
            }
        }
    }

    /// A ledger was removed.
    pub fn ledger_went(&mut self, barista: &str) {
        self.ledgers.remove(barista);
    }

    /// The menu was read.
    pub fn menu_read(&mut self, menu: Vec<String>, quiet: bool) {
        if menu == self.menu {
            return;
        }
        let before = std::mem::replace(&mut self.menu, menu.clone());
        if !quiet {
            let key = format!("menu-changed:{}", menu.join(","));
            self.say(Kind::MenuChanged, None, key, vec![("menu", menu.into()), ("before", before.into())]);
        }
    }

    /// The closed sign as read now (`None`: open).
    pub fn closed_read(&mut self, closed: Option<(String, i64)>, quiet: bool) {
        if closed == self.closed {
            return;
        }
        let before = std::mem::replace(&mut self.closed, closed.clone());
        if quiet {
            return;
        }
        match (closed, before) {
            (Some((reason, since)), _) => {
                self.say(Kind::ShopClosed, None, format!("shop-closed:{since}"), vec![("reason", reason.into())])
            }
            (None, Some((_, since))) => self.say(Kind::ShopOpened, None, format!("shop-opened:{since}"), vec![]),
            (None, None) => {}
        }
    }

    /// The operator asked `barista`, on `session`, to go home.
    pub fn sent_home(&mut self, barista: &str, session: &str) {
        let key = format!("barista-sent-home:{barista}:{session}");
        self.say(Kind::BaristaSentHome, Some(barista), key, vec![("session", session.into())]);
    }

    // ---- time ----

    /// What time alone tells: withdrawals past their grace, queues over `alert_wait`, orders
    /// waiting with nobody on shift.
    pub fn tick(&mut self, now: Instant, wall: SystemTime, alert_wait: Duration) {
        while self.pending.front().is_some_and(|d| now.saturating_duration_since(d.at) >= WITHDRAWAL_GRACE) {
            self.pending.pop_front();
            self.withdrawn += 1;
        }
        let mut changes = Vec::new();
        for (bucket, orders) in &self.buckets {
            let oldest = orders.iter().find(|(_, o)| !o.rejected);
            let over = oldest.and_then(|(child, o)| {
                let waited = wall.duration_since(o.placed).unwrap_or_default();
                (waited > alert_wait).then(|| (child.clone(), waited))
            });
            match (over, self.slow.get(bucket)) {
                (Some((child, waited)), None) => changes.push((bucket.clone(), Some((child, waited, orders.len())))),
                (None, Some(_)) => changes.push((bucket.clone(), None)),
                _ => {}
            }
        }
        // A bucket removed in its episode (its barista left): that queue is no longer slow.
        changes.extend(self.slow.keys().filter(|b| !self.buckets.contains_key(*b)).map(|b| (b.clone(), None)));
        for (bucket, over) in changes {
            match over {
                Some((child, waited, queued)) => {
                    let key = format!("queue-slow:{bucket}/{child}");
                    self.slow.insert(bucket.clone(), key.clone());
                    let facts = vec![
                        ("oldest_order", child.into()),
                        ("oldest_wait_seconds", waited.as_secs_f64().into()),
                        ("orders", queued.into()),
                        ("alert_wait_seconds", alert_wait.as_secs_f64().into()),
                    ];
                    self.say(Kind::QueueSlow, Some(&bucket), key, facts);
                }
                None => {
                    if let Some(key) = self.slow.remove(&bucket) {
                        let queued = self.waiting(&bucket);
                        self.say(Kind::QueueOk, Some(&bucket), key, vec![("orders", queued.into())]);
                    }
                }
            }
        }
        self.check_staffing();
    }

    /// Opens or closes the `shop-unstaffed` episode.
    fn check_staffing(&mut self) {
        let staffed = self.on_shift().count();
        let oldest = self
            .buckets
            .iter()
            .flat_map(|(bucket, orders)| {
                orders.iter().filter(|(_, o)| !o.rejected).map(move |(child, o)| (o.placed, bucket, child))
            })
            .min();
        let waiting: usize = self.buckets.values().map(|orders| orders.values().filter(|o| !o.rejected).count()).sum();
        match (&self.unstaffed, staffed, oldest) {
            (None, 0, Some((_, bucket, child))) => {
                let key = format!("shop-unstaffed:{bucket}/{child}");
                self.unstaffed = Some(key.clone());
                self.say(Kind::ShopUnstaffed, None, key, vec![("waiting", waiting.into())]);
            }
            (Some(key), n, _) if n > 0 => {
                let key = key.clone();
                self.unstaffed = None;
                self.say(Kind::ShopStaffed, None, key, vec![("baristas", n.into()), ("waiting", waiting.into())]);
            }
            (Some(_), 0, None) => {
                // Nothing waits any more (withdrawn, or served by a client we do not see as a
                // barista): the episode ends; the next order left alone opens another.
                self.unstaffed = None;
            }
            _ => {}
        }
    }

    /// Forgets the baristas not on shift, with nothing waiting in their bucket and no ledger
    /// growth for `forget_after`: their series are no longer shown (default names are
    /// `{host}_{pid}`, new ones with every restart). Returns whom it forgot.
    pub fn forget_gone(&mut self, now: Instant, forget_after: Duration) -> Vec<String> {
        let gone: Vec<String> = self
            .gone_since
            .iter()
            .filter(|(name, since)| {
                now.saturating_duration_since(**since) >= forget_after
                    && !self.members.contains_key(*name)
                    && self.waiting(name) == 0
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in &gone {
            self.gone_since.remove(name);
            self.forgotten.insert(name.clone());
        }
        gone
    }

    /// Whether `barista`'s series are still shown (see [`Picture::forget_gone`]).
    pub fn remembers(&self, barista: &str) -> bool {
        !self.forgotten.contains(barista)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn barista(session: i64) -> Member {
        Member { registration: None, session, leaving: false }
    }

    fn order_now() -> Order {
        Order { placed: SystemTime::now(), seen: Some(Instant::now()), rejected: false }
    }

    fn kinds(picture: &mut Picture) -> Vec<Kind> {
        picture.take_events().into_iter().map(|e| e.event).collect()
    }

    #[test]
    fn a_marked_member_left_and_an_unmarked_one_was_lost() {
        let mut p = Picture::new("/");
        p.member_came("b1", barista(1), false);
        p.member_came("b2", barista(2), false);
        assert_eq!(kinds(&mut p), [Kind::BaristaOnShift, Kind::BaristaOnShift]);
        p.order_placed("b2", "coffee0000000001", order_now());
        p.member_marked("b1");
        p.member_went("b1", false);
        p.member_went("b2", false);
        let events = p.take_events();
        assert_eq!(events[0].event, Kind::BaristaLeft);
        assert_eq!(events[1].event, Kind::BaristaLost);
        assert_eq!(events[1].facts["stranded"], 1);
        assert_eq!(events[1].key, "barista-lost:b2:2");
    }

    #[test]
    fn a_persistent_member_is_no_barista_and_tells_nothing() {
        let mut p = Picture::new("/");
        p.member_came("ghost", barista(0), false);
        p.member_went("ghost", false);
        assert!(p.take_events().is_empty());
    }

    /// A shop whose barista b1 has an empty ledger and two orders waiting.
    fn two_orders_at_b1() -> Picture {
        let mut p = Picture::new("/");
        p.ledger_read("b1", Counts::new(), true);
        p.order_placed("b1", "coffee0000000001", order_now());
        p.order_placed("b1", "coffee0000000002", order_now());
        p
    }

    #[test]
    fn a_deletion_a_ledger_counts_is_served_and_one_it_does_not_is_withdrawn() {
        let mut p = two_orders_at_b1();
        let now = Instant::now();
        p.order_deleted("b1", "coffee0000000001", now, false);
        p.order_deleted("b1", "coffee0000000002", now, false);
        p.ledger_read("b1", [("jacob".to_owned(), 1)].into(), false);
        assert_eq!(p.served_waits.len(), 1);
        p.tick(now + WITHDRAWAL_GRACE, SystemTime::now(), Duration::from_secs(5));
        assert_eq!(p.withdrawn, 1);
    }

    #[test]
    fn a_first_reading_of_a_ledger_is_a_baseline() {
        let mut p = Picture::new("/");
        p.order_placed("b1", "coffee0000000001", order_now());
        p.order_deleted("b1", "coffee0000000001", Instant::now(), false);
        p.ledger_read("b1", [("jacob".to_owned(), 40)].into(), true);
        assert!(p.served_waits.is_empty());
        p.ledger_read("b1", [("jacob".to_owned(), 41)].into(), true);
        assert_eq!(p.served_waits.len(), 1);
    }

    #[test]
    fn a_slow_queue_is_told_once_and_closed_by_queue_ok() {
        let mut p = Picture::new("/");
        p.member_came("b1", barista(1), true);
        let old = Order { placed: SystemTime::now() - Duration::from_secs(9), seen: None, rejected: false };
        p.order_placed("b1", "coffee0000000001", old);
        let wait = Duration::from_secs(5);
        p.tick(Instant::now(), SystemTime::now(), wait);
        p.tick(Instant::now(), SystemTime::now(), wait);
        assert_eq!(kinds(&mut p), [Kind::QueueSlow]);
        p.order_deleted("b1", "coffee0000000001", Instant::now(), false);
        p.tick(Instant::now(), SystemTime::now(), wait);
        let events = p.take_events();
        assert_eq!(events.iter().map(|e| e.event).collect::<Vec<_>>(), [Kind::QueueOk]);
        assert_eq!(events[0].key, "queue-slow:b1/coffee0000000001");
    }

    #[test]
    fn orders_with_nobody_on_shift_open_an_unstaffed_episode_once() {
        let mut p = Picture::new("north");
        p.order_placed("b1", "coffee0000000001", order_now());
        let wait = Duration::from_secs(60);
        p.tick(Instant::now(), SystemTime::now(), wait);
        p.tick(Instant::now(), SystemTime::now(), wait);
        assert_eq!(kinds(&mut p), [Kind::ShopUnstaffed]);
        p.member_came("b2", barista(7), true);
        p.tick(Instant::now(), SystemTime::now(), wait);
        assert_eq!(kinds(&mut p), [Kind::ShopStaffed]);
    }

    #[test]
    fn an_orphan_is_adopted_by_the_claimant_and_drained() {
        let mut p = Picture::new("/");
        p.member_came("b1", barista(1), true);
        p.member_came("b2", barista(2), true);
        p.order_placed("b1", "coffee0000000001", order_now());
        p.member_went("b1", false);
        p.claim_came("b1", 2, false);
        p.order_deleted("b1", "coffee0000000001", Instant::now(), false);
        let events = p.take_events();
        assert_eq!(
            events.iter().map(|e| e.event).collect::<Vec<_>>(),
            [Kind::BaristaLost, Kind::OrphanAdopted, Kind::OrphanDrained]
        );
        assert_eq!(events[1].facts["by"], "b2");
        assert_eq!(events[2].facts["by"], "b2");
    }

    #[test]
    fn a_barista_claiming_its_own_bucket_adopts_nothing() {
        let mut p = Picture::new("/");
        p.member_came("b1", barista(1), true);
        p.claim_came("b1", 1, false);
        assert!(p.take_events().is_empty());
    }
    #[test]
    fn a_barista_gone_long_enough_is_forgotten_until_it_is_back() {
        let mut p = Picture::new("/");
        p.member_came("b1", barista(1), true);
        p.ledger_read("b1", [("jacob".to_owned(), 1)].into(), true);
        p.member_went("b1", true);
        let later = Instant::now() + Duration::from_secs(601);
        assert!(p.forget_gone(Instant::now(), Duration::from_secs(600)).is_empty());
        assert!(p.remembers("b1"));
        assert_eq!(p.forget_gone(later, Duration::from_secs(600)), ["b1"]);
        assert!(!p.remembers("b1"));
        p.member_came("b1", barista(2), true);
        assert!(p.remembers("b1"));
    }

    #[test]
    fn a_claim_by_a_session_with_no_membership_is_a_barista_joining() {
        let mut p = Picture::new("/");
        p.claim_came("b1", 5, false);
        p.member_came("b1", barista(5), true);
        p.claim_went("b1");
        assert!(p.take_events().is_empty());
    }
    #[test]
    fn a_ledger_read_ahead_of_its_deletions_counts_them_served_when_they_come() {
        let mut p = two_orders_at_b1();
        let now = Instant::now();
        p.order_deleted("b1", "coffee0000000001", now, false);
        // Read after both transactions, before the second deletion was heard.
        p.ledger_read("b1", [("jacob".to_owned(), 2)].into(), false);
        p.order_deleted("b1", "coffee0000000002", now, false);
        assert_eq!(p.served_waits.len(), 2);
        p.tick(now + WITHDRAWAL_GRACE, SystemTime::now(), Duration::from_secs(5));
        assert_eq!(p.withdrawn, 0);
    }
}
