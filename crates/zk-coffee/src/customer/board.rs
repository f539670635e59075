//! The orders of the whole shop as a front desk sees them: for the many customers of one
//! process (the load generator with `--watch-all-orders`), one watch on all of `/orders`
//! replaces the per-order work of a lone customer. It hears of every order in the shop, so it
//! pays only for a load process alone with the shop; several such processes each hear all.
//!
//! A lone customer reads the queue lengths of its two picks before ordering and sets a watch
//! on its order after placing it: three requests besides the order itself. A [`Board`] sets
//! one persistent recursive watch on `/orders` and learns from its events, for every bucket,
//! each order placed and each order served or withdrawn. So it keeps the queue lengths (read
//! once per bucket, then counted), and tells each waiting customer when its order is deleted
//! (served) or changed (rejected): placing an order is then the only request a customer
//! makes. The counts are as good as a customer's own reads would be a moment later: a bucket
//! read while orders come and go may be off by the orders placed during that one read, until
//! it is read again (after a reconnect, or when its barista leaves and comes back).
//!
//! ZooKeeper sends the reply to a create before the events of that node's change or deletion,
//! but the customer's thread may start waiting only after the event was handled (a barista
//! with nothing to brew often serves, or rejects, an order that fast); so what happened to an
//! order nobody waited for is remembered for a few seconds, and a customer who
//! starts waiting hears of it at once. After a reconnect the watch is set again and every
//! waiting customer is told to look at its order, since events in between were not reported;
//! after a lost session the watch is set again on the new one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::layout::{self, BaristaName, UnderOrders};
use crate::lock;
use crate::session::{Session, SessionEvent, Subscription, TreeEvent, TreeWatch};

/// How long news of an order is remembered for a customer who starts waiting after it.
const RECENT: Duration = Duration::from_secs(5);

/// What a waiting customer hears about its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum News {
    /// The order was deleted: served (or withdrawn by the customer itself).
    Deleted,
    /// The order's data changed (a barista rejected it), or events may have been missed:
    /// look at the order.
    Look,
}

/// A customer waiting for news of its order.
type Waiter = Box<dyn Fn(News) + Send>;

/// One watch on `/orders` shared by the customers of a process. Cheap to clone.
#[derive(Clone)]
pub struct Board {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    state: Mutex<State>,
    /// The watch, with the session generation it was set on. Held while setting it.
    watch: Mutex<Option<(u64, TreeWatch)>>,
    /// Hears when the session is lost (the watch with it).
    _subscription: Subscription,
}

#[derive(Default)]
struct State {
    /// Orders per bucket (by barista), as read once and counted since; absent: not read.
    queues: HashMap<String, u32>,
    /// Customers waiting for news, by the full path of their order.
    waiting: HashMap<String, Waiter>,
    /// Orders deleted or changed in the last [`RECENT`] while nobody waited for them, oldest
    /// first, and what happened to each (a deletion outweighs a change).
    recent: VecDeque<(Instant, String)>,
    recent_news: HashMap<String, News>,
}

impl State {
    fn apply(&mut self, event: TreeEvent) {
        let (path, created) = match event {
            TreeEvent::Created(path) => (path, true),
            TreeEvent::Deleted(path) => (path, false),
            TreeEvent::Changed(path) => {
                match self.waiting.get(&path) {
                    Some(waiter) => waiter(News::Look),
                    None => self.remember(path, News::Look),
                }
                return;
            }
            TreeEvent::Restored => {
                // Counts may be off and deletions missed: read again, and look.
                self.queues.clear();
                self.waiting.values().for_each(|waiter| waiter(News::Look));
                return;
            }
        };
        match layout::under_orders(&path) {
            UnderOrders::Bucket(barista) => {
                // A bucket made or removed: read it afresh when next asked.
                self.queues.remove(barista);
            }
            UnderOrders::Child { barista, .. } => {
                if let Some(n) = self.queues.get_mut(barista) {
                    *n = if created { n.saturating_add(1) } else { n.saturating_sub(1) };
                }
                if !created {
                    match self.waiting.remove(&path) {
                        Some(waiter) => waiter(News::Deleted),
                        None => self.remember(path, News::Deleted),
                    }
                }
            }
            UnderOrders::Other => {}
        }
    }

    /// Remembers news of an order nobody waits for yet, and forgets old news.
    fn remember(&mut self, path: String, news: News) {
        let now = Instant::now();
        while let Some((at, _)) = self.recent.front() {
            if now.duration_since(*at) < RECENT {
                break;
            }
            if let Some((_, old)) = self.recent.pop_front() {
                self.recent_news.remove(&old);
            }
        }
        match self.recent_news.get_mut(&path) {
            Some(known) => {
                if news == News::Deleted {
                    *known = News::Deleted;
                }
            }
            None => {
                self.recent_news.insert(path.clone(), news);
                self.recent.push_back((now, path));
            }
        }
    }
}

impl Board {
    /// A board over `session`'s shop; the watch is set when first needed.
    pub fn new(session: &Session) -> Board {
        let inner = Arc::new_cyclic(|me: &Weak<Inner>| {
            let me = me.clone();
            // A lost session takes the watch with it: every waiting customer looks at its order
            // (and sets the watch again on the new session, see `ensure_watch`).
            let subscription = session.subscribe(move |event| {
                if let (SessionEvent::Lost, Some(inner)) = (event, me.upgrade()) {
                    lock(&inner.state).waiting.values().for_each(|waiter| waiter(News::Look));
                }
            });
            Inner {
                session: session.clone(),
                state: Mutex::new(State::default()),
                watch: Mutex::new(None),
                _subscription: subscription,
            }
        });
        Board { inner }
    }

    /// Sets the watch on the current session unless it is set already: before a customer
    /// looks at its order, so that the news after the look reaches it.
    pub fn ensure_watch(&self) -> Result<()> {
        let mut watch = lock(&self.inner.watch);
        let generation = self.inner.session.generation();
        if watch.as_ref().is_some_and(|(g, _)| *g == generation) {
            return Ok(());
        }
        // A new session: the old watch went with the old one, and with it any news.
        *watch = None;
        let state = Arc::downgrade(&self.inner);
        let notify = move |event| {
            if let Some(inner) = Weak::upgrade(&state) {
                lock(&inner.state).apply(event);
            }
        };
        let tree = self.inner.session.watch_tree(layout::ORDERS, notify)?;
        let mut state = lock(&self.inner.state);
        state.queues.clear();
        state.waiting.values().for_each(|waiter| waiter(News::Look));
        drop(state);
        *watch = Some((generation, tree));
        Ok(())
    }

    /// How many orders wait for each of `baristas` (`None`: the bucket does not exist). Buckets
    /// not counted yet are read, together, in one round trip.
    pub fn queue_lengths(&self, baristas: &[BaristaName]) -> Result<Vec<Option<u32>>> {
        self.ensure_watch()?;
        let unknown: Vec<&BaristaName> = {
            let state = lock(&self.inner.state);
            baristas.iter().filter(|b| !state.queues.contains_key(b.as_str())).collect()
        };
        if !unknown.is_empty() {
            let buckets: Vec<String> = unknown.iter().map(|b| layout::bucket(b)).collect();
            let counts = self.inner.session.child_counts(&buckets)?;
            let mut state = lock(&self.inner.state);
            for (barista, count) in unknown.into_iter().zip(counts) {
                if let Some(count) = count {
                    state.queues.insert(barista.to_string(), count);
                }
            }
        }
        let state = lock(&self.inner.state);
        Ok(baristas.iter().map(|b| state.queues.get(b.as_str()).copied()).collect())
    }

    /// Tells `notify` what becomes of the order at `path` until the returned [`Waiting`] is
    /// dropped, starting with what happened to it lately, if anything.
    pub fn wait_for(&self, path: &str, notify: impl Fn(News) + Send + 'static) -> Waiting {
        let mut state = lock(&self.inner.state);
        match state.recent_news.get(path).copied() {
            Some(News::Deleted) => notify(News::Deleted),
            Some(News::Look) => {
                notify(News::Look);
                state.waiting.insert(path.to_owned(), Box::new(notify));
            }
            None => {
                state.waiting.insert(path.to_owned(), Box::new(notify));
            }
        }
        Waiting { board: self.clone(), path: path.to_owned() }
    }
}

/// A customer's wait for news of its order; dropping it stops the news.
pub struct Waiting {
    board: Board,
    path: String,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        lock(&self.board.inner.state).waiting.remove(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn order(barista: &str, n: u64) -> String {
        format!("/orders/{barista}/coffee{n:010}")
    }

    #[test]
    fn counts_follow_the_orders_placed_and_served() {
        let mut state = State::default();
        state.queues.insert("b1".into(), 2);
        state.apply(TreeEvent::Created(order("b1", 3)));
        state.apply(TreeEvent::Created(order("b2", 1))); // not counted yet: left alone
        state.apply(TreeEvent::Deleted(order("b1", 1)));
        state.apply(TreeEvent::Created(order("b1", 4)));
        assert_eq!(state.queues.get("b1"), Some(&3));
        assert_eq!(state.queues.get("b2"), None);
        state.apply(TreeEvent::Deleted("/orders/b1".into()));
        assert_eq!(state.queues.get("b1"), None, "a removed bucket is read afresh");
        state.queues.insert("b1".into(), 0);
        state.apply(TreeEvent::Deleted(order("b1", 9)));
        assert_eq!(state.queues.get("b1"), Some(&0), "never below zero");
    }

    #[test]
    fn waiters_hear_of_deletions_and_changes_and_late_waiters_of_recent_deletions() {
        let mut state = State::default();
        let (tx, rx) = mpsc::channel();
        let waiter = move |news| tx.send(news).expect("receiver alive");
        state.waiting.insert(order("b1", 1), Box::new(waiter.clone()));
        state.apply(TreeEvent::Changed(order("b1", 1)));
        state.apply(TreeEvent::Deleted(order("b1", 1)));
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [News::Look, News::Deleted]);
        assert!(state.waiting.is_empty(), "a deletion ends the wait");

        state.apply(TreeEvent::Deleted(order("b1", 2)));
        assert_eq!(state.recent_news.get(&order("b1", 2)), Some(&News::Deleted), "remembered for a late waiter");
        state.apply(TreeEvent::Changed(order("b1", 5)));
        assert_eq!(state.recent_news.get(&order("b1", 5)), Some(&News::Look), "a rejection nobody waited for yet");
        state.apply(TreeEvent::Deleted(order("b1", 5)));
        assert_eq!(state.recent_news.get(&order("b1", 5)), Some(&News::Deleted), "a deletion outweighs a change");
        state.waiting.insert(order("b1", 3), Box::new(waiter));
        state.apply(TreeEvent::Restored);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [News::Look]);
    }

    #[test]
    fn old_deletions_are_forgotten() {
        let mut state = State::default();
        let long_ago = Instant::now().checked_sub(RECENT * 2).expect("clock far enough from its start");
        state.recent.push_back((long_ago, order("b1", 1)));
        state.recent_news.insert(order("b1", 1), News::Deleted);
        state.remember(order("b1", 2), News::Look);
        assert!(!state.recent_news.contains_key(&order("b1", 1)));
        assert!(state.recent_news.contains_key(&order("b1", 2)));
        assert_eq!(state.recent.len(), 1);
    }
}
