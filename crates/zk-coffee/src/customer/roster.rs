//! The baristas on shift as customers see them: `/barista_group` listed once and kept under
//! a watch, so that a customer who orders again and again (the load generator's customers,
//! who may share one session) does not list the group for every order.
//!
//! The listing is redone only after the group changed (the watch fired) or the connection did
//! (a reconnect or a new session), and then once for all the customers sharing the roster. Each
//! listing sets one watch, which fires once, and the next listing comes only after it fired
//! (or the connection changed): one outstanding watch on the group per roster. Only members
//! whose nodes are ephemeral are baristas on shift; each member's node is read once, when it
//! first appears (see [`Members`]).
//!
//! The roster also keeps whether the shop is open (the operator's closed sign, see
//! [`crate::operator`]) the same way: read once, under a watch, read again only after it
//! changed; a customer waiting for a barista is woken when the sign goes up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, Weak};

use crate::error::Result;
use crate::layout::BaristaName;
use crate::lock;
use crate::operator;
use crate::session::{Session, Subscription};
use crate::shop::Members;

/// The baristas on shift, kept current. Cheap to clone; clones share the listing.
#[derive(Clone)]
pub struct Roster {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    /// The members as read so far, and the last listing (`None`: none yet). Held while
    /// listing again, so that customers sharing the roster wait for one listing instead of
    /// each making its own.
    listing: Mutex<(Members, Option<Vec<BaristaName>>)>,
    /// The group or the connection changed since the last listing.
    stale: AtomicBool,
    /// The closed sign as last read (`None`: not read yet; `Some(None)`: open).
    door: Mutex<Option<Option<String>>>,
    /// The sign or the connection changed since it was read.
    door_stale: AtomicBool,
    /// Customers waiting for the group to change.
    waiters: Arc<Waiters>,
    _subscription: Subscription,
}

impl Inner {
    /// Called from a watch or a session event: records the change and tells the waiters. It
    /// never takes the listing lock, which is held during calls to the session.
    fn changed(&self) {
        self.stale.store(true, Ordering::SeqCst);
        self.waiters.tell_all();
    }

    /// Like [`Inner::changed`], for the closed sign.
    fn door_changed(&self) {
        self.door_stale.store(true, Ordering::SeqCst);
        self.waiters.tell_all();
    }
}

/// The customers waiting for the group to change, each told once. A waiter is kept only while
/// its [`Wait`] lives, so waits that ended (a customer that ordered elsewhere, or gave up)
/// leave nothing behind however long the group stays unchanged.
#[derive(Default)]
struct Waiters {
    /// The last ticket handed out, and the waiters by ticket (each [`Wait`] removes its own).
    senders: Mutex<(u64, HashMap<u64, Sender<()>>)>,
}

impl Waiters {
    /// Adds a waiter, told on the next [`Waiters::tell_all`] while the returned [`Wait`]
    /// lives.
    fn add(self: &Arc<Self>, waiter: Sender<()>) -> Wait {
        let mut senders = lock(&self.senders);
        senders.0 += 1;
        let ticket = senders.0;
        senders.1.insert(ticket, waiter);
        Wait { waiters: Arc::downgrade(self), ticket }
    }

    /// Tells every waiter, and forgets them.
    fn tell_all(&self) {
        for (_, waiter) in lock(&self.senders).1.drain() {
            let _ = waiter.send(());
        }
    }

    /// How many waiters are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.senders).1.len()
    }
}

/// A customer's wait for the group to change ([`Roster::tell_on_change`]); dropping it ends
/// the wait.
#[must_use = "the wait ends when this is dropped"]
pub struct Wait {
    waiters: Weak<Waiters>,
    ticket: u64,
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(waiters) = self.waiters.upgrade() {
            lock(&waiters.senders).1.remove(&self.ticket);
        }
    }
}

impl Roster {
    /// A roster of the baristas on shift in `session`'s shop; nothing is read until asked.
    pub fn new(session: &Session) -> Roster {
        let inner = Arc::new_cyclic(|me: &Weak<Inner>| {
            let me = me.clone();
            let subscription = session.subscribe(move |_| {
                if let Some(inner) = me.upgrade() {
                    inner.door_stale.store(true, Ordering::SeqCst);
                    inner.changed();
                }
            });
            Inner {
                session: session.clone(),
                listing: Mutex::new((Members::new(false), None)),
                stale: AtomicBool::new(false),
                door: Mutex::new(None),
                door_stale: AtomicBool::new(false),
                waiters: Arc::default(),
                _subscription: subscription,
            }
        });
        Roster { inner }
    }

    /// The baristas on shift (ephemeral members, see [`Members`]), sorted by name: the last
    /// listing, unless something changed since.
    pub fn on_shift(&self) -> Result<Vec<BaristaName>> {
        let mut guard = lock(&self.inner.listing);
        let (members, listing) = &mut *guard;
        if self.inner.stale.swap(false, Ordering::SeqCst) || listing.is_none() {
            let me = Arc::downgrade(&self.inner);
            let notify = move || {
                if let Some(inner) = me.upgrade() {
                    inner.changed();
                }
            };
            match members.watch(&self.inner.session, notify) {
                Ok(on_shift) => *listing = Some(on_shift),
                Err(e) => {
                    self.inner.stale.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(listing.clone().unwrap_or_default())
    }

    /// Why the shop is closed, or `None` while it is open: the last reading, unless the sign
    /// changed since.
    pub fn closed(&self) -> Result<Option<String>> {
        let mut door = lock(&self.inner.door);
        if self.inner.door_stale.swap(false, Ordering::SeqCst) || door.is_none() {
            let me = Arc::downgrade(&self.inner);
            let notify = move || {
                if let Some(inner) = me.upgrade() {
                    inner.door_changed();
                }
            };
            match operator::watch_closed(&self.inner.session, notify) {
                Ok(reason) => *door = Some(reason),
                Err(e) => {
                    self.inner.door_stale.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(door.clone().flatten())
    }

    /// Sends `()` on `waiter` once the group changes after this call (or at once if it
    /// already changed since the last listing), unless the returned [`Wait`] was dropped.
    pub fn tell_on_change(&self, waiter: Sender<()>) -> Wait {
        let wait = self.inner.waiters.add(waiter.clone());
        if self.inner.stale.load(Ordering::SeqCst) || self.inner.door_stale.load(Ordering::SeqCst) {
            let _ = waiter.send(());
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn waits_that_ended_leave_no_sender_behind() {
        let waiters = Arc::new(Waiters::default());
        for _ in 0..1000 {
            // A customer that waited for a barista and stopped waiting (came on shift
            // elsewhere, ran out of patience): nothing of its wait stays.
            let (tx, rx) = mpsc::channel();
            let _wait = waiters.add(tx);
            drop(rx);
        }
        assert!(waiters.len() <= 1, "{} senders kept for waits that ended", waiters.len());

        let (tx, rx) = mpsc::channel();
        let _wait = waiters.add(tx);
        waiters.tell_all();
        assert_eq!(rx.try_recv(), Ok(()), "a wait in progress hears of the change");
        assert_eq!(waiters.len(), 0, "and is forgotten once told");
    }
}
