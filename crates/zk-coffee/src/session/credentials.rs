//! Digest credentials as the session sees them: one identity's `user:password`, which the
//! client sends with `add_auth("digest", ...)` (and again after every reconnect), and the ACL
//! id ZooKeeper derives from it. Which identities a shop has, and what each may do, is the
//! shop's business (`security`).
//!
//! Credentials come from a file readable only by its owner or from the environment, never
//! from a flag, where `ps` would show them.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;

use crate::error::{Error, Result};

/// One identity's `user:password`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:***)", self.user)
    }
}

impl Credentials {
    /// Parses `user:password` (the user has no `:`; neither part is empty).
    pub fn parse(text: &str) -> Result<Credentials> {
        let text = text.trim();
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() && !user.contains(char::is_whitespace) => {
                Ok(Credentials { user: user.to_owned(), password: password.to_owned() })
            }
            _ => Err(Error::usage("credentials must look like user:password")),
        }
    }

    /// Reads `user:password` from the first line of `path` that is not empty or a `#`
    /// comment. Refuses a file that its group or others may read.
    pub fn from_file(path: &Path) -> Result<Credentials> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| Error::usage(format!("cannot read the credentials file {shown}: {e}")))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::usage(format!("the credentials file {shown} is readable by others: run chmod 600 {shown}")));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::usage(format!("cannot read the credentials file {shown}: {e}")))?;
        let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
        Credentials::parse(line)
            .map_err(|_| Error::usage(format!("the credentials file {shown} must hold one line user:password")))
    }

    /// A new identity of `user` with a random password (128 bits from rand's thread
    /// generator, a CSPRNG seeded by the system): one that nobody else can hold.
    pub fn random(user: &str) -> Credentials {
        Credentials { user: user.to_owned(), password: format!("{:032x}", rand::random::<u128>()) }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// What `add_auth("digest", ...)` takes.
    pub fn auth(&self) -> Vec<u8> {
        format!("{}:{}", self.user, self.password).into_bytes()
    }

    /// The digest ACL id ZooKeeper derives from these credentials:
    /// `user:base64(sha1(user:password))`.
    pub fn digest_id(&self) -> String {
        let hash = sha1_smol::Sha1::from(format!("{}:{}", self.user, self.password)).digest().bytes();
        format!("{}:{}", self.user, base64::engine::general_purpose::STANDARD.encode(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ids_match_zookeepers() {
        // What ZooKeeper 3.8's own tool prints:
        // java ... org.apache.zookeeper.server.auth.DigestAuthenticationProvider super:secret
        let c = Credentials::parse("super:secret").expect("valid");
        assert_eq!(c.digest_id(), "super:lK75jTNcA+U9vtVEw5vB51mj/w4=");
        assert_eq!(format!("{c:?}"), "Credentials(super:***)");
    }

    #[test]
    fn random_identities_differ() {
        let (a, b) = (Credentials::random("order"), Credentials::random("order"));
        assert_ne!(a.digest_id(), b.digest_id());
        assert!(a.digest_id().starts_with("order:") && a.password.len() == 32, "{a:?}");
    }

    #[test]
    fn credentials_need_a_user_and_a_password() {
        for bad in ["", "user", ":pw", "user:", "a b:c"] {
            assert!(Credentials::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Credentials::parse("u:p:q").map(|c| c.password), Ok("p:q".to_owned()));
    }
}
