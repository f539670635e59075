//! A stop request shared between whoever asks for it (a signal handler, a test) and the role
//! that honours it.
//!
//! The first request asks for a graceful stop; a second one asks to stop at once. Roles that
//! block waiting for something register a waker so a request interrupts the wait.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::lock;

type Waker = Box<dyn Fn() + Send>;

/// How urgently the role has been asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    /// Keep working.
    No,
    /// Finish what is in hand, hand over the rest, then stop.
    Graceful,
    /// Stop now (a second signal).
    Now,
}

/// Cloneable handle to one stop request.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// How many times a stop was requested.
    requests: AtomicUsize,
    wakers: Mutex<Vec<(u64, Waker)>>,
    /// Numbers the wakers, so each can be removed.
    next_waker: AtomicU64,
}

impl Shutdown {
    /// A fresh handle with no stop requested.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks the role to stop (again): the first call is graceful, later ones urgent.
    pub fn request(&self) {
        self.inner.requests.fetch_add(1, Ordering::SeqCst);
        let wakers = lock(&self.inner.wakers);
        for (_, wake) in wakers.iter() {
            wake();
        }
    }

    /// What has been asked so far.
    pub fn state(&self) -> Stop {
        match self.inner.requests.load(Ordering::SeqCst) {
            0 => Stop::No,
            1 => Stop::Graceful,
            _ => Stop::Now,
        }
    }

    /// Runs `wake` on every later request, e.g. to send on the channel the role waits on,
    /// until the returned [`Hook`] is dropped.
    #[must_use = "the waker is removed when the hook is dropped"]
    pub fn on_request(&self, wake: impl Fn() + Send + 'static) -> Hook {
        let id = self.inner.next_waker.fetch_add(1, Ordering::SeqCst);
        lock(&self.inner.wakers).push((id, Box::new(wake)));
        Hook { inner: Arc::downgrade(&self.inner), id }
    }
}

/// Keeps a [`Shutdown::on_request`] waker registered; dropping it removes the waker.
pub struct Hook {
    inner: Weak<Inner>,
    id: u64,
}

impl Drop for Hook {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.wakers).retain(|(id, _)| *id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn first_request_is_graceful_second_is_now() {
        let shutdown = Shutdown::new();
        let (tx, rx) = mpsc::channel();
        let _hook = shutdown.on_request(move || {
            let _ = tx.send(());
        });
        assert_eq!(shutdown.state(), Stop::No);
        shutdown.clone().request();
        assert_eq!(shutdown.state(), Stop::Graceful);
        shutdown.request();
        assert_eq!(shutdown.state(), Stop::Now);
        assert_eq!(rx.try_iter().count(), 2);
    }

    #[test]
    fn dropped_hooks_are_not_woken() {
        let shutdown = Shutdown::new();
        let (tx, rx) = mpsc::channel();
        drop(shutdown.on_request(move || {
            let _ = tx.send(());
        }));
        shutdown.request();
        assert_eq!(rx.try_iter().count(), 0);
    }
}
