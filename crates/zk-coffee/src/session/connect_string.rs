//! Connect strings: `host:port[,host:port...][/chroot]`, checked and normalised before the
//! client sees them, so that a typo is a usage error (exit 2) rather than a connect timeout.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The port ZooKeeper listens on when a host in the connect string has none.
const DEFAULT_PORT: u16 = 2181;

/// A validated ZooKeeper connect string: `host:port[,host:port...][/chroot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectString {
    /// `host:port` pairs, with the default port filled in.
    hosts: Vec<String>,
    /// The chroot suffix, if any, starting with `/`.
    chroot: Option<String>,
}

impl ConnectString {
    /// The servers, `host:port` each (IPv6 hosts in brackets), in the order given.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The servers alone, `host:port,host:port`: a name for the ensemble.
    pub fn servers(&self) -> String {
        self.hosts.join(",")
    }

    /// The chroot suffix (e.g. `/shop2`), if any.
    pub fn chroot(&self) -> Option<&str> {
        self.chroot.as_deref()
    }

    /// The same servers without the chroot: used to create the chroot node itself.
    pub fn without_chroot(&self) -> ConnectString {
        ConnectString { hosts: self.hosts.clone(), chroot: None }
    }

    /// The same servers with `suffix` (e.g. `/shops/a`) appended to the chroot.
    pub fn under(&self, suffix: &str) -> ConnectString {
        let chroot = format!("{}{suffix}", self.chroot.as_deref().unwrap_or(""));
        ConnectString { hosts: self.hosts.clone(), chroot: Some(chroot) }
    }
}

impl FromStr for ConnectString {
    type Err = Error;

    fn from_str(s: &str) -> Result<ConnectString> {
        let bad = |why: String| Error::usage(format!("invalid ZooKeeper connect string {s:?}: {why}"));
        let (servers, chroot) = match s.find('/') {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                if c.ends_with('/') || c.contains("//") {
                    return Err(bad(format!("chroot {c:?} must look like /a/b")));
                }
                Some(c.to_owned())
            }
        };
        let mut hosts = Vec::new();
        for server in servers.split(',') {
            let server = server.trim();
            if server.is_empty() {
                return Err(bad("a server is missing (expected host:port[,host:port...][/chroot])".into()));
            }
            let port_of = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad(format!("{p:?} is not a port")));
            // `[v6]` or `[v6]:port`; a bare v6 address (two colons or more) has no port; else
            // `host` or `host:port`.
            let (host, port) = if let Some(rest) = server.strip_prefix('[') {
                let (inner, after) = rest.split_once(']').ok_or_else(|| bad(format!("{server:?} lacks its closing ]")))?;
                let port = match after {
                    "" => DEFAULT_PORT,
                    after => port_of(after.strip_prefix(':').ok_or_else(|| bad(format!("{server:?}: expected :port after ]")))?)?,
                };
                (inner, port)
            } else if server.matches(':').count() > 1 {
                (server, DEFAULT_PORT)
            } else {
                match server.split_once(':') {
                    Some((h, p)) => (h, port_of(p)?),
                    None => (server, DEFAULT_PORT),
                }
            };
            if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '[' || c == ']') {
                return Err(bad(format!("{server:?} has no usable host")));
            }
            hosts.push(if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") });
        }
        Ok(ConnectString { hosts, chroot })
    }
}

impl fmt::Display for ConnectString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.hosts.join(","), self.chroot.as_deref().unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ConnectString> {
        s.parse()
    }

    #[test]
    fn connect_strings_are_normalised() {
        assert_eq!(parse("localhost").map(|c| c.to_string()), Ok("localhost:2181".into()));
        let c = parse("a:1, b:2,c/shop/one").expect("valid");
        assert_eq!(c.to_string(), "a:1,b:2,c:2181/shop/one");
        assert_eq!(c.chroot(), Some("/shop/one"));
        assert_eq!(c.without_chroot().to_string(), "a:1,b:2,c:2181");
        assert_eq!(c.hosts(), ["a:1", "b:2", "c:2181"]);
        assert_eq!(c.servers(), "a:1,b:2,c:2181");
        assert_eq!(parse("h:1/").map(|c| c.chroot().map(String::from)), Ok(None));
        assert_eq!(parse("[::1]").map(|c| c.to_string()), Ok("[::1]:2181".into()));
        assert_eq!(parse("[::1]:7/x").map(|c| c.to_string()), Ok("[::1]:7/x".into()));
        assert_eq!(parse("::1").map(|c| c.to_string()), Ok("[::1]:2181".into()));
        assert_eq!(parse("h:1/base").map(|c| c.under("/shops/a").to_string()), Ok("h:1/base/shops/a".into()));
        assert_eq!(parse("h:1").map(|c| c.under("/shops/a").to_string()), Ok("h:1/shops/a".into()));
    }

    #[test]
    fn bad_connect_strings_are_usage_errors() {
        for bad in ["", "a:1,,b:2", ":2181", "h:port", "h:0", "h:70000", "h:1/x/", "h:1//x", "a b:1", "[::1", "[]:1", "[::1]x"] {
            match parse(bad) {
                Err(Error::Usage(msg)) => assert!(msg.contains("connect string"), "{bad}: {msg}"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
