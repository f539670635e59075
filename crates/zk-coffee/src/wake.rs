//! One channel for everything a role waits for, and the one-shot watches that send to it.
//!
//! A role that waits (a barista between orders, a customer for its coffee) blocks on one
//! receiver with a timeout; the stop request, the session's events and its watches all send
//! to it, each as the role's own kind of wake-up. A [`Wakes`] channel is wired the same way
//! for both roles: it hears a [`Shutdown`] request for as long as it lives, and, if asked, the
//! session's events; watches get a [`Wakes::waker`] or a clone of its sender.
//!
//! A role that sets one-shot watches again and again (the barista, each time it looks at the
//! group, the buckets or a claim) keeps them in an [`Armed`] set, so that looking again does
//! not set a second watch on the same node (each would fire).

use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, Sender, TryIter};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Result;
use crate::lock;
use crate::session::{Session, SessionEvent, Subscription};
use crate::shutdown::{Hook, Shutdown};

/// The channel a role waits on, with the hooks that feed it.
pub(crate) struct Wakes<W> {
    tx: Sender<W>,
    rx: Receiver<W>,
    /// Sends the stop wake-up on each stop request while the channel lives.
    _stop: Hook,
    /// Sends the session's events while the channel lives (`None`: not asked for).
    _session: Option<Subscription>,
}

impl<W: Clone + Send + Sync + 'static> Wakes<W> {
    /// A channel that hears every stop request on `shutdown` as `stop`.
    pub(crate) fn new(shutdown: &Shutdown, stop: W) -> Wakes<W> {
        let (tx, rx) = mpsc::channel();
        let stop_tx = tx.clone();
        let stop_hook = shutdown.on_request(move || {
            let _ = stop_tx.send(stop.clone());
        });
        Wakes { tx, rx, _stop: stop_hook, _session: None }
    }

    /// Also hears each of `session`'s events, as `wake` makes of it.
    pub(crate) fn hear_session(
        mut self,
        session: &Session,
        wake: impl Fn(SessionEvent) -> W + Send + Sync + 'static,
    ) -> Wakes<W> {
        let tx = self.tx.clone();
        self._session = Some(session.subscribe(move |event| {
            let _ = tx.send(wake(event));
        }));
        self
    }

    /// Where others (a watch, a board) send their wake-ups.
    pub(crate) fn sender(&self) -> Sender<W> {
        self.tx.clone()
    }

    /// Sends `wake` to ourselves: look again without waiting.
    pub(crate) fn send(&self, wake: W) {
        let _ = self.tx.send(wake);
    }

    /// A closure that sends `wake` to ourselves, for a watch.
    pub(crate) fn waker(&self, wake: W) -> impl Fn() + Send + Sync + 'static {
        let tx = self.tx.clone();
        move || {
            let _ = tx.send(wake.clone());
        }
    }

    /// The next wake-up, waiting up to `timeout` for it (`None`: none came).
    pub(crate) fn wait(&self, timeout: Duration) -> Option<W> {
        // Timed out, or (never while we hold a sender) disconnected.
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next wake-up already queued, without waiting.
    pub(crate) fn take(&self) -> Option<W> {
        self.rx.try_recv().ok()
    }

    /// The wake-ups already queued, without waiting.
    pub(crate) fn queued(&self) -> TryIter<'_, W> {
        self.rx.try_iter()
    }
}

/// The one-shot watches a role has set and that have not fired yet, by path, so that looking
/// again does not set a second watch on the same node (each would fire).
#[derive(Clone, Default)]
pub(crate) struct Armed(Arc<Mutex<(u64, HashSet<String>)>>);

impl Armed {
    /// Whether to set a watch on `path` now, on session `generation`: `true` (and marked set)
    /// unless one is outstanding. The watches of an earlier session went with it.
    fn arm(&self, path: &str, generation: u64) -> bool {
        let mut armed = lock(&self.0);
        if armed.0 != generation {
            *armed = (generation, HashSet::new());
        }
        armed.1.insert(path.to_owned())
    }

    /// The watch on `path` fired (or was never set after all).
    pub(crate) fn fired(&self, path: &str) {
        lock(&self.0).1.remove(path);
    }

    /// Sets a one-shot watch on `path` with `set`, on session `generation`, unless one of ours
    /// is outstanding (then `None`: that one will tell). `set` gets the watch's closure, which
    /// marks the watch fired and runs `then`; if `set` fails, no watch counts as set.
    pub(crate) fn watch<T>(
        &self,
        generation: u64,
        path: &str,
        then: impl Fn() + Send + Sync + 'static,
        set: impl FnOnce(Box<dyn Fn() + Send + Sync>) -> Result<T>,
    ) -> Result<Option<T>> {
        if !self.arm(path, generation) {
            return Ok(None);
        }
        let (armed, fired_path) = (self.clone(), path.to_owned());
        let notify = move || {
            armed.fired(&fired_path);
            then();
        };
        set(Box::new(notify)).inspect_err(|_| self.fired(path)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_watched_again_only_after_its_watch_fired_or_its_session_went() {
        let armed = Armed::default();
        assert!(armed.arm("/barista_group", 1), "first look sets the watch");
        assert!(!armed.arm("/barista_group", 1), "a second look while it is outstanding does not");
        assert!(armed.arm("/orders", 1), "another path is another watch");
        armed.fired("/barista_group");
        assert!(armed.arm("/barista_group", 1), "after it fired, the next look sets it again");
        assert!(armed.arm("/orders", 2), "a new session holds none of the old watches");
        assert!(!armed.arm("/orders", 2));
    }

    #[test]
    fn a_watch_that_fires_or_fails_to_be_set_is_set_again_on_the_next_look() {
        let armed = Armed::default();
        let (tx, rx) = mpsc::channel();
        let mut fire = None;
        let set = armed.watch(
            1,
            "/orders",
            move || tx.send(()).expect("receiver alive"),
            |notify| {
                fire = Some(notify);
                Ok(())
            },
        );
        assert_eq!(set.ok(), Some(Some(())), "the first look sets it");
        assert_eq!(armed.watch(1, "/orders", || {}, |_| Ok(())).ok(), Some(None), "outstanding");
        fire.expect("set")();
        assert_eq!(rx.try_recv(), Ok(()), "firing runs the wake-up");
        let failed = armed.watch(1, "/orders", || {}, |_| Err::<(), _>(crate::Error::usage("no")));
        assert!(failed.is_err());
        assert_eq!(armed.watch(1, "/orders", || {}, |_| Ok(())).ok(), Some(Some(())), "a failed set is no watch");
    }
}
