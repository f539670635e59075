//! A barista's view of one bucket: the orders waiting in it, in the order they were placed,
//! kept current by a watch instead of listing the bucket again for every order.
//!
//! A [`Bucket`] sets a persistent recursive watch on the bucket and then lists it once; from
//! then on every order created in the bucket, and every order deleted from it (served, or
//! withdrawn by its customer), arrives as an event, which the barista hands to
//! [`Bucket::apply`]. So the work per order does not grow with the queue: no listing of a
//! 10 000-order bucket to find the next one. ZooKeeper delivers a session's events in the order
//! the changes happened, and a sequential order's number grows with each child created, so the
//! set of pending orders stays in placement order.
//!
//! An order whose data changes (its customer marked it withdrawn, in a secured shop) is
//! remembered as [`Bucket::take_changed`], so that the barista looks at it before its turn
//! and removes it at once, as a deletion would have.
//!
//! Events that happen while the connection is down may be lost: when the watch is set again
//! after a reconnect, the queue turns stale and the barista calls [`Bucket::relist`]. After a
//! lost session the watch is gone with it and the barista opens the queue again. Each opening
//! has its own epoch, so events of an earlier watch still on their way are told apart and
//! dropped.
//!
//! (Until the barista became a folder this was `zk_coffee::queue::Queue`; that name stays as an
//! alias.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use log::warn;

use crate::error::Result;
use crate::layout::{self, BaristaName, OrderName};
use crate::session::{Session, TreeEvent, TreeWatch};

/// The orders known to wait in one bucket.
pub struct Bucket {
    owner: BaristaName,
    bucket: String,
    /// Which opening this is: events carry it back.
    epoch: u64,
    pending: BTreeSet<OrderName>,
    /// Orders not to look at before the given instant (a rejected order waiting for its
    /// customer), or ever (`None`: we may not read it).
    held: BTreeMap<OrderName, Option<Instant>>,
    /// Orders whose data changed since they were last looked at.
    changed: BTreeSet<OrderName>,
    /// Foreign children already reported, so each is reported once.
    reported: BTreeSet<String>,
    /// The bucket itself was deleted.
    gone: bool,
    /// Changes may have been missed: list the bucket again.
    stale: bool,
    /// The watch feeding [`Bucket::apply`] (`None` only in unit tests).
    _watch: Option<TreeWatch>,
}

impl Bucket {
    /// Watches `owner`'s bucket, then lists it. `notify` gets the watch's events, to be
    /// handed back to [`Bucket::apply`] with `epoch`. `None` if the bucket does not exist.
    pub fn open(
        session: &Session,
        owner: &BaristaName,
        epoch: u64,
        notify: impl Fn(TreeEvent) + Send + Sync + 'static,
    ) -> Result<Option<Bucket>> {
        let bucket = layout::bucket(owner);
        // Watch first, then list: an order created in between is in the listing or in an
        // event, perhaps both (the set keeps it once).
        let watch = session.watch_tree(&bucket, notify)?;
        let mut queue = Bucket::new(owner, epoch, Some(watch));
        Ok(queue.relist(session)?.then_some(queue))
    }

    fn new(owner: &BaristaName, epoch: u64, watch: Option<TreeWatch>) -> Bucket {
        Bucket {
            owner: owner.clone(),
            bucket: layout::bucket(owner),
            epoch,
            pending: BTreeSet::new(),
            held: BTreeMap::new(),
            changed: BTreeSet::new(),
            reported: BTreeSet::new(),
            gone: false,
            stale: false,
            _watch: watch,
        }
    }

    /// Lists the bucket again (after a reconnect, when events may have been lost); `false` if
    /// the bucket is gone.
    pub fn relist(&mut self, session: &Session) -> Result<bool> {
        let Some(children) = session.children(&self.bucket)? else {
            self.gone = true;
            self.stale = false;
            self.pending.clear();
            return Ok(false);
        };
        let (orders, foreign) = layout::orders_in_placement_order(&children);
        self.report_foreign(foreign);
        self.pending = orders.into_iter().collect();
        self.held.retain(|order, _| self.pending.contains(order));
        self.changed.retain(|order| self.pending.contains(order));
        self.gone = false;
        self.stale = false;
        Ok(true)
    }

    /// Whose bucket this is.
    pub fn owner(&self) -> &BaristaName {
        &self.owner
    }

    /// The epoch this queue was opened with.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether changes may have been missed, so the bucket must be listed again.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Whether the bucket was deleted.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Whether no order waits in the bucket (held ones included).
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// How many orders wait in the bucket (held ones included).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Takes one event of this queue's watch into account.
    pub fn apply(&mut self, event: &TreeEvent) {
        let (path, created) = match event {
            TreeEvent::Created(path) => (path, true),
            TreeEvent::Deleted(path) => (path, false),
            TreeEvent::Changed(path) => {
                let child = path.strip_prefix(&self.bucket).and_then(|rest| rest.strip_prefix('/'));
                if let Some(order) = child.and_then(OrderName::parse).filter(|o| self.pending.contains(o)) {
                    self.changed.insert(order);
                }
                return;
            }
            TreeEvent::Restored => {
                self.stale = true;
                return;
            }
        };
        if *path == self.bucket {
            self.gone = !created;
            if !created {
                self.pending.clear();
                self.held.clear();
            }
            return;
        }
        // Only the bucket's own children are orders; anything deeper is none of ours.
        let Some(child) = path.strip_prefix(&self.bucket).and_then(|rest| rest.strip_prefix('/')) else { return };
        if child.contains('/') {
            return;
        }
        match (OrderName::parse(child), created) {
            (Some(order), true) => {
                self.pending.insert(order);
            }
            (Some(order), false) => {
                self.pending.remove(&order);
                self.held.remove(&order);
                self.changed.remove(&order);
            }
            (None, true) => self.report_foreign(vec![child]),
            (None, false) => {}
        }
    }

    /// Whether `order` is still queued, as far as the watch has told.
    pub fn contains(&self, order: OrderName) -> bool {
        self.pending.contains(&order)
    }

    /// Whether `order`'s data changed since it was last looked at.
    pub fn has_changed(&self, order: OrderName) -> bool {
        self.changed.contains(&order)
    }

    /// The queued orders whose data changed since they were last looked at (forgotten here:
    /// the caller looks at them now).
    pub fn take_changed(&mut self) -> Vec<OrderName> {
        std::mem::take(&mut self.changed).into_iter().filter(|o| self.pending.contains(o)).collect()
    }

    /// Up to `max` orders to look at next, in placement order, skipping held ones that are
    /// not due by `now`.
    pub fn next(&self, max: usize, now: Instant) -> Vec<OrderName> {
        self.pending
            .iter()
            .filter(|order| match self.held.get(order) {
                None => true,
                Some(due) => due.is_some_and(|due| due <= now),
            })
            .take(max)
            .copied()
            .collect()
    }

    /// Makes every order held for a while due now (a barista leaving does not wait out the
    /// grace of rejected orders); those held for good stay held.
    pub fn end_waits(&mut self, now: Instant) {
        for due in self.held.values_mut().flatten() {
            *due = now;
        }
    }

    /// When the earliest held order falls due, if any will.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.values().flatten().min().copied()
    }

    /// The order is done with (served, rejected and removed, or found gone).
    pub fn remove(&mut self, order: OrderName) {
        self.pending.remove(&order);
        self.held.remove(&order);
        self.changed.remove(&order);
    }

    /// Leaves the order alone until `until` (`None`: for good).
    pub fn hold(&mut self, order: OrderName, until: Option<Instant>) {
        if self.pending.contains(&order) {
            self.held.insert(order, until);
        }
    }

    /// Reports children that are not orders, each once; many at once in one line.
    fn report_foreign(&mut self, foreign: Vec<&str>) {
        let new: Vec<&str> = foreign.into_iter().filter(|c| self.reported.insert((*c).to_owned())).collect();
        let bucket = &self.bucket;
        match new.as_slice() {
            [] => {}
            [child] => warn!("ignoring {bucket}/{child}: not an order (orders are named coffee + 10 digits)"),
            [child, ..] => warn!("ignoring {} children of {bucket} that are not orders, e.g. {child}", new.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn order(n: u64) -> OrderName {
        OrderName { sequence: n }
    }

    fn queue() -> Bucket {
        Bucket::new(&BaristaName::new("b_1").expect("valid"), 1, None)
    }

    fn created(child: &str) -> TreeEvent {
        TreeEvent::Created(format!("/orders/b_1/{child}"))
    }

    fn deleted(child: &str) -> TreeEvent {
        TreeEvent::Deleted(format!("/orders/b_1/{child}"))
    }

    #[test]
    fn events_keep_the_pending_orders_in_placement_order() {
        let mut q = queue();
        for event in [created("coffee0000000010"), created("coffee0000000002"), created("coffee0000000002"), created("junk")] {
            q.apply(&event);
        }
        assert_eq!(q.next(10, Instant::now()), [order(2), order(10)]);
        q.apply(&deleted("coffee0000000002"));
        q.apply(&deleted("coffee0000000099"));
        q.apply(&TreeEvent::Changed("/orders/b_1/coffee0000000010".into()));
        q.apply(&created("coffee0000000011/deeper"));
        q.apply(&TreeEvent::Created("/orders/b_10/coffee0000000005".into()));
        assert_eq!(q.next(10, Instant::now()), [order(10)]);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn a_changed_order_is_told_once_until_it_changes_again() {
        let mut q = queue();
        for event in [created("coffee0000000001"), created("coffee0000000002")] {
            q.apply(&event);
        }
        let changed = |child: &str| TreeEvent::Changed(format!("/orders/b_1/{child}"));
        q.apply(&changed("coffee0000000002"));
        q.apply(&changed("coffee0000000099"));
        assert!(q.has_changed(order(2)) && !q.has_changed(order(1)));
        assert_eq!(q.take_changed(), [order(2)]);
        assert!(q.take_changed().is_empty(), "told once");
        q.apply(&changed("coffee0000000001"));
        q.apply(&deleted("coffee0000000001"));
        assert!(q.take_changed().is_empty(), "a deleted order is no longer changed");
    }

    #[test]
    fn held_orders_are_skipped_until_due() {
        let mut q = queue();
        for n in 1..=3 {
            q.apply(&created(&format!("coffee{n:010}")));
        }
        let now = Instant::now();
        q.hold(order(1), Some(now + Duration::from_secs(30)));
        q.hold(order(2), None);
        q.hold(order(7), None); // not pending: ignored
        assert_eq!(q.next(10, now), [order(3)]);
        assert_eq!(q.next(10, now + Duration::from_secs(31)), [order(1), order(3)]);
        assert_eq!(q.next_due(), Some(now + Duration::from_secs(30)));
        q.end_waits(now);
        assert_eq!(q.next(10, now), [order(1), order(3)]);
        q.remove(order(1));
        assert_eq!(q.next_due(), None);
        assert_eq!(q.len(), 2);
        assert_eq!(q.next(1, now), [order(3)]);
    }

    #[test]
    fn a_deleted_bucket_empties_the_queue() {
        let mut q = queue();
        q.apply(&created("coffee0000000001"));
        q.apply(&TreeEvent::Deleted("/orders/b_1".into()));
        assert!(q.is_gone() && q.is_empty());
        q.apply(&TreeEvent::Created("/orders/b_1".into()));
        assert!(!q.is_gone());
        assert!(!q.is_stale());
        q.apply(&TreeEvent::Restored);
        assert!(q.is_stale());
    }
}
