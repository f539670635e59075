//! The one error type of the library, and the exit code each error maps to.
//!
//! Errors are grouped the way an operator thinks about them: the flags or environment were wrong
//! (`Usage`), ZooKeeper could not be reached or misbehaved (`Unreachable`, `ZooKeeper`), the
//! shop's tree is not what the protocol expects (`ShopNotInitialised`, `NameInUse`), a shop
//! condition ended the role (`NoBarista`), or the program itself failed (`Internal`: a bug, or
//! the system refused it a thread or a signal handler). Every message is one line that names
//! the problem.

use std::time::Duration;

use thiserror::Error;

use crate::duration::{self, human};

/// Anything that can stop a barista, a customer or `shop-init`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag, environment variable or name was invalid; nothing was sent to ZooKeeper.
    #[error("{0}")]
    Usage(String),

    /// No ZooKeeper server answered within the connect timeout.
    #[error("cannot reach ZooKeeper at {servers} within {}: is the server running and the connect string (--zk / ZK_SERVERS) right?", human(*.waited))]
    Unreachable { servers: String, waited: Duration },

    /// ZooKeeper stayed unreachable for longer than an operation may wait.
    #[error("lost the connection to ZooKeeper while trying to {op} and could not get it back within {}", human(*.waited))]
    ConnectionLost { op: String, waited: Duration },

    /// The shop's top-level nodes are missing.
    #[error("the shop is not initialised: {missing} does not exist (run shop-init first)")]
    ShopNotInitialised { missing: String },

    /// The shop's configuration node holds something we cannot read.
    #[error("the shop's configuration (/zk-coffee/config) is unusable: {0}")]
    BadConfig(String),

    /// Another live barista already holds this name.
    #[error("barista name {0:?} is already taken by a live barista: choose another --name")]
    NameInUse(String),

    /// The customer found nobody to order from.
    #[error("no barista available: {0}")]
    NoBarista(String),

    /// The customer was stopped before it could place its order.
    #[error("gave up: {0}")]
    Left(String),

    /// Every barista's queue is at the maximum length.
    #[error("the shop is full: {0}")]
    ShopFull(String),

    /// ZooKeeper refused an operation for lack of rights.
    #[error("not authorized to {op} {path}")]
    NotAuthorized { op: String, path: String },

    /// Any other ZooKeeper failure, with the operation and path it happened on.
    #[error("ZooKeeper refused to {op} {path}: {code}")]
    ZooKeeper { op: String, path: String, code: String },

    /// The program failed, not its user: a broken internal invariant (a bug), or the system
    /// refused what the program needs to run (a thread, a signal handler).
    #[error("internal failure, not a usage error (a bug unless the system is out of resources): {what}")]
    Internal { what: String },
}

/// A `Result` whose error is the library's [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The documented exit codes of the three binaries. Keep README.md's table in sync.
pub mod exit {
    /// Success (`customer`: the order was served).
    pub const OK: u8 = 0;
    /// An unexpected failure (ZooKeeper refused an operation, a protocol problem, an internal
    /// failure).
    pub const FAILURE: u8 = 1;
    /// Bad flags, environment or names (also what clap uses for a usage error); only the
    /// user's input, never an internal failure.
    pub const USAGE: u8 = 2;
    /// `customer`: gave up waiting and withdrew the order.
    pub const GAVE_UP: u8 = 3;
    /// `customer`: no barista was registered.
    pub const NO_BARISTA: u8 = 4;
    /// ZooKeeper could not be reached, or the connection could not be regained.
    pub const UNREACHABLE: u8 = 5;
    /// The shop's nodes are missing: `shop-init` has not run against this ensemble/chroot.
    pub const NOT_INITIALISED: u8 = 6;
    /// ZooKeeper refused an operation for lack of rights.
    pub const NOT_AUTHORIZED: u8 = 7;
    /// `barista`: the name is held by another live barista.
    pub const NAME_IN_USE: u8 = 8;
    /// `customer`: every barista's queue was full.
    pub const SHOP_FULL: u8 = 9;
    /// `customer`: the barista rejected the order (it was withdrawn).
    pub const REJECTED: u8 = 10;
}

impl From<duration::Invalid> for Error {
    /// A duration that cannot be read came from a flag or the environment.
    fn from(e: duration::Invalid) -> Error {
        Error::Usage(e.to_string())
    }
}

impl Error {
    /// The process exit code for this error; the one place errors become exit codes.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => exit::USAGE,
            Error::Unreachable { .. } | Error::ConnectionLost { .. } => exit::UNREACHABLE,
            Error::ShopNotInitialised { .. } => exit::NOT_INITIALISED,
            Error::NameInUse(_) => exit::NAME_IN_USE,
            Error::NoBarista(_) => exit::NO_BARISTA,
            Error::ShopFull(_) => exit::SHOP_FULL,
            Error::Left(_) => exit::GAVE_UP,
            Error::NotAuthorized { .. } => exit::NOT_AUTHORIZED,
            Error::ZooKeeper { .. } | Error::BadConfig(_) | Error::Internal { .. } => exit::FAILURE,
        }
    }

    /// Whether waiting may cure it: ZooKeeper is unreachable for now.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unreachable { .. } | Error::ConnectionLost { .. })
    }

    /// Shorthand for a usage error.
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::Usage(msg.into())
    }

    /// Shorthand for an internal failure.
    pub fn internal(what: impl Into<String>) -> Error {
        Error::Internal { what: what.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_distinct_exit_code() {
        let errors = [
            Error::usage("x"),
            Error::Unreachable { servers: "h:1".into(), waited: Duration::from_secs(1) },
            Error::ShopNotInitialised { missing: "/orders".into() },
            Error::NameInUse("b".into()),
            Error::NoBarista("x".into()),
            Error::ShopFull("x".into()),
            Error::NotAuthorized { op: "read".into(), path: "/".into() },
            Error::ZooKeeper { op: "read".into(), path: "/".into(), code: "x".into() },
        ];
        let mut codes: Vec<u8> = errors.iter().map(Error::exit_code).collect();
        codes.push(exit::GAVE_UP);
        codes.push(exit::OK);
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n, "exit codes collide: {codes:?}");
    }

    #[test]
    fn internal_failures_exit_1_and_usage_errors_2() {
        let internal = Error::internal("\"orders\" is not an absolute znode path");
        assert_eq!(internal.exit_code(), exit::FAILURE);
        assert!(internal.to_string().starts_with("internal failure, not a usage error"), "{internal}");
        assert!(!internal.is_transient());
        assert_eq!(Error::usage("bad --patience").exit_code(), exit::USAGE);
    }

    #[test]
    fn unreadable_durations_are_usage_errors() {
        let e = Error::from(duration::parse("1h").expect_err("not a duration"));
        assert_eq!(e, Error::usage("invalid duration \"1h\": use seconds like 2 or 0.5, or 250ms"));
    }

    #[test]
    fn messages_are_one_line() {
        let e = Error::ShopNotInitialised { missing: "/orders".into() };
        assert!(!e.to_string().contains('\n'));
        assert!(e.to_string().contains("shop-init"));
    }
}
