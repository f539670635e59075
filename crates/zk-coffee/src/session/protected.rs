//! Protected sequential creates: a sequential create interrupted by connection loss may or
//! may not have happened, so the node carries an extra ACL entry naming a tag (Curator's
//! protected mode, without touching the node's name or data), and after a loss the parent's
//! children are searched for it before creating again: an order is placed exactly once. The
//! ephemeral variant (an election's candidate) accepts only a node its current session owns: one
//! left by an earlier session is going, not found.

use log::info;
use zookeeper_client as zkc;

use super::retry::{check_path, Backoff, Failure};
use super::Session;
use crate::error::{Error, Result};

/// The ACL scheme of the tag that lets a protected create find its node again.
const TAG_SCHEME: &str = "digest";
/// The most ACLs a protected create reads in one round trip while it looks for its node. It
/// reads the newest child first and twice as many each round after: its own node, among the
/// newest, costs one read, and a bucket of 10 000 orders without it under 170 round trips.
const MAX_TAG_READS: usize = 64;

/// The parent of a sequential create's `prefix` and the start of its children's names:
/// `/orders/b/coffee` is `("/orders/b", "coffee")`, `/x` is `("/", "x")`. The session joins
/// and splits the paths it is given; `layout` builds them.
pub(super) fn split_prefix(prefix: &str) -> Option<(&str, &str)> {
    let (parent, base) = prefix.rsplit_once('/')?;
    Some((if parent.is_empty() { "/" } else { parent }, base))
}

/// The path of `parent`'s child `child`.
fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

impl Session {
    /// Creates a persistent sequential node `{prefix}{sequence}` and returns its full path, or
    /// `None` if the parent does not exist. Safe to use across connection loss: the node carries
    /// an extra ACL entry naming `tag` (read permission for an identity nobody has; the node
    /// stays open to everyone as before), and after a loss the parent's children are searched
    /// for that tag, newest first, before creating again, so the node is created exactly once.
    /// A search that cannot finish by the create's deadline (three session timeouts) fails with
    /// [`Error::ConnectionLost`] rather than create a second node.
    pub fn create_sequential_protected(&self, prefix: &str, data: &[u8], tag: &str) -> Result<Option<String>> {
        self.create_protected(prefix, data, tag, zkc::CreateMode::PersistentSequential).map(|made| made.map(|(path, _)| path))
    }

    /// Like [`Session::create_sequential_protected`], for an EPHEMERAL_SEQUENTIAL node owned by
    /// the current session: returns its path and the session's id (what its `ephemeral_owner`
    /// is). After a loss, only a tagged node owned by the session the create now runs on counts
    /// as found; the node of a session lost meanwhile goes with it, so the create is made again
    /// on the new session.
    pub fn create_ephemeral_sequential_protected(&self, prefix: &str, data: &[u8], tag: &str) -> Result<Option<(String, i64)>> {
        self.create_protected(prefix, data, tag, zkc::CreateMode::EphemeralSequential)
    }

    /// The protected create of either mode: the path made, with the session id that owns it
    /// (of the session the create ran on).
    fn create_protected(&self, prefix: &str, data: &[u8], tag: &str, mode: zkc::CreateMode) -> Result<Option<(String, i64)>> {
        check_path(prefix)?;
        let ephemeral = mode == zkc::CreateMode::EphemeralSequential;
        let (parent, base) = split_prefix(prefix).ok_or_else(|| Error::internal(format!("bad prefix {prefix:?}")))?;
        let marker = zkc::Acl::new(zkc::Permission::READ, zkc::AuthId::new(TAG_SCHEME, &format!("zk-coffee-tag-{tag}:{tag}")));
        let mut acls = self.acl_for(prefix);
        acls.push(marker.clone());
        let options = mode.with_acls(zkc::Acls::new(&acls));
        let options = &options;
        let mut backoff = Backoff::new(self.inner.config.session_timeout * 3);
        loop {
            let created = self.call_once(prefix, |c| async move {
                let made = c.create(prefix, data, options).await;
                made.map(|(_, sequence)| (sequence, c.session_id().0))
            });
            match created {
                Ok((sequence, owner)) => return Ok(Some((format!("{prefix}{sequence}"), owner))),
                Err(Failure::Zk(zkc::Error::NoNode)) => return Ok(None),
                Err(Failure::Lost(_)) => {}
                Err(f) => return Err(f.into_error("create", prefix)),
            }
            // The create may have happened before the connection dropped: look for our tag.
            if let Some(found) = self.find_tagged(parent, base, &marker, ephemeral, &backoff)? {
                info!("found my {} {} after a connection loss", if ephemeral { "node" } else { "order" }, found.0);
                return Ok(Some(found));
            }
            // Never made, or made and already served (then this is a second coffee), or made
            // by a session that is gone.
            if ephemeral {
                info!("no node of mine under {parent} after a connection loss; creating it again");
            } else {
                info!("no order of mine under {parent} after a connection loss; placing it again");
            }
            if !backoff.pause() {
                return Err(Error::ConnectionLost { op: format!("create {prefix}"), waited: backoff.elapsed() });
            }
        }
    }

    /// The child of `parent` named `base` + sequence whose ACL holds `marker`, if any, with
    /// its owner; with `ephemeral`, only one owned by the current session counts. Reads the
    /// ACLs newest first (highest sequence number), in rounds of growing size sent together;
    /// when the create's deadline passes before it knows, it fails rather than say "not
    /// there": the caller would create the node a second time.
    fn find_tagged(
        &self,
        parent: &str,
        base: &str,
        marker: &zkc::Acl,
        ephemeral: bool,
        deadline: &Backoff,
    ) -> Result<Option<(String, i64)>> {
        let Some(children) = self.children(parent)? else { return Ok(None) };
        let mut newest_first: Vec<(i64, String)> = children
            .into_iter()
            .filter_map(|child| {
                let sequence = child.strip_prefix(base)?.parse::<i64>().ok()?;
                Some((sequence, child_path(parent, &child)))
            })
            .collect();
        newest_first.sort_unstable_by_key(|(sequence, _)| std::cmp::Reverse(*sequence));
        let total = newest_first.len();
        let (mut looked, mut round) = (0, 1);
        while looked < total {
            if deadline.expired() {
                return Err(Error::ConnectionLost {
                    op: format!("find my node under {parent} (looked at {looked} of {total} in time)"),
                    waited: deadline.elapsed(),
                });
            }
            let paths: Vec<&str> = newest_first[looked..total.min(looked + round)].iter().map(|(_, p)| p.as_str()).collect();
            let paths = &paths;
            let acls = self.call(paths[0], |c| async move {
                let pending: Vec<_> = paths.iter().map(|p| c.get_acl(p)).collect();
                let mut acls = Vec::with_capacity(pending.len());
                for acl in pending {
                    match acl.await {
                        Ok((acl, stat)) => acls.push((acl, stat.ephemeral_owner)),
                        // Served meanwhile.
                        Err(zkc::Error::NoNode) => acls.push((Vec::new(), 0)),
                        Err(e) => return Err(e),
                    }
                }
                Ok((acls, c.session_id().0))
            });
            let (acls, session) = acls.map_err(|f| f.into_error("read the ACL of", paths[0]))?;
            let mine = |owner: i64| !ephemeral || owner == session;
            if let Some(i) = acls.iter().position(|(acl, owner)| acl.contains(marker) && mine(*owner)) {
                return Ok(Some((paths[i].to_owned(), acls[i].1)));
            }
            looked += paths.len();
            round = (round * 2).min(MAX_TAG_READS);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_split_into_parent_and_base_and_join_back() {
        assert_eq!(split_prefix("/orders/b/coffee"), Some(("/orders/b", "coffee")));
        assert_eq!(split_prefix("/x"), Some(("/", "x")));
        assert_eq!(split_prefix("x"), None);
        assert_eq!(child_path("/orders/b", "coffee0000000001"), "/orders/b/coffee0000000001");
        assert_eq!(child_path("/", "x"), "/x");
    }
}
