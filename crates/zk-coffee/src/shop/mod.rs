//! The shop's data: what lives in its tree and what it means, one module per kind of node,
//! and (here) the shop as a whole: creating its top-level nodes, checking they exist, and
//! telling who is on shift.
//!
//! # Layout
//!
//! - [`layout`]: the znode layout of the wire contract; the only place paths are built;
//!   [`layout_version`]: which version of that layout the shop's tree uses;
//! - [`config`]: the shop's configuration (menu, brew times, maximum queue);
//! - [`menu`]: the coffees on offer; [`order`]: what an order's data may hold, and how a
//!   barista rejects one it cannot make;
//! - [`operator`]: the operator's actions (closing the shop, sending a barista home, purging
//!   a bucket);
//! - [`registration`]: what a barista writes into its membership node;
//! - [`sales`]: each barista's sales ledger, counted exactly once per served order;
//! - [`security`]: the roles and the ACL table of a secured shop;
//! - [`status`]: the shop at a glance (`shop-status`, one serde model).

pub mod config;
pub mod layout;
pub mod layout_version;
pub mod menu;
pub mod operator;
pub mod order;
pub mod registration;
pub mod sales;
pub mod security;
pub mod status;

use std::collections::{HashMap, HashSet};

use log::{debug, info};

use crate::config::ShopConfig;
use crate::error::{Error, Result};
use crate::layout::BaristaName;
use crate::session::{Session, SessionConfig};

/// What `shop-init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Nodes this run created.
    pub created: Vec<String>,
    /// Nodes that were already there.
    pub found: Vec<String>,
    /// Nodes whose data this run replaced (the configuration).
    pub updated: Vec<String>,
}

/// Creates the chroot of `config.servers`, if it has one, through a session without chroot.
/// ZooKeeper refuses to work under a chroot that does not exist.
pub fn ensure_chroot(config: &SessionConfig) -> Result<()> {
    let Some(chroot) = config.servers.chroot() else { return Ok(()) };
    let session = Session::connect_to_root(config)?;
    let mut path = String::new();
    for segment in chroot.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        path.push_str(segment);
        if session.ensure_persistent(&path, b"")? {
            info!("created chroot node {path}");
        }
    }
    session.close();
    Ok(())
}

/// Creates `/barista_group` and `/orders` (data `0`) where missing, and our own nodes under
/// `/zk-coffee`. Writes the configuration: `update` if given, else the defaults if the shop has
/// none yet. Idempotent.
pub fn init(session: &Session, update: Option<&ShopConfig>) -> Result<InitReport> {
    let mut report = InitReport { created: Vec::new(), found: Vec::new(), updated: Vec::new() };
    for path in layout::SHOP_NODES {
        if session.ensure_persistent(path, layout::ROOT_DATA)? {
            report.created.push(path.to_owned());
        } else {
            report.found.push(path.to_owned());
        }
    }
    let version = layout::LAYOUT_VERSION.to_owned();
    if layout_version::mark(session)? {
        report.created.push(version);
    } else {
        report.found.push(version);
    }
    match update {
        Some(new) => {
            if config::store(session, new)? {
                report.created.push(layout::CONFIG.to_owned());
            } else {
                report.updated.push(layout::CONFIG.to_owned());
            }
            info!("menu: {}", new.menu.coffees().join(", "));
        }
        None => {
            if session.ensure_persistent(layout::CONFIG, &ShopConfig::default().encode())? {
                report.created.push(layout::CONFIG.to_owned());
            } else {
                report.found.push(layout::CONFIG.to_owned());
            }
        }
    }
    Ok(report)
}

/// Creates our own nodes under `/zk-coffee` where missing, for a shop that the original
/// program (or an older `shop-init`) set up.
pub fn ensure_extensions(session: &Session) -> Result<()> {
    for path in [layout::EXTENSIONS, layout::CLAIMS, layout::SALES] {
        session.ensure_persistent(path, layout::ROOT_DATA)?;
    }
    // Where the operator's requests go: a secured shop set up by an older shop-init has no
    // room for it, and the staff may not make it (send-home then waits for shop-init).
    match session.ensure_persistent(layout::OPERATOR, layout::ROOT_DATA) {
        Ok(_) => {}
        Err(Error::NotAuthorized { .. }) => debug!("no {} yet, and not mine to create", layout::OPERATOR),
        Err(e) => return Err(e),
    }
    // A secured shop made by a `shop-init` older than the rota: staff may not make it; the
    // admin's `shop-init` (idempotent) does.
    match session.ensure_persistent(layout::ROTA, layout::ROOT_DATA) {
        Err(Error::NotAuthorized { .. }) => Err(not_initialised(session, layout::ROTA)),
        other => other.map(|_| ()),
    }
}

/// Fails with [`Error::ShopNotInitialised`] unless both top-level nodes exist, and with
/// [`Error::NewerLayout`] if the shop uses a layout this build does not serve. In a secured
/// shop, also makes the nodes this session creates get the shop's ACLs (see
/// [`security::install`]).
pub fn check_initialised(session: &Session) -> Result<()> {
    for path in [layout::BARISTA_GROUP, layout::ORDERS] {
        if !session.exists(path)? {
            return Err(not_initialised(session, path));
        }
    }
    security::install(session)?;
    layout_version::check(session, None)
}

/// The baristas on shift, sorted by name, read afresh (see [`Members`]).
pub fn baristas_on_shift(session: &Session) -> Result<Vec<BaristaName>> {
    Members::new(false).list(session)
}

/// Whether `name`'s membership node exists and is ephemeral, read now: a barista on shift.
pub fn is_on_shift(session: &Session, name: &BaristaName) -> Result<bool> {
    Ok(session.read(&layout::member(name))?.is_some_and(|node| node.ephemeral_owner != 0))
}

/// The error for a missing top-level node, naming it as the server sees it (with the chroot).
pub fn not_initialised(session: &Session, path: &str) -> Error {
    Error::ShopNotInitialised { missing: format!("{}{path}", session.servers().chroot().unwrap_or("")) }
}

/// Who the members of `/barista_group` are. A member is a barista on shift only while its node
/// is ephemeral, as every barista's is (ours and the original program's): it goes with its
/// session. A persistent one (a foreign client's `create`) never goes and is no barista:
/// customers do not order from it, baristas adopt its bucket as an orphan. Members whose names
/// could not be ours are skipped.
///
/// A barista is read once, when first listed (the reads of new members go out together, in one
/// request), and remembered while it stays in the group, so a roster listing the group again
/// after a change reads only the newcomers. A member that is no barista is read again at each
/// listing (there are few, if any), so that a barista who takes its name once it is removed is
/// seen on shift. (A barista's node removed and made again as a persistent one between two
/// listings is still taken for the barista.)
#[derive(Debug, Default)]
pub struct Members {
    /// The members as last read, by name: whether each is a barista (its node ephemeral).
    known: HashMap<String, bool>,
    /// The members reported as no baristas, so that each is reported once while it stays.
    reported: HashSet<String>,
    /// Report a member that is not a barista at `info` (for a barista's operator) rather than
    /// `debug`.
    loud: bool,
}

impl Members {
    /// Nothing known yet; `loud` reports members that are no baristas at `info`, once each.
    pub fn new(loud: bool) -> Members {
        Members { known: HashMap::new(), reported: HashSet::new(), loud }
    }

    /// The baristas on shift, sorted by name.
    pub fn list(&mut self, session: &Session) -> Result<Vec<BaristaName>> {
        let members = session.children(layout::BARISTA_GROUP)?;
        self.on_shift(session, members)
    }

    /// Like [`Members::list`], and `notify` runs once when somebody comes or goes.
    pub fn watch(&mut self, session: &Session, notify: impl Fn() + Send + Sync + 'static) -> Result<Vec<BaristaName>> {
        let members = session.watch_children(layout::BARISTA_GROUP, notify)?;
        self.on_shift(session, members)
    }

    /// The members of the last listing that are not baristas (persistent nodes), sorted.
    pub fn not_baristas(&self) -> Vec<String> {
        let mut names: Vec<String> = self.known.iter().filter(|(_, on_shift)| !**on_shift).map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    }

    /// Sorts a listing of the group out: reads the newcomers, forgets who left, and returns
    /// the baristas among them.
    fn on_shift(&mut self, session: &Session, members: Option<Vec<String>>) -> Result<Vec<BaristaName>> {
        self.sort_out(session, members, &|_| false)
    }

    /// Like [`Members::list`] for a listing of the group read by the caller (`None`: no group),
    /// where the members `vouched` for are taken for baristas without reading their nodes
    /// (e.g. those on the rota, who made their nodes ephemeral themselves): a barista that
    /// lists the group when it comes reads only the others'.
    pub fn sort_out(
        &mut self,
        session: &Session,
        members: Option<Vec<String>>,
        vouched: &dyn Fn(&BaristaName) -> bool,
    ) -> Result<Vec<BaristaName>> {
        let members = members.ok_or_else(|| not_initialised(session, layout::BARISTA_GROUP))?;
        let mut names: Vec<BaristaName> = members
            .iter()
            .filter_map(|m| match BaristaName::new(m) {
                Ok(name) => Some(name),
                Err(e) => {
                    debug!("skipping member: {e}");
                    None
                }
            })
            .collect();
        names.sort();
        let listed: HashSet<&str> = names.iter().map(BaristaName::as_str).collect();
        self.known.retain(|name, barista| *barista && listed.contains(name.as_str()));
        self.reported.retain(|name| listed.contains(name.as_str()));
        let new: Vec<&BaristaName> = names.iter().filter(|n| !vouched(n) && !self.known.contains_key(n.as_str())).collect();
        // Unreadable members count as baristas (as before anyone looked) and are read again
        // next time.
        let mut unreadable: HashSet<String> = HashSet::new();
        if !new.is_empty() {
            let paths: Vec<String> = new.iter().map(|n| layout::member(n)).collect();
            for ((name, path), read) in new.into_iter().zip(&paths).zip(session.read_many(&paths)?) {
                match read {
                    Ok(Some(node)) => {
                        let on_shift = node.ephemeral_owner != 0;
                        if !on_shift && self.reported.insert(name.to_string()) {
                            let why = "its node is persistent, so it is not a barista on shift (its bucket is an orphan)";
                            if self.loud {
                                info!("ignoring {path}: {why}");
                            } else {
                                debug!("ignoring {path}: {why}");
                            }
                        }
                        self.known.insert(name.to_string(), on_shift);
                    }
                    // Gone since the listing: not on shift.
                    Ok(None) => {}
                    Err(e) => {
                        debug!("{e}; counting {path} as a barista on shift");
                        unreadable.insert(name.to_string());
                    }
                }
            }
        }
        names.retain(|n| self.known.get(n.as_str()).copied().unwrap_or_else(|| vouched(n) || unreadable.contains(n.as_str())));
        Ok(names)
    }
}
