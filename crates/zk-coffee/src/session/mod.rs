//! The ZooKeeper session: the only module that talks to the ZooKeeper client.
//!
//! It runs on `zookeeper-client` (async) behind a small synchronous API, so the rest of the
//! shop stays plain blocking code. The first version used the `zookeeper` crate (0.8) and had
//! to code around its measured faults (`shared/zookeeper-client-facts.md`): no expiry report,
//! busy clients giving up on the first disconnect, watches and digest auth silently lost on
//! reconnect, no read timeout, an I/O thread spinning a core while no server listens, and no
//! `multi`. `zookeeper-client` keeps the session, its watches and its auth across reconnects,
//! reports expiry, detects a frozen server within 2/5 of the session timeout, idles while the
//! servers are down, and has `multi`, which the exactly-once sales ledger needs. What remains
//! to absorb here:
//!
//! - A lost session (expired, closed) is terminal for a client: the next call makes a new one
//!   (a new session). Subscribers hear [`SessionEvent::Lost`] once per lost session and can
//!   compare [`Session::generation`] to learn that their ephemerals must be made again.
//! - Every call waits at most its deadline; connection loss is retried with backoff until the
//!   operation deadline (the session timeout), then the caller gets
//!   [`Error::ConnectionLost`](crate::Error::ConnectionLost).
//!   Making a new session during a call counts against the same deadline.
//! - A sequential create interrupted by connection loss may or may not have happened:
//!   [`Session::create_sequential_protected`] tags the node with an extra ACL entry (Curator's
//!   protected mode, without touching the node's name or data) and finds it again.
//! - Paths are checked to be absolute before they are sent.
//! - Persistent watches ([`Session::watch_tree`]) are set again after a reconnect: the client
//!   crate (0.11.2) leaves them out of the watches it restores.
//!
//! Watches are delivered by running a `notify` closure once, on the client's executor: it must
//! only record or send, never call the session.
//!
//! # Layout
//!
//! Each part of the session lives in its own module, which owns the state it changes:
//!
//! - `connect_string`: [`ConnectString`], parsed and normalised.
//! - `credentials`: [`Credentials`], digest `user:password` as the client sends it.
//! - `tls`: [`Tls`], the CA (and our certificate) for TLS to ZooKeeper, and why a handshake
//!   failed.
//! - `acl`: permission bits, [`Grant`], and the [`Protection`] deciding new nodes' ACLs.
//! - `retry`: the async-to-blocking bridge, deadlines, backoff, one attempt, the retry core.
//! - `state`: the current session, generations, and [`SessionEvent`] subscribers.
//! - `nodes`: reads and writes of single nodes ([`NodeData`], [`Removal`]).
//! - `watches`: one-shot watches and tree watches ([`TreeEvent`], [`TreeWatch`]).
//! - `protected`: [`Session::create_sequential_protected`] and the search for its node.
//! - `multi`: transactions ([`Transaction`]).
//! - `election`: leader election ([`Session::stand_for_election`], [`Candidacy`]).
//!
//! This module keeps [`Session`] and [`SessionConfig`]. The session uses no module of the
//! shop, only the library's [`Error`](crate::Error): the shop builds on it, not the other way.

use std::sync::Arc;
use std::time::Duration;

mod acl;
mod connect_string;
mod credentials;
mod election;
mod multi;
mod nodes;
mod protected;
mod retry;
mod state;
mod tls;
mod watches;

pub use acl::{Grant, Protection, ADMIN, ALL, CREATE, DELETE, READ, WRITE};
pub use connect_string::ConnectString;
pub use credentials::Credentials;
pub use election::Candidacy;
pub use multi::Transaction;
pub use nodes::{NodeData, Removal};
pub use state::{SessionEvent, Subscription};
pub use tls::{speaks_tls, Tls, TlsStream};
pub use watches::{TreeEvent, TreeWatch};

use crate::error::Result;
use acl::Acls;
use state::State;

/// How to reach ZooKeeper, as whom, and how long to wait for it.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Digest credentials to authenticate with (kept across reconnects), if any.
    pub credentials: Option<Credentials>,
    /// A second digest identity, this process's own, added next to `credentials` (a
    /// customer's: in a secured shop only it may withdraw the orders it places).
    pub identity: Option<Credentials>,
    /// The ensemble (and optional chroot).
    pub servers: ConnectString,
    /// The session timeout we ask for; the server may negotiate it into 2-20 x its tickTime.
    pub session_timeout: Duration,
    /// How long to wait for the first connection before giving up.
    pub connect_timeout: Duration,
    /// TLS to every server (the servers' secureClientPort), if set; else plaintext.
    pub tls: Option<Tls>,
}

/// What all clones of a [`Session`] share.
struct Inner {
    config: SessionConfig,
    /// The current session, its generation and its subscribers (see `state`).
    state: State,
    /// The ACLs of nodes we create (see `acl`).
    acls: Acls,
}

/// A ZooKeeper session that survives connection loss and expiry. Cheap to clone; all clones
/// share one connection.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl Session {
    /// Connects and waits until the session is established, at most `config.connect_timeout`.
    pub fn connect(config: SessionConfig) -> Result<Session> {
        let session = Session { inner: Arc::new(Inner { config, state: State::new(), acls: Acls::default() }) };
        session.start()?;
        Ok(session)
    }

    /// Like [`Session::connect`], to the same servers without the chroot: to make or guard
    /// the chroot node itself.
    pub fn connect_to_root(config: &SessionConfig) -> Result<Session> {
        let mut root = config.clone();
        root.servers = config.servers.without_chroot();
        Session::connect(root)
    }

    /// The connect string this session uses.
    pub fn servers(&self) -> &ConnectString {
        &self.inner.config.servers
    }

    /// The session timeout asked for.
    pub fn session_timeout(&self) -> Duration {
        self.inner.config.session_timeout
    }

    /// Who the server knows this session as: `(scheme, id)` pairs, e.g. `("digest", "staff")`,
    /// `("x509", "CN=barista")` for a client certificate, `("ip", "127.0.0.1")` (ZooKeeper's
    /// `whoami`).
    pub fn identities(&self) -> Result<Vec<(String, String)>> {
        let users =
            self.call("/", |c| async move { c.list_auth_users().await }).map_err(|f| f.into_error("ask who we are at", "/"))?;
        Ok(users.iter().map(|u| (u.scheme().to_owned(), u.user().to_owned())).collect())
    }

    /// This process's own identity ([`SessionConfig::identity`]), if it has one.
    pub fn identity(&self) -> Option<&Credentials> {
        self.inner.config.identity.as_ref()
    }
}
