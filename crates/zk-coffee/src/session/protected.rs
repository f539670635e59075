//! Protected sequential creates: a sequential create interrupted by connection loss may or
//! may not have happened, so the node carries an extra ACL entry naming a tag (Curator's
//! protected mode, without touching the node's name or data), and after a loss the parent's
//! children are searched for it before creating again: an order is placed exactly once.

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
fn split_prefix(prefix: &str) -> Option<(&str, &str)> {
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
        check_path(prefix)?;
        let (parent, base) = split_prefix(prefix).ok_or_else(|| Error::internal(format!("bad prefix {prefix:?}")))?;
        let marker = zkc::Acl::new(zkc::Permission::READ, zkc::AuthId::new(TAG_SCHEME, &format!("zk-coffee-tag-{tag}:{tag}")));
        let mut acls = self.acl_for(prefix);
        acls.push(marker.clone());
        let options = zkc::CreateMode::PersistentSequential.with_acls(zkc::Acls::new(&acls));
        let options = &options;
        let mut backoff = Backoff::new(self.inner.config.session_timeout * 3);
        loop {
            match self.call_once(prefix, |c| async move { c.create(prefix, data, options).await }) {
                Ok((_, sequence)) => return Ok(Some(format!("{prefix}{sequence}"))),
                Err(Failure::Zk(zkc::Error::NoNode)) => return Ok(None),
                Err(Failure::Lost(_)) => {}
                Err(f) => return Err(f.into_error("create", prefix)),
            }
            // The create may have happened before the connection dropped: look for our tag.
            if let Some(found) = self.find_tagged(parent, base, &marker, &backoff)? {
                info!("found my order {found} after a connection loss");
                return Ok(Some(found));
            }
            // Never made, or made and already served (then this is a second coffee).
            info!("no order of mine under {parent} after a connection loss; placing it again");
            if !backoff.pause() {
                return Err(Error::ConnectionLost { op: format!("create {prefix}"), waited: backoff.elapsed() });
            }
        }
    }

    /// The child of `parent` named `base` + sequence whose ACL holds `marker`, if any. Reads
    /// the ACLs newest first (highest sequence number), in rounds of growing size sent
    /// together; when the create's deadline passes before it knows, it fails rather than say
    /// "not there": the caller would create the node a second time.
    fn find_tagged(&self, parent: &str, base: &str, marker: &zkc::Acl, deadline: &Backoff) -> Result<Option<String>> {
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
                    op: format!("find my order under {parent} (looked at {looked} of {total} in time)"),
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
                        Ok((acl, _)) => acls.push(acl),
                        // Served meanwhile.
                        Err(zkc::Error::NoNode) => acls.push(Vec::new()),
                        Err(e) => return Err(e),
                    }
                }
                Ok(acls)
            });
            let acls = acls.map_err(|f| f.into_error("read the ACL of", paths[0]))?;
            if let Some(i) = acls.iter().position(|acl| acl.contains(marker)) {
                return Ok(Some(paths[i].to_owned()));
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
