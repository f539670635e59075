//! The shop manager: a long-running role that follows every shop of an ensemble (or the ones
//! it is told to), tells people what happens there as [`event`]s, runs alert hooks, and
//! serves what it sees as metrics and JSON.
//!
//! It follows all its shops on one session without a chroot: persistent recursive watches on
//! the root shop's three trees (`/barista_group`, `/orders`, `/zk-coffee`) and on `/shops`
//! (every named shop, and shops created while it runs), or on `/shops/NAME` for each shop it
//! was told to follow. Its picture of each shop ([`picture`]) is built from one full read at
//! start and kept current from the watches' events ([`follow`]); after a reconnect or a new
//! session, when events may have been missed, every shop is read again and what changed
//! meanwhile is reported, marked `inferred`. Time alone (a queue too slow, orders with nobody
//! on shift, a deletion no ledger counted) is looked at every [`TICK`]; nothing polls
//! ZooKeeper.
//!
//! The pictures live behind one lock in [`Shared`], which the metrics ([`metrics`]) and the
//! API ([`api`]) and the page ([`page`]) read; the lock is never held across a network wait. The loop itself is in
//! `shops`; [`alerts`] runs the hooks through each shop's election, [`zookeeper`] asks the
//! servers how they are.

pub mod alerts;
pub mod api;
pub mod event;
pub mod follow;
pub mod metrics;
pub mod page;
pub mod picture;
mod shops;
pub mod zookeeper;

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use alerts::{Alerts, HookConfig};
pub use event::{Event, Kind, ROOT_SHOP};
pub use picture::Picture;
pub use shops::run;

use crate::layout::ShopName;
use crate::lock;
use crate::session::SessionConfig;

/// How often the manager looks at what time alone tells.
pub const TICK: Duration = Duration::from_millis(250);

/// Which shops a manager follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The root shop (once initialised) and every `/shops/NAME`, including new ones.
    All,
    /// Only these (`None`: the root shop).
    Only(Vec<Option<ShopName>>),
}

impl Scope {
    fn includes_root(&self) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(shops) => shops.contains(&None),
        }
    }

    fn includes(&self, shop: &ShopName) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(shops) => shops.iter().any(|s| s.as_ref() == Some(shop)),
        }
    }
}

/// What the manager is told.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// The ensemble, without a chroot.
    pub session: SessionConfig,
    /// The ensemble's name in metrics.
    pub ensemble: String,
    pub scope: Scope,
    /// A queue whose oldest order waited longer is slow.
    pub alert_wait: Duration,
    /// A barista gone this long (and its bucket empty) loses its series.
    pub forget_after: Duration,
    /// The alert hook, if any: then the manager stands in each shop's election, and the
    /// shop's leader runs it (see [`alerts`]).
    pub hooks: Option<HookConfig>,
}

/// The name of a shop in events, metrics and the API.
pub fn shop_label(shop: Option<&ShopName>) -> String {
    shop.map_or_else(|| ROOT_SHOP.to_owned(), |s| s.to_string())
}

/// One shop the manager follows.
#[derive(Debug, Clone)]
pub struct Followed {
    pub name: Option<ShopName>,
    pub picture: Picture,
    /// This manager leads the shop's election (runs its alert hooks).
    pub leader: bool,
}

/// What the manager's threads share: the pictures, and the counters kept as events happen.
#[derive(Debug)]
pub struct Shared {
    pub ensemble: String,
    pub forget_after: Duration,
    shops: Mutex<BTreeMap<String, Followed>>,
    pub metrics: metrics::Recorded,
    /// What the page's event streams are told, and the history of its charts.
    pub page: page::Hub,
    /// Where everything the manager's loop hears is sent; its receiving end, until the loop
    /// takes it.
    tx: Mutex<Sender<shops::Msg>>,
    rx: Mutex<Option<Receiver<shops::Msg>>>,
}

impl Shared {
    /// Shared state for a manager configured by `config`.
    pub fn new(config: &ManagerConfig) -> Arc<Shared> {
        let (tx, rx) = mpsc::channel();
        Arc::new(Shared {
            ensemble: config.ensemble.clone(),
            forget_after: config.forget_after,
            shops: Mutex::new(BTreeMap::new()),
            metrics: metrics::Recorded::new(&config.ensemble),
            page: page::Hub::default(),
            tx: Mutex::new(tx),
            rx: Mutex::new(Some(rx)),
        })
    }

    /// Hands an event found elsewhere (the ZooKeeper servers' health, [`zookeeper::Poller`])
    /// to the manager's loop, which reports it like its own.
    pub fn report(&self, event: Event) {
        let _ = lock(&self.tx).send(shops::Msg::Report(event));
    }

    /// Runs `f` on the shops followed, under the lock (briefly: it is never held across a
    /// network wait).
    pub fn with_shops<T>(&self, f: impl FnOnce(&BTreeMap<String, Followed>) -> T) -> T {
        f(&lock(&self.shops))
    }

    fn with_shops_mut<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Followed>) -> T) -> T {
        f(&mut lock(&self.shops))
    }
}
