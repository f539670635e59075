//! zk-coffee: a coffee shop run by independent processes that coordinate only through
//! Apache ZooKeeper.
//!
//! Baristas register on shift and serve the orders placed in their bucket; customers pick a
//! barista, place an order and wait to be served. Each role is its own OS process on any host;
//! the binaries (`barista`, `customer`, `shop-init`, `shop-status`, `shop-manager`,
//! `shop-admin`) only parse flags and report, and all the logic lives here.
//!
//! # Layout
//!
//! Five rooms and a few shared pieces:
//!
//! - **The ZooKeeper layer**, [`session`]: the only module that talks to the client crate
//!   (`zookeeper-client`), a folder that uses no shop module: `connect_string`, `credentials`
//!   (digest auth), `tls` (TLS to ZooKeeper: the PEM files, why a handshake failed), `acl`
//!   (permission bits, grants), `retry` (the async-to-blocking bridge,
//!   deadlines and backoff on every call), `state` (new sessions after expiry, generations,
//!   subscribers), `nodes`, `watches` (one-shot and tree watches), `protected` (protected
//!   sequential creates), `multi` (transactions) and `election` (leader election).
//! - **The shop's data**, [`shop`]: creating and checking the shop's top-level nodes, telling
//!   who is on shift, and one module per kind of node: [`layout`] (the znode layout of the
//!   wire contract; the only place paths are built), [`config`], [`menu`], [`order`],
//!   [`registration`], [`sales`], [`security`] and [`status`] (each re-exported here under its
//!   own name).
//! - **The barista**, [`barista`]: the shift loop (`mod.rs`), then one file per part, each
//!   owning its state: `joining` (registering, restarts), `adoption` (orphaned buckets,
//!   claims), `rota` (who minds whom: departures noticed by one or two), `serving` (the buckets served, batches, the ledger), `leaving` (hand-over,
//!   drain), and [`barista::Bucket`], its view of one bucket, kept current by a watch
//!   (formerly `queue::Queue`, still there as an alias); [`liveness`] tells whether the
//!   process behind a stale registration is certainly gone.
//! - **The customer**, [`customer`]: one visit (`mod.rs`), [`customer::choosing`] (how a
//!   barista is chosen), [`roster`] (the baristas on shift under a watch), [`board`] (the whole
//!   shop from one watch, for the load generator), [`load`] (many customers at once, closed
//!   or open loop) and [`summary`] (a run's counts and latency histogram, its line and file,
//!   and merging), the last four re-exported here.
//! - **The manager**, [`manager`]: following every shop on one session (`mod.rs`), its
//!   [`manager::event`]s, [`manager::picture`] (one shop as the manager sees it: the rules for
//!   left or lost, served or withdrawn, slow queues), [`manager::follow`] (the reads that keep a
//!   picture current), `shops` (the loop: watches, catching up, each shop's alerts),
//!   [`manager::alerts`] (hooks, their records, the election's takeover),
//!   [`manager::zookeeper`] (the servers' `mntr`), [`manager::metrics`], [`manager::api`] and
//!   [`manager::page`] (the live page at `/`, its event stream and the charts' history) (what
//!   it serves).
//! - **Metrics**, [`metrics`]: the OpenMetrics page of any role ([`metrics::encode`],
//!   [`metrics::serve_metrics`]), `http` (the small HTTP server it is served by), `guard` (who
//!   may ask it: a token or basic auth) and `process` (the standard `process_*` metrics).
//! - Shared: `wake` (crate-private: the one channel a role waits on, fed by stop requests,
//!   session events and watches, and the one-shot watches outstanding), [`shutdown`] (stop
//!   requests shared between a signal handler, or a test, and a role), [`duration`]
//!   (durations as people type and read them), [`cli`] (what the binaries share: connection
//!   flags, logging, signals, exit codes) and [`error`] (the one error type, the one
//!   exit-code table).
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
//!     /version, /config, /acl, /claims/{barista}, /sales/{barista},
//!     /managers/manager-{sequence}, /alerts/{kind}-{sha1},
//!     /operator/closed, /operator/home-{barista},
//!     /rota/{barista}-{sequence}   (who minds whom: see barista)
//! ```
//!
//! A barista is named `{hostname}_{pid}` unless told otherwise. An order is served when the
//! barista deletes it; the customer learns it from a watch on the order. `--shop NAME` puts
//! the same tree under the chroot `/shops/NAME`.

pub mod barista;
pub mod cli;
pub mod customer;
pub mod duration;
pub mod error;
pub mod liveness;
pub mod manager;
pub mod metrics;
pub mod session;
pub mod shop;
pub mod shutdown;
mod wake;

pub use customer::{board, load, roster, summary};
pub use shop::{config, layout, menu, operator, order, registration, sales, security, status};

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
