//! The manager's loop: the watches it holds and the messages they send (with the session's
//! and a stop request's), the shops it finds and follows, the full reads after missed events,
//! the alerts of each shop, and what time alone tells. One thread runs it; only it changes the
//! pictures in [`Shared`], under the lock, never across a network wait.
//!
//! (Over 400 lines: one loop and the states it moves between; the inbox, the catching up and
//! the per-shop alerts are fields of one struct that only this loop changes, and splitting
//! them would spread that one state machine over files that all reach into it.)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, info, warn};

use super::follow::{self, Change, Fact};
use super::{shop_label, Alerts, Event, Followed, Kind, ManagerConfig, Picture, Scope, Shared, TICK};
use crate::error::{Error, Result};
use crate::layout::{self, Located, ShopName};
use crate::lock;
use crate::session::{Session, SessionEvent, TreeEvent, TreeWatch};
use crate::shutdown::Shutdown;

/// The pauses between attempts to catch up while ZooKeeper cannot be read: doubling from
/// 100 ms to 5 s, for as long as it takes (the manager outlives outages).
#[derive(Debug, Default)]
struct CatchUp {
    failures: u32,
}

impl CatchUp {
    fn next_pause(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        (Duration::from_millis(100) * 2u32.saturating_pow(self.failures.min(6))).min(Duration::from_secs(5))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

#[derive(Debug)]
pub(super) enum Msg {
    Tree(TreeEvent),
    Report(Event),
    Lost,
    Stop,
}

/// The watches the manager holds; dropping them removes them.
struct Watches(#[allow(dead_code)] Vec<TreeWatch>);

fn set_watches(session: &Session, scope: &Scope, tx: &Sender<Msg>) -> Result<Watches> {
    let mut paths: Vec<String> = Vec::new();
    if scope.includes_root() {
        paths.extend([layout::BARISTA_GROUP, layout::ORDERS, layout::EXTENSIONS].map(str::to_owned));
    }
    match scope {
        Scope::All => paths.push(layout::SHOPS.to_owned()),
        Scope::Only(shops) => paths.extend(shops.iter().flatten().map(layout::shop_root)),
    }
    let mut watches = Vec::with_capacity(paths.len());
    for path in paths {
        let tx = tx.clone();
        watches.push(session.watch_tree(&path, move |event| {
            let _ = tx.send(Msg::Tree(event));
        })?);
    }
    Ok(Watches(watches))
}

/// The shops there are now, within `scope`.
fn discover(session: &Session, scope: &Scope) -> Result<Vec<Option<ShopName>>> {
    let mut shops = Vec::new();
    if scope.includes_root() && root_shop_exists(session)? {
        shops.push(None);
    }
    let named: Vec<ShopName> = match scope {
        Scope::All => session.children(layout::SHOPS)?.unwrap_or_default().iter().filter_map(|n| ShopName::new(n).ok()).collect(),
        Scope::Only(only) => {
            let mut present = Vec::new();
            for shop in only.iter().flatten() {
                if session.exists(&layout::shop_root(shop))? {
                    present.push(shop.clone());
                } else {
                    info!("shop {shop} does not exist yet: following it once it does");
                }
            }
            present
        }
    };
    shops.extend(named.into_iter().map(Some));
    Ok(shops)
}

fn root_shop_exists(session: &Session) -> Result<bool> {
    Ok(session.exists(layout::ORDERS)? || session.exists(layout::BARISTA_GROUP)?)
}

/// The manager's loop: follows the shops until `shutdown`, telling `on_event` each event
/// (after counting it) and `on_ready` once every shop has been read.
pub fn run(
    config: &ManagerConfig,
    shared: &Arc<Shared>,
    shutdown: &Shutdown,
    on_event: &mut dyn FnMut(&Event),
    on_ready: &mut dyn FnMut(),
) -> Result<()> {
    let rx = lock(&shared.rx).take().ok_or_else(|| Error::internal("the manager's loop runs once per Shared"))?;
    let tx = lock(&shared.tx).clone();
    let session = Session::connect(config.session.clone())?;
    let inbox = Inbox { rx, stop: false, lost: false, reread: false, restored: 0, restored_since: None };
    let mut manager = Manager {
        config,
        shared,
        session: session.clone(),
        on_event,
        tx,
        inbox,
        alerts: BTreeMap::new(),
        changed_ledgers: BTreeMap::new(),
        watched_generation: 0,
    };
    let result = manager.follow(shutdown, on_ready);
    // The alerts first: running hooks get their grace, then each withdraws from its election
    // (on its own session, closed after).
    for (_, (alerts, shop_session)) in std::mem::take(&mut manager.alerts) {
        drop(alerts);
        shop_session.close();
    }
    session.close();
    result
}

struct Manager<'a> {
    config: &'a ManagerConfig,
    shared: &'a Arc<Shared>,
    session: Session,
    on_event: &'a mut dyn FnMut(&Event),
    /// Where the watches, the session and the stop request send their messages.
    tx: Sender<Msg>,
    inbox: Inbox,
    /// Ledgers a batch of events changed, by shop (label, and the shop's name), to read once.
    changed_ledgers: BTreeMap<String, (Option<ShopName>, BTreeSet<String>)>,
    /// The session generation the watches were set on.
    watched_generation: u64,
    /// Each shop's alerts (with `--on-event`), on a session of that shop's own.
    alerts: BTreeMap<String, (Alerts, Session)>,
}

/// The messages to handle, and what they asked of the loop.
struct Inbox {
    rx: Receiver<Msg>,
    stop: bool,
    /// The session was lost: watch again, read everything.
    lost: bool,
    /// Events may have been missed: read everything.
    reread: bool,
    /// Watches that said they were set again since the last full read, and since when.
    restored: usize,
    restored_since: Option<Instant>,
}

/// How many times in a row catching up may find the session changed under it.
const MAX_CATCH_UPS: usize = 3;

/// How long the loop handles waiting messages before it reads the ledgers they changed (and
/// looks at the time): under a steady stream it would otherwise never stop to.
const BATCH: Duration = Duration::from_millis(20);

/// How long after the first watch said it was set again the manager waits for the others
/// before it reads every shop.
const RESTORE_WAIT: Duration = Duration::from_secs(1);

impl Manager<'_> {
    fn follow(&mut self, shutdown: &Shutdown, on_ready: &mut dyn FnMut()) -> Result<()> {
        let lost = self.tx.clone();
        let _subscription = self.session.subscribe(move |event| {
            if event == SessionEvent::Lost {
                let _ = lost.send(Msg::Lost);
            }
        });
        let stop = Mutex::new(self.tx.clone());
        let _hook = shutdown.on_request(move || {
            let _ = lock(&stop).send(Msg::Stop);
        });
        self.watched_generation = self.session.generation();
        let mut watches = set_watches(&self.session, &self.config.scope, &self.tx)?;
        for shop in discover(&self.session, &self.config.scope)? {
            self.add_shop(shop, false)?;
        }
        let (shops, baristas, waiting) = self.shared.with_shops(|shops| {
            let baristas: usize = shops.values().map(|f| f.picture.on_shift().count()).sum();
            let waiting: usize = shops.values().map(|f| f.picture.buckets.values().map(|b| b.len()).sum::<usize>()).sum();
            (shops.len(), baristas, waiting)
        });
        info!("following {shops} shops: {baristas} baristas on shift, {waiting} orders waiting");
        on_ready();
        let mut next_tick = Instant::now() + TICK;
        let mut retry = CatchUp::default();
        let mut retry_at = Instant::now();
        loop {
            let wake = self.inbox.restored_since.map_or(next_tick, |since| next_tick.min(since + RESTORE_WAIT));
            match self.inbox.rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            self.pump();
            if self.inbox.stop {
                info!("stopping");
                return Ok(());
            }
            // After a reconnect every watch is set again and says so: read once they all have
            // (or a moment after the first), not once per watch.
            let restored = self
                .inbox
                .restored_since
                .is_some_and(|since| self.inbox.restored >= watches.0.len() || since.elapsed() >= RESTORE_WAIT);
            if restored {
                self.inbox.restored = 0;
                self.inbox.restored_since = None;
                self.inbox.reread = true;
            }
            if (self.inbox.lost || self.inbox.reread) && Instant::now() >= retry_at {
                let rewatch = self.inbox.lost;
                self.inbox.lost = false;
                self.inbox.reread = false;
                match self.catch_up(rewatch, &mut watches) {
                    Ok(()) => retry.reset(),
                    // A shop in a newer layout does not heal by reading it again.
                    Err(e @ (Error::NewerLayout { .. } | Error::BadLayoutVersion { .. })) => return Err(e),
                    Err(e) => {
                        self.inbox.lost |= rewatch;
                        self.inbox.reread = true;
                        let pause = retry.next_pause();
                        warn!("cannot read the shops again yet ({e}); trying again in {}", crate::duration::human(pause));
                        retry_at = Instant::now() + pause;
                    }
                }
            }
            if Instant::now() >= next_tick {
                self.tick();
                next_tick = Instant::now() + TICK;
            }
        }
    }

    /// Handles one message: a tree event is applied at once; the rest is noted for the loop.
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Stop => self.inbox.stop = true,
            Msg::Lost => {
                warn!("the session was lost: watching again and reading every shop");
                self.inbox.lost = true;
            }
            // Its reporter logged it already.
            Msg::Report(event) => self.tell(event, false),
            Msg::Tree(TreeEvent::Restored) => {
                self.inbox.restored += 1;
                self.inbox.restored_since.get_or_insert_with(Instant::now);
            }
            Msg::Tree(event) => {
                if let Err(e) = self.on_tree_event(event) {
                    // The event's facts could not be read (the connection went, or the
                    // session): a full read settles what happened.
                    warn!("{e}; reading every shop again");
                    self.inbox.reread = true;
                }
            }
        }
    }

    /// Handles every message waiting, without waiting for more.
    fn pump(&mut self) {
        let until = Instant::now() + BATCH;
        while let Ok(msg) = self.inbox.rx.try_recv() {
            self.handle(msg);
            if Instant::now() >= until {
                break;
            }
        }
        if let Err(e) = self.read_changed_ledgers() {
            warn!("{e}; reading every shop again");
            self.inbox.reread = true;
        }
    }

    /// Reads the ledgers the events since the last call changed, each once, and applies them.
    fn read_changed_ledgers(&mut self) -> Result<()> {
        for (label, (shop, baristas)) in std::mem::take(&mut self.changed_ledgers) {
            let baristas: Vec<String> = baristas.into_iter().collect();
            let facts = follow::read_ledgers(&self.session, shop.as_ref(), &baristas)?;
            self.apply_facts(&label, facts, Instant::now());
        }
        Ok(())
    }

    /// Applies `facts` to the picture of shop `label` (if still followed) and tells what they
    /// came to.
    fn apply_facts(&mut self, label: &str, facts: Vec<Fact>, now: Instant) {
        let events = self.shared.with_shops_mut(|shops| match shops.get_mut(label) {
            Some(followed) => {
                for fact in facts {
                    fact.apply(&mut followed.picture, now);
                }
                for wait in followed.picture.served_waits.drain(..) {
                    self.shared.metrics.observe_wait(label, wait);
                    self.shared.page.served(label, wait);
                }
                followed.picture.take_events()
            }
            None => Vec::new(),
        });
        self.emit(events);
    }

    /// After a lost session (`rewatch`: the watches went with it) or missed events: watches
    /// again if needed, then reads every shop. The watches are set before the reads, on the
    /// session the reads run on: a read that finds the session gone runs on a new one (before
    /// the loop hears it was lost), and what changes between a read on an unwatched session
    /// and the watches set later would be seen by neither. So it watches again whenever the
    /// session changed since the watches were set, and reads again if it changed meanwhile.
    fn catch_up(&mut self, mut rewatch: bool, watches: &mut Watches) -> Result<()> {
        for _ in 0..MAX_CATCH_UPS {
            if rewatch || self.session.generation() != self.watched_generation {
                // The old watches go first (their removal must not follow the new ones).
                drop(std::mem::replace(watches, Watches(Vec::new())));
                let generation = self.session.generation();
                *watches = set_watches(&self.session, &self.config.scope, &self.tx)?;
                self.watched_generation = generation;
            }
            self.reread_all()?;
            if self.session.generation() == self.watched_generation {
                return Ok(());
            }
            rewatch = true;
        }
        Err(Error::ConnectionLost { op: "watch the shops on one session".into(), waited: self.session.session_timeout() })
    }

    /// Starts following `shop`: reads it whole. `created`: it appeared while we ran.
    fn add_shop(&mut self, shop: Option<ShopName>, created: bool) -> Result<()> {
        let label = shop_label(shop.as_ref());
        if self.shared.with_shops(|shops| shops.contains_key(&label)) {
            return Ok(());
        }
        let snapshot = follow::read_shop(&self.session, shop.as_ref())?;
        let mut picture = Picture::new(&label);
        snapshot.apply(&mut picture, true);
        self.shared.with_shops_mut(|shops| shops.insert(label.clone(), Followed { name: shop.clone(), picture, leader: false }));
        self.stand_for_alerts(shop.as_ref());
        if created {
            let event = Event::new(Kind::ShopCreated, &label, None, format!("shop-created:{label}"));
            self.emit(vec![event]);
        } else {
            debug!("following shop {label}");
        }
        Ok(())
    }

    /// With a hook configured, stands in `shop`'s election on a session of that shop's own
    /// (once). A shop whose nodes the manager may not create (a secured shop set up by an
    /// older `shop-init`) runs no hooks, which is logged; it is tried again after every full
    /// read.
    fn stand_for_alerts(&mut self, shop: Option<&ShopName>) {
        let Some(hooks) = &self.config.hooks else { return };
        let label = shop_label(shop);
        if self.alerts.contains_key(&label) {
            return;
        }
        let mut config = self.config.session.clone();
        if let Some(shop) = shop {
            config.servers = config.servers.under(&layout::shop_root(shop));
        }
        let stood = Session::connect(config).and_then(|session| match Alerts::new(&session, &label, hooks.clone()) {
            Ok(alerts) => Ok((alerts, session)),
            Err(e) => {
                session.close();
                Err(e)
            }
        });
        match stood {
            Ok(pair) => {
                self.alerts.insert(label, pair);
            }
            Err(e) => warn!("shop {label}: no alert hooks for now: {e}"),
        }
    }

    fn on_tree_event(&mut self, event: TreeEvent) -> Result<()> {
        let now = Instant::now();
        let (path, change) = match event {
            TreeEvent::Created(p) => (p, Change::Created),
            TreeEvent::Changed(p) => (p, Change::Changed),
            TreeEvent::Deleted(p) => (p, Change::Deleted),
            TreeEvent::Restored => return Ok(()),
        };
        let (shop, inner) = match layout::locate(&path) {
            Located::Shops => return Ok(()),
            Located::Named { shop, path: "" } => {
                let Ok(name) = ShopName::new(shop) else { return Ok(()) };
                if !self.config.scope.includes(&name) {
                    return Ok(());
                }
                match change {
                    Change::Created => self.add_shop(Some(name), true)?,
                    Change::Deleted => {
                        info!("shop {name} was removed");
                        self.forget_shop(&name.to_string());
                    }
                    Change::Changed => {}
                }
                return Ok(());
            }
            Located::Named { shop, path } => match ShopName::new(shop) {
                Ok(name) if self.config.scope.includes(&name) => (Some(name), path.to_owned()),
                _ => return Ok(()),
            },
            Located::Root(path) => {
                if !self.config.scope.includes_root() {
                    return Ok(());
                }
                (None, path.to_owned())
            }
        };
        let label = shop_label(shop.as_ref());
        if !self.shared.with_shops(|shops| shops.contains_key(&label)) {
            // A shop we do not follow yet: its first nodes are being made (shop-init).
            if change == Change::Created && (shop.is_some() || root_shop_exists(&self.session)?) {
                self.add_shop(shop, true)?;
            }
            return Ok(());
        }
        match follow::fetch(&self.session, shop.as_ref(), &inner, change)? {
            Fact::Nothing => {}
            // Read once the batch is handled (see `follow`).
            Fact::LedgerChanged(barista) => {
                self.changed_ledgers.entry(label).or_insert_with(|| (shop, BTreeSet::new())).1.insert(barista);
            }
            fact => self.apply_facts(&label, vec![fact], now),
        }
        Ok(())
    }

    fn forget_shop(&mut self, label: &str) {
        self.shared.with_shops_mut(|shops| shops.remove(label));
        self.shared.page.forget(label);
        if let Some((alerts, session)) = self.alerts.remove(label) {
            drop(alerts);
            session.close();
        }
    }

    /// Reads every shop again after events may have been missed; what changed is reported,
    /// marked `inferred`.
    fn reread_all(&mut self) -> Result<()> {
        let shops: Vec<Option<ShopName>> = discover(&self.session, &self.config.scope)?;
        let known: Vec<(String, Option<ShopName>)> =
            self.shared.with_shops(|shops| shops.iter().map(|(label, f)| (label.clone(), f.name.clone())).collect());
        for (label, name) in &known {
            if !shops.contains(name) {
                info!("shop {label} was removed");
                self.forget_shop(label);
            }
        }
        for shop in shops {
            let label = shop_label(shop.as_ref());
            if !known.iter().any(|(l, _)| *l == label) {
                self.add_shop(shop, true)?;
                continue;
            }
            let snapshot = follow::read_shop(&self.session, shop.as_ref())?;
            // What the watches said before the reads were answered happened first (a leaving
            // barista's mark, say): apply it before what the reads found.
            self.pump();
            let mut events = self.shared.with_shops_mut(|shops| match shops.get_mut(&label) {
                Some(followed) => {
                    snapshot.apply(&mut followed.picture, false);
                    followed.picture.take_events()
                }
                None => Vec::new(),
            });
            for event in &mut events {
                event.facts.insert("inferred".to_owned(), true.into());
            }
            self.emit(events);
        }
        let names: Vec<Option<ShopName>> = self.shared.with_shops(|shops| shops.values().map(|f| f.name.clone()).collect());
        for name in names {
            self.stand_for_alerts(name.as_ref());
        }
        info!("read every shop again");
        Ok(())
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let (alert_wait, forget_after) = (self.config.alert_wait, self.config.forget_after);
        let (metrics, page) = (&self.shared.metrics, &self.shared.page);
        let alerts = &self.alerts;
        let events = self.shared.with_shops_mut(|shops| {
            let mut events = Vec::new();
            for (label, followed) in shops.iter_mut() {
                followed.leader = alerts.get(label).is_some_and(|(a, _)| a.is_leader());
                let picture = &mut followed.picture;
                picture.tick(now, wall, alert_wait);
                for wait in picture.served_waits.drain(..) {
                    metrics.observe_wait(label, wait);
                    page.served(label, wait);
                }
                page.sample(label, wall, picture.buckets.values().map(|orders| orders.len() as u64).sum());
                for name in picture.forget_gone(now, forget_after) {
                    debug!("shop {label}: no more series for barista {name}, gone for {forget_after:?}");
                }
                events.extend(picture.take_events());
            }
            events
        });
        self.emit(events);
    }

    fn emit(&mut self, events: Vec<Event>) {
        for event in events {
            self.tell(event, true);
        }
    }

    /// Counts, logs (`log`), writes and alerts one event.
    fn tell(&mut self, event: Event, log: bool) {
        {
            self.shared.metrics.count_event(&event);
            if log {
                info!("{event}");
            }
            (self.on_event)(&event);
            self.shared.page.publish(&event);
            // The shop's leader runs the hook. An event about the ensemble itself goes to the
            // first shop's election: every manager following the same shops picks the same.
            let alerts = self.alerts.get(&event.shop).or_else(|| self.alerts.values().next());
            if let Some((alerts, _)) = alerts {
                alerts.event(&event);
            }
        }
    }
}
