//! The one error type of the library, and the exit code each error maps to.
//!
//! Errors are grouped the way an operator thinks about them: the flags or environment were wrong
//! (`Usage`), ZooKeeper could not be reached or misbehaved (`Unreachable`, `ZooKeeper`), the
//! shop's tree is not what the protocol expects (`ShopNotInitialised`, `NameInUse`), a shop
//! condition ended the role (`NoBarista`, `ShopFull`, `Left`: data, not prose, so that tests
//! compare them), or the program itself failed (`Internal`: a bug, or
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

    /// A server answered, but TLS with it failed: the handshake (wrong CA, an expired
    /// certificate, a refused client certificate), or one side speaks TLS and the other not.
    #[error("TLS with ZooKeeper at {server} failed: {problem}")]
    Tls { server: String, problem: String },

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
    NoBarista(Absence),

    /// The customer was stopped while waiting for a barista (`asked_for`, else anyone) to come
    /// on shift, `waited` after it arrived: it placed no order.
    #[error("gave up: stopped after {} waiting for {} to come on shift; no order was placed", human(*.waited), whom(.asked_for))]
    Left { asked_for: Option<String>, waited: Duration },

    /// The queue of every one of the `baristas` the customer may order from holds `max_queue`
    /// orders or more.
    #[error("the shop is full: every queue of the {} I may order from holds {max_queue} orders or more (--max-queue)", count(*.baristas, "barista"))]
    ShopFull { max_queue: u32, baristas: usize },

    /// ZooKeeper refused an operation for lack of rights.
    #[error("not authorized to {op} {path}")]
    NotAuthorized { op: String, path: String },

    /// Any other ZooKeeper failure, with the operation and path it happened on.
    #[error("ZooKeeper refused to {op} {path}: {code}")]
    ZooKeeper { op: String, path: String, code: String },

    /// A role could not serve HTTP (metrics, the manager's API) on `address`: in use, not
    /// permitted, or not an address of this host.
    #[error("cannot listen on {address}: {reason} (choose another --listen / --metrics-listen address)")]
    Listen { address: String, reason: String },

    /// The shop's tree uses a layout newer than this build serves (see `layout_version`).
    #[error("the shop uses layout version {found} ({path}), newer than this build's {supported}: upgrade this role to a build that serves it (see README, Upgrading)")]
    NewerLayout { path: String, found: u32, supported: u32 },

    /// The shop's layout version node holds no layout number.
    #[error("{path} should hold the shop's layout version (a number), not {data:?}")]
    BadLayoutVersion { path: String, data: String },

    /// `customer`: the shop is closed (`shop-admin close`); no order was placed.
    #[error("the shop is closed ({}); no order was placed", crate::shop::operator::said(.reason))]
    Closed { reason: String },

    /// An operator's action that does not apply now (no such barista, already closed, ...):
    /// nothing was changed.
    #[error("nothing to do: {0}")]
    NotApplicable(String),

    /// The program failed, not its user: a broken internal invariant (a bug), or the system
    /// refused what the program needs to run (a thread, a signal handler).
    #[error("internal failure, not a usage error (a bug unless the system is out of resources): {what}")]
    Internal { what: String },
}

/// Why a customer found no barista to order from ([`Error::NoBarista`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Absence {
    /// Nobody came on shift within the customer's `patience` (with `asked_for`: that barista
    /// did not).
    #[error("{} within my patience ({})", not_on_shift(.asked_for), human(*.patience))]
    NotOnShift { asked_for: Option<String>, patience: Duration },
    /// This many baristas, one after the other, left between being chosen and taking the order.
    #[error("{left} baristas left before I could order")]
    AllLeft { left: usize },
}

/// Whom a customer waits for: `barista NAME`, or `a barista`.
fn whom(asked_for: &Option<String>) -> String {
    asked_for.as_ref().map_or_else(|| "a barista".to_owned(), |name| format!("barista {name}"))
}

/// Who did not come on shift. (`/barista_group` is `layout::BARISTA_GROUP`, which this module,
/// below every other, does not import; a test checks they agree.)
fn not_on_shift(asked_for: &Option<String>) -> String {
    match asked_for {
        Some(name) => format!("barista {name} did not come on shift"),
        None => "nobody registered under /barista_group".to_owned(),
    }
}

/// `1 barista`, `2 baristas`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// A `Result` whose error is the library's [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The documented exit codes of the binaries: one table, from which come the constants, the
/// `--help` text (`cli::exit_codes_help`) and the test harness's codes. README.md's "Exit
/// codes" table must say the same; an integration test compares the two.
pub mod exit {
    /// Writes each code once: its constant (`u8`, what `ExitCode::from` takes), its row in
    /// [`TABLE`], and its constant in [`status`].
    macro_rules! exit_codes {
        ($($(#[doc = $doc:literal])* $name:ident = $code:literal => $meaning:literal;)*) => {
            $($(#[doc = $doc])* pub const $name: u8 = $code;)*

            /// Every code with its constant's name and what it means, as `--help` prints it.
            pub const TABLE: &[(u8, &str, &str)] = &[$(($code, stringify!($name), $meaning)),*];

            /// The same codes as `i32`: what `std::process::exit` takes and
            /// `ExitStatus::code` reports.
            pub mod status {
                $($(#[doc = $doc])* pub const $name: i32 = $code;)*
            }
        };
    }

    exit_codes! {
        /// Success (`customer`: the order was served).
        OK = 0 => "success (customer: served)";
        /// An unexpected failure (ZooKeeper refused an operation, a protocol problem, an internal
        /// failure).
        FAILURE = 1 => "unexpected failure (ZooKeeper refused an operation; an internal failure)";
        /// Bad flags, environment or names (also what clap uses for a usage error); only the
        /// user's input, never an internal failure.
        USAGE = 2 => "bad flags, environment or names (only what the user typed or set)";
        /// `customer`: gave up waiting and withdrew the order.
        GAVE_UP = 3 => "customer: gave up waiting and withdrew the order";
        /// `customer`: no barista was registered.
        NO_BARISTA = 4 => "customer: no barista available";
        /// ZooKeeper could not be reached, or the connection could not be regained.
        UNREACHABLE = 5 => "ZooKeeper unreachable, or the connection could not be regained";
        /// The shop's nodes are missing: `shop-init` has not run against this ensemble/chroot.
        NOT_INITIALISED = 6 => "shop not initialised (run shop-init)";
        /// ZooKeeper refused an operation for lack of rights.
        NOT_AUTHORIZED = 7 => "not authorized";
        /// `barista`: the name is held by another live barista.
        NAME_IN_USE = 8 => "barista: name held by another live barista";
        /// `customer`: every barista's queue was full.
        SHOP_FULL = 9 => "customer: every barista's queue was full";
        /// `customer`: the barista rejected the order (it was withdrawn).
        REJECTED = 10 => "customer: the barista rejected the order";
        /// `shop-manager`, `barista`: cannot listen on the HTTP address (in use, not permitted,
        /// not this host's).
        LISTEN = 11 => "cannot listen on the HTTP address (in use, not permitted, not this host's)";
        /// The shop's tree uses a layout newer than this build serves, or its layout version
        /// node is unreadable: upgrade the role (README, Upgrading).
        LAYOUT = 12 => "the shop uses a newer layout than this build serves (or an unreadable version node)";
        /// `customer`: the shop is closed (`shop-admin close`); no order was placed.
        CLOSED = 13 => "customer: the shop is closed; no order was placed";
        /// `shop-admin`: the action does not apply now (no such barista, already closed, ...);
        /// nothing was changed.
        NOT_APPLICABLE = 14 => "shop-admin: the action does not apply now (nothing was changed)";
        /// TLS with ZooKeeper failed: wrong CA, expired or refused certificate, or TLS on one
        /// side only (a plaintext client and a TLS port, or the other way round).
        TLS = 15 => "TLS with ZooKeeper failed (wrong CA, expired or refused certificate, TLS on one side only)";
    }
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
            Error::ShopFull { .. } => exit::SHOP_FULL,
            Error::Left { .. } => exit::GAVE_UP,
            Error::NotAuthorized { .. } => exit::NOT_AUTHORIZED,
            Error::Listen { .. } => exit::LISTEN,
            Error::NewerLayout { .. } | Error::BadLayoutVersion { .. } => exit::LAYOUT,
            Error::Closed { .. } => exit::CLOSED,
            Error::NotApplicable(_) => exit::NOT_APPLICABLE,
            Error::Tls { .. } => exit::TLS,
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
            Error::NoBarista(Absence::AllLeft { left: 3 }),
            Error::ShopFull { max_queue: 2, baristas: 2 },
            Error::NotAuthorized { op: "read".into(), path: "/".into() },
            Error::ZooKeeper { op: "read".into(), path: "/".into(), code: "x".into() },
            Error::Listen { address: "127.0.0.1:1".into(), reason: "address in use".into() },
            Error::Tls { server: "h:1".into(), problem: "x".into() },
        ];
        let mut codes: Vec<u8> = errors.iter().map(Error::exit_code).collect();
        codes.push(Error::Left { asked_for: None, waited: Duration::from_secs(1) }.exit_code());
        codes.push(exit::OK);
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n, "exit codes collide: {codes:?}");
    }

    #[test]
    fn the_exit_table_lists_each_code_once_in_order() {
        let codes: Vec<u8> = exit::TABLE.iter().map(|(code, _, _)| *code).collect();
        let count = u8::try_from(exit::TABLE.len()).expect("fewer than 256 codes");
        assert_eq!(codes, (0..count).collect::<Vec<u8>>());
        assert_eq!(exit::TABLE[usize::from(exit::NAME_IN_USE)].1, "NAME_IN_USE");
        assert_eq!(exit::status::REJECTED, i32::from(exit::REJECTED));
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

    #[test]
    fn shop_conditions_carry_data_and_say_it() {
        let patience = Duration::from_millis(500);
        let nobody = Error::NoBarista(Absence::NotOnShift { asked_for: None, patience });
        assert_eq!(nobody, Error::NoBarista(Absence::NotOnShift { asked_for: None, patience }));
        assert_ne!(nobody, Error::NoBarista(Absence::NotOnShift { asked_for: Some("b".into()), patience }));
        let group = crate::layout::BARISTA_GROUP;
        assert_eq!(
            nobody.to_string(),
            format!("no barista available: nobody registered under {group} within my patience (500ms)")
        );
        let absent = Error::NoBarista(Absence::NotOnShift { asked_for: Some("absent".into()), patience: Duration::from_secs(2) });
        assert_eq!(absent.to_string(), "no barista available: barista absent did not come on shift within my patience (2s)");
        let all_left = Error::NoBarista(Absence::AllLeft { left: 3 });
        assert_eq!(all_left.to_string(), "no barista available: 3 baristas left before I could order");
        assert_eq!(all_left.exit_code(), exit::NO_BARISTA);

        let full = Error::ShopFull { max_queue: 2, baristas: 1 };
        assert_eq!(full, Error::ShopFull { max_queue: 2, baristas: 1 });
        assert_eq!(
            full.to_string(),
            "the shop is full: every queue of the 1 barista I may order from holds 2 orders or more (--max-queue)"
        );
        let full = Error::ShopFull { max_queue: 50, baristas: 3 };
        assert!(full.to_string().contains("of the 3 baristas I may order from holds 50 orders"), "{full}");

        let left = Error::Left { asked_for: None, waited: Duration::from_millis(1500) };
        assert_eq!(left, Error::Left { asked_for: None, waited: Duration::from_millis(1500) });
        assert_eq!(left.to_string(), "gave up: stopped after 1.5s waiting for a barista to come on shift; no order was placed");
        let left = Error::Left { asked_for: Some("b1".into()), waited: Duration::from_secs(3) };
        assert!(left.to_string().contains("stopped after 3s waiting for barista b1 to come on shift"), "{left}");
        assert_eq!(left.exit_code(), exit::GAVE_UP);
        for e in [nobody, absent, all_left, full, left] {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}
