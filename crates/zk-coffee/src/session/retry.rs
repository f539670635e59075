//! How one call runs: the async-to-blocking bridge (a parked thread, no timer), one attempt
//! with its own deadline, and the retry core, which retries connection loss with backoff until
//! the operation deadline and sorts what the client answered into a [`Failure`] the calling
//! method interprets.

use std::future::Future;
use std::time::{Duration, Instant};

use log::debug;
use zookeeper_client as zkc;

use super::Session;
use crate::error::{Error, Result};

/// First pause after a connection loss; doubled on each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between retries, so that recovery is noticed within a second.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Checks that `path` is absolute before it is sent: paths come from `layout`, so a bad one
/// is a bug.
pub(super) fn check_path(path: &str) -> Result<()> {
    if path.starts_with('/') && (path == "/" || !path.ends_with('/')) {
        Ok(())
    } else {
        Err(Error::internal(format!("{path:?} is not an absolute znode path")))
    }
}

/// Runs `future` to completion on this thread, or gives up after `timeout`.
///
/// The thread parks until the future's waker unparks it or the deadline passes. (A timer of
/// the async runtime would do the same, at the price of waking the runtime's reactor thread on
/// every call: measured, a third of a busy barista's CPU.)
pub(super) fn block_on_for<T>(timeout: Duration, future: impl Future<Output = T>) -> Option<T> {
    thread_local! {
        // One parker per thread, reused: calls never nest.
        static PARKER: (parking::Parker, std::task::Waker) = {
            let (parker, unparker) = parking::pair();
            (parker, std::task::Waker::from(unparker))
        };
    }
    let deadline = Instant::now() + timeout;
    let mut future = std::pin::pin!(future);
    PARKER.with(|(parker, waker)| {
        let mut cx = std::task::Context::from_waker(waker);
        loop {
            if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return Some(value);
            }
            if !parker.park_deadline(deadline) && Instant::now() >= deadline {
                return None;
            }
        }
    })
}

/// The pauses between retries of one operation, and its deadline.
pub(super) struct Backoff {
    started: Instant,
    limit: Duration,
    /// The next pause.
    next: Duration,
}

impl Backoff {
    /// Starts the clock of an operation that may take `limit`.
    pub(super) fn new(limit: Duration) -> Backoff {
        Backoff { started: Instant::now(), limit, next: FIRST_BACKOFF }
    }

    /// How long since the operation started.
    pub(super) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What is left until the deadline, but at least a first pause: one more attempt's time.
    fn left(&self) -> Duration {
        self.limit.saturating_sub(self.elapsed()).max(FIRST_BACKOFF)
    }

    /// Whether the deadline has passed.
    pub(super) fn expired(&self) -> bool {
        self.elapsed() >= self.limit
    }

    /// Sleeps the next pause and doubles it; `false`, without sleeping, when the pause would
    /// end past the deadline.
    pub(super) fn pause(&mut self) -> bool {
        if self.elapsed() + self.next > self.limit {
            return false;
        }
        std::thread::sleep(self.next);
        self.next = (self.next * 2).min(MAX_BACKOFF);
        true
    }
}

/// Why a call failed after retries.
pub(super) enum Failure {
    /// The server answered with this error.
    Zk(zkc::Error),
    /// Connection loss for this long.
    Lost(Duration),
    /// A problem found before calling.
    Fatal(Error),
}

impl Failure {
    /// The library's error for this failure of `op` (e.g. "read") on `path`.
    pub(super) fn into_error(self, op: &str, path: &str) -> Error {
        match self {
            Failure::Zk(zkc::Error::NoAuth | zkc::Error::AuthFailed) => Error::NotAuthorized { op: op.into(), path: path.into() },
            Failure::Zk(code) => Error::ZooKeeper { op: op.into(), path: path.into(), code: code.to_string() },
            Failure::Lost(waited) => Error::ConnectionLost { op: format!("{op} {path}"), waited },
            Failure::Fatal(e) => e,
        }
    }
}

/// `None` for a node that does not exist, else what [`Failure::into_error`] makes of it.
pub(super) fn optional<T>(result: std::result::Result<T, Failure>, op: &str, path: &str) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(Failure::Zk(zkc::Error::NoNode)) => Ok(None),
        Err(f) => Err(f.into_error(op, path)),
    }
}

impl Session {
    /// How long one attempt may wait for its answer: long enough for any healthy server,
    /// short enough that a whole operation deadline spans several attempts.
    fn attempt_timeout(&self) -> Duration {
        (self.inner.config.session_timeout / 2).max(Duration::from_millis(200))
    }

    /// Runs `f` once on the live client, waiting at most `timeout`.
    fn attempt<T, F, Fut>(&self, timeout: Duration, f: &F) -> std::result::Result<T, Failure>
    where
        F: Fn(zkc::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zkc::Error>>,
    {
        let (client, generation) = self.client(timeout).map_err(|e| match e {
            e @ (Error::Usage(_) | Error::Internal { .. }) => Failure::Fatal(e),
            e => {
                debug!("{e}");
                Failure::Lost(Duration::ZERO)
            }
        })?;
        match block_on_for(timeout, f(client)) {
            // The client fails requests in flight on a broken connection with the connection's
            // own error (`Custom`: an I/O error, or no response within 2/5 of the session
            // timeout), later ones with `ConnectionLoss` until it has reconnected.
            None | Some(Err(zkc::Error::ConnectionLoss | zkc::Error::Timeout | zkc::Error::Custom(_))) => {
                Err(Failure::Lost(Duration::ZERO))
            }
            Some(Err(zkc::Error::SessionExpired | zkc::Error::ClientClosed | zkc::Error::SessionMoved)) => {
                // This client's session, not necessarily the current one: another thread may
                // have replaced it meanwhile.
                self.forget(generation);
                Err(Failure::Lost(Duration::ZERO))
            }
            Some(Err(code)) => Err(Failure::Zk(code)),
            Some(Ok(v)) => Ok(v),
        }
    }

    /// Runs `f` on the live client, retrying connection loss with backoff until the operation
    /// deadline (the session timeout) has passed. Returns the
    /// client's error for the caller to interpret; a persistent loss becomes `Failure::Lost`.
    pub(super) fn call<T, F, Fut>(&self, path: &str, f: F) -> std::result::Result<T, Failure>
    where
        F: Fn(zkc::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zkc::Error>>,
    {
        check_path(path).map_err(Failure::Fatal)?;
        let mut backoff = Backoff::new(self.inner.config.session_timeout);
        loop {
            match self.attempt(self.attempt_timeout().min(backoff.left()), &f) {
                Err(Failure::Lost(_)) => debug!("{path}: connection loss, retrying in {:?}", backoff.next),
                other => return other,
            }
            if !backoff.pause() {
                return Err(Failure::Lost(backoff.elapsed()));
            }
        }
    }

    /// Runs `f` once, without retrying: for calls that must not run twice.
    pub(super) fn call_once<T, F, Fut>(&self, path: &str, f: F) -> std::result::Result<T, Failure>
    where
        F: Fn(zkc::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zkc::Error>>,
    {
        check_path(path).map_err(Failure::Fatal)?;
        self.attempt(self.attempt_timeout(), &f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_refused_as_internal_failures() {
        assert!(check_path("/orders").is_ok());
        assert!(check_path("/").is_ok());
        for bad in ["orders", "/orders/"] {
            // Paths come from `layout`, never from the user: a bad one is a bug (exit 1).
            match check_path(bad) {
                Err(e @ Error::Internal { .. }) => assert_eq!(e.exit_code(), crate::error::exit::FAILURE),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
