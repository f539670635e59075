//! The shop as a whole: creating its top-level nodes, checking they exist, and listing who is
//! on shift.

use log::{debug, info};

use crate::config::{self, ShopConfig};
use crate::error::{Error, Result};
use crate::layout::{self, BaristaName};
use crate::security;
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
    for path in [layout::BARISTA_GROUP, layout::ORDERS, layout::EXTENSIONS, layout::CLAIMS, layout::SALES] {
        if session.ensure_persistent(path, layout::ROOT_DATA)? {
            report.created.push(path.to_owned());
        } else {
            report.found.push(path.to_owned());
        }
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
    Ok(())
}

/// Fails with [`Error::ShopNotInitialised`] unless both top-level nodes exist. In a secured
/// shop, also makes the nodes this session creates get the shop's ACLs (see
/// [`security::install`]).
pub fn check_initialised(session: &Session) -> Result<()> {
    for path in [layout::BARISTA_GROUP, layout::ORDERS] {
        if !session.exists(path)? {
            return Err(not_initialised(session, path));
        }
    }
    security::install(session)?;
    Ok(())
}

/// The baristas on shift, sorted by name. Members whose names could not be ours (written by a
/// foreign client) are skipped.
pub fn baristas_on_shift(session: &Session) -> Result<Vec<BaristaName>> {
    let members = session.children(layout::BARISTA_GROUP)?;
    valid_members(session, members)
}

/// Like [`baristas_on_shift`], and `notify` runs once when somebody comes or goes.
pub fn watch_baristas_on_shift(session: &Session, notify: impl Fn() + Send + Sync + 'static) -> Result<Vec<BaristaName>> {
    let members = session.watch_children(layout::BARISTA_GROUP, notify)?;
    valid_members(session, members)
}

/// The error for a missing top-level node, naming it as the server sees it (with the chroot).
pub fn not_initialised(session: &Session, path: &str) -> Error {
    Error::ShopNotInitialised { missing: format!("{}{path}", session.servers().chroot().unwrap_or("")) }
}

fn valid_members(session: &Session, members: Option<Vec<String>>) -> Result<Vec<BaristaName>> {
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
    Ok(names)
}
