//! A secured shop: ZooKeeper digest credentials per role, and who may do what to each node.
//!
//! Three roles, each one digest identity (`user:password`) or, over TLS with client
//! certificates (`ssl.clientAuth=need`), staff and customers may each be a certificate's
//! subject instead (ZooKeeper's `x509` scheme; kept in `/zk-coffee/acl` as `x509:DN`); and
//! each customer process has an identity of its own besides
//! ([`crate::session::SessionConfig::identity`], random):
//!
//! | node | admin | staff (baristas) | customers | anyone else |
//! | --- | --- | --- | --- | --- |
//! | `/barista_group` | all | read, create, delete | read | nothing |
//! | `/barista_group/{b}` | all | all | read | nothing |
//! | `/orders` | all | read, create, delete | read | nothing |
//! | `/orders/{b}` (bucket) | all | all | read, create | nothing |
//! | order | all | read, write, delete | read (the customer who placed it: write) | nothing |
//! | `/zk-coffee`, `version`, `config`, `acl` | all | read | read | nothing |
//! | `/zk-coffee/claims`, a claim | all | read, create, delete (claim: all) | nothing | nothing |
//! | `/zk-coffee/sales`, a ledger | all | read, create (ledger: read, write) | nothing | nothing |
//! | `/zk-coffee/managers`, a candidate | all | read, create, delete (candidate: read) | nothing | nothing |
//! | `/zk-coffee/alerts`, a record | all | read, create, delete (record: read) | nothing | nothing |
//! | `/zk-coffee/operator`, a request | all | read, create, delete (request: all) | read | nothing |
//! | `/zk-coffee/rota`, a place | all | read, create, delete (place: all) | nothing | nothing |
//!
//! So only staff can register as baristas and serve (delete) orders; customers can list
//! baristas and place orders but not register, change the menu or see sales; anonymous
//! clients can do nothing but ask whether a node exists (ZooKeeper needs no permission for
//! that). The shop manager runs with the staff credentials: it reads sales and claims, stands
//! for election and records alerts. ZooKeeper checks a delete against the *parent's* ACL, so a
//! right to delete one's own order would be the right to delete any order in that bucket, and
//! all customers share one identity: so customers may not delete orders at all. A customer
//! withdraws its order by marking it (`setData`, see [`crate::order::withdrawal`]), which
//! ZooKeeper checks against the order's own ACL: only the identity that placed it may write
//! it. Our baristas delete a marked order unmade and uncounted. (A shop secured before this
//! rule keeps the customers' delete on its buckets until `shop-init --secure` runs again.)
//!
//! `shop-init --secure` writes the three identities to `/zk-coffee/acl` and puts these ACLs on
//! every node (converting an open shop). Every role reads `/zk-coffee/acl` when it starts
//! (see [`install`]) and from then on creates nodes with the right ACLs; a shop without it is
//! open, exactly as the original program made it.
//!
//! Credentials come from a file readable only by its owner (`--credentials-file`,
//! `ZK_CREDENTIALS_FILE`) or the environment (`ZK_CREDENTIALS`), never from a flag, where `ps`
//! would show them. The client keeps them across reconnects.

use std::sync::Arc;

use log::{debug, info};

use crate::error::{Error, Result};
use crate::layout::{self, NodeKind};
/// Credentials and permission bits are the session's (ZooKeeper's own notions); the shop's
/// roles and ACL table below are built from them.
pub use crate::session::{Credentials, ADMIN, ALL, CREATE, DELETE, READ, WRITE};
use crate::session::{Grant, Session, SessionConfig};

/// The ids of a secured shop's three roles, as kept in `/zk-coffee/acl`: a digest id
/// (`user:base64(sha1)`), or `x509:DN` for a client certificate's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub admin: String,
    pub staff: String,
    pub customer: String,
}

impl Roles {
    /// The ids of these credentials.
    pub fn of(admin: &Credentials, staff: &Credentials, customer: &Credentials) -> Roles {
        Roles { admin: admin.digest_id(), staff: staff.digest_id(), customer: customer.digest_id() }
    }

    /// The id of the client certificate whose subject is `dn` (RFC 2253, as
    /// `openssl x509 -noout -subject -nameopt RFC2253` prints it without `subject=`).
    pub fn x509_id(dn: &str) -> Result<String> {
        let dn = dn.trim();
        if dn.is_empty() || !dn.contains('=') || dn.contains('\n') {
            return Err(Error::usage(format!("{dn:?} is not a certificate subject like CN=barista,O=shop")));
        }
        Ok(format!("{X509_PREFIX}{dn}"))
    }

    /// The node's data.
    pub fn encode(&self) -> Vec<u8> {
        format!("admin={}\nstaff={}\ncustomer={}\n", self.admin, self.staff, self.customer).into_bytes()
    }

    /// Parses the node's data.
    pub fn decode(data: &[u8]) -> Result<Roles> {
        let bad = || Error::BadConfig("/zk-coffee/acl must hold admin=, staff= and customer= lines".into());
        let text = std::str::from_utf8(data).map_err(|_| bad())?;
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .map(str::to_owned)
                .filter(|id| id.contains(':'))
                .ok_or_else(bad)
        };
        Ok(Roles { admin: get("admin")?, staff: get("staff")?, customer: get("customer")? })
    }

    /// Who may do what to the node at `path` (see the module docs).
    pub fn grants(&self, path: &str) -> Vec<Grant> {
        let (staff, customer) = match layout::kind_of(path) {
            NodeKind::Group | NodeKind::Orders => (READ | CREATE | DELETE, READ),
            NodeKind::Member => (ALL, READ),
            NodeKind::Bucket => (ALL, READ | CREATE),
            NodeKind::Order => (READ | WRITE | DELETE, READ),
            NodeKind::Extensions | NodeKind::Settings => (READ, READ),
            NodeKind::Claims | NodeKind::Rota => (READ | CREATE | DELETE, 0),
            NodeKind::Claim | NodeKind::RotaPlace => (ALL, 0),
            NodeKind::Sales => (READ | CREATE, 0),
            NodeKind::Ledger => (READ | WRITE, 0),
            NodeKind::Managers | NodeKind::Alerts => (READ | CREATE | DELETE, 0),
            NodeKind::Manager | NodeKind::Alert => (READ, 0),
            // Staff may send a colleague home and close the shop; customers read the sign.
            NodeKind::Operator => (READ | CREATE | DELETE, READ),
            NodeKind::Request => (ALL, READ),
            NodeKind::Other => (0, 0),
        };
        [(ALL, &self.admin), (staff, &self.staff), (customer, &self.customer)]
            .into_iter()
            .filter(|(perms, _)| *perms != 0)
            .map(|(perms, id)| match id.strip_prefix(X509_PREFIX) {
                Some(dn) => Grant::x509(perms, dn),
                None => Grant::digest(perms, id),
            })
            .collect()
    }
}

/// How `/zk-coffee/acl` marks a certificate's subject (a digest id is `user:hash` as it is).
const X509_PREFIX: &str = "x509:";

/// Reads `/zk-coffee/acl`: in a secured shop, nodes this session creates get the shop's ACLs
/// from now on, and the orders it places may also be written (withdrawn) by its own identity
/// ([`Session::identity`]), if it has one. Nothing changes in an open shop.
pub fn install(session: &Session) -> Result<Option<Roles>> {
    match session.data(layout::ACL) {
        Ok(None) => Ok(None),
        Ok(Some(data)) => {
            let roles = Roles::decode(&data)?;
            let policy = roles.clone();
            let own = session.identity().map(Credentials::digest_id);
            session.protect_with(Arc::new(move |path: &str| {
                let mut grants = policy.grants(path);
                if let (Some(own), NodeKind::Order) = (&own, layout::kind_of(path)) {
                    grants.push(Grant::digest(WRITE, own));
                }
                grants
            }));
            debug!("secured shop: new nodes get the shop's ACLs");
            Ok(Some(roles))
        }
        Err(Error::NotAuthorized { .. }) => Err(Error::NotAuthorized {
            op: "read".into(),
            path: format!("{} (this shop is secured: give credentials with ZK_CREDENTIALS_FILE)", layout::ACL),
        }),
        Err(e) => Err(e),
    }
}

/// Makes the shop secured for `roles`: writes `/zk-coffee/acl`, then puts the shop's ACLs on
/// every node of the shop, leaves before parents so access never widens on the way. Returns
/// how many nodes were changed.
pub fn secure(session: &Session, roles: &Roles) -> Result<usize> {
    let policy = roles.clone();
    session.protect_with(Arc::new(move |path: &str| policy.grants(path)));
    session.put(layout::ACL, &roles.encode())?;
    let mut changed = 0;
    for root in [layout::BARISTA_GROUP, layout::ORDERS, layout::EXTENSIONS] {
        changed += secure_tree(session, roles, root)?;
    }
    info!("secured {changed} nodes");
    Ok(changed)
}

/// Closes the chroot node of a `--shop` shop (e.g. `/shops/b`) to all but the admin, so that
/// nobody else can add to the shop's root, remove its empty top-level nodes or take the node's
/// ACL. (A shop at the ensemble's root `/` is left as ZooKeeper made it: changing `/` would
/// shut out everyone else using the ensemble.) `false` when there is no chroot.
pub fn secure_chroot(config: &SessionConfig, roles: &Roles) -> Result<bool> {
    let Some(chroot) = config.servers.chroot() else { return Ok(false) };
    let session = Session::connect_to_root(config)?;
    let done = session.set_acl(chroot, &roles.grants(chroot));
    session.close();
    done
}

fn secure_tree(session: &Session, roles: &Roles, path: &str) -> Result<usize> {
    let mut changed = 0;
    for child in session.children(path)?.unwrap_or_default() {
        changed += secure_tree(session, roles, &layout::child(path, &child))?;
    }
    if session.set_acl(path, &roles.grants(path))? {
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_grant_by_place() {
        let roles = Roles { admin: "a:x".into(), staff: "s:y".into(), customer: "c:z".into() };
        assert_eq!(Roles::decode(&roles.encode()), Ok(roles.clone()));
        let bucket = roles.grants("/orders/b1");
        assert_eq!(bucket, vec![Grant::digest(ALL, "a:x"), Grant::digest(ALL, "s:y"), Grant::digest(READ | CREATE, "c:z")]);
        assert_eq!(roles.grants("/zk-coffee/sales/b1"), vec![Grant::digest(ALL, "a:x"), Grant::digest(READ | WRITE, "s:y")]);
        assert_eq!(
            roles.grants("/zk-coffee/managers"),
            vec![Grant::digest(ALL, "a:x"), Grant::digest(READ | CREATE | DELETE, "s:y")]
        );
        assert_eq!(roles.grants("/zk-coffee/alerts/queue-slow-00"), vec![Grant::digest(ALL, "a:x"), Grant::digest(READ, "s:y")]);
        // Nodes that are not the shop's (a foreign child in a bucket) are the admin's alone.
        assert_eq!(roles.grants("/orders/b1/junk"), vec![Grant::digest(ALL, "a:x")]);
        // Certificates' subjects are x509 grants.
        let certs = Roles { staff: Roles::x509_id("CN=barista,O=shop").expect("a DN"), ..roles };
        assert_eq!(Roles::decode(&certs.encode()), Ok(certs.clone()));
        assert_eq!(
            certs.grants("/barista_group/b1"),
            vec![Grant::digest(ALL, "a:x"), Grant::x509(ALL, "CN=barista,O=shop"), Grant::digest(READ, "c:z")]
        );
        assert!(Roles::x509_id("barista").is_err() && Roles::x509_id(" ").is_err());
    }
}
