//! The operator's hands (`shop-admin`): closing and reopening the shop, sending a barista
//! home, purging a bucket. Each is a small change to the tree that the roles already follow,
//! so it works wherever they run, and each is idempotent: repeating one that no longer
//! applies changes nothing and says so ([`Error::NotApplicable`]).
//!
//! - **Closed**: `/zk-coffee/operator/closed` exists while the shop is closed; its data is the
//!   reason. Customers read it (under a watch, see [`crate::roster::Roster::closed`]) before
//!   they place an order: while it is there they place nothing and exit `exit::CLOSED`.
//!   Baristas serve what is queued as usual.
//! - **Sent home**: `/zk-coffee/operator/home-{barista}` holds the session id of the barista's
//!   membership node. The barista watches its own request; when it appears for its session it
//!   leaves exactly as on SIGTERM (hands its queue over, or drains it), and removes the
//!   request as it goes. A request for an earlier session of the same name (one that crashed
//!   before it could go) is stale: the barista removes it and stays.
//! - **Purged**: every order of a bucket is rejected with the operator's reason (the barista's
//!   own way of turning an order down, see [`crate::order`]): our customers read the reason,
//!   withdraw their order and exit `exit::REJECTED`. Whatever is left after a grace (orders of
//!   customers that do not read reasons, like the original program's) is removed.
//!
//! The original program's roles know none of this: its customers order from a closed shop and
//! its baristas never go home on request; a purge removes their orders all the same.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use log::info;

use crate::error::{Error, Result};
use crate::layout::{self, BaristaName};
use crate::order::{self, REJECTED_PREFIX};
use crate::session::Session;

/// What a purge's rejection says before the operator's reason.
pub const PURGED: &str = "purged by the operator";

/// Closes the shop, with `reason` for the customers turned away.
pub fn close(session: &Session, reason: &str) -> Result<()> {
    if let Some(since) = closed(session)? {
        return Err(Error::NotApplicable(format!("the shop is already closed ({})", said(&since))));
    }
    session.ensure_persistent(layout::OPERATOR, layout::ROOT_DATA)?;
    if !session.ensure_persistent(layout::CLOSED, one_line(reason).as_bytes())? {
        return Err(Error::NotApplicable("the shop is already closed".into()));
    }
    info!("closed the shop ({})", said(reason));
    Ok(())
}

/// Opens the shop again.
pub fn reopen(session: &Session) -> Result<()> {
    if !session.delete(layout::CLOSED, None)? {
        return Err(Error::NotApplicable("the shop is open".into()));
    }
    info!("opened the shop again");
    Ok(())
}

/// Why the shop is closed (`Some`, possibly empty), or `None` while it is open.
pub fn closed(session: &Session) -> Result<Option<String>> {
    Ok(session.data(layout::CLOSED)?.map(|d| String::from_utf8_lossy(&d).into_owned()))
}

/// Like [`closed`]; `notify` runs once when the sign is put up, changed or taken down.
pub fn watch_closed(session: &Session, notify: impl Fn() + Send + Sync + 'static) -> Result<Option<String>> {
    Ok(session.watch_data(layout::CLOSED, notify)?.map(|d| String::from_utf8_lossy(&d).into_owned()))
}

/// The line a customer turned away prints, and the reason in the log.
pub fn said(reason: &str) -> String {
    if reason.is_empty() {
        "no reason given".to_owned()
    } else {
        format!("{reason:?}")
    }
}

/// Asks `barista` to go home; it leaves as on SIGTERM, wherever it runs.
pub fn send_home(session: &Session, barista: &BaristaName) -> Result<()> {
    let member = session.read(&layout::member(barista))?;
    let Some(owner) = member.map(|m| m.ephemeral_owner).filter(|&o| o != 0) else {
        return Err(Error::NotApplicable(format!("no barista {barista} is on shift")));
    };
    let request = layout::home_request(barista);
    let wanted = session_id(owner);
    session.ensure_persistent(layout::OPERATOR, layout::ROOT_DATA)?;
    if !session.ensure_persistent(&request, wanted.as_bytes())? {
        match session.read(&request)? {
            Some(node) if node.data == wanted.as_bytes() => {
                return Err(Error::NotApplicable(format!("{barista} was already sent home and is on its way")));
            }
            // A request left by an earlier barista of that name: this one is meant now.
            Some(node) => {
                if !session.set_if_version(&request, wanted.as_bytes(), node.version)? {
                    return Err(Error::NotApplicable(format!("{barista} was just sent home by someone else")));
                }
            }
            None => return send_home(session, barista),
        }
    }
    info!("sent {barista} home (session {wanted})");
    Ok(())
}

/// Whether a send-home request's data is meant for the barista on session `session`.
pub fn is_for(request: &[u8], session: i64) -> bool {
    request == session_id(session).as_bytes()
}

/// A session id as ZooKeeper's tools print it.
pub fn session_id(session: i64) -> String {
    format!("0x{session:x}")
}

/// What [`purge`] did to a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// Orders rejected with the operator's reason.
    pub rejected: usize,
    /// Of the orders there, how many their customers withdrew (or were served) within the grace.
    pub withdrawn: usize,
    /// Orders still there after the grace, removed by the purge.
    pub removed: usize,
}

/// Rejects every order in `barista`'s bucket with `reason`, waits up to `grace` for their
/// customers to withdraw them, then removes the rest.
pub fn purge(session: &Session, barista: &BaristaName, reason: &str, grace: Duration) -> Result<Purged> {
    let bucket = layout::bucket(barista);
    let Some(children) = session.children(&bucket)? else {
        return Err(Error::NotApplicable(format!("there is no bucket {barista}")));
    };
    let (orders, _foreign) = layout::orders_in_placement_order(&children);
    if orders.is_empty() {
        return Err(Error::NotApplicable(format!("bucket {barista} holds no orders")));
    }
    let why = if reason.is_empty() { PURGED.to_owned() } else { format!("{PURGED}: {}", one_line(reason)) };
    let paths: Vec<String> = orders.iter().map(|o| layout::order(barista, *o)).collect();
    let mut rejected = 0;
    for (path, node) in paths.iter().zip(session.read_many(&paths)?) {
        let Some(node) = node? else { continue };
        if node.data.starts_with(REJECTED_PREFIX.as_bytes()) {
            continue;
        }
        if session.set_if_version(path, &order::rejection(&why), node.version)? {
            rejected += 1;
        }
    }
    info!("rejected {rejected} orders of bucket {barista} ({why}); waiting up to {grace:?} for their customers");
    let deadline = Instant::now() + grace;
    let mut left = paths.clone();
    loop {
        let (tx, rx) = mpsc::channel();
        let children = session
            .watch_children(&bucket, move || {
                let _ = tx.send(());
            })?
            .unwrap_or_default();
        left.retain(|p| children.iter().any(|c| c == layout::last_segment(p)));
        let now = Instant::now();
        if left.is_empty() || now >= deadline {
            break;
        }
        let _ = rx.recv_timeout(deadline - now);
    }
    let mut removed = 0;
    for path in &left {
        if session.delete(path, None)? {
            removed += 1;
        }
    }
    let withdrawn = paths.len() - left.len();
    info!("purged bucket {barista}: {withdrawn} withdrawn by their customers, {removed} removed");
    Ok(Purged { rejected, withdrawn, removed })
}

/// `text` without line breaks or other control characters.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_for_one_session_only() {
        assert_eq!(session_id(0x1000148f3f70003), "0x1000148f3f70003");
        assert!(is_for(b"0x1000148f3f70003", 0x1000148f3f70003));
        assert!(!is_for(b"0x1000148f3f70003", 0x1000148f3f70004));
        assert!(!is_for(b"", 0x1000148f3f70003));
    }

    #[test]
    fn reasons_are_one_line_and_quoted() {
        assert_eq!(one_line("deep\nclean"), "deep clean");
        assert_eq!(said(""), "no reason given");
        assert_eq!(said("deep clean"), "\"deep clean\"");
    }
}
