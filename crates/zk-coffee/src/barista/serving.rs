//! Serving: the buckets a barista serves (its own and the adopted ones), each followed by a
//! watch (see [`Bucket`]), and how their orders are served.
//!
//! Orders are served in the order they were placed: read the coffee, brew, delete the order
//! (the deletion is what tells the customer it was served). Orders that are ready together are
//! served together: their reads go out at once, and one transaction deletes them all and
//! counts them in the sales ledger ([`Ledger`]). An order that is no coffee on the menu is
//! rejected (see [`crate::order`]) and left for its customer to withdraw; one whose ACL shuts
//! us out is left alone, and reported once. An order its customer marked withdrawn (a secured
//! shop) is deleted unmade and uncounted, as soon as its watch tells of the mark; the serving
//! transaction deletes each order only at the version it was read at, so a mark that lands
//! while its coffee brews keeps it from being served and counted.
//!
//! (A little over 400 lines: the batch loop and what it decides for each order it read, from
//! the watches' news between two brews to the transaction that serves, read best together.)

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info, warn};

use crate::config::{self, ShopConfig};
use crate::duration::human;
use crate::error::{Error, Result};
use crate::layout::{self, BaristaName, OrderName};
use crate::order::{self, Payload};
use crate::sales::{Ledger, Sale, ToServe};
use crate::session::{NodeData, Session, TreeEvent};
use crate::shutdown::Stop;

use super::{Barista, Bucket, Phase, Wake};

/// The most orders read at once and served in one transaction.
const MAX_BATCH: usize = 64;

/// What serving needs and keeps.
pub(super) struct Serving {
    /// What we have served, counted in the same transaction that serves an order.
    ledger: Ledger,
    /// The shop's configuration as last read (the defaults until then).
    shop: ShopConfig,
    /// The buckets we serve (ours and the adopted ones), as their watches tell us.
    buckets: BTreeMap<BaristaName, Bucket>,
    /// The session generation the buckets' watches belong to.
    generation: u64,
    /// The epoch of the next bucket opened.
    next_epoch: u64,
    /// Orders we may not touch, already logged, so each is reported once.
    reported_foreign: HashSet<String>,
}

/// How long [`Barista::serve_queue`] goes on.
#[derive(Debug, Clone, Copy)]
pub(super) enum Until {
    /// While on shift: until a stop is requested.
    StopRequested,
    /// While leaving: until this instant or a second stop request.
    Drained(Instant),
}

/// What to do with an order after reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// Make this coffee (the order was read at this version).
    Make(String, i32),
    /// Rejected, removed, or found gone: nothing more to do.
    Done,
    /// Left for later (a rejected order waiting for its customer, or one we may not read).
    Skipped,
}

/// An order made and waiting to be served: its name, path and coffee.
struct Made {
    order: OrderName,
    path: String,
    coffee: String,
    /// The version the order was read at: it is served only if still there.
    version: i32,
}

impl Serving {
    /// Nothing served yet, with `name`'s sales ledger.
    pub(super) fn open(session: &Session, name: &BaristaName) -> Result<Serving> {
        Ok(Serving {
            ledger: Ledger::open(session, name)?,
            shop: ShopConfig::default(),
            buckets: BTreeMap::new(),
            generation: 0,
            next_epoch: 0,
            reported_foreign: HashSet::new(),
        })
    }

    /// Takes an event of the bucket opened as `epoch`; events of one closed since are dropped.
    pub(super) fn apply(&mut self, epoch: u64, event: &TreeEvent) {
        if let Some(bucket) = self.buckets.values_mut().find(|b| b.epoch() == epoch) {
            bucket.apply(event);
        }
    }

    /// Stops following `owner`'s bucket.
    pub(super) fn close(&mut self, owner: &BaristaName) {
        self.buckets.remove(owner);
    }

    /// Whether `owner`'s bucket is not followed, or was deleted.
    pub(super) fn bucket_gone(&self, owner: &BaristaName) -> bool {
        self.buckets.get(owner).is_none_or(Bucket::is_gone)
    }

    /// Whether orders wait in `owner`'s bucket (held ones included).
    /// Whether `order` is still queued in `owner`'s bucket, as far as its watch has told.
    pub(super) fn is_queued(&self, owner: &BaristaName, order: OrderName) -> bool {
        self.buckets.get(owner).is_some_and(|bucket| bucket.contains(order))
    }

    pub(super) fn has_queued(&self, owner: &BaristaName) -> bool {
        self.buckets.get(owner).is_some_and(|b| !b.is_empty())
    }

    /// How many orders wait in all the buckets followed (held ones included).
    pub(super) fn queue_length(&self) -> usize {
        self.buckets.values().filter(|b| !b.is_gone()).map(Bucket::len).sum()
    }

    /// How many orders wait in `owner`'s bucket (`None`: not followed, or deleted).
    pub(super) fn queued(&self, owner: &BaristaName) -> Option<usize> {
        self.buckets.get(owner).filter(|b| !b.is_gone()).map(Bucket::len)
    }

    /// Lists `owner`'s bucket again: a late order's event may still be on the way.
    pub(super) fn relist(&mut self, session: &Session, owner: &BaristaName) -> Result<()> {
        if let Some(bucket) = self.buckets.get_mut(owner) {
            bucket.relist(session)?;
        }
        Ok(())
    }

    /// Makes the rejected orders in `owner`'s bucket due now, without waiting out their grace.
    pub(super) fn end_waits(&mut self, owner: &BaristaName) {
        if let Some(bucket) = self.buckets.get_mut(owner) {
            bucket.end_waits(Instant::now());
        }
    }

    /// When the earliest held order falls due, if any will.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.buckets.values().filter_map(Bucket::next_due).min()
    }

    /// Whether a bucket must be listed again or holds an order to look at by `now`.
    pub(super) fn has_work(&self, now: Instant) -> bool {
        self.buckets.values().any(|b| b.is_stale() || !b.next(1, now).is_empty())
    }

    /// Whether `order`'s data changed (since it was last looked at), as its watch told.
    fn has_changed(&self, owner: &BaristaName, order: OrderName) -> bool {
        self.buckets.get(owner).is_some_and(|bucket| bucket.has_changed(order))
    }

    /// The order is done with: no need to look at it again.
    fn forget(&mut self, owner: &BaristaName, order: OrderName) {
        if let Some(bucket) = self.buckets.get_mut(owner) {
            bucket.remove(order);
        }
    }

    /// Leaves the order alone until `until` (`None`: for good).
    fn hold(&mut self, owner: &BaristaName, order: OrderName, until: Option<Instant>) {
        if let Some(bucket) = self.buckets.get_mut(owner) {
            bucket.hold(order, until);
        }
    }

    /// Leaves an order we may not touch alone for good, reporting it once with `why`.
    fn leave_alone(&mut self, owner: &BaristaName, order: OrderName, path: &str, why: &str) -> Next {
        if self.reported_foreign.insert(path.to_owned()) {
            warn!("leaving {path} alone: {why}");
        }
        self.hold(owner, order, None);
        Next::Skipped
    }
}

impl Barista<'_> {
    /// Re-reads the configuration if it changed (or was never read).
    pub(super) fn apply_config_change(&mut self) -> Result<()> {
        if self.changed.config {
            self.read_config()?;
            self.changed.config = false;
        }
        Ok(())
    }

    /// Reads the shop's configuration and watches it. An unusable one is reported and the last
    /// good one kept (the barista keeps serving).
    fn read_config(&mut self) -> Result<()> {
        match config::watch(&self.ctx.session, self.ctx.wakes.waker(Wake::Config)) {
            Ok(new) => {
                if new != self.serving.shop {
                    info!("shop menu: {}", new.menu.coffees().join(", "));
                    self.serving.shop = new;
                }
                Ok(())
            }
            Err(e @ Error::BadConfig(_)) => {
                warn!("{e}; keeping the menu I have");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Makes the buckets followed match the buckets we serve: our own and the adopted ones. A
    /// new session starts them all afresh (the watches went with the old one); after a
    /// reconnect they are listed again.
    pub(super) fn sync_queues(&mut self) -> Result<()> {
        let session = &self.ctx.session;
        let generation = session.generation();
        let serving = &mut self.serving;
        if serving.generation != generation {
            serving.buckets.clear();
            serving.generation = generation;
        }
        let me = self.ctx.config.name.clone();
        let adopted = self.adoption.adopted();
        serving.buckets.retain(|owner, _| *owner == me || adopted.contains(owner));
        for bucket in serving.buckets.values_mut().filter(|b| b.is_stale()) {
            bucket.relist(session)?;
        }
        for owner in std::iter::once(me).chain(adopted) {
            self.open_queue(&owner)?;
        }
        Ok(())
    }

    /// Starts following `owner`'s bucket unless we already do; `false` if it does not exist.
    pub(super) fn open_queue(&mut self, owner: &BaristaName) -> Result<bool> {
        let serving = &mut self.serving;
        if serving.buckets.contains_key(owner) {
            return Ok(true);
        }
        let epoch = serving.next_epoch;
        serving.next_epoch += 1;
        let tx = self.ctx.wakes.sender();
        let notify = move |event| {
            let _ = tx.send(Wake::Bucket { epoch, event });
        };
        match Bucket::open(&self.ctx.session, owner, epoch, notify)? {
            Some(bucket) => {
                serving.buckets.insert(owner.clone(), bucket);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Whether to go on serving.
    fn serving(&self, until: Until) -> bool {
        let stop = self.ctx.shutdown.state();
        match until {
            Until::StopRequested => stop == Stop::No,
            Until::Drained(deadline) => stop != Stop::Now && Instant::now() < deadline,
        }
    }

    /// Serves the orders queued in `owner`'s bucket, in the order they were placed, while
    /// `until` allows; returns how many were taken in hand. Up to [`MAX_BATCH`] orders are
    /// read at once; the coffees made one after another without a brew time in between are
    /// served together, in one transaction.
    pub(super) fn serve_queue(&mut self, owner: &BaristaName, until: Until) -> Result<usize> {
        let mut taken = 0;
        loop {
            self.take_wakes();
            if !self.serving(until) {
                return Ok(taken);
            }
            self.remove_withdrawn(owner)?;
            let Some(bucket) = self.serving.buckets.get(owner) else { return Ok(taken) };
            let batch = bucket.next(MAX_BATCH, Instant::now());
            if batch.is_empty() {
                return Ok(taken);
            }
            let paths: Vec<String> = batch.iter().map(|order| layout::order(owner, *order)).collect();
            let reads = self.ctx.session.read_many(&paths)?;
            let mut made: Vec<Made> = Vec::new();
            let mut look_again = false;
            for ((order, path), read) in batch.into_iter().zip(paths).zip(reads) {
                if !self.serving(until) {
                    break;
                }
                // What the watches told while the last coffee brewed counts. In an adopted
                // bucket, a change of the group may be its owner coming back, who then serves
                // it: look at the group before making more of its orders. (Without this an
                // adopter made a whole batch its owner had served meanwhile.)
                if owner != &self.ctx.config.name && self.changed.staff {
                    look_again = true;
                    break;
                }
                // Served (by a returning owner) or withdrawn since the batch was read.
                if !self.serving.is_queued(owner, order) {
                    debug!("{path} went while I made the one before");
                    taken += 1;
                    continue;
                }
                // Marked (withdrawn, perhaps) since the batch was read: read it again first.
                if self.serving.has_changed(owner, order) {
                    break;
                }
                // A menu change applies from the next order on.
                self.apply_config_change()?;
                let (coffee, version) = match self.look_at(owner, order, &path, read)? {
                    Next::Make(coffee, version) => (coffee, version),
                    Next::Done => {
                        taken += 1;
                        continue;
                    }
                    Next::Skipped => continue,
                };
                taken += 1;
                let brew_time = self.serving.shop.brew_time(&coffee, self.ctx.config.brew_time);
                if !brew_time.is_zero() {
                    // The coffees made so far are ready: serve them before brewing this one.
                    self.serve_made(owner, &mut made)?;
                }
                info!("making {coffee} for {order}{}", whose(owner, &self.ctx.config.name));
                // Only a second stop request interrupts a brew: the order then stays queued.
                let started = Instant::now();
                if !brew_time.is_zero() && !self.brew(order, brew_time)? {
                    return Ok(taken);
                }
                self.ctx.metrics.brewed(started.elapsed());
                made.push(Made { order, path, coffee, version });
            }
            self.serve_made(owner, &mut made)?;
            if look_again {
                return Ok(taken);
            }
        }
    }

    /// Decides what to do with an order from what reading it gave.
    fn look_at(&mut self, owner: &BaristaName, order: OrderName, path: &str, read: Result<Option<NodeData>>) -> Result<Next> {
        let node = match read {
            Ok(Some(node)) => node,
            Ok(None) => {
                debug!("{path} was withdrawn before I started it");
                self.serving.forget(owner, order);
                return Ok(Next::Done);
            }
            // Whoever made it chose an ACL that shuts us out: no customer of ours did that.
            Err(Error::NotAuthorized { .. }) => {
                return Ok(self.serving.leave_alone(owner, order, path, "its ACL does not let me read it"));
            }
            Err(e) => return Err(e),
        };
        match Payload::parse(&node.data, &self.serving.shop.menu) {
            Payload::Coffee(coffee) => Ok(Next::Make(coffee, node.version)),
            Payload::Withdrawn(_) => self.remove_withdrawn_order(owner, order, path),
            Payload::Invalid(reason) => {
                match self.ctx.session.set_if_version(path, &order::rejection(&reason), node.version) {
                    Ok(true) => {
                        warn!("rejected {path}: {reason}");
                        self.ctx.metrics.rejected();
                    }
                    // It changed or went meanwhile: look at it again.
                    Ok(false) => return Ok(Next::Done),
                    Err(Error::NotAuthorized { .. }) => {
                        let why = format!("{reason}, and its ACL does not let me reject it");
                        return Ok(self.serving.leave_alone(owner, order, path, &why));
                    }
                    Err(e) => return Err(e),
                }
                // Its customer withdraws it; if nobody does, it goes when its grace is over.
                self.serving.hold(owner, order, Some(Instant::now() + order::REJECTION_GRACE));
                Ok(Next::Done)
            }
            Payload::Rejected(_) => self.clear_rejected(owner, order, path, &node),
        }
    }

    /// Brews one coffee for `brew_time`. Only a second stop request interrupts it: then
    /// `false`, and the order stays queued, to be adopted.
    fn brew(&mut self, order: OrderName, brew_time: Duration) -> Result<bool> {
        let brewed_at = Instant::now() + brew_time;
        while let Some(left) = brewed_at.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            self.wait(left);
            match self.ctx.shutdown.state() {
                Stop::No => {}
                // Off the group at once, so no new customer picks us; the coffee is finished.
                Stop::Graceful => {
                    self.leave_group()?;
                }
                Stop::Now => {
                    info!("stopping at once: {order} stays queued");
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Serves the coffees made: deletes their orders (which tells their customers) and counts
    /// them, in one transaction.
    fn serve_made(&mut self, owner: &BaristaName, made: &mut Vec<Made>) -> Result<()> {
        if made.is_empty() {
            return Ok(());
        }
        let orders: Vec<ToServe> = made.iter().map(|m| (m.path.clone(), m.coffee.clone(), Some(m.version))).collect();
        let sales = self.serving.ledger.serve_as_read(&self.ctx.session, &orders)?;
        let whose = whose(owner, &self.ctx.config.name);
        let metrics = &self.ctx.metrics;
        metrics.served(sales.iter().filter(|sale| **sale == Sale::Served).count());
        for (m, sale) in made.drain(..).zip(sales) {
            match sale {
                Sale::Served => info!("served {} ({}){whose}", m.coffee, m.order),
                Sale::Gone => {
                    info!("{} was withdrawn while I made it", m.order);
                    metrics.found_gone();
                }
                // Marked meanwhile: it stays queued, to be read again (and removed if withdrawn).
                Sale::Changed => {
                    info!("{} changed while I made it (withdrawn?): not served", m.order);
                    metrics.found_gone();
                    continue;
                }
            }
            self.serving.forget(owner, m.order);
        }
        self.count_queue();
        Ok(())
    }

    /// Removes the orders of `owner`'s bucket that their customers marked withdrawn since they
    /// were last looked at (the watch told of a change); the others wait for their turn.
    fn remove_withdrawn(&mut self, owner: &BaristaName) -> Result<()> {
        let Some(changed) = self.serving.buckets.get_mut(owner).map(Bucket::take_changed) else { return Ok(()) };
        if changed.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = changed.iter().map(|order| layout::order(owner, *order)).collect();
        let reads = self.ctx.session.read_many(&paths)?;
        for ((order, path), read) in changed.into_iter().zip(paths).zip(reads) {
            match read {
                Ok(Some(node)) if order::is_withdrawn(&node.data) => {
                    self.remove_withdrawn_order(owner, order, &path)?;
                }
                Ok(None) => self.serving.forget(owner, order),
                // Anything else (a rejection, or what we may not read) waits for its turn.
                _ => {}
            }
        }
        self.count_queue();
        Ok(())
    }

    /// Deletes an order its customer marked withdrawn: not made, not counted.
    fn remove_withdrawn_order(&mut self, owner: &BaristaName, order: OrderName, path: &str) -> Result<Next> {
        match self.ctx.session.delete(path, None) {
            Ok(true) => info!("removed {path}: withdrawn by its customer"),
            Ok(false) => debug!("{path} went before I could remove it"),
            Err(Error::NotAuthorized { .. }) => {
                return Ok(self.serving.leave_alone(
                    owner,
                    order,
                    path,
                    "withdrawn, but the bucket's ACL does not let me delete it",
                ));
            }
            Err(e) => return Err(e),
        }
        self.serving.forget(owner, order);
        Ok(Next::Done)
    }

    /// A rejected order waits for its customer to withdraw it; nobody has after
    /// [`order::REJECTION_GRACE`] (or we are leaving), so it goes.
    fn clear_rejected(&mut self, owner: &BaristaName, order: OrderName, path: &str, node: &NodeData) -> Result<Next> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        let waited = Duration::from_millis((now_ms - node.mtime_ms).max(0) as u64);
        let leaving = matches!(self.phase, Phase::Leaving { .. });
        if let Some(left) = order::REJECTION_GRACE.checked_sub(waited).filter(|_| !leaving) {
            self.serving.hold(owner, order, Some(Instant::now() + left));
            return Ok(Next::Skipped);
        }
        if self.ctx.session.delete(path, Some(node.version))? {
            info!("removed {path}: rejected {} ago and not withdrawn", human(waited));
        }
        self.serving.forget(owner, order);
        Ok(Next::Done)
    }
}

/// How a log line names whose bucket an order came from: nothing for our own.
fn whose(owner: &BaristaName, me: &BaristaName) -> String {
    if owner == me {
        String::new()
    } else {
        format!(" (adopted from {owner})")
    }
}
