//! What the three binaries share: the connection flags, logging set-up, signal wiring and the
//! mapping of results to exit codes. Keeping it here keeps each `main` a few lines long.

use std::process::ExitCode;
use std::time::Duration;

use crate::duration;
use crate::error::{exit, Error, Result};
use crate::layout::{self, ShopName};
use crate::session::{ConnectString, Credentials, Session, SessionConfig, Tls};
use crate::shutdown::{Shutdown, Stop};

/// The exit-code table printed at the end of every `--help`, from [`exit::TABLE`].
pub fn exit_codes_help() -> String {
    let mut help = String::from("Exit codes:");
    for (code, _, meaning) in exit::TABLE {
        help.push_str(&format!("\n{code:>3}  {meaning}"));
    }
    help
}

/// Every environment variable the binaries read (besides `RUST_LOG`). Tests and the
/// benchmark clear them for the processes they start, so a developer's shell cannot change
/// what they measure.
pub const ENVIRONMENT: [&str; 40] = [
    "ZK_SERVERS",
    "ZK_SESSION_TIMEOUT",
    "ZK_CONNECT_TIMEOUT",
    "ZK_SHOP",
    "ZK_CREDENTIALS",
    "ZK_CREDENTIALS_FILE",
    "ZK_TLS_CA",
    "ZK_TLS_CERT",
    "ZK_TLS_KEY",
    "SHOP_MENU",
    "SHOP_MAX_QUEUE",
    "SHOP_STAFF_CREDENTIALS_FILE",
    "SHOP_CUSTOMER_CREDENTIALS_FILE",
    "SHOP_STAFF_X509",
    "SHOP_CUSTOMER_X509",
    "MANAGER_SHOPS",
    "MANAGER_ENSEMBLE",
    "MANAGER_EVENTS",
    "MANAGER_ALERT_WAIT",
    "MANAGER_FORGET_AFTER",
    "MANAGER_ON_EVENT",
    "MANAGER_ALERT_ON",
    "MANAGER_HOOK_TIMEOUT",
    "MANAGER_MAX_HOOKS",
    "MANAGER_ZOOKEEPER_INTERVAL",
    "MANAGER_LISTEN",
    "BARISTA_NAME",
    "BARISTA_BREW_TIME",
    "BARISTA_LEAVE_AFTER_IDLE",
    "BARISTA_DRAIN_TIMEOUT",
    "BARISTA_BOOT_ID",
    "BARISTA_METRICS_LISTEN",
    "CUSTOMER_COFFEE",
    "CUSTOMER_BARISTA",
    "CUSTOMER_CHOOSE",
    "CUSTOMER_MAX_QUEUE",
    "CUSTOMER_PATIENCE",
    "HTTP_AUTH_FILE",
    "HTTP_INSECURE",
    "MANAGER_METRICS_AUTH_FILE",
];

/// Where ZooKeeper is, how long to wait for it, and as whom: every binary takes these (most
/// of them with `--shop` as well: [`ConnectArgs`]).
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// ZooKeeper connect string: `host:port[,host:port...][/chroot]`.
    #[arg(long = "zk", env = "ZK_SERVERS", default_value = "localhost:2181", value_name = "SERVERS",
          value_parser = parse_connect_string)]
    pub servers: ConnectString,

    /// Session timeout asked of ZooKeeper (seconds, or e.g. 500ms); the server bounds it to
    /// 2-20 x its tickTime.
    #[arg(long, env = "ZK_SESSION_TIMEOUT", default_value = "10", value_name = "SECS",
          value_parser = parse_session_timeout)]
    pub session_timeout: Duration,

    /// How long to wait for a first connection before giving up (exit code 5; 15 when the
    /// server answers but TLS with it fails).
    #[arg(long, env = "ZK_CONNECT_TIMEOUT", default_value = "10", value_name = "SECS",
          value_parser = parse_positive_duration)]
    pub connect_timeout: Duration,

    /// A file holding this role's ZooKeeper digest credentials, one line `user:password`,
    /// readable only by its owner. (Or set ZK_CREDENTIALS=user:password; never on the command
    /// line, where `ps` shows it.)
    #[arg(long, env = "ZK_CREDENTIALS_FILE", value_name = "PATH")]
    pub credentials_file: Option<std::path::PathBuf>,

    /// Connect with TLS (to the servers' secureClientPort), trusting the CA certificates in
    /// this PEM file to sign the servers' certificates. Without it, the connection is
    /// plaintext, credentials included.
    #[arg(long, env = "ZK_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// Present this client certificate (PEM; with --tls-key and --tls-ca), for a server with
    /// ssl.clientAuth=need, whose x509 scheme then knows us by its subject.
    #[arg(long, env = "ZK_TLS_CERT", value_name = "FILE", requires_all = ["tls_key", "tls_ca"])]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The private key (PEM, readable only by its owner) of --tls-cert.
    #[arg(long, env = "ZK_TLS_KEY", value_name = "FILE", requires_all = ["tls_cert", "tls_ca"])]
    pub tls_key: Option<std::path::PathBuf>,
}

impl ServerArgs {
    /// The session settings for `shop` (`None`: the root shop, or no chroot at all for a role
    /// that follows several shops); reads the credentials.
    pub fn config(&self, shop: Option<&ShopName>) -> Result<SessionConfig> {
        let credentials = match (&self.credentials_file, std::env::var("ZK_CREDENTIALS")) {
            (Some(path), _) => Some(Credentials::from_file(path)?),
            (None, Ok(text)) => {
                Some(Credentials::parse(&text).map_err(|_| Error::usage("ZK_CREDENTIALS must look like user:password"))?)
            }
            (None, Err(_)) => None,
        };
        let servers = match shop {
            Some(shop) => self.servers.under(&layout::shop_root(shop)),
            None => self.servers.clone(),
        };
        Ok(SessionConfig {
            credentials,
            identity: None,
            servers,
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
            tls: self.tls()?,
        })
    }

    /// The TLS settings of `--tls-ca` (and `--tls-cert`/`--tls-key`), read and checked; `None`
    /// without `--tls-ca`.
    pub fn tls(&self) -> Result<Option<Tls>> {
        let Some(ca) = &self.tls_ca else { return Ok(None) };
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            _ => return Err(Error::usage("--tls-cert and --tls-key go together")),
        };
        Tls::from_files(ca, identity).map(Some)
    }
}

/// [`ServerArgs`] and the one shop a role works in.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub server: ServerArgs,

    /// Work in the named shop: its nodes live under the chroot /shops/NAME, so several shops
    /// share one ensemble without seeing each other. Default: the shop at the root, where the
    /// original program works.
    #[arg(long, env = "ZK_SHOP", value_name = "NAME")]
    pub shop: Option<ShopName>,
}

impl ConnectArgs {
    /// The session settings these flags (and the environment) describe; reads the credentials.
    pub fn config(&self) -> Result<SessionConfig> {
        self.server.config(self.shop.as_ref())
    }

    /// Connects, waiting at most the connect timeout.
    pub fn connect(&self) -> Result<Session> {
        Session::connect(self.config()?)
    }
}

/// Who may ask a role's HTTP server (`shop-manager --listen`, `barista --metrics-listen`):
/// both roles take these (see [`crate::metrics::guard`]).
#[derive(clap::Args, Debug, Clone)]
pub struct HttpArgs {
    /// Ask every HTTP request but /healthz for the credential in this file (owner-only, mode
    /// 0600): one line, a bearer token, or user:password for basic auth (a browser gives a
    /// token as the password, under any user name). Needed to listen on an address that is not
    /// loopback.
    #[arg(long, env = "HTTP_AUTH_FILE", value_name = "FILE")]
    pub http_auth_file: Option<std::path::PathBuf>,

    /// Serve an address that is not loopback without asking for credentials (anyone who
    /// reaches it sees what it serves).
    #[arg(long, env = "HTTP_INSECURE", conflicts_with = "http_auth_file")]
    pub http_insecure: bool,
}

impl HttpArgs {
    /// The guard for a server on `address` (given with `listen_flag`), `/metrics` also taking
    /// the credential of `metrics_auth_file`; a usage error for a public address unguarded,
    /// or a credential file that cannot be used.
    pub fn guard(
        &self,
        listen_flag: &str,
        address: &str,
        metrics_auth_file: Option<&std::path::PathBuf>,
    ) -> Result<crate::metrics::Guard> {
        crate::metrics::Guard::from_flags(
            listen_flag,
            address,
            self.http_auth_file.as_ref(),
            metrics_auth_file,
            self.http_insecure,
        )
    }
}

/// Clap value parser for connect strings.
pub fn parse_connect_string(s: &str) -> Result<ConnectString> {
    s.parse()
}

/// Clap value parser for an HTTP listen address (`HOST:PORT`, `:PORT`; see
/// [`crate::metrics::http::parse_address`]): checked now, bound when the role starts.
pub fn parse_listen_address(s: &str) -> Result<String> {
    crate::metrics::http::parse_address(s).map(|_| s.to_owned())
}

/// Clap value parser for any duration (zero allowed).
pub fn parse_duration(s: &str) -> Result<Duration> {
    Ok(duration::parse(s)?)
}

/// Clap value parser for a duration that must be above zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration> {
    let d = duration::parse(s)?;
    if d.is_zero() {
        return Err(Error::usage(format!("{s:?} must be more than zero")));
    }
    Ok(d)
}

fn parse_session_timeout(s: &str) -> Result<Duration> {
    let d = duration::parse(s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(Error::usage(format!("session timeout {s:?} must be between 100ms and 3600s")));
    }
    Ok(d)
}

/// Sets up env_logger: `RUST_LOG` is honoured (default `info`), and the client crate's own
/// log target is silenced unless `RUST_LOG` names it, because it floods during an outage
/// (tens of thousands of lines a second).
pub fn init_logging() {
    let mut filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    if !filter.contains("zookeeper=") {
        filter.push_str(",zookeeper=off");
    }
    env_logger::Builder::new().parse_filters(&filter).format_target(false).init();
}

/// How long a second signal leaves the role to stop on its own before the process exits
/// anyway (its calls may be waiting on an unreachable ZooKeeper).
const FORCED_EXIT_AFTER: Duration = Duration::from_secs(1);

/// Makes SIGINT, SIGTERM and SIGHUP request a stop: the first a graceful one, the next an
/// immediate one. After that second signal the process exits with `forced_code` within a
/// second even if the role is stuck in a call to an unreachable ZooKeeper (what it leaves in
/// ZooKeeper goes with its session, as after a crash).
pub fn stop_on_signals(shutdown: &Shutdown, forced_code: u8) -> Result<()> {
    let shutdown = shutdown.clone();
    ctrlc::set_handler(move || {
        shutdown.request();
        if shutdown.state() == Stop::Now {
            let _ = std::thread::Builder::new().name("forced-exit".into()).spawn(move || {
                std::thread::sleep(FORCED_EXIT_AFTER);
                eprintln!("second signal: exiting now");
                std::process::exit(i32::from(forced_code));
            });
        }
    })
    .map_err(|e| Error::internal(format!("cannot install the signal handler: {e}")))
}

/// Parses the command line. `--help` and `--version` print and exit 0; any other problem
/// prints one line, `{program}: error: ...` (clap's own first line, without the usage block),
/// runs `on_error` (the customer prints its `failed exit=2` line there) and exits 2.
pub fn parse_args<T: clap::Parser>(program: &str, on_error: impl FnOnce()) -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let rendered = e.to_string();
            let mut lines = rendered.lines();
            let first = lines.next().unwrap_or("invalid arguments");
            let mut first = first.strip_prefix("error: ").unwrap_or(first).to_owned();
            // "...not provided:" is followed by the arguments, one per indented line.
            if first.ends_with(':') {
                let named: Vec<&str> = lines.take_while(|l| l.starts_with("  ")).map(str::trim).collect();
                first.push(' ');
                first.push_str(&named.join(", "));
            }
            eprintln!("{program}: error: {first} (see --help)");
            on_error();
            std::process::exit(exit::status::USAGE);
        }
    }
}

/// Turns a binary's result into its exit code, printing the error as one line on stderr.
pub fn finish(program: &str, result: Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{program}: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_code_right_aligned() {
        let help = exit_codes_help();
        let lines: Vec<&str> = help.lines().collect();
        assert_eq!(lines.len(), exit::TABLE.len() + 1);
        assert_eq!(lines[0], "Exit codes:");
        assert_eq!(lines[1], "  0  success (customer: served)");
        assert_eq!(lines[11], " 10  customer: the barista rejected the order");
    }
}
