//! The session's life: which ZooKeeper session calls run on, how many there have been (the
//! generation), and who hears when one is lost or its connection comes back.
//!
//! A lost session (expired, closed) is terminal for a client: the next call makes a new one.
//! The client's state watcher and a call that hears "expired" may both learn of a loss; the
//! handle's `told` flag makes subscribers hear it once between them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use zookeeper_client as zkc;

use super::retry::block_on_for;
use super::{Inner, Session};
use crate::error::{Error, Result};
use crate::lock;

/// At most this much of a connect's wait goes to asking why it failed (a TLS handshake of our
/// own per server, see `tls`).
const DIAGNOSIS_BUDGET: Duration = Duration::from_secs(1);

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
    /// Whether the client is connected to a server now (kept by its state watcher).
    connected: Arc<AtomicBool>,
}

/// Someone who wants to hear about [`SessionEvent`]s.
type Listener = Box<dyn Fn(SessionEvent) + Send + Sync>;

/// The current session and its listeners, shared by all clones of a [`Session`].
pub(super) struct State {
    /// The session calls run on; `None` after [`Session::close`] (the next call opens one).
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
}

impl State {
    /// No session yet: [`Session::connect`] opens the first.
    pub(super) fn new() -> State {
        State {
            current: Mutex::new(None),
            subscribers: RwLock::new(Vec::new()),
            next_subscription: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }
}

impl Session {
    /// Opens the first session, waiting at most `config.connect_timeout`.
    pub(super) fn start(&self) -> Result<()> {
        let handle = self.open(self.inner.config.connect_timeout)?;
        *lock(&self.inner.state.current) = Some(handle);
        Ok(())
    }

    /// ZooKeeper's id of the current session (what an ephemeral node's owner is), if one is
    /// open.
    pub fn session_id(&self) -> Option<i64> {
        lock(&self.inner.state.current).as_ref().map(|h| h.client.session_id().0)
    }

    /// Which session calls run on: changes as soon as the current session is known to be lost
    /// (the next call opens the new one), so a subscriber told [`SessionEvent::Lost`] already
    /// sees the new number.
    pub fn generation(&self) -> u64 {
        let newest = self.inner.state.generation.load(Ordering::SeqCst);
        if self.inner.state.lost.load(Ordering::SeqCst) >= newest {
            newest + 1
        } else {
            newest
        }
    }

    /// How many sessions have been established so far (the first, and one after each lost
    /// session): what a role's metrics report.
    pub fn sessions_opened(&self) -> u64 {
        self.inner.state.generation.load(Ordering::SeqCst)
    }

    /// Whether the current session's client is connected to a server now: `false` while it
    /// reconnects, once the session is lost (until a call opens the next) and after
    /// [`Session::close`].
    pub fn is_connected(&self) -> bool {
        lock(&self.inner.state.current)
            .as_ref()
            .is_some_and(|h| !h.dead.load(Ordering::SeqCst) && h.connected.load(Ordering::SeqCst))
    }

    /// Calls `listener` with every [`SessionEvent`] until the returned [`Subscription`] is
    /// dropped. It runs on the client's executor or inside a call: it must only record or
    /// send, never call the session.
    #[must_use = "the listener is removed when the subscription is dropped"]
    pub fn subscribe(&self, listener: impl Fn(SessionEvent) + Send + Sync + 'static) -> Subscription {
        let id = self.inner.state.next_subscription.fetch_add(1, Ordering::SeqCst);
        self.inner.state.subscribers.write().unwrap_or_else(|p| p.into_inner()).push((id, Box::new(listener)));
        Subscription { inner: Arc::downgrade(&self.inner), id }
    }

    /// Makes a new client (a new session) and waits until it is connected, at most `wait`.
    fn open(&self, wait: Duration) -> Result<Handle> {
        let config = &self.inner.config;
        let generation = self.inner.state.generation.load(Ordering::SeqCst) + 1;
        let servers = config.servers.to_string();
        let started = Instant::now();
        debug!("connecting to {servers} (session {generation})");
        let mut connector = zkc::Client::connector().with_session_timeout(config.session_timeout);
        for credentials in config.credentials.iter().chain(&config.identity) {
            connector = connector.with_auth("digest", &credentials.auth());
        }
        // What is left of `wait` after the client gave up goes to asking why (see `tls`).
        let ask_why = (wait / 10).min(DIAGNOSIS_BUDGET);
        let connecting = match &config.tls {
            Some(tls) => {
                let connector = connector.with_tls(tls.options()?);
                block_on_for(wait.saturating_sub(ask_why), connector.secure_connect(&servers))
            }
            None => block_on_for(wait.saturating_sub(ask_why), connector.connect(&servers)),
        };
        let client = match connecting {
            Some(Ok(client)) => client,
            Some(Err(zkc::Error::NoHosts)) => {
                return Err(Error::usage(format!("cannot resolve the ZooKeeper servers in {servers:?}")))
            }
            Some(Err(zkc::Error::BadArguments(why))) => {
                return Err(Error::usage(format!("invalid ZooKeeper connect string {servers:?}: {why}")))
            }
            Some(Err(e)) => {
                debug!("connect to {servers}: {e}");
                return Err(self.why_unreachable(servers, started, ask_why));
            }
            None => return Err(self.why_unreachable(servers, started, ask_why)),
        };
        let (dead, told) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let connected = Arc::new(AtomicBool::new(true));
        self.watch_state(&client, generation, Arc::clone(&dead), Arc::clone(&told), Arc::clone(&connected));
        self.inner.state.generation.store(generation, Ordering::SeqCst);
        info!("connected to ZooKeeper at {servers} (session {generation})");
        Ok(Handle { client, generation, dead, told, connected })
    }

    /// The error for a connection that did not come within its wait: a TLS problem if one
    /// server names one within `budget` (the servers asked in order), else
    /// [`Error::Unreachable`].
    fn why_unreachable(&self, servers: String, started: Instant, budget: Duration) -> Error {
        let config = &self.inner.config;
        let deadline = Instant::now() + budget;
        for server in config.servers.hosts() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let problem = match &config.tls {
                Some(tls) => tls.diagnose(server, left),
                None => super::speaks_tls(server, left).then(|| {
                    "the server speaks TLS only (a secureClientPort) and we spoke plaintext: give --tls-ca FILE \
                     (or ZK_TLS_CA) with the CA that signed its certificate"
                        .to_owned()
                }),
            };
            if let Some(problem) = problem {
                return Error::Tls { server: server.clone(), problem };
            }
        }
        Error::Unreachable { servers, waited: started.elapsed() }
    }

    /// Follows the client's state on its executor: reports reconnects, and marks the handle
    /// dead (and tells subscribers) when the session ends.
    fn watch_state(
        &self,
        client: &zkc::Client,
        generation: u64,
        dead: Arc<AtomicBool>,
        told: Arc<AtomicBool>,
        connected: Arc<AtomicBool>,
    ) {
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
                        connected.store(false, Ordering::SeqCst);
                        if !disconnected {
                            info!("disconnected from ZooKeeper; reconnecting");
                        }
                        disconnected = true;
                    }
                    zkc::SessionState::SyncConnected | zkc::SessionState::ConnectedReadOnly => {
                        connected.store(true, Ordering::SeqCst);
                        if disconnected {
                            disconnected = false;
                            info!("reconnected to ZooKeeper (session {generation} kept)");
                            session.notify(SessionEvent::Reconnected);
                        }
                    }
                    zkc::SessionState::Expired | zkc::SessionState::AuthFailed | zkc::SessionState::Closed => {
                        connected.store(false, Ordering::SeqCst);
                        dead.store(true, Ordering::SeqCst);
                        session.inner.state.lost.fetch_max(generation, Ordering::SeqCst);
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
    pub(super) fn client(&self, wait: Duration) -> Result<(zkc::Client, u64)> {
        let mut current = lock(&self.inner.state.current);
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
    pub(super) fn live_client(&self, generation: u64) -> Option<zkc::Client> {
        let current = lock(&self.inner.state.current);
        current.as_ref().filter(|h| h.generation == generation && !h.dead.load(Ordering::SeqCst)).map(|h| h.client.clone())
    }

    /// Marks the client of session `generation` dead, so that the next call makes a new one,
    /// and tells subscribers unless the client's report told them already.
    pub(super) fn forget(&self, generation: u64) {
        let current = lock(&self.inner.state.current);
        let Some(h) = current.as_ref().filter(|h| h.generation == generation) else { return };
        h.dead.store(true, Ordering::SeqCst);
        self.inner.state.lost.fetch_max(generation, Ordering::SeqCst);
        let told = Arc::clone(&h.told);
        drop(current);
        if !told.swap(true, Ordering::SeqCst) {
            warn!("lost ZooKeeper session {generation} (a call found it gone)");
            self.notify(SessionEvent::Lost);
        }
    }

    fn notify(&self, event: SessionEvent) {
        for (_, listener) in self.inner.state.subscribers.read().unwrap_or_else(|p| p.into_inner()).iter() {
            listener(event);
        }
    }

    /// Ends the session: ephemerals go at once. Waits a moment for the server to confirm.
    pub fn close(&self) {
        let Some(handle) = lock(&self.inner.state.current).take() else { return };
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

/// Keeps a [`Session::subscribe`] listener registered; dropping it removes the listener.
pub struct Subscription {
    inner: Weak<Inner>,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.state.subscribers.write().unwrap_or_else(|p| p.into_inner()).retain(|(id, _)| *id != self.id);
        }
    }
}
