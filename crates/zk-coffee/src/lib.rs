//! zk-coffee: a coffee shop run by independent processes that coordinate only through
//! Apache ZooKeeper.
//!
//! Baristas register on shift and serve the orders placed in their bucket; customers pick a
//! barista, place an order and wait to be served. Each role is its own OS process on any host;
//! the binaries (`barista`, `customer`, `shop-init`, `shop-status`) only parse flags and
//! report, and all the logic lives here.
//!
//! # Layout
//!
//! - [`layout`]: the znode layout of the wire contract; the only place paths are built.
//! - [`session`]: the ZooKeeper session, the only module that talks to the client crate
//!   (`zookeeper-client`), a folder that uses no shop module: `connect_string`, `credentials`
//!   (digest auth), `acl` (permission bits, grants), `retry` (the async-to-blocking bridge,
//!   deadlines and backoff on every call), `state` (new sessions after expiry, generations,
//!   subscribers), `nodes`, `watches` (one-shot and tree watches), `protected` (protected
//!   sequential creates) and `multi` (transactions).
//! - [`shop`]: creating and checking the shop's top-level nodes, listing baristas on shift.
//! - [`barista`]: the barista role, a folder: the shift loop (`mod.rs`), then one file per
//!   part, each owning its state: `joining` (registering, restarts), `adoption` (orphaned
//!   buckets, claims), `serving` (the buckets served, batches, the ledger), `leaving`
//!   (hand-over, drain), and [`barista::Bucket`], its view of one bucket, kept current by a
//!   watch (formerly `queue::Queue`, still there as an alias).
//! - `wake` (crate-private): the one channel a role waits on, fed by stop requests, session
//!   events and watches, and the one-shot watches outstanding; both roles use it.
//! - [`customer`]: the customer role, and how it chooses a barista.
//! - [`roster`]: the baristas on shift as customers see them, kept under a watch.
//! - [`board`]: the queue lengths and served orders of the whole shop from one watch, for
//!   the load generator's customers.
//! - [`load`]: many customers at once from one process, and the summary of a run.
//! - [`registration`]: what a barista writes into its membership node.
//! - [`liveness`]: whether the process behind a stale registration is certainly gone.
//! - [`menu`]: the coffees on offer.
//! - [`order`]: what an order's data may hold, and how a barista rejects one it cannot make.
//! - [`config`]: the shop's configuration in ZooKeeper (menu, brew times, maximum queue).
//! - [`security`]: the roles and the ACL table of a secured shop, built on the session's
//!   credentials and grants.
//! - [`sales`]: each barista's sales ledger, counted exactly once per served order.
//! - [`status`]: the shop at a glance (`shop-status`).
//! - [`shutdown`]: stop requests shared between a signal handler (or a test) and a role.
//! - [`duration`]: durations as people type and read them.
//! - [`cli`]: what the binaries share: connection flags, logging, signals, exit codes.
//! - [`error`]: the one error type, and the exit code of each error.
//!
//! # ZooKeeper tree
//!
//! ```text
//! /barista_group            persistent, data "0"
//!     /{barista}            EPHEMERAL: on shift; data = key=value facts (see registration)
//! /orders                   persistent, data "0"
//!     /{barista}            persistent: the barista's bucket, holding orders only
//!         /coffee0000000042 PERSISTENT_SEQUENTIAL: an order; data = coffee name (UTF-8)
//! /zk-coffee                persistent: everything this project adds (see layout)
//!     /config, /acl, /claims/{barista}, /sales/{barista}
//! ```
//!
//! A barista is named `{hostname}_{pid}` unless told otherwise. An order is served when the
//! barista deletes it; the customer learns it from a watch on the order. `--shop NAME` puts
//! the same tree under the chroot `/shops/NAME`.

pub mod barista;
pub mod board;
pub mod cli;
pub mod config;
pub mod customer;
pub mod duration;
pub mod error;
pub mod layout;
pub mod liveness;
pub mod load;
pub mod menu;
pub mod order;
pub mod registration;
pub mod roster;
pub mod sales;
pub mod security;
pub mod session;
pub mod shop;
pub mod shutdown;
pub mod status;
mod wake;

pub use error::{Error, Result};
pub use layout::{BaristaName, OrderName};
pub use menu::Menu;
pub use session::{ConnectString, Session, SessionConfig};
pub use shutdown::Shutdown;

/// The barista's view of one bucket under its old name: now [`barista::Bucket`], in the
/// barista's folder.
pub mod queue {
    pub use crate::barista::Bucket as Queue;
}

/// Locks `m`, carrying on if another thread panicked while holding it: what the shop keeps
/// behind its locks stays consistent between statements, and a role must not die of another
/// thread's panic.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
