//! The ZooKeeper session: the only module that talks to the `zookeeper` crate.
//!
//! The crate (0.8) has measured pitfalls (see `shared/zookeeper-client-facts.md`) that this
//! module absorbs so that no other module knows about them:
//!
//! - `connect()` succeeds even when no server is up: [`Session::connect`] waits, with a
//!   deadline, until a call goes through.
//! - Session expiry is never reported, and a busy client may give up on the first disconnect:
//!   both leave a handle whose every call fails with `ConnectionLoss`. Such a handle (reported
//!   `Closed`, or failing for longer than the session timeout) is replaced by a new one, a new
//!   session; subscribers are told with [`SessionEvent::Lost`] and can compare
//!   [`Session::generation`] to learn that their ephemerals must be made again.
//! - After any reconnect, earlier watches silently never fire: subscribers are told with
//!   [`SessionEvent::Reconnected`] so they re-read state and re-arm watches.
//! - Connection loss is retried with backoff, bounded by the operation deadline (the session
//!   timeout), after which the caller gets [`Error::ConnectionLost`].
//! - Paths are checked to be absolute (the crate would silently glue a relative path to a
//!   chroot).
//!
//! Listeners of the crate run on its I/O thread and must not call the client: ours only update
//! a flag and send on channels.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use zookeeper::{Acl, CreateMode, WatchedEvent, ZkError, ZkResult, ZkState, ZooKeeper};

use crate::error::{Error, Result};

/// The port ZooKeeper listens on when a host in the connect string has none.
const DEFAULT_PORT: u16 = 2181;
/// First pause after a connection loss; doubled on each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between retries, so that recovery is noticed within a second.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

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
            let (host, port) = match server.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                    let port: u16 = p.parse().ok().filter(|p| *p != 0).ok_or_else(|| bad(format!("{p:?} is not a port")))?;
                    (h, port)
                }
                _ => (server, DEFAULT_PORT),
            };
            if host.is_empty() || host.chars().any(|c| c.is_whitespace()) {
                return Err(bad(format!("{server:?} has no usable host")));
            }
            hosts.push(format!("{host}:{port}"));
        }
        Ok(ConnectString { hosts, chroot })
    }
}

impl fmt::Display for ConnectString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.hosts.join(","), self.chroot.as_deref().unwrap_or(""))
    }
}

/// How to reach ZooKeeper and how long to wait for it.
#[derive(Debug, Clone)]
pub struct SessionConfig {
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
    /// The connection came back within the same session: watches set before are lost.
    Reconnected,
    /// The session is gone (expired or abandoned): ephemerals and watches are lost, and the
    /// next call runs on a new session.
    Lost,
}

/// Where the current handle's connection stands, as its listener last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Connecting,
    Connected,
    /// The handle is dead: every call on it fails. A new one is needed.
    Closed,
}

/// One `ZooKeeper` handle, i.e. one session, and the bookkeeping around it.
struct Handle {
    zk: Arc<ZooKeeper>,
    /// Counts sessions made by this [`Session`], starting at 1.
    generation: u64,
}

struct Inner {
    config: SessionConfig,
    current: Mutex<Option<Handle>>,
    /// The link state of handle `generation`, with a condvar for waiting on it.
    link: Mutex<(u64, Link)>,
    link_changed: Condvar,
    subscribers: Mutex<Vec<Box<dyn Fn(SessionEvent) + Send>>>,
    generation: AtomicU64,
}

/// A ZooKeeper session that survives connection loss and expiry. Cheap to clone; all clones
/// share one connection.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn check_path(path: &str) -> Result<()> {
    if path.starts_with('/') && (path == "/" || !path.ends_with('/')) {
        Ok(())
    } else {
        Err(Error::usage(format!("internal error: {path:?} is not an absolute znode path")))
    }
}

impl Session {
    /// Connects and waits until the server answers, at most `config.connect_timeout`.
    pub fn connect(config: SessionConfig) -> Result<Session> {
        let session = Session {
            inner: Arc::new(Inner {
                config,
                current: Mutex::new(None),
                link: Mutex::new((0, Link::Closed)),
                link_changed: Condvar::new(),
                subscribers: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
            }),
        };
        let mut current = lock(&session.inner.current);
        *current = Some(session.open()?);
        drop(current);
        Ok(session)
    }

    /// The connect string this session uses.
    pub fn servers(&self) -> &ConnectString {
        &self.inner.config.servers
    }

    /// The session timeout asked for.
    pub fn session_timeout(&self) -> Duration {
        self.inner.config.session_timeout
    }

    /// Which session we are on: changes each time a lost session is replaced.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::SeqCst)
    }

    /// Calls `listener` with every [`SessionEvent`] from now on. It runs on the client's I/O
    /// thread or inside a call: it must only record or send, never call the session.
    pub fn subscribe(&self, listener: impl Fn(SessionEvent) + Send + 'static) {
        lock(&self.inner.subscribers).push(Box::new(listener));
    }

    /// Opens a new handle and waits until it serves a call.
    fn open(&self) -> Result<Handle> {
        let config = &self.inner.config;
        let generation = self.inner.generation.load(Ordering::SeqCst) + 1;
        let servers = config.servers.to_string();
        debug!("connecting to {servers} (session {generation})");
        let zk = ZooKeeper::connect(&servers, config.session_timeout, |_: WatchedEvent| {}).map_err(|e| match e {
            ZkError::BadArguments => Error::usage(format!("cannot resolve the ZooKeeper servers in {servers:?}")),
            other => Error::ZooKeeper { op: "connect to".into(), path: servers.clone(), code: format!("{other:?}") },
        })?;
        *lock(&self.inner.link) = (generation, Link::Connecting);
        let weak = Arc::downgrade(&self.inner);
        zk.add_listener(move |state| on_state(&weak, generation, state));

        // The listener may have missed the first `Connected` (it is added after `connect`
        // starts the I/O thread), so a cheap call that goes through is the real test.
        let started = Instant::now();
        let deadline = started + config.connect_timeout;
        loop {
            match zk.exists("/", false) {
                Ok(_) => break,
                Err(ZkError::ConnectionLoss) | Err(ZkError::OperationTimeout) => {}
                Err(other) => debug!("connect probe: {other:?}"),
            }
            if Instant::now() >= deadline {
                self.set_link(generation, Link::Closed);
                return Err(Error::Unreachable { servers, waited: started.elapsed() });
            }
            // Waits for the listener's verdict rather than spinning on a dead handle.
            let link = lock(&self.inner.link);
            let wait = deadline.saturating_duration_since(Instant::now()).min(MAX_BACKOFF);
            let _ = self.inner.link_changed.wait_timeout_while(link, wait, |l| *l == (generation, Link::Connecting));
        }
        self.set_link(generation, Link::Connected);
        self.inner.generation.store(generation, Ordering::SeqCst);
        info!("connected to ZooKeeper at {servers} (session {generation})");
        Ok(Handle { zk: Arc::new(zk), generation })
    }

    fn set_link(&self, generation: u64, link: Link) {
        let mut l = lock(&self.inner.link);
        if l.0 == generation {
            l.1 = link;
        }
        self.inner.link_changed.notify_all();
    }

    /// The live handle; replaces a dead one first (a new session).
    fn handle(&self, force_new_after: Option<u64>) -> Result<Arc<ZooKeeper>> {
        let mut current = lock(&self.inner.current);
        let link = *lock(&self.inner.link);
        let (generation, dead) = match current.as_ref() {
            Some(h) => (h.generation, link == (h.generation, Link::Closed) || force_new_after == Some(h.generation)),
            None => (0, true),
        };
        if dead {
            if let Some(old) = current.take() {
                warn!("ZooKeeper session {generation} is lost; starting a new session");
                // Closing a dead handle returns at once; it only releases its threads.
                let _ = old.zk.close();
            }
            *current = Some(self.open()?);
            drop(current);
            self.notify(SessionEvent::Lost);
            current = lock(&self.inner.current);
        }
        match current.as_ref() {
            Some(h) => Ok(Arc::clone(&h.zk)),
            None => Err(Error::ConnectionLost { op: "connect".into(), waited: Duration::ZERO }),
        }
    }

    fn notify(&self, event: SessionEvent) {
        for listener in lock(&self.inner.subscribers).iter() {
            listener(event);
        }
    }

    /// Runs `f` on the live handle, retrying connection loss with backoff until the session
    /// timeout has passed. Returns the crate's error for the caller to interpret; a persistent
    /// connection loss becomes `Err(Lost)`.
    fn call<T>(&self, op: &str, path: &str, f: impl Fn(&ZooKeeper) -> ZkResult<T>) -> std::result::Result<T, Failure> {
        check_path(path).map_err(Failure::Fatal)?;
        let started = Instant::now();
        let limit = self.inner.config.session_timeout.max(self.inner.config.connect_timeout);
        let mut backoff = FIRST_BACKOFF;
        let mut losing_since: Option<(u64, Instant)> = None;
        loop {
            // A handle that has failed every call for a whole session timeout is dead even if
            // the crate never said so (it does not report expiry).
            let force = losing_since
                .filter(|(_, since)| since.elapsed() >= self.inner.config.session_timeout)
                .map(|(generation, _)| generation);
            let zk = match self.handle(force) {
                Ok(zk) => zk,
                Err(e @ Error::Usage(_)) => return Err(Failure::Fatal(e)),
                Err(e) => {
                    debug!("{op} {path}: {e}");
                    losing_since = None;
                    if started.elapsed() + backoff > limit {
                        return Err(Failure::Lost(started.elapsed()));
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            match f(&zk) {
                Err(ZkError::ConnectionLoss) | Err(ZkError::OperationTimeout) | Err(ZkError::SessionExpired) => {
                    let generation = self.generation();
                    if losing_since.map(|(g, _)| g) != Some(generation) {
                        losing_since = Some((generation, Instant::now()));
                    }
                    if started.elapsed() + backoff > limit {
                        return Err(Failure::Lost(started.elapsed()));
                    }
                    debug!("{op} {path}: connection loss, retrying in {backoff:?}");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(code) => return Err(Failure::Zk(code)),
                Ok(v) => return Ok(v),
            }
        }
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> Result<bool> {
        self.call("check", path, |zk| zk.exists(path, false)).map(|s| s.is_some()).map_err(|f| f.into_error("check", path))
    }

    /// Whether `path` exists; if it does, `notify` runs once when it changes or goes, or when
    /// the watch is lost to a reconnect (subscribers hear of that).
    pub fn watch_exists(&self, path: &str, notify: impl Fn() + Send + Clone + 'static) -> Result<bool> {
        self.call("watch", path, |zk| {
            let notify = notify.clone();
            zk.exists_w(path, move |_: WatchedEvent| notify())
        })
        .map(|s| s.is_some())
        .map_err(|f| f.into_error("watch", path))
    }

    /// The names of `path`'s children (unsorted), or `None` if `path` does not exist.
    pub fn children(&self, path: &str) -> Result<Option<Vec<String>>> {
        optional(self.call("list", path, |zk| zk.get_children(path, false)), "list", path)
    }

    /// Like [`Session::children`], and `notify` runs once when the children change.
    pub fn watch_children(&self, path: &str, notify: impl Fn() + Send + Clone + 'static) -> Result<Option<Vec<String>>> {
        let result = self.call("watch", path, |zk| {
            let notify = notify.clone();
            zk.get_children_w(path, move |_: WatchedEvent| notify())
        });
        optional(result, "watch", path)
    }

    /// The data of `path`, or `None` if it does not exist.
    pub fn data(&self, path: &str) -> Result<Option<Vec<u8>>> {
        optional(self.call("read", path, |zk| zk.get_data(path, false).map(|(d, _)| d)), "read", path)
    }

    /// The data of `path` with its version, or `None` if it does not exist.
    pub fn versioned_data(&self, path: &str) -> Result<Option<(Vec<u8>, i32)>> {
        optional(self.call("read", path, |zk| zk.get_data(path, false).map(|(d, s)| (d, s.version))), "read", path)
    }

    /// Creates a persistent node unless it exists; `true` if this call created it.
    pub fn ensure_persistent(&self, path: &str, data: &[u8]) -> Result<bool> {
        self.create(path, data, CreateMode::Persistent)
    }

    /// Creates an ephemeral node owned by the current session; `false` if a node is already
    /// there (perhaps our own, if a retry after connection loss created it: the caller checks).
    pub fn create_ephemeral(&self, path: &str, data: &[u8]) -> Result<bool> {
        self.create(path, data, CreateMode::Ephemeral)
    }

    fn create(&self, path: &str, data: &[u8], mode: CreateMode) -> Result<bool> {
        match self.call("create", path, |zk| zk.create(path, data.to_vec(), Acl::open_unsafe().clone(), mode)) {
            Ok(_) => Ok(true),
            Err(Failure::Zk(ZkError::NodeExists)) => Ok(false),
            Err(f) => Err(f.into_error("create", path)),
        }
    }

    /// Creates a persistent sequential node under `prefix` and returns its full path, or `None`
    /// if the parent does not exist.
    ///
    /// Not retried after a connection loss: a retry could place the order twice.
    pub fn create_sequential(&self, prefix: &str, data: &[u8]) -> Result<Option<String>> {
        check_path(prefix)?;
        let zk = self.handle(None)?;
        match zk.create(prefix, data.to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential) {
            Ok(path) => Ok(Some(path)),
            Err(ZkError::NoNode) => Ok(None),
            Err(ZkError::ConnectionLoss) => Err(Error::ConnectionLost { op: format!("create {prefix}"), waited: Duration::ZERO }),
            Err(code) => Err(Failure::Zk(code).into_error("create", prefix)),
        }
    }

    /// Deletes `path` (at `version`, if given); `false` if it was already gone.
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<bool> {
        match self.call("delete", path, |zk| zk.delete(path, version)) {
            Ok(()) => Ok(true),
            Err(Failure::Zk(ZkError::NoNode)) => Ok(false),
            Err(f) => Err(f.into_error("delete", path)),
        }
    }

    /// Deletes `path` only if it has no children; says which of the three outcomes happened.
    pub fn delete_if_empty(&self, path: &str) -> Result<Removal> {
        match self.call("delete", path, |zk| zk.delete(path, None)) {
            Ok(()) => Ok(Removal::Deleted),
            Err(Failure::Zk(ZkError::NoNode)) => Ok(Removal::Absent),
            Err(Failure::Zk(ZkError::NotEmpty)) => Ok(Removal::NotEmpty),
            Err(f) => Err(f.into_error("delete", path)),
        }
    }

    /// Ends the session: ephemerals go at once.
    pub fn close(&self) {
        if let Some(handle) = lock(&self.inner.current).take() {
            self.set_link(handle.generation, Link::Closed);
            if let Err(e) = handle.zk.close() {
                debug!("closing session {}: {e:?}", handle.generation);
            }
        }
    }
}

/// What [`Session::delete_if_empty`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    Absent,
    NotEmpty,
}

/// Called on the crate's I/O thread: only bookkeeping and channel sends, never a client call.
fn on_state(inner: &Weak<Inner>, generation: u64, state: ZkState) {
    let Some(inner) = inner.upgrade() else { return };
    let session = Session { inner };
    let before = lock(&session.inner.link).1;
    debug!("session {generation}: {state:?}");
    match state {
        ZkState::Connected | ZkState::ConnectedReadOnly => {
            session.set_link(generation, Link::Connected);
            if before == Link::Connecting && session.generation() == generation {
                info!("reconnected to ZooKeeper (session {generation} kept)");
                session.notify(SessionEvent::Reconnected);
            }
        }
        ZkState::Closed | ZkState::AuthFailed => {
            session.set_link(generation, Link::Closed);
            if session.generation() == generation && before != Link::Closed {
                warn!("lost ZooKeeper session {generation}");
                session.notify(SessionEvent::Lost);
            }
        }
        _ => {
            if before == Link::Connected {
                info!("disconnected from ZooKeeper; reconnecting");
            }
            session.set_link(generation, Link::Connecting);
        }
    }
}

/// Why a call failed after retries.
enum Failure {
    /// The server answered with this error.
    Zk(ZkError),
    /// Connection loss for this long.
    Lost(Duration),
    /// A problem found before calling.
    Fatal(Error),
}

impl Failure {
    fn into_error(self, op: &str, path: &str) -> Error {
        match self {
            Failure::Zk(ZkError::NoAuth) | Failure::Zk(ZkError::AuthFailed) => {
                Error::NotAuthorized { op: op.into(), path: path.into() }
            }
            Failure::Zk(code) => Error::ZooKeeper { op: op.into(), path: path.into(), code: format!("{code:?}") },
            Failure::Lost(waited) => Error::ConnectionLost { op: format!("{op} {path}"), waited },
            Failure::Fatal(e) => e,
        }
    }
}

fn optional<T>(result: std::result::Result<T, Failure>, op: &str, path: &str) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(Failure::Zk(ZkError::NoNode)) => Ok(None),
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
    }

    #[test]
    fn bad_connect_strings_are_usage_errors() {
        for bad in ["", "a:1,,b:2", ":2181", "h:port", "h:0", "h:70000", "h:1/x/", "h:1//x", "a b:1"] {
            match parse(bad) {
                Err(Error::Usage(msg)) => assert!(msg.contains("connect string"), "{bad}: {msg}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn relative_paths_are_refused() {
        assert!(check_path("/orders").is_ok());
        assert!(check_path("/").is_ok());
        assert!(check_path("orders").is_err());
        assert!(check_path("/orders/").is_err());
    }
}
