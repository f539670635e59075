//! One channel for everything a role waits for, and the one-shot watches that send to it.
//!
//! A role that waits (a barista between orders, a customer for its coffee) blocks on one
//! receiver with a timeout; the stop request, the session's events and its watches all send
//! to it, each as the role's own kind of wake-up. A [`Wakes`] channel is wired the same way
//! for both roles: it hears a [`Shutdown`] request for as long as it lives, and, if asked, the
//! session's events; watches get a [`Wakes::waker`] or a clone of its sender.

use std::sync::mpsc::{self, Receiver, Sender, TryIter};
use std::time::Duration;

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
