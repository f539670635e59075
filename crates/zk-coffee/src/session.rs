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
//!   operation deadline (the session timeout), then the caller gets [`Error::ConnectionLost`].
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

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use zookeeper_client as zkc;

use crate::error::{Error, Result};
use crate::lock;
use crate::security::Credentials;

/// The port ZooKeeper listens on when a host in the connect string has none.
const DEFAULT_PORT: u16 = 2181;
/// First pause after a connection loss; doubled on each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between retries, so that recovery is noticed within a second.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// The ACL scheme of the tag that lets a protected create find its node again.
const TAG_SCHEME: &str = "digest";
/// The most ACLs a protected create reads in one round trip while it looks for its node. It
/// reads the newest child first and twice as many each round after: its own node, among the
/// newest, costs one read, and a bucket of 10 000 orders without it under 170 round trips.
const MAX_TAG_READS: usize = 64;

/// A validated ZooKeeper connect string: `host:port[,host:port...][/chroot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` pairs, with the default port filled in.
    hosts: Vec<String>,
    /// The chroot suffix, if any, starting with `/`.
    chroot: Option<String>,
}

impl ConnectString {
    /// The chroot suffix (e.g. `/shop2`), if any.
    pub fn chroot(&self) -> Option<&str> {
        self.chroot.as_deref()
    }

    /// The same servers without the chroot: used to create the chroot node itself.
    pub fn without_chroot(&self) -> ConnectString {
        ConnectString { hosts: self.hosts.clone(), chroot: None }
    }

    /// The same servers with `suffix` (e.g. `/shops/a`) appended to the chroot.
    pub fn under(&self, suffix: &str) -> ConnectString {
        let chroot = format!("{}{suffix}", self.chroot.as_deref().unwrap_or(""));
        ConnectString { hosts: self.hosts.clone(), chroot: Some(chroot) }
    }
}

impl FromStr for ConnectString {
    type Err = Error;

    fn from_str(s: &str) -> Result<ConnectString> {
        let bad = |why: String| Error::usage(format!("invalid ZooKeeper connect string {s:?}: {why}"));
        let (servers, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                if c.ends_with('/') || c.contains("//") {
                    return Err(bad(format!("chroot {c:?} must look like /a/b")));
                }
                Some(c.to_owned())
            }
        };
        let mut hosts = Vec::new();
        for server in servers.split(',') {
            let server = server.trim();
            if server.is_empty() {
                return Err(bad("a server is missing (expected host:port[,host:port...][/chroot])".into()));
            }
            let port_of = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad(format!("{p:?} is not a port")));
            // `[v6]` or `[v6]:port`; a bare v6 address (two colons or more) has no port; else
            // `host` or `host:port`.
            let (host, port) = if let Some(rest) = server.strip_prefix('[') {
                let (inner, after) = rest.split_once(']').ok_or_else(|| bad(format!("{server:?} lacks its closing ]")))?;
                let port = match after {
                    "" => DEFAULT_PORT,
                    after => port_of(after.strip_prefix(':').ok_or_else(|| bad(format!("{server:?}: expected :port after ]")))?)?,
                };
                (inner, port)
            } else if server.matches(':').count() > 1 {
                (server, DEFAULT_PORT)
            } else {
                match server.split_once(':') {
                    Some((h, p)) => (h, port_of(p)?),
                    None => (server, DEFAULT_PORT),
                }
            };
            if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '[' || c == ']') {
                return Err(bad(format!("{server:?} has no usable host")));
            }
            hosts.push(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") });
        }
        Ok(ConnectString { hosts, chroot })
    }
}

impl fmt::Display for ConnectString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.hosts.join(","), self.chroot.as_deref().unwrap_or(""))
    }
}

/// How to reach ZooKeeper, as whom, and how long to wait for it.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Digest credentials to authenticate with (kept across reconnects), if any.
    pub credentials: Option<Credentials>,
    /// The ensemble (and optional chroot).
    pub servers: ConnectString,
    /// The session timeout we ask for; the server may negotiate it into 2-20 x its tickTime.
    pub session_timeout: Duration,
    /// How long to wait for the first connection before giving up.
    pub connect_timeout: Duration,
}

/// What a subscriber hears about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// The connection came back after a disconnect, within the same session (watches and
    /// ephemerals are kept). Worth a look at anything that may have changed meanwhile.
    Reconnected,
    /// The session is gone (expired or closed): its ephemerals are gone, and the next call runs
    /// on a new session. Told once per session, as soon as the client or a call learns it;
    /// [`Session::generation`] has moved on by then. A session we closed is not news, but a
    /// call after [`Session::close`] opens a new one and tells it.
    Lost,
}

/// One client, i.e. one session, and whether it is still usable.
struct Handle {
    client: zkc::Client,
    /// Counts sessions made by this [`Session`], starting at 1.
    generation: u64,
    /// Set when the session expired or closed: every call on it would fail.
    dead: Arc<AtomicBool>,
    /// Set once subscribers were told that it ended (or when we closed it: not news), so that
    /// the client's report and a call hearing "expired" tell them once between them.
    told: Arc<AtomicBool>,
}

/// Someone who wants to hear about [`SessionEvent`]s.
type Listener = Box<dyn Fn(SessionEvent) + Send + Sync>;
/// Decides who may do what to a node this session creates, from its path.
pub type Protection = Arc<dyn Fn(&str) -> Vec<Grant> + Send + Sync>;

/// One ACL entry: `perms` (bits: read 1, write 2, create 4, delete 8, admin 16) for an
/// identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub perms: u32,
    pub scheme: String,
    pub id: String,
}

impl Grant {
    /// `perms` for the digest identity `id` (`user:base64(sha1)`).
    pub fn digest(perms: u32, id: &str) -> Grant {
        Grant { perms, scheme: "digest".into(), id: id.into() }
    }

    fn to_acl(&self) -> zkc::Acl {
        let perms = [
            zkc::Permission::READ,
            zkc::Permission::WRITE,
            zkc::Permission::CREATE,
            zkc::Permission::DELETE,
            zkc::Permission::ADMIN,
        ]
        .into_iter()
        .enumerate()
        .filter(|(bit, _)| self.perms & (1 << bit) != 0)
        .fold(zkc::Permission::NONE, |all, (_, p)| all | p);
        zkc::Acl::new(perms, zkc::AuthId::new(&self.scheme, &self.id))
    }
}

struct Inner {
    config: SessionConfig,
    current: Mutex<Option<Handle>>,
    /// Read-locked while telling them, so that news told by several threads (and the client's
    /// executor) at once never waits for another's listener; a subscription's removal waits,
    /// so a listener never runs after its subscription is dropped.
    subscribers: RwLock<Vec<(u64, Listener)>>,
    /// Numbers the subscriptions, so each can be removed.
    next_subscription: AtomicU64,
    /// The generation of the newest session opened.
    generation: AtomicU64,
    /// The newest generation known to be lost (0: none yet).
    lost: AtomicU64,
    /// The ACLs of nodes we create; `None`: open to everyone, as the original program did.
    protection: Mutex<Option<Protection>>,
}

/// A ZooKeeper session that survives connection loss and expiry. Cheap to clone; all clones
/// share one connection.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

fn check_path(path: &str) -> Result<()> {
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
fn block_on_for<T>(timeout: Duration, future: impl Future<Output = T>) -> Option<T> {
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

impl Session {
    /// Connects and waits until the session is established, at most `config.connect_timeout`.
    pub fn connect(config: SessionConfig) -> Result<Session> {
        let session = Session {
            inner: Arc::new(Inner {
                config,
                current: Mutex::new(None),
                subscribers: RwLock::new(Vec::new()),
                next_subscription: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                lost: AtomicU64::new(0),
                protection: Mutex::new(None),
            }),
        };
        let handle = session.open(session.inner.config.connect_timeout)?;
        *lock(&session.inner.current) = Some(handle);
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

    /// ZooKeeper's id of the current session (what an ephemeral node's owner is), if one is
    /// open.
    pub fn session_id(&self) -> Option<i64> {
        lock(&self.inner.current).as_ref().map(|h| h.client.session_id().0)
    }

    /// Which session calls run on: changes as soon as the current session is known to be lost
    /// (the next call opens the new one), so a subscriber told [`SessionEvent::Lost`] already
    /// sees the new number.
    pub fn generation(&self) -> u64 {
        let newest = self.inner.generation.load(Ordering::SeqCst);
        if self.inner.lost.load(Ordering::SeqCst) >= newest {
            newest + 1
        } else {
            newest
        }
    }

    /// Calls `listener` with every [`SessionEvent`] until the returned [`Subscription`] is
    /// dropped. It runs on the client's executor or inside a call: it must only record or
    /// send, never call the session.
    #[must_use = "the listener is removed when the subscription is dropped"]
    pub fn subscribe(&self, listener: impl Fn(SessionEvent) + Send + Sync + 'static) -> Subscription {
        let id = self.inner.next_subscription.fetch_add(1, Ordering::SeqCst);
        self.inner.subscribers.write().unwrap_or_else(|p| p.into_inner()).push((id, Box::new(listener)));
        Subscription { inner: Arc::downgrade(&self.inner), id }
    }

    /// Makes a new client (a new session) and waits until it is connected, at most `wait`.
    fn open(&self, wait: Duration) -> Result<Handle> {
        let config = &self.inner.config;
        let generation = self.inner.generation.load(Ordering::SeqCst) + 1;
        let servers = config.servers.to_string();
        let started = Instant::now();
        debug!("connecting to {servers} (session {generation})");
        let mut connector = zkc::Client::connector().with_session_timeout(config.session_timeout);
        if let Some(credentials) = &config.credentials {
            connector = connector.with_auth("digest", &credentials.auth());
        }
        let client = match block_on_for(wait, connector.connect(&servers)) {
            Some(Ok(client)) => client,
            Some(Err(zkc::Error::NoHosts)) => {
                return Err(Error::usage(format!("cannot resolve the ZooKeeper servers in {servers:?}")))
            }
            Some(Err(zkc::Error::BadArguments(why))) => {
                return Err(Error::usage(format!("invalid ZooKeeper connect string {servers:?}: {why}")))
            }
            Some(Err(e)) => {
                debug!("connect to {servers}: {e}");
                return Err(Error::Unreachable { servers, waited: started.elapsed() });
            }
            None => return Err(Error::Unreachable { servers, waited: started.elapsed() }),
        };
        let (dead, told) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        self.watch_state(&client, generation, Arc::clone(&dead), Arc::clone(&told));
        self.inner.generation.store(generation, Ordering::SeqCst);
        info!("connected to ZooKeeper at {servers} (session {generation})");
        Ok(Handle { client, generation, dead, told })
    }

    /// Follows the client's state on its executor: reports reconnects, and marks the handle
    /// dead (and tells subscribers) when the session ends.
    fn watch_state(&self, client: &zkc::Client, generation: u64, dead: Arc<AtomicBool>, told: Arc<AtomicBool>) {
        let mut states = client.state_watcher();
        let inner = Arc::downgrade(&self.inner);
        let _detached = asyncs::spawn(async move {
            let mut disconnected = false;
            loop {
                let state = states.changed().await;
                let Some(inner) = inner.upgrade() else { return };
                let session = Session { inner };
                debug!("session {generation}: {state:?}");
                match state {
                    zkc::SessionState::Disconnected => {
                        if !disconnected {
                            info!("disconnected from ZooKeeper; reconnecting");
                        }
                        disconnected = true;
                    }
                    zkc::SessionState::SyncConnected | zkc::SessionState::ConnectedReadOnly => {
                        if disconnected {
                            disconnected = false;
                            info!("reconnected to ZooKeeper (session {generation} kept)");
                            session.notify(SessionEvent::Reconnected);
                        }
                    }
                    zkc::SessionState::Expired | zkc::SessionState::AuthFailed | zkc::SessionState::Closed => {
                        dead.store(true, Ordering::SeqCst);
                        session.inner.lost.fetch_max(generation, Ordering::SeqCst);
                        if !told.swap(true, Ordering::SeqCst) {
                            warn!("lost ZooKeeper session {generation} ({state:?})");
                            session.notify(SessionEvent::Lost);
                        }
                        return;
                    }
                }
            }
        });
    }

    /// The live client with its session's generation, taken together under one lock (a
    /// generation read apart could be a newer session's, which an expiry heard from this
    /// client would then drop); replaces a dead one first (a new session), waiting at most
    /// `wait` for it to connect.
    fn client(&self, wait: Duration) -> Result<(zkc::Client, u64)> {
        let mut current = lock(&self.inner.current);
        if let Some(h) = current.as_ref().filter(|h| !h.dead.load(Ordering::SeqCst)) {
            return Ok((h.client.clone(), h.generation));
        }
        // Told already, unless the end went unreported so far; a closed session (none here)
        // was not news, its successor is.
        let tell = match current.take() {
            Some(old) => {
                warn!("ZooKeeper session {} is gone; starting a new session", old.generation);
                !old.told.swap(true, Ordering::SeqCst)
            }
            None => true,
        };
        let handle = self.open(wait)?;
        let taken = (handle.client.clone(), handle.generation);
        *current = Some(handle);
        drop(current);
        if tell {
            self.notify(SessionEvent::Lost);
        }
        Ok(taken)
    }

    /// The client of session `generation`, if it is still the live one.
    fn live_client(&self, generation: u64) -> Option<zkc::Client> {
        let current = lock(&self.inner.current);
        current.as_ref().filter(|h| h.generation == generation && !h.dead.load(Ordering::SeqCst)).map(|h| h.client.clone())
    }

    /// Marks the client of session `generation` dead, so that the next call makes a new one,
    /// and tells subscribers unless the client's report told them already.
    fn forget(&self, generation: u64) {
        let current = lock(&self.inner.current);
        let Some(h) = current.as_ref().filter(|h| h.generation == generation) else { return };
        h.dead.store(true, Ordering::SeqCst);
        self.inner.lost.fetch_max(generation, Ordering::SeqCst);
        let told = Arc::clone(&h.told);
        drop(current);
        if !told.swap(true, Ordering::SeqCst) {
            warn!("lost ZooKeeper session {generation} (a call found it gone)");
            self.notify(SessionEvent::Lost);
        }
    }

    fn notify(&self, event: SessionEvent) {
        for (_, listener) in self.inner.subscribers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            listener(event);
        }
    }

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
    fn call<T, F, Fut>(&self, path: &str, f: F) -> std::result::Result<T, Failure>
    where
        F: Fn(zkc::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zkc::Error>>,
    {
        check_path(path).map_err(Failure::Fatal)?;
        let config = &self.inner.config;
        let started = Instant::now();
        let limit = config.session_timeout;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let left = limit.saturating_sub(started.elapsed()).max(FIRST_BACKOFF);
            match self.attempt(self.attempt_timeout().min(left), &f) {
                Err(Failure::Lost(_)) => debug!("{path}: connection loss, retrying in {backoff:?}"),
                other => return other,
            }
            if started.elapsed() + backoff > limit {
                return Err(Failure::Lost(started.elapsed()));
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Runs `f` once, without retrying: for calls that must not run twice.
    fn call_once<T, F, Fut>(&self, path: &str, f: F) -> std::result::Result<T, Failure>
    where
        F: Fn(zkc::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, zkc::Error>>,
    {
        check_path(path).map_err(Failure::Fatal)?;
        self.attempt(self.attempt_timeout(), &f)
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> Result<bool> {
        self.call(path, |c| async move { c.check_stat(path).await }).map(|s| s.is_some()).map_err(|f| f.into_error("check", path))
    }

    /// How many children each of `paths` has (`None`: it does not exist), from a cheap read
    /// of each stat; the reads are sent together (one round trip), the answers come in the
    /// same order.
    pub fn child_counts(&self, paths: &[String]) -> Result<Vec<Option<u32>>> {
        let first = paths.first().map_or("/", String::as_str);
        paths.iter().try_for_each(|p| check_path(p))?;
        self.call(first, |c| async move {
            let pending: Vec<_> = paths.iter().map(|p| c.check_stat(p)).collect();
            let mut counts = Vec::with_capacity(pending.len());
            for stat in pending {
                counts.push(stat.await?.map(|s| s.num_children.max(0) as u32));
            }
            Ok(counts)
        })
        .map_err(|f| f.into_error("check", first))
    }

    /// Whether `path` exists; `notify` runs once when it is created, changed or deleted, or
    /// when the session ends.
    pub fn watch_exists(&self, path: &str, notify: impl Fn() + Send + Sync + 'static) -> Result<bool> {
        let (stat, watcher) =
            self.call(path, |c| async move { c.check_and_watch_stat(path).await }).map_err(|f| f.into_error("watch", path))?;
        deliver(watcher, notify);
        Ok(stat.is_some())
    }

    /// The names of `path`'s children (unsorted), or `None` if `path` does not exist.
    pub fn children(&self, path: &str) -> Result<Option<Vec<String>>> {
        optional(self.call(path, |c| async move { c.list_children(path).await }), "list", path)
    }

    /// Like [`Session::children`], and `notify` runs once when the children change (or the
    /// node goes, or the session ends).
    pub fn watch_children(&self, path: &str, notify: impl Fn() + Send + Sync + 'static) -> Result<Option<Vec<String>>> {
        match optional(self.call(path, |c| async move { c.list_and_watch_children(path).await }), "watch", path)? {
            Some((children, watcher)) => {
                deliver(watcher, notify);
                Ok(Some(children))
            }
            None => Ok(None),
        }
    }

    /// The data of `path`, or `None` if it does not exist.
    pub fn data(&self, path: &str) -> Result<Option<Vec<u8>>> {
        optional(self.call(path, |c| async move { c.get_data(path).await.map(|(d, _)| d) }), "read", path)
    }

    /// Like [`Session::data`], and `notify` runs once when the data changes (or the node is
    /// created or deleted, or the session ends).
    pub fn watch_data(&self, path: &str, notify: impl Fn() + Send + Sync + 'static) -> Result<Option<Vec<u8>>> {
        // `exists` with a watch covers a node that is absent now and created later.
        let (stat, watcher) =
            self.call(path, |c| async move { c.check_and_watch_stat(path).await }).map_err(|f| f.into_error("watch", path))?;
        deliver(watcher, notify);
        match stat {
            None => Ok(None),
            Some(_) => self.data(path),
        }
    }

    /// When `path` was created, in milliseconds since the Unix epoch, or `None` if it does
    /// not exist.
    pub fn created_ms(&self, path: &str) -> Result<Option<i64>> {
        self.call(path, |c| async move { c.check_stat(path).await })
            .map(|stat| stat.map(|s| s.ctime))
            .map_err(|f| f.into_error("check", path))
    }

    /// Sets the data of a persistent node, creating it if needed; `true` if it was created.
    pub fn put(&self, path: &str, data: &[u8]) -> Result<bool> {
        if self.ensure_persistent(path, data)? {
            return Ok(true);
        }
        match self.call(path, |c| async move { c.set_data(path, data, None).await }) {
            Ok(_) => Ok(false),
            Err(f) => Err(f.into_error("write", path)),
        }
    }

    /// In one transaction: deletes every node in `deletes` and sets the data of `set`, if
    /// `set` is still at `version`. Either all of it happens or none.
    ///
    /// Retried on connection loss like any call; a transaction that committed before the
    /// connection dropped then reports [`Transaction::DeleteMissing`] or
    /// [`Transaction::VersionMoved`] on the retry, which the caller tells apart by reading
    /// `set` again.
    pub fn delete_and_set(&self, deletes: &[String], set: &str, data: &[u8], version: i32) -> Result<Transaction> {
        check_path(set)?;
        deletes.iter().try_for_each(|p| check_path(p))?;
        let result = self.call(set, |c| async move {
            let mut multi = c.new_multi_writer();
            for delete in deletes {
                multi.add_delete(delete, None)?;
            }
            multi.add_set_data(set, data, Some(version))?;
            match multi.commit().await {
                Ok(results) => Ok(Ok(results)),
                Err(zkc::MultiWriteError::RequestFailed { source }) => Err(source),
                Err(zkc::MultiWriteError::OperationFailed { index, source }) => Ok(Err((index, source))),
            }
        });
        let what = deletes.first().map_or(set, String::as_str);
        match result {
            Ok(Ok(results)) => {
                let version = results
                    .iter()
                    .find_map(|r| match r {
                        zkc::MultiWriteResult::SetData { stat } => Some(stat.version),
                        _ => None,
                    })
                    .unwrap_or(version + 1);
                Ok(Transaction::Done { version })
            }
            Ok(Err((index, zkc::Error::NoNode))) if index < deletes.len() => Ok(Transaction::DeleteMissing { index }),
            Ok(Err((index, zkc::Error::BadVersion | zkc::Error::NoNode))) if index == deletes.len() => {
                Ok(Transaction::VersionMoved)
            }
            Ok(Err((index, code))) => {
                let path = deletes.get(index).map_or(set, String::as_str);
                Err(Failure::Zk(code).into_error("serve", path))
            }
            Err(f) => Err(f.into_error("serve", what)),
        }
    }

    /// The data of `path` with its version and modification time, or `None` if it does not
    /// exist.
    pub fn read(&self, path: &str) -> Result<Option<NodeData>> {
        optional(
            self.call(path, |c| async move { c.get_data(path).await.map(|(data, stat)| NodeData::new(data, &stat)) }),
            "read",
            path,
        )
    }

    /// Like [`Session::read`] for several nodes at once, in one request (a ZooKeeper multi
    /// read); the answers come in the same order. A node we may not read is an
    /// [`Error::NotAuthorized`] in its place.
    pub fn read_many(&self, paths: &[String]) -> Result<Vec<Result<Option<NodeData>>>> {
        let first = paths.first().map_or("/", String::as_str);
        paths.iter().try_for_each(|p| check_path(p))?;
        let answers = self
            .call(first, |c| async move {
                let mut reader = c.new_multi_reader();
                for path in paths {
                    reader.add_get_data(path)?;
                }
                reader.commit().await
            })
            .map_err(|f| f.into_error("read", first))?;
        Ok(answers
            .into_iter()
            .zip(paths)
            .map(|(answer, path)| {
                let answer = match answer {
                    zkc::MultiReadResult::Data { data, stat } => Ok(NodeData::new(data, &stat)),
                    zkc::MultiReadResult::Error { err } => Err(Failure::Zk(err)),
                    other => Err(Failure::Fatal(Error::internal(format!("reading {path} gave {other:?}")))),
                };
                optional(answer, "read", path)
            })
            .collect())
    }

    /// Like [`Session::read`]; if the node exists, `notify` runs once when its data changes or
    /// it is deleted (or the session ends), told whether it was deleted: a caller waiting for
    /// the deletion need not read again. One round trip.
    pub fn watch_read(&self, path: &str, notify: impl Fn(bool) + Send + Sync + 'static) -> Result<Option<NodeData>> {
        let result = self.call(path, |c| async move { c.get_and_watch_data(path).await });
        match optional(result, "watch", path)? {
            Some((data, stat, watcher)) => {
                let _detached = asyncs::spawn(async move {
                    let event = watcher.changed().await;
                    notify(event.event_type == zkc::EventType::NodeDeleted);
                });
                Ok(Some(NodeData::new(data, &stat)))
            }
            None => Ok(None),
        }
    }

    /// Watches `path` and every node under it (a persistent recursive watch) until the
    /// returned [`TreeWatch`] is dropped or the session ends: `notify` runs for each node
    /// created, deleted or changed there, in the order it happened, with the node's path.
    /// `path` need not exist. One round trip.
    ///
    /// After a reconnect the watch is set again and `notify` hears [`TreeEvent::Restored`]:
    /// what happened while the connection was down was not reported (ZooKeeper does not replay
    /// it for persistent watches, ZOOKEEPER-4698), so the caller looks again. (The client
    /// crate is meant to restore persistent watches itself, but 0.11.2 leaves them out of the
    /// watches it sends again after a reconnect; setting the watch again is harmless if it
    /// ever does.)
    pub fn watch_tree(&self, path: &str, notify: impl Fn(TreeEvent) + Send + Sync + 'static) -> Result<TreeWatch> {
        let generation = self.generation();
        let mut watcher = self
            .call(path, |c| async move { c.watch(path, zkc::AddWatchMode::PersistentRecursive).await })
            .map_err(|f| f.into_error("watch", path))?;
        // Not the client itself: holding it would keep the session open after `close`.
        let session = Arc::downgrade(&self.inner);
        let stop = Arc::new(asyncs::sync::Notify::new());
        let (removed_tx, removed) = std::sync::mpsc::channel();
        let stopped = Arc::clone(&stop);
        let watched = path.to_owned();
        let _detached = asyncs::spawn(async move {
            let mut restore = false;
            loop {
                let next = futures_lite::future::or(async { Some(watcher.changed().await) }, async {
                    stopped.notified().await;
                    None
                });
                let Some(event) = next.await else {
                    // Removed on purpose. The owner goes on once the removal is queued in the
                    // client (its first poll sends it), so that a new watch it sets on the same
                    // path is queued after it: the removal cannot undo the new watch.
                    #[allow(deprecated)] // dropping removes too, but without telling us when
                    let mut removal = std::pin::pin!(watcher.remove());
                    let done = futures_lite::future::poll_once(&mut removal).await;
                    let _ = removed_tx.send(());
                    if done.is_none() {
                        let _ = removal.await;
                    }
                    return;
                };
                let path = event.path;
                match event.event_type {
                    zkc::EventType::NodeCreated => notify(TreeEvent::Created(path)),
                    zkc::EventType::NodeDeleted => notify(TreeEvent::Deleted(path)),
                    zkc::EventType::NodeDataChanged => notify(TreeEvent::Changed(path)),
                    // After a terminal session state the watcher must not be asked again.
                    zkc::EventType::Session if event.session_state.is_terminated() => return,
                    zkc::EventType::Session if event.session_state == zkc::SessionState::Disconnected => restore = true,
                    zkc::EventType::Session if restore && event.session_state == zkc::SessionState::SyncConnected => {
                        // Set it again before dropping the old watcher: the client then drops
                        // the old one locally without telling the server to remove the watch.
                        let Some(client) = Weak::upgrade(&session).and_then(|inner| Session { inner }.live_client(generation))
                        else {
                            return; // closed, or a new session: this watch is over
                        };
                        match client.watch(&watched, zkc::AddWatchMode::PersistentRecursive).await {
                            Ok(again) => {
                                watcher = again;
                                restore = false;
                                notify(TreeEvent::Restored);
                            }
                            // Lost again: the next reconnect tries again.
                            Err(e) => debug!("watching {watched} again: {e}"),
                        }
                    }
                    zkc::EventType::Session | zkc::EventType::NodeChildrenChanged => {}
                }
            }
        });
        Ok(TreeWatch { stop, removed })
    }

    /// Sets the data of `path` if it is still at `version`; `false` if it moved or is gone.
    pub fn set_if_version(&self, path: &str, data: &[u8], version: i32) -> Result<bool> {
        match self.call(path, |c| async move { c.set_data(path, data, Some(version)).await }) {
            Ok(_) => Ok(true),
            Err(Failure::Zk(zkc::Error::BadVersion | zkc::Error::NoNode)) => Ok(false),
            Err(f) => Err(f.into_error("write", path)),
        }
    }

    /// Creates a persistent node unless it exists; `true` if this call created it. Looks
    /// first: in a secured shop a role may lack the right to create where the node already is,
    /// and ZooKeeper checks that right before it checks for the node.
    pub fn ensure_persistent(&self, path: &str, data: &[u8]) -> Result<bool> {
        if self.exists(path)? {
            return Ok(false);
        }
        self.create(path, data, zkc::CreateMode::Persistent)
    }

    /// Creates an ephemeral node owned by the current session; `false` if a node is already
    /// there (perhaps our own, if a retry after connection loss created it: the caller checks).
    pub fn create_ephemeral(&self, path: &str, data: &[u8]) -> Result<bool> {
        self.create(path, data, zkc::CreateMode::Ephemeral)
    }

    /// In one transaction: deletes `path` if it is still at `version` and creates it again as
    /// an ephemeral node of this session holding `data`, so that nobody ever sees it absent.
    /// `false` if nothing happened because the node moved or went meanwhile.
    ///
    /// Retried on connection loss like any call; a transaction that committed before the
    /// connection dropped then reports `false` on the retry (the node is ours, at version 0):
    /// the caller reads the node again to tell.
    pub fn replace_with_ephemeral(&self, path: &str, version: i32, data: &[u8]) -> Result<bool> {
        let acl = self.acl_for(path);
        let options = zkc::CreateMode::Ephemeral.with_acls(zkc::Acls::new(&acl));
        let options = &options;
        let result = self.call(path, |c| async move {
            let mut multi = c.new_multi_writer();
            multi.add_delete(path, Some(version))?;
            multi.add_create(path, data, options)?;
            match multi.commit().await {
                Ok(_) => Ok(Ok(())),
                Err(zkc::MultiWriteError::RequestFailed { source }) => Err(source),
                Err(zkc::MultiWriteError::OperationFailed { index, source }) => Ok(Err((index, source))),
            }
        });
        match result {
            Ok(Ok(())) => Ok(true),
            // The delete found the node gone or changed (or a twin made it again in between).
            Ok(Err((_, zkc::Error::NoNode | zkc::Error::BadVersion | zkc::Error::NodeExists))) => Ok(false),
            Ok(Err((_, code))) => Err(Failure::Zk(code).into_error("replace", path)),
            Err(f) => Err(f.into_error("replace", path)),
        }
    }

    /// From now on, nodes this session creates get the ACL `protection` gives for their path.
    pub fn protect_with(&self, protection: Protection) {
        *lock(&self.inner.protection) = Some(protection);
    }

    /// The ACL for a node created at `path`.
    fn acl_for(&self, path: &str) -> Vec<zkc::Acl> {
        match lock(&self.inner.protection).as_ref() {
            Some(protect) => protect(path).iter().map(Grant::to_acl).collect(),
            None => vec![zkc::Acl::new(zkc::Permission::ALL, zkc::AuthId::anyone())],
        }
    }

    /// Replaces the ACL of `path`; `false` if it does not exist.
    pub fn set_acl(&self, path: &str, grants: &[Grant]) -> Result<bool> {
        let acl: Vec<zkc::Acl> = grants.iter().map(Grant::to_acl).collect();
        let acl = &acl;
        match self.call(path, |c| async move { c.set_acl(path, acl, None).await }) {
            Ok(_) => Ok(true),
            Err(Failure::Zk(zkc::Error::NoNode)) => Ok(false),
            Err(f) => Err(f.into_error("set the ACL of", path)),
        }
    }

    fn create(&self, path: &str, data: &[u8], mode: zkc::CreateMode) -> Result<bool> {
        let acl = self.acl_for(path);
        let options = mode.with_acls(zkc::Acls::new(&acl));
        let options = &options;
        match self.call(path, |c| async move { c.create(path, data, options).await }) {
            Ok(_) => Ok(true),
            Err(Failure::Zk(zkc::Error::NodeExists)) => Ok(false),
            Err(f) => Err(f.into_error("create", path)),
        }
    }

    /// Creates a persistent sequential node `{prefix}{sequence}` and returns its full path, or
    /// `None` if the parent does not exist. Safe to use across connection loss: the node carries
    /// an extra ACL entry naming `tag` (read permission for an identity nobody has; the node
    /// stays open to everyone as before), and after a loss the parent's children are searched
    /// for that tag, newest first, before creating again, so the node is created exactly once.
    /// A search that cannot finish by the create's deadline (three session timeouts) fails with
    /// [`Error::ConnectionLost`] rather than create a second node.
    pub fn create_sequential_protected(&self, prefix: &str, data: &[u8], tag: &str) -> Result<Option<String>> {
        check_path(prefix)?;
        let (parent, base) = prefix.rsplit_once('/').ok_or_else(|| Error::internal(format!("bad prefix {prefix:?}")))?;
        let parent = if parent.is_empty() { "/" } else { parent };
        let marker = zkc::Acl::new(zkc::Permission::READ, zkc::AuthId::new(TAG_SCHEME, &format!("zk-coffee-tag-{tag}:{tag}")));
        let mut acls = self.acl_for(prefix);
        acls.push(marker.clone());
        let options = zkc::CreateMode::PersistentSequential.with_acls(zkc::Acls::new(&acls));
        let options = &options;
        let started = Instant::now();
        let limit = self.inner.config.session_timeout * 3;
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.call_once(prefix, |c| async move { c.create(prefix, data, options).await }) {
                Ok((_, sequence)) => return Ok(Some(format!("{prefix}{sequence}"))),
                Err(Failure::Zk(zkc::Error::NoNode)) => return Ok(None),
                Err(Failure::Lost(_)) => {}
                Err(f) => return Err(f.into_error("create", prefix)),
            }
            // The create may have happened before the connection dropped: look for our tag.
            if let Some(found) = self.find_tagged(parent, base, &marker, started, limit)? {
                info!("found my order {found} after a connection loss");
                return Ok(Some(found));
            }
            // Never made, or made and already served (then this is a second coffee).
            info!("no order of mine under {parent} after a connection loss; placing it again");
            if started.elapsed() + backoff > limit {
                return Err(Error::ConnectionLost { op: format!("create {prefix}"), waited: started.elapsed() });
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The child of `parent` named `base` + sequence whose ACL holds `marker`, if any. Reads
    /// the ACLs newest first (highest sequence number), in rounds of growing size sent
    /// together; when `started + limit` passes before it knows, it fails rather than say
    /// "not there": the caller would create the node a second time.
    fn find_tagged(
        &self,
        parent: &str,
        base: &str,
        marker: &zkc::Acl,
        started: Instant,
        limit: Duration,
    ) -> Result<Option<String>> {
        let Some(children) = self.children(parent)? else { return Ok(None) };
        let mut newest_first: Vec<(i64, String)> = children
            .into_iter()
            .filter_map(|child| {
                let sequence = child.strip_prefix(base)?.parse::<i64>().ok()?;
                let path = if parent == "/" { format!("/{child}") } else { format!("{parent}/{child}") };
                Some((sequence, path))
            })
            .collect();
        newest_first.sort_unstable_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
        let total = newest_first.len();
        let (mut looked, mut round) = (0, 1);
        while looked < total {
            if started.elapsed() >= limit {
                return Err(Error::ConnectionLost {
                    op: format!("find my order under {parent} (looked at {looked} of {total} in time)"),
                    waited: started.elapsed(),
                });
            }
            let paths: Vec<&str> = newest_first[looked..total.min(looked + round)].iter().map(|(_, p)| p.as_str()).collect();
            let paths = &paths;
            let acls = self.call(paths[0], |c| async move {
                let pending: Vec<_> = paths.iter().map(|p| c.get_acl(p)).collect();
                let mut acls = Vec::with_capacity(pending.len());
                for acl in pending {
                    match acl.await {
                        Ok((acl, _)) => acls.push(acl),
                        // Served meanwhile.
                        Err(zkc::Error::NoNode) => acls.push(Vec::new()),
                        Err(e) => return Err(e),
                    }
                }
                Ok(acls)
            });
            let acls = acls.map_err(|f| f.into_error("read the ACL of", paths[0]))?;
            if let Some(i) = acls.iter().position(|acl| acl.contains(marker)) {
                return Ok(Some(paths[i].to_owned()));
            }
            looked += paths.len();
            round = (round * 2).min(MAX_TAG_READS);
        }
        Ok(None)
    }

    /// Deletes `path` (at `version`, if given); `false` if it was already gone.
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<bool> {
        match self.call(path, |c| async move { c.delete(path, version).await }) {
            Ok(()) => Ok(true),
            Err(Failure::Zk(zkc::Error::NoNode)) => Ok(false),
            Err(f) => Err(f.into_error("delete", path)),
        }
    }

    /// Deletes `path` only if it has no children; says which of the three outcomes happened.
    pub fn delete_if_empty(&self, path: &str) -> Result<Removal> {
        match self.call(path, |c| async move { c.delete(path, None).await }) {
            Ok(()) => Ok(Removal::Deleted),
            Err(Failure::Zk(zkc::Error::NoNode)) => Ok(Removal::Absent),
            Err(Failure::Zk(zkc::Error::NotEmpty)) => Ok(Removal::NotEmpty),
            Err(f) => Err(f.into_error("delete", path)),
        }
    }

    /// Ends the session: ephemerals go at once. Waits a moment for the server to confirm.
    pub fn close(&self) {
        let Some(handle) = lock(&self.inner.current).take() else { return };
        // The end of this session is ours, not news.
        handle.told.store(true, Ordering::SeqCst);
        let mut states = handle.client.state_watcher();
        drop(handle.client);
        let closed = block_on_for(self.inner.config.session_timeout, async {
            loop {
                if matches!(states.changed().await, zkc::SessionState::Closed | zkc::SessionState::Expired) {
                    return;
                }
            }
        });
        if closed.is_none() {
            warn!("ZooKeeper did not confirm the end of session {}", handle.generation);
        }
    }
}

/// Runs `notify` once when `watcher` fires, on the client's executor.
fn deliver(watcher: zkc::OneshotWatcher, notify: impl Fn() + Send + Sync + 'static) {
    let _detached = asyncs::spawn(async move {
        let _event = watcher.changed().await;
        notify();
    });
}

/// What a [`Session::watch_tree`] watch saw, with the node's full path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEvent {
    Created(String),
    Deleted(String),
    Changed(String),
    /// The watch is set again after a reconnect; changes while the connection was down were
    /// not reported.
    Restored,
}

/// Keeps a [`Session::watch_tree`] watch; dropping it removes the watch (the removal is
/// queued in the client before the drop returns, so it goes out ahead of anything sent after).
pub struct TreeWatch {
    stop: Arc<asyncs::sync::Notify>,
    /// Hears when the removal is queued (or the watch had already ended with its session).
    removed: std::sync::mpsc::Receiver<()>,
}

/// How long dropping a [`TreeWatch`] waits for its task to queue the removal: a safety net
/// against a stalled executor, not a network wait.
const TREE_WATCH_REMOVAL_WAIT: Duration = Duration::from_secs(1);

impl Drop for TreeWatch {
    fn drop(&mut self) {
        self.stop.notify_one();
        // Disconnected: the task is gone, the watch ended with its session.
        let _ = self.removed.recv_timeout(TREE_WATCH_REMOVAL_WAIT);
    }
}

/// Keeps a [`Session::subscribe`] listener registered; dropping it removes the listener.
pub struct Subscription {
    inner: Weak<Inner>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.subscribers.write().unwrap_or_else(|p| p.into_inner()).retain(|(id, _)| *id != self.id);
        }
    }
}

/// A node's data with the bits of its stat the shop uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeData {
    pub data: Vec<u8>,
    pub version: i32,
    /// Last modified, in milliseconds since the Unix epoch (server clock).
    pub mtime_ms: i64,
    /// The session owning an ephemeral node (0 for a persistent one).
    pub ephemeral_owner: i64,
}

impl NodeData {
    fn new(data: Vec<u8>, stat: &zkc::Stat) -> NodeData {
        NodeData { data, version: stat.version, mtime_ms: stat.mtime, ephemeral_owner: stat.ephemeral_owner }
    }
}

/// What [`Session::delete_and_set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    /// Both happened; the set node is now at `version`.
    Done { version: i32 },
    /// Nothing happened: the node to delete at this index was gone.
    DeleteMissing { index: usize },
    /// Nothing happened: the node to set was no longer at the expected version.
    VersionMoved,
}

/// What [`Session::delete_if_empty`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    Absent,
    NotEmpty,
}

/// Why a call failed after retries.
enum Failure {
    /// The server answered with this error.
    Zk(zkc::Error),
    /// Connection loss for this long.
    Lost(Duration),
    /// A problem found before calling.
    Fatal(Error),
}

impl Failure {
    fn into_error(self, op: &str, path: &str) -> Error {
        match self {
            Failure::Zk(zkc::Error::NoAuth | zkc::Error::AuthFailed) => Error::NotAuthorized { op: op.into(), path: path.into() },
            Failure::Zk(code) => Error::ZooKeeper { op: op.into(), path: path.into(), code: code.to_string() },
            Failure::Lost(waited) => Error::ConnectionLost { op: format!("{op} {path}"), waited },
            Failure::Fatal(e) => e,
        }
    }
}

fn optional<T>(result: std::result::Result<T, Failure>, op: &str, path: &str) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(Failure::Zk(zkc::Error::NoNode)) => Ok(None),
        Err(f) => Err(f.into_error(op, path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ConnectString> {
        s.parse()
    }

    #[test]
    fn connect_strings_are_normalised() {
        assert_eq!(parse("localhost").map(|c| c.to_string()), Ok("localhost:2181".into()));
        let c = parse("a:1, b:2,c/shop/one").expect("valid");
        assert_eq!(c.to_string(), "a:1,b:2,c:2181/shop/one");
        assert_eq!(c.chroot(), Some("/shop/one"));
        assert_eq!(c.without_chroot().to_string(), "a:1,b:2,c:2181");
        assert_eq!(parse("h:1/").map(|c| c.chroot().map(String::from)), Ok(None));
        assert_eq!(parse("[::1]").map(|c| c.to_string()), Ok("[::1]:2181".into()));
        assert_eq!(parse("[::1]:7/x").map(|c| c.to_string()), Ok("[::1]:7/x".into()));
        assert_eq!(parse("::1").map(|c| c.to_string()), Ok("[::1]:2181".into()));
        assert_eq!(parse("h:1/base").map(|c| c.under("/shops/a").to_string()), Ok("h:1/base/shops/a".into()));
        assert_eq!(parse("h:1").map(|c| c.under("/shops/a").to_string()), Ok("h:1/shops/a".into()));
    }

    #[test]
    fn bad_connect_strings_are_usage_errors() {
        for bad in ["", "a:1,,b:2", ":2181", "h:port", "h:0", "h:70000", "h:1/x/", "h:1//x", "a b:1", "[::1", "[]:1", "[::1]x"] {
            match parse(bad) {
                Err(Error::Usage(msg)) => assert!(msg.contains("connect string"), "{bad}: {msg}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

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
