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
//! - The crate has no read timeout (a call to a frozen server blocks for the whole freeze):
//!   calls run on a small pool of worker threads per handle and the caller waits at most the
//!   remaining operation deadline. A handle whose calls keep timing out is replaced.
//! - While no server accepts connections the crate's I/O thread spins a core: a new handle is
//!   only made once a plain TCP connect to some server succeeds, with backoff in between.
//! - A sequential create interrupted by connection loss may or may not have happened:
//!   [`Session::create_sequential_protected`] tags the node with an extra ACL entry (Curator's
//!   protected mode, without touching the node's name or data) and finds it again.
//! - Paths are checked to be absolute (the crate would silently glue a relative path to a
//!   chroot).
//!
//! Listeners of the crate run on its I/O thread and must not call the client: ours only update
//! a flag and send on channels.

use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use zookeeper::{Acl, CreateMode, Permission, WatchedEvent, ZkError, ZkResult, ZkState, ZooKeeper};

use crate::error::{Error, Result};

/// The port ZooKeeper listens on when a host in the connect string has none.
const DEFAULT_PORT: u16 = 2181;
/// First pause after a connection loss; doubled on each retry.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest pause between retries, so that recovery is noticed within a second.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Worker threads per handle: calls from several threads are pipelined over one connection,
/// and a few calls stuck on a frozen server do not block the rest until they time out.
const WORKERS: usize = 4;
/// How long a TCP probe waits for one server to accept.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// The ACL scheme of the tag that lets a protected create find its node again.
const TAG_SCHEME: &str = "digest";

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

    /// Whether any server accepts a TCP connection right now. Says nothing about whether it
    /// serves; it only avoids making a handle (whose I/O thread spins) while none is up.
    fn any_server_listening(&self) -> bool {
        self.hosts.iter().any(|host| {
            host.to_socket_addrs()
                .map(|mut addrs| addrs.any(|a| TcpStream::connect_timeout(&a, PROBE_TIMEOUT).is_ok()))
                .unwrap_or(false)
        })
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
    /// The connection came back: watches set before are lost. Usually the session is the
    /// same, but after the server reported it expired the crate silently starts a new one
    /// under the same handle, so ephemerals should be checked too.
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
    /// Runs calls on this handle; dropped with it, so threads stuck on an abandoned handle
    /// end when their call returns.
    workers: Workers,
}

type Job = Box<dyn FnOnce(&ZooKeeper) + Send>;
/// One ZooKeeper call, shareable so that a retry can run it again.
type Call<T> = Arc<dyn Fn(&ZooKeeper) -> ZkResult<T> + Send + Sync>;
/// Someone who wants to hear about [`SessionEvent`]s.
type Listener = Box<dyn Fn(SessionEvent) + Send>;

/// A few threads that run calls on one handle.
#[derive(Clone)]
struct Workers {
    jobs: mpsc::Sender<Job>,
}

impl Workers {
    fn start(zk: &Arc<ZooKeeper>, generation: u64) -> Workers {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..WORKERS {
            let rx = Arc::clone(&rx);
            // A weak reference: an abandoned handle is closed and dropped even while a worker
            // waits for jobs.
            let zk = Arc::downgrade(zk);
            let spawned = std::thread::Builder::new().name(format!("zk-call-{generation}.{i}")).spawn(move || loop {
                let job = match lock(&rx).recv() {
                    Ok(job) => job,
                    Err(_) => return,
                };
                match zk.upgrade() {
                    Some(zk) => job(&zk),
                    None => return,
                }
            });
            if let Err(e) = spawned {
                warn!("cannot start a ZooKeeper worker thread: {e}");
            }
        }
        Workers { jobs }
    }
}

struct Inner {
    config: SessionConfig,
    current: Mutex<Option<Handle>>,
    /// The link state of handle `generation`, with a condvar for waiting on it.
    link: Mutex<(u64, Link)>,
    link_changed: Condvar,
    subscribers: Mutex<Vec<(u64, Listener)>>,
    /// Numbers the subscriptions, so each can be removed.
    next_subscription: AtomicU64,
    generation: AtomicU64,
    /// Since when calls on handle `.0` have failed with connection loss or timed out; cleared
    /// by any answer from the server. A handle failing for a whole session timeout is dead.
    losing: Mutex<Option<(u64, Instant)>>,
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
                next_subscription: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                losing: Mutex::new(None),
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

    /// Calls `listener` with every [`SessionEvent`] until the returned [`Subscription`] is
    /// dropped. It runs on the client's I/O thread or inside a call: it must only record or
    /// send, never call the session.
    #[must_use = "the listener is removed when the subscription is dropped"]
    pub fn subscribe(&self, listener: impl Fn(SessionEvent) + Send + 'static) -> Subscription {
        let id = self.inner.next_subscription.fetch_add(1, Ordering::SeqCst);
        lock(&self.inner.subscribers).push((id, Box::new(listener)));
        Subscription { inner: Arc::downgrade(&self.inner), id }
    }

    /// Opens a new handle and waits until it serves a call.
    fn open(&self) -> Result<Handle> {
        let config = &self.inner.config;
        let generation = self.inner.generation.load(Ordering::SeqCst) + 1;
        let servers = config.servers.to_string();
        let started = Instant::now();
        let deadline = started + config.connect_timeout;
        let mut backoff = FIRST_BACKOFF;
        while !config.servers.any_server_listening() {
            if Instant::now() + backoff >= deadline {
                return Err(Error::Unreachable { servers, waited: started.elapsed() });
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
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
        let zk = Arc::new(zk);
        let workers = Workers::start(&zk, generation);
        Ok(Handle { zk, generation, workers })
    }

    fn set_link(&self, generation: u64, link: Link) {
        let mut l = lock(&self.inner.link);
        if l.0 == generation {
            l.1 = link;
        }
        self.inner.link_changed.notify_all();
    }

    /// The live handle; replaces a dead one first (a new session). A handle is dead when the
    /// crate closed it, or when every call on it has failed for a whole session timeout (the
    /// crate does not report expiry, and never notices a frozen server).
    fn handle(&self) -> Result<Workers> {
        let mut current = lock(&self.inner.current);
        let link = *lock(&self.inner.link);
        let losing = *lock(&self.inner.losing);
        let (generation, dead) = match current.as_ref() {
            Some(h) => {
                let failing = losing
                    .is_some_and(|(g, since)| g == h.generation && since.elapsed() >= self.inner.config.session_timeout);
                (h.generation, link == (h.generation, Link::Closed) || failing)
            }
            None => (0, true),
        };
        if dead {
            if let Some(old) = current.take() {
                warn!("ZooKeeper session {generation} is lost; starting a new session");
                // Closing a dead handle returns at once; closing a frozen one would block, so
                // that is left to a throwaway thread.
                let zk = old.zk;
                let _ = std::thread::Builder::new().name("zk-close".into()).spawn(move || {
                    let _ = zk.close();
                });
            }
            *current = Some(self.open()?);
            drop(current);
            self.notify(SessionEvent::Lost);
            current = lock(&self.inner.current);
        }
        match current.as_ref() {
            Some(h) => Ok(h.workers.clone()),
            None => Err(Error::ConnectionLost { op: "connect".into(), waited: Duration::ZERO }),
        }
    }

    /// Notes how a call on session `generation` went, for [`Session::handle`].
    fn note_outcome(&self, generation: u64, lost: bool) {
        let mut losing = lock(&self.inner.losing);
        match (*losing, lost) {
            (Some((g, _)), true) if g == generation => {}
            (_, true) => *losing = Some((generation, Instant::now())),
            (_, false) => *losing = None,
        }
    }

    fn notify(&self, event: SessionEvent) {
        for (_, listener) in lock(&self.inner.subscribers).iter() {
            listener(event);
        }
    }

    /// Runs `f` once on the live handle's workers, waiting at most `timeout` for the answer.
    /// A call that does not answer in time (a frozen server) counts as a connection loss.
    fn attempt<T: Send + 'static>(&self, timeout: Duration, f: &Call<T>) -> std::result::Result<T, Failure> {
        let workers = self.handle().map_err(|e| match e {
            e @ Error::Usage(_) => Failure::Fatal(e),
            e => {
                debug!("{e}");
                Failure::Lost(Duration::ZERO)
            }
        })?;
        let generation = self.generation();
        let (tx, rx) = mpsc::sync_channel(1);
        let f = Arc::clone(f);
        let job: Job = Box::new(move |zk| {
            let _ = tx.send(f(zk));
        });
        let result = match workers.jobs.send(job) {
            Err(_) => Err(ZkError::ConnectionLoss),
            Ok(()) => match rx.recv_timeout(timeout) {
                Ok(result) => result,
                Err(RecvTimeoutError::Timeout) => Err(ZkError::OperationTimeout),
                Err(RecvTimeoutError::Disconnected) => Err(ZkError::ConnectionLoss),
            },
        };
        match result {
            Err(ZkError::ConnectionLoss | ZkError::OperationTimeout | ZkError::SessionExpired) => {
                self.note_outcome(generation, true);
                Err(Failure::Lost(Duration::ZERO))
            }
            Err(code) => {
                self.note_outcome(generation, false);
                Err(Failure::Zk(code))
            }
            Ok(v) => {
                self.note_outcome(generation, false);
                Ok(v)
            }
        }
    }

    /// How long one attempt may wait for its answer: long enough for any healthy server,
    /// short enough that a whole session timeout of failures spans several attempts.
    fn attempt_timeout(&self) -> Duration {
        (self.inner.config.session_timeout / 2).max(Duration::from_millis(200))
    }

    /// Runs `f` on the live handle, retrying connection loss with backoff until the operation
    /// deadline (the larger of the session and connect timeouts) has passed. Returns the crate's
    /// error for the caller to interpret; a persistent loss becomes `Failure::Lost`.
    fn call<T: Send + 'static>(
        &self,
        path: &str,
        f: impl Fn(&ZooKeeper) -> ZkResult<T> + Send + Sync + 'static,
    ) -> std::result::Result<T, Failure> {
        check_path(path).map_err(Failure::Fatal)?;
        let f: Call<T> = Arc::new(f);
        let config = &self.inner.config;
        let started = Instant::now();
        let limit = config.session_timeout.max(config.connect_timeout);
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
    fn call_once<T: Send + 'static>(
        &self,
        path: &str,
        f: impl Fn(&ZooKeeper) -> ZkResult<T> + Send + Sync + 'static,
    ) -> std::result::Result<T, Failure> {
        check_path(path).map_err(Failure::Fatal)?;
        self.attempt(self.attempt_timeout(), &(Arc::new(f) as Call<T>))
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> Result<bool> {
        let p = path.to_owned();
        self.call(path, move |zk| zk.exists(&p, false)).map(|s| s.is_some()).map_err(|f| f.into_error("check", path))
    }

    /// How many children `path` has (one cheap read of its stat), or `None` if it does not
    /// exist.
    pub fn child_count(&self, path: &str) -> Result<Option<u32>> {
        let p = path.to_owned();
        self.call(path, move |zk| zk.exists(&p, false))
            .map(|stat| stat.map(|s| s.num_children.max(0) as u32))
            .map_err(|f| f.into_error("check", path))
    }

    /// Whether `path` exists; if it does, `notify` runs once when it changes or goes. A watch
    /// lost to a reconnect never runs: subscribers hear of that instead.
    pub fn watch_exists(&self, path: &str, notify: impl Fn() + Send + Sync + Clone + 'static) -> Result<bool> {
        let p = path.to_owned();
        self.call(path, move |zk| {
            let notify = notify.clone();
            zk.exists_w(&p, move |_: WatchedEvent| notify())
        })
        .map(|s| s.is_some())
        .map_err(|f| f.into_error("watch", path))
    }

    /// The names of `path`'s children (unsorted), or `None` if `path` does not exist.
    pub fn children(&self, path: &str) -> Result<Option<Vec<String>>> {
        let p = path.to_owned();
        optional(self.call(path, move |zk| zk.get_children(&p, false)), "list", path)
    }

    /// Like [`Session::children`], and `notify` runs once when the children change.
    pub fn watch_children(&self, path: &str, notify: impl Fn() + Send + Sync + Clone + 'static) -> Result<Option<Vec<String>>> {
        let p = path.to_owned();
        let result = self.call(path, move |zk| {
            let notify = notify.clone();
            zk.get_children_w(&p, move |_: WatchedEvent| notify())
        });
        optional(result, "watch", path)
    }

    /// The data of `path`, or `None` if it does not exist.
    pub fn data(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let p = path.to_owned();
        optional(self.call(path, move |zk| zk.get_data(&p, false).map(|(d, _)| d)), "read", path)
    }

    /// The data of `path` with its version, or `None` if it does not exist.
    pub fn versioned_data(&self, path: &str) -> Result<Option<(Vec<u8>, i32)>> {
        let p = path.to_owned();
        optional(self.call(path, move |zk| zk.get_data(&p, false).map(|(d, s)| (d, s.version))), "read", path)
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
        let (p, data) = (path.to_owned(), data.to_vec());
        match self.call(path, move |zk| zk.create(&p, data.clone(), Acl::open_unsafe().clone(), mode)) {
            Ok(_) => Ok(true),
            Err(Failure::Zk(ZkError::NodeExists)) => Ok(false),
            Err(f) => Err(f.into_error("create", path)),
        }
    }

    /// Creates a persistent sequential node `{prefix}{sequence}` and returns its full path, or
    /// `None` if the parent does not exist. Safe to use across connection loss: the node carries
    /// an extra ACL entry naming `tag` (read permission for an identity nobody has; the node
    /// stays open to everyone as before), and after a loss the parent's children are searched
    /// for that tag before creating again, so the node is created exactly once.
    pub fn create_sequential_protected(&self, prefix: &str, data: &[u8], tag: &str) -> Result<Option<String>> {
        check_path(prefix)?;
        let (parent, base) = prefix.rsplit_once('/').ok_or_else(|| Error::usage(format!("bad prefix {prefix:?}")))?;
        let parent = if parent.is_empty() { "/" } else { parent };
        let marker = Acl::new(Permission::READ, TAG_SCHEME, format!("zk-coffee-tag-{tag}:{tag}"));
        let mut acl = Acl::open_unsafe().clone();
        acl.push(marker.clone());
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let (p, data, acl) = (prefix.to_owned(), data.to_vec(), acl.clone());
            let create = move |zk: &ZooKeeper| zk.create(&p, data.clone(), acl.clone(), CreateMode::PersistentSequential);
            match self.call_once(prefix, create) {
                Ok(path) => return Ok(Some(path)),
                Err(Failure::Zk(ZkError::NoNode)) => return Ok(None),
                Err(Failure::Lost(_)) => {}
                Err(f) => return Err(f.into_error("create", prefix)),
            }
            // The create may have happened before the connection dropped: look for our tag.
            if let Some(found) = self.find_tagged(parent, base, &marker)? {
                info!("found my order {found} after a connection loss");
                return Ok(Some(found));
            }
            let limit = self.inner.config.session_timeout * 3;
            if started.elapsed() + backoff > limit {
                return Err(Error::ConnectionLost { op: format!("create {prefix}"), waited: started.elapsed() });
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The child of `parent` named `base` + sequence whose ACL holds `marker`, if any.
    fn find_tagged(&self, parent: &str, base: &str, marker: &Acl) -> Result<Option<String>> {
        let Some(children) = self.children(parent)? else { return Ok(None) };
        for child in children.iter().filter(|c| c.starts_with(base)) {
            let path = if parent == "/" { format!("/{child}") } else { format!("{parent}/{child}") };
            let p = path.clone();
            match self.call(&path, move |zk| zk.get_acl(&p)) {
                Ok((acl, _)) if acl.contains(marker) => return Ok(Some(path)),
                Ok(_) | Err(Failure::Zk(ZkError::NoNode)) => {}
                Err(f) => return Err(f.into_error("read the ACL of", &path)),
            }
        }
        Ok(None)
    }

    /// Deletes `path` (at `version`, if given); `false` if it was already gone.
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<bool> {
        let p = path.to_owned();
        match self.call(path, move |zk| zk.delete(&p, version)) {
            Ok(()) => Ok(true),
            Err(Failure::Zk(ZkError::NoNode)) => Ok(false),
            Err(f) => Err(f.into_error("delete", path)),
        }
    }

    /// Deletes `path` only if it has no children; says which of the three outcomes happened.
    pub fn delete_if_empty(&self, path: &str) -> Result<Removal> {
        let p = path.to_owned();
        match self.call(path, move |zk| zk.delete(&p, None)) {
            Ok(()) => Ok(Removal::Deleted),
            Err(Failure::Zk(ZkError::NoNode)) => Ok(Removal::Absent),
            Err(Failure::Zk(ZkError::NotEmpty)) => Ok(Removal::NotEmpty),
            Err(f) => Err(f.into_error("delete", path)),
        }
    }

    /// Ends the session: ephemerals go at once. Waits at most the session timeout (closing
    /// needs an answer from the server).
    pub fn close(&self) {
        let Some(handle) = lock(&self.inner.current).take() else { return };
        self.set_link(handle.generation, Link::Closed);
        let (tx, rx) = mpsc::channel();
        let zk = handle.zk;
        let closer = std::thread::Builder::new().name("zk-close".into()).spawn(move || {
            let _ = tx.send(zk.close());
        });
        if closer.is_ok() {
            match rx.recv_timeout(self.inner.config.session_timeout) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => debug!("closing session {}: {e:?}", handle.generation),
                Err(_) => warn!("ZooKeeper did not confirm the end of session {}", handle.generation),
            }
        }
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
            lock(&inner.subscribers).retain(|(id, _)| *id != self.id);
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
