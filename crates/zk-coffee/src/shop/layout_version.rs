//! Which version of the layout a shop's tree uses, so that roles of different builds never
//! mix blindly during a rolling upgrade.
//!
//! `/zk-coffee/version` holds one decimal number: the layout the shop's data is written in.
//! This build writes and reads layout [`LAYOUT`]. A tree without the node (the original
//! program's, or one set up before the node existed) is layout 1, what this build knows.
//! Every role checks the node when it starts (with [`super::check_initialised`]), and the
//! barista and the manager again on every new session (a newer `shop-init` may have run
//! while they were cut off); a role that meets a layout newer than its own says so in one
//! line and exits with `exit::LAYOUT` instead of writing what the newer roles would misread.
//! `shop-init` writes the node where it is missing and refuses to mark a newer shop with an
//! older layout. A later build that changes what roles write bumps [`LAYOUT`] and reads
//! every older layout it is upgrading from; README's "Upgrading" says in which order roles
//! are replaced.

use log::info;

use crate::error::{Error, Result};
use crate::layout::{self, ShopName};
use crate::session::Session;

/// The layout this build writes, and the newest it can serve.
pub const LAYOUT: u32 = 1;

/// The layout a tree without the version node uses.
const UNMARKED: u32 = 1;

/// What the version node's data says: a layout number, or why it is none.
pub fn parse(path: &str, data: &[u8]) -> Result<u32> {
    let bad = || Error::BadLayoutVersion { path: path.to_owned(), data: String::from_utf8_lossy(data).into_owned() };
    let text = std::str::from_utf8(data).map_err(|_| bad())?;
    match text.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(bad()),
    }
}

/// The layout `shop` uses (`None`: the session's own shop, at its root or chroot), read now.
pub fn read(session: &Session, shop: Option<&ShopName>) -> Result<u32> {
    let path = layout::in_shop(shop, layout::LAYOUT_VERSION);
    match session.read(&path)? {
        None => Ok(UNMARKED),
        Some(node) => parse(&path, &node.data),
    }
}

/// Fails with [`Error::NewerLayout`] if `shop` uses a layout newer than this build's, and
/// with [`Error::BadLayoutVersion`] if its version node holds no layout number.
pub fn check(session: &Session, shop: Option<&ShopName>) -> Result<()> {
    let found = read(session, shop)?;
    if found > LAYOUT {
        let path = layout::in_shop(shop, layout::LAYOUT_VERSION);
        return Err(Error::NewerLayout { path, found, supported: LAYOUT });
    }
    Ok(())
}

/// `shop-init`: writes this build's layout where the shop has no version node yet; refuses a
/// shop already marked newer. Returns whether it created the node.
pub fn mark(session: &Session) -> Result<bool> {
    check(session, None)?;
    let created = session.ensure_persistent(layout::LAYOUT_VERSION, LAYOUT.to_string().as_bytes())?;
    if created {
        info!("marked the shop's layout as version {LAYOUT}");
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_number_is_a_positive_decimal() {
        assert_eq!(parse("/v", b"1"), Ok(1));
        assert_eq!(parse("/v", b"7\n"), Ok(7));
        for garbage in [&b""[..], b"0", b"-1", b"one", b"1.5", b"\xff"] {
            let err = parse("/v", garbage).unwrap_err();
            assert!(matches!(err, Error::BadLayoutVersion { ref path, .. } if path == "/v"), "{garbage:?}: {err:?}");
        }
    }

    #[test]
    fn the_errors_say_what_to_do() {
        let newer = Error::NewerLayout { path: "/zk-coffee/version".into(), found: 2, supported: 1 };
        assert_eq!(
            newer.to_string(),
            "the shop uses layout version 2 (/zk-coffee/version), newer than this build's 1: upgrade this role to a build \
             that serves it (see README, Upgrading)"
        );
        let bad = Error::BadLayoutVersion { path: "/zk-coffee/version".into(), data: "two".into() };
        assert_eq!(bad.to_string(), "/zk-coffee/version should hold the shop's layout version (a number), not \"two\"");
    }
}
