//! A stop request shared between whoever asks for it (a signal handler, a test) and the role
//! that honours it.
//!
//! The first request asks for a graceful stop; a second one asks to stop at once. Roles that
//! block waiting for something register a waker so a request interrupts the wait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    wakers: Mutex<Vec<Waker>>,
}

impl Shutdown {
    /// A fresh handle with no stop requested.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks the role to stop (again): the first call is graceful, later ones urgent.
    pub fn request(&self) {
        self.inner.requests.fetch_add(1, Ordering::SeqCst);
        let wakers = self.inner.wakers.lock().unwrap_or_else(|p| p.into_inner());
        for wake in wakers.iter() {
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

    /// Runs `wake` on every later request, e.g. to send on the channel the role waits on.
    pub fn on_request(&self, wake: impl Fn() + Send + 'static) {
        self.inner.wakers.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(wake));
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
        shutdown.on_request(move || {
            let _ = tx.send(());
        });
        assert_eq!(shutdown.state(), Stop::No);
        shutdown.clone().request();
        assert_eq!(shutdown.state(), Stop::Graceful);
        shutdown.request();
        assert_eq!(shutdown.state(), Stop::Now);
        assert_eq!(rx.try_iter().count(), 2);
    }
}
