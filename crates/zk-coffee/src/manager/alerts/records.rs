//! The alert records under `/zk-coffee/alerts`: one persistent node per alert the leading
//! manager ran, named from the event's kind and key ([`layout::alert_name`]) so that every
//! manager finds the record of an episode it saw, holding the event's JSON. Written after the
//! hook ends; pruned by the leader to a bounded number and age.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log::{debug, info};

use crate::error::Result;
use crate::layout;
use crate::manager::Event;
use crate::session::Session;

/// How many records one request reads while pruning: a thousand records are five round trips.
const READ_BATCH: usize = 200;

/// The record name of `event`.
pub(super) fn name(event: &Event) -> String {
    layout::alert_name(event.event.name(), &event.key)
}

/// Whether the alert `name` was recorded.
pub(super) fn exists(session: &Session, name: &str) -> Result<bool> {
    session.exists(&layout::alert(name))
}

/// Records that the alert `name` ran for `event`; `false` if it was recorded already.
pub(super) fn write(session: &Session, name: &str, event: &Event) -> Result<bool> {
    session.ensure_persistent(&layout::alert(name), event.to_json().as_bytes())
}

/// The names of the records there are (none if the directory is missing).
pub(super) fn listed(session: &Session) -> Result<HashSet<String>> {
    Ok(session.children(layout::ALERTS)?.unwrap_or_default().into_iter().collect())
}

/// How many records there are.
pub(super) fn count(session: &Session) -> Result<u32> {
    Ok(session.child_counts(&[layout::ALERTS.to_owned()])?.first().copied().flatten().unwrap_or(0))
}

/// Deletes the records older than `max_age` (by when the server wrote them, against our
/// clock), then the oldest beyond `max`. Returns how many went.
pub(super) fn prune(session: &Session, max: usize, max_age: Duration) -> Result<usize> {
    let names: Vec<String> = listed(session)?.into_iter().collect();
    let mut written: Vec<(i64, String)> = Vec::with_capacity(names.len());
    for batch in names.chunks(READ_BATCH) {
        let paths: Vec<String> = batch.iter().map(|n| layout::alert(n)).collect();
        let reads = session.read_many(&paths)?;
        for (path, read) in paths.into_iter().zip(reads) {
            // Gone meanwhile (another leader pruning), or unreadable: nothing to prune.
            if let Ok(Some(node)) = read {
                written.push((node.mtime_ms, path));
            }
        }
    }
    written.sort_unstable();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let too_old = now_ms - max_age.as_millis() as i64;
    let stale = written.iter().take_while(|(at, _)| *at < too_old).count();
    let cut = stale.max(written.len().saturating_sub(max));
    let mut pruned = 0;
    for (_, path) in &written[..cut] {
        if session.delete(path, None)? {
            pruned += 1;
        }
    }
    if pruned > 0 {
        info!("pruned {pruned} alert records ({} kept)", written.len() - cut);
    } else {
        debug!("{} alert records, none to prune", written.len());
    }
    Ok(pruned)
}
