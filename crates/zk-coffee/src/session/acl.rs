//! ACLs as ZooKeeper knows them: permission bits, one entry ([`Grant`]) per identity, and the
//! [`Protection`] that decides the ACL of every node this session creates. What the shop's
//! roles may do where is `security`'s table, built from these pieces.

use std::sync::{Arc, Mutex};

use zookeeper_client as zkc;

use super::retry::Failure;
use super::Session;
use crate::error::Result;
use crate::lock;

/// Read permission.
pub const READ: u32 = 1;
/// Write (set data) permission.
pub const WRITE: u32 = 2;
/// Create children.
pub const CREATE: u32 = 4;
/// Delete children.
pub const DELETE: u32 = 8;
/// Change the ACL.
pub const ADMIN: u32 = 16;
/// Everything.
pub const ALL: u32 = 31;

/// Decides who may do what to a node this session creates, from its path.
pub type Protection = Arc<dyn Fn(&str) -> Vec<Grant> + Send + Sync>;

/// One ACL entry: `perms` (bits: [`READ`] 1, [`WRITE`] 2, [`CREATE`] 4, [`DELETE`] 8,
/// [`ADMIN`] 16) for an identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub perms: u32,
    pub scheme: String,
    pub id: String,
}

impl Grant {
    /// `perms` for the digest identity `id` (`user:base64(sha1)`).
    pub fn digest(perms: u32, id: &str) -> Grant {
        Grant { perms, scheme: "digest".into(), id: id.into() }
    }

    /// `perms` for the client certificate whose subject is `dn`, as ZooKeeper's `x509` scheme
    /// names it (RFC 2253, e.g. `CN=barista,O=shop`; a TLS server with `ssl.clientAuth=need`
    /// and `authProvider.x509` knows a client by it).
    pub fn x509(perms: u32, dn: &str) -> Grant {
        Grant { perms, scheme: "x509".into(), id: dn.into() }
    }

    fn to_acl(&self) -> zkc::Acl {
        let perms = [
            (READ, zkc::Permission::READ),
            (WRITE, zkc::Permission::WRITE),
            (CREATE, zkc::Permission::CREATE),
            (DELETE, zkc::Permission::DELETE),
            (ADMIN, zkc::Permission::ADMIN),
        ]
        .into_iter()
        .filter(|(bit, _)| self.perms & bit != 0)
        .fold(zkc::Permission::NONE, |all, (_, p)| all | p);
        zkc::Acl::new(perms, zkc::AuthId::new(&self.scheme, &self.id))
    }
}

/// The ACLs of nodes a session creates.
#[derive(Default)]
pub(super) struct Acls {
    /// `None`: open to everyone, as the original program did.
    protection: Mutex<Option<Protection>>,
}

impl Session {
    /// From now on, nodes this session creates get the ACL `protection` gives for their path.
    pub fn protect_with(&self, protection: Protection) {
        *lock(&self.inner.acls.protection) = Some(protection);
    }

    /// Whether nodes this session creates get ACLs of their own ([`Session::protect_with`]):
    /// it works in a secured shop.
    pub fn is_protected(&self) -> bool {
        lock(&self.inner.acls.protection).is_some()
    }

    /// The ACL for a node created at `path`.
    pub(super) fn acl_for(&self, path: &str) -> Vec<zkc::Acl> {
        match lock(&self.inner.acls.protection).as_ref() {
            Some(protect) => protect(path).iter().map(Grant::to_acl).collect(),
            None => vec![zkc::Acl::new(zkc::Permission::ALL, zkc::AuthId::anyone())],
        }
    }

    /// Replaces the ACL of `path`; `false` if it does not exist.
    pub fn set_acl(&self, path: &str, grants: &[Grant]) -> Result<bool> {
        let acl: Vec<zkc::Acl> = grants.iter().map(Grant::to_acl).collect();
        let acl = &acl;
        match self.call(path, |c| async move { c.set_acl(path, acl, None).await }) {
            Ok(_) => Ok(true),
            Err(Failure::Zk(zkc::Error::NoNode)) => Ok(false),
            Err(f) => Err(f.into_error("set the ACL of", path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_become_the_same_permissions() {
        let all = Grant::digest(ALL, "a:x").to_acl();
        assert_eq!(all, zkc::Acl::new(zkc::Permission::ALL, zkc::AuthId::new("digest", "a:x")));
        let some = Grant::digest(READ | DELETE, "c:z").to_acl();
        assert_eq!(some, zkc::Acl::new(zkc::Permission::READ | zkc::Permission::DELETE, zkc::AuthId::new("digest", "c:z")));
        let cert = Grant::x509(READ, "CN=barista,O=shop").to_acl();
        assert_eq!(cert, zkc::Acl::new(zkc::Permission::READ, zkc::AuthId::new("x509", "CN=barista,O=shop")));
    }
}
