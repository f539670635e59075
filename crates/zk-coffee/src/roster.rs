//! The baristas on shift as customers see them: `/barista_group` listed once and kept under
//! a watch, so that a customer who orders again and again (the load generator's customers,
//! who may share one session) does not list the group for every order.
//!
//! The listing is redone only after the group changed (the watch fired) or the connection did
//! (a reconnect or a new session), and then once for all the customers sharing the roster. Each
//! listing sets one watch, which fires once, and the next listing comes only after it fired
//! (or the connection changed): one outstanding watch on the group per roster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, Weak};

use crate::error::Result;
use crate::layout::BaristaName;
use crate::lock;
use crate::session::{Session, Subscription};
use crate::shop;

/// The baristas on shift, kept current. Cheap to clone; clones share the listing.
#[derive(Clone)]
pub struct Roster {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    /// The last listing (`None`: none yet). Held while listing again, so that customers
    /// sharing the roster wait for one listing instead of each making its own.
    listing: Mutex<Option<Vec<BaristaName>>>,
    /// The group or the connection changed since the last listing.
    stale: AtomicBool,
    /// Customers waiting for the group to change.
    waiters: Mutex<Vec<Sender<()>>>,
    _subscription: Subscription,
}

impl Inner {
    /// Called from a watch or a session event: records the change and tells the waiters. It
    /// never takes the listing lock, which is held during calls to the session.
    fn changed(&self) {
        self.stale.store(true, Ordering::SeqCst);
        for waiter in lock(&self.waiters).drain(..) {
            let _ = waiter.send(());
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
                    inner.changed();
                }
            });
            Inner {
                session: session.clone(),
                listing: Mutex::new(None),
                stale: AtomicBool::new(false),
                waiters: Mutex::new(Vec::new()),
                _subscription: subscription,
            }
        });
        Roster { inner }
    }

    /// The baristas on shift, sorted by name: the last listing, unless something changed
    /// since.
    pub fn on_shift(&self) -> Result<Vec<BaristaName>> {
        let mut listing = lock(&self.inner.listing);
        if self.inner.stale.swap(false, Ordering::SeqCst) || listing.is_none() {
            let me = Arc::downgrade(&self.inner);
            let notify = move || {
                if let Some(inner) = me.upgrade() {
                    inner.changed();
                }
            };
            match shop::watch_baristas_on_shift(&self.inner.session, notify) {
                Ok(on_shift) => *listing = Some(on_shift),
                Err(e) => {
                    self.inner.stale.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            }
        }
        Ok(listing.clone().unwrap_or_default())
    }

    /// Sends `()` on `waiter` once the group changes after this call (or at once if it
    /// already changed since the last listing).
    pub fn tell_on_change(&self, waiter: Sender<()>) {
        lock(&self.inner.waiters).push(waiter.clone());
        if self.inner.stale.load(Ordering::SeqCst) {
            let _ = waiter.send(());
        }
    }
}
