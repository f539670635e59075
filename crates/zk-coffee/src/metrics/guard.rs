//! Who may ask a role's HTTP server: the credential it asks for, and the rule that keeps a
//! public address from being served unguarded.
//!
//! A credential ([`Credential`]) is read from a file only its owner may read: one line, either
//! a bearer token (no `:`, e.g. `openssl rand -hex 32`) or `user:password` for HTTP basic
//! auth. A token is also accepted as the password of basic auth, under any user name, so that
//! a browser (whose `EventSource` can send no `Authorization` header of its own, but resends
//! the basic credentials it was given for the origin) can open the manager's page with
//! either kind. Requests are compared in constant time ([`subtle`]), so the time an answer
//! takes tells nothing of how much of a guess was right (the length of the secret aside).
//!
//! A [`Guard`] holds the server's credential and, optionally, one for `/metrics` alone (a
//! scraper's). `/healthz` is always open (it says `ok` and nothing else). Every other path,
//! known or not, asks for the credential: a request without it, or with a wrong one, gets the
//! same 401 ([`unauthorized`]), which names no path, shop or count.
//!
//! [`Guard::check_address`] is the rule: a server on an address that is not loopback must be
//! guarded, or told explicitly that it may be open (`--http-insecure`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::http::{parse_address, Request, Response};
use crate::error::{Error, Result};

/// The realm named in the `WWW-Authenticate` challenge (what a browser's prompt shows).
pub const REALM: &str = "zk-coffee";

/// The one path open to all.
pub const HEALTHZ: &str = "/healthz";

/// The credential a request must carry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer TOKEN` (or basic auth with any user and the token as password).
    Token(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Token(_) => f.write_str("Credential::Token(***)"),
            Credential::Basic { user, .. } => write!(f, "Credential::Basic({user}:***)"),
        }
    }
}

impl Credential {
    /// Reads the credential from the first line of `path` that is not empty or a `#` comment;
    /// `flag` names the flag it came from in the error. Refuses, as a usage error, a file its
    /// group or others may read or write, naming the file and its mode.
    pub fn from_file(flag: &str, path: &Path) -> Result<Credential> {
        let shown = path.display();
        let cannot = |e: std::io::Error| Error::usage(format!("cannot read the {flag} file {shown}: {e}"));
        let mode = std::fs::metadata(path).map_err(cannot)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(Error::usage(format!(
                "the {flag} file {shown} has mode {mode:04o}: it must be readable by its owner only (chmod 600 {shown})"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(cannot)?;
        let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
        Credential::parse(line).map_err(|why| Error::usage(format!("the {flag} file {shown}: {why}")))
    }

    /// Reads `TOKEN` or `user:password` (neither part empty; no white space in either).
    pub fn parse(line: &str) -> std::result::Result<Credential, &'static str> {
        if line.is_empty() || line.contains(char::is_whitespace) {
            return Err("must hold one line: a token, or user:password, without spaces");
        }
        match line.split_once(':') {
            None => Ok(Credential::Token(line.to_owned())),
            Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                Ok(Credential::Basic { user: user.to_owned(), password: password.to_owned() })
            }
            Some(_) => Err("user:password needs both a user and a password"),
        }
    }

    /// Whether an `Authorization` header's value carries this credential.
    pub fn admits(&self, authorization: &str) -> bool {
        let (scheme, value) = authorization.trim().split_once(' ').unwrap_or((authorization, ""));
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return match self {
                Credential::Token(token) => same(value.as_bytes(), token.as_bytes()),
                Credential::Basic { .. } => false,
            };
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(value) else { return false };
        let Some(colon) = decoded.iter().position(|&b| b == b':') else { return false };
        match self {
            Credential::Token(token) => same(&decoded[colon + 1..], token.as_bytes()),
            Credential::Basic { user, password } => {
                // Both halves are compared, whichever is wrong, so that the time taken does
                // not tell a right user from a wrong one.
                let user_ok = same(&decoded[..colon], user.as_bytes());
                let password_ok = same(&decoded[colon + 1..], password.as_bytes());
                user_ok & password_ok
            }
        }
    }
}

/// Constant-time equality (the lengths aside, which a guess may learn).
fn same(given: &[u8], expected: &[u8]) -> bool {
    bool::from(given.ct_eq(expected))
}

/// Who may ask a server for what.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// Asked for on every path but `/healthz`; `None`: open.
    pub credential: Option<Credential>,
    /// Also accepted on `/metrics` (a scraper's own credential).
    pub metrics: Option<Credential>,
}

impl Guard {
    /// A guard that lets everyone in (a loopback address, or `--http-insecure`).
    pub fn open() -> Guard {
        Guard::default()
    }

    /// The guard the flags describe, for a server on `address` (given with `listen_flag`):
    /// the credential of `auth_file`, and for `/metrics` also that of `metrics_auth_file`. An
    /// address that is not loopback must have `auth_file` or `insecure`; else a usage error.
    pub fn from_flags(
        listen_flag: &str,
        address: &str,
        auth_file: Option<&PathBuf>,
        metrics_auth_file: Option<&PathBuf>,
        insecure: bool,
    ) -> Result<Guard> {
        Guard::check_address(listen_flag, address, auth_file.is_some() || insecure)?;
        let credential = auth_file.map(|path| Credential::from_file("--http-auth-file", path)).transpose()?;
        let metrics = metrics_auth_file.map(|path| Credential::from_file("--metrics-auth-file", path)).transpose()?;
        Ok(Guard { credential, metrics })
    }

    /// Refuses (a usage error) to serve `address` unguarded when it is not a loopback address.
    pub fn check_address(listen_flag: &str, address: &str, guarded_or_told: bool) -> Result<()> {
        let ip = parse_address(address)?.ip();
        if guarded_or_told || ip.is_loopback() {
            return Ok(());
        }
        Err(Error::usage(format!(
            "{listen_flag} {address} is not a loopback address, and anyone who reaches it would see what it serves: \
             give --http-auth-file FILE (or --http-insecure to serve it unguarded anyway)"
        )))
    }

    /// Whether anything is guarded.
    pub fn is_on(&self) -> bool {
        self.credential.is_some() || self.metrics.is_some()
    }

    /// Whether `request` may be answered.
    pub fn admits(&self, request: &Request) -> bool {
        if request.path() == HEALTHZ {
            return true;
        }
        let carries = |c: &Option<Credential>| match (c, request.authorization()) {
            (Some(c), Some(header)) => c.admits(header),
            _ => false,
        };
        if request.path() == "/metrics" && self.metrics.is_some() {
            return carries(&self.metrics) || carries(&self.credential);
        }
        self.credential.is_none() || carries(&self.credential)
    }
}

/// The answer to a request the guard refused: the same for every path, naming nothing.
pub fn unauthorized() -> Response {
    Response::text("authorization required\n")
        .with_status(401)
        .with_header("WWW-Authenticate", format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""))
        .with_cache_control("no-store")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn basic(user_password: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
    }

    #[test]
    fn tokens_and_passwords_are_read_and_admitted() {
        let token = Credential::parse("s3cret").unwrap();
        assert_eq!(token, Credential::Token("s3cret".into()));
        assert!(token.admits("Bearer s3cret"));
        assert!(token.admits("bearer  s3cret "));
        assert!(token.admits(&basic("anyone:s3cret")), "a browser gives the token as a password");
        for wrong in ["Bearer s3cre", "Bearer s3crett", "Bearer", "s3cret", "Token s3cret", &basic("s3cret"), "Basic !!"] {
            assert!(!token.admits(wrong), "{wrong:?}");
        }
        let basic_auth = Credential::parse("ana:pw:with:colons").unwrap();
        assert_eq!(basic_auth, Credential::Basic { user: "ana".into(), password: "pw:with:colons".into() });
        assert!(basic_auth.admits(&basic("ana:pw:with:colons")));
        for wrong in [basic("ana:pw"), basic("ben:pw:with:colons"), "Bearer ana:pw:with:colons".to_owned()] {
            assert!(!basic_auth.admits(&wrong), "{wrong:?}");
        }
        for bad in ["", "a b", ":pw", "user:"] {
            assert!(Credential::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(format!("{basic_auth:?}"), "Credential::Basic(ana:***)");
        assert_eq!(format!("{token:?}"), "Credential::Token(***)");
    }

    #[test]
    fn healthz_is_open_and_metrics_takes_either_credential() {
        let guard =
            Guard { credential: Some(Credential::Token("page".into())), metrics: Some(Credential::Token("scrape".into())) };
        let ask = |path: &str, auth: Option<&str>| {
            let request = Request::new("GET", path);
            guard.admits(&match auth {
                Some(a) => request.with_authorization(a),
                None => request,
            })
        };
        assert!(ask("/healthz", None));
        for path in ["/", "/events", "/api/shops", "/metrics", "/nope"] {
            assert!(!ask(path, None), "{path}");
            assert!(!ask(path, Some("Bearer wrong")), "{path}");
            assert!(ask(path, Some("Bearer page")), "{path}");
        }
        assert!(ask("/metrics", Some("Bearer scrape")));
        assert!(!ask("/api/shops", Some("Bearer scrape")), "the scraper's credential opens /metrics only");
        assert!(Guard::open().admits(&Request::new("GET", "/api/shops")));
        let refused = unauthorized();
        assert_eq!(refused.status, 401);
        assert!(refused.headers.iter().any(|(k, v)| k == "WWW-Authenticate" && v.starts_with("Basic realm=")));
    }

    #[test]
    fn a_public_address_needs_a_guard_or_an_explicit_insecure() {
        for open in ["127.0.0.1:9720", "[::1]:9720", "localhost:9720"] {
            assert_eq!(Guard::check_address("--listen", open, false), Ok(()), "{open}");
        }
        for public in ["0.0.0.0:9720", ":9720", "[::]:9720"] {
            let e = Guard::check_address("--listen", public, false).expect_err(public);
            assert_eq!(e.exit_code(), crate::error::exit::USAGE);
            let said = e.to_string();
            assert!(said.starts_with(&format!("--listen {public} is not a loopback address")), "{said}");
            assert!(said.contains("--http-auth-file") && !said.contains('\n'), "{said}");
            assert_eq!(Guard::check_address("--listen", public, true), Ok(()));
        }
    }

    #[test]
    fn a_file_others_may_read_is_refused_naming_its_mode() {
        let dir = std::env::temp_dir().join(format!("zk-coffee-guard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::File::create(&path).unwrap().write_all(b"# the page's token\n\ns3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Credential::from_file("--http-auth-file", &path).expect_err("group-readable");
        assert_eq!(e.exit_code(), crate::error::exit::USAGE);
        assert!(e.to_string().contains(&format!("{} has mode 0640", path.display())), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(Credential::from_file("--http-auth-file", &path), Ok(Credential::Token("s3cret".into())));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(Credential::from_file("--http-auth-file", &path).is_ok(), "stricter is fine");
        let _ = std::fs::remove_dir_all(&dir);
        let e = Credential::from_file("--http-auth-file", &path).expect_err("gone");
        assert!(e.to_string().starts_with("cannot read the --http-auth-file file"), "{e}");
    }
}
