//! `shop-manager`: follows every shop of an ensemble (or those named), tells what happens there
//! as events, and serves metrics and the shops' JSON.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use log::warn;
use zk_coffee::cli::{self, HttpArgs, ServerArgs};
use zk_coffee::error::{exit, Error};
use zk_coffee::layout::ShopName;
use zk_coffee::manager::zookeeper::{Poller, PollerConfig};
use zk_coffee::manager::{self, alerts, Event, HookConfig, Kind, ManagerConfig, Scope, Shared, ROOT_SHOP};
use zk_coffee::metrics::{self, Registry};
use zk_coffee::Shutdown;

/// Follows the shops of a ZooKeeper ensemble: the root shop and every /shops/NAME (also those
/// created while it runs), or only those named with --shop. Each event (a barista on shift,
/// left or lost, an orphan adopted or drained, an order rejected, a slow queue, a shop with
/// orders and nobody on shift, a new shop, a new menu) is one line in the log and one JSON
/// object per line on stdout (or --events FILE). Reads only, except its own election and
/// alert records. SIGINT/SIGTERM: stop.
#[derive(Parser, Debug)]
#[command(version, after_help = cli::exit_codes_help())]
struct Args {
    #[command(flatten)]
    server: ServerArgs,

    /// Follow only this shop (repeatable, or comma-separated in the environment); `/` is the
    /// root shop. Default: every shop.
    #[arg(long = "shop", env = "MANAGER_SHOPS", value_name = "NAME", value_delimiter = ',', value_parser = parse_shop)]
    shops: Vec<ShopRef>,

    /// The ensemble's name in metrics (default: the connect string's servers).
    #[arg(long, env = "MANAGER_ENSEMBLE", value_name = "NAME")]
    ensemble: Option<String>,

    /// Append the events, one JSON object a line, to this file instead of stdout.
    #[arg(long, env = "MANAGER_EVENTS", value_name = "FILE")]
    events: Option<PathBuf>,

    /// A queue whose oldest order has waited longer is slow (queue-slow).
    #[arg(long, env = "MANAGER_ALERT_WAIT", default_value = "5", value_name = "SECS", value_parser = cli::parse_positive_duration)]
    alert_wait: Duration,

    /// A barista gone this long, with nothing left in its bucket, loses its metric series.
    #[arg(long, env = "MANAGER_FORGET_AFTER", default_value = "600", value_name = "SECS", value_parser = cli::parse_positive_duration)]
    forget_after: Duration,

    /// Run `sh -c CMD` for every alerting event, with ZK_COFFEE_EVENT, ZK_COFFEE_SHOP and
    /// ZK_COFFEE_BARISTA set and the event's JSON on stdin. With several managers, the leader
    /// of each shop's election runs it.
    #[arg(long, env = "MANAGER_ON_EVENT", value_name = "CMD")]
    on_event: Option<String>,

    /// The events that run the hook, comma-separated.
    #[arg(long, env = "MANAGER_ALERT_ON", value_name = "LIST", default_value = "barista-lost,queue-slow,shop-unstaffed",
          value_parser = parse_kinds)]
    alert_on: KindList,

    /// A hook still running after this long is killed (with its process group).
    #[arg(long, env = "MANAGER_HOOK_TIMEOUT", default_value = "30", value_name = "SECS", value_parser = cli::parse_positive_duration)]
    hook_timeout: Duration,

    /// At most this many hooks run at once; more wait (at most 64; the oldest waiting is dropped).
    #[arg(long, env = "MANAGER_MAX_HOOKS", default_value = "4", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    max_hooks: u16,

    /// Serve Prometheus metrics at http://ADDR/metrics, the shops' JSON at /api/shops and
    /// /api/shops/NAME, a live read-only page of the shops at /, and /healthz (e.g. 127.0.0.1:9720; default: off). An address that
    /// cannot be used exits 11 at once; one that is not loopback needs --http-auth-file (or
    /// --http-insecure).
    #[arg(long, env = "MANAGER_LISTEN", value_name = "ADDR", value_parser = cli::parse_listen_address)]
    listen: Option<String>,

    #[command(flatten)]
    http: HttpArgs,

    /// Also accept the credential in this file (owner-only; a token or user:password) on
    /// /metrics: a scraper's own, which opens nothing else.
    #[arg(long, env = "MANAGER_METRICS_AUTH_FILE", value_name = "FILE")]
    metrics_auth_file: Option<PathBuf>,

    /// How often to ask each ZooKeeper server for `mntr`.
    #[arg(long, env = "MANAGER_ZOOKEEPER_INTERVAL", default_value = "5", value_name = "SECS",
          value_parser = cli::parse_positive_duration)]
    zookeeper_interval: Duration,
}

/// The kinds `--alert-on` names.
#[derive(Debug, Clone)]
struct KindList(Vec<Kind>);

fn parse_kinds(s: &str) -> Result<KindList, Error> {
    alerts::parse_kinds(s).map(KindList)
}

/// A shop named on the command line: `None` is the root shop.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShopRef(Option<ShopName>);

fn parse_shop(s: &str) -> Result<ShopRef, Error> {
    if s == ROOT_SHOP {
        return Ok(ShopRef(None));
    }
    ShopName::new(s).map(|name| ShopRef(Some(name)))
}

fn main() -> ExitCode {
    let args: Args = cli::parse_args("shop-manager", || ());
    cli::init_logging();
    cli::finish("shop-manager", run(args))
}

/// Where the events go.
enum Sink {
    Stdout(io::Stdout),
    File(std::fs::File, PathBuf),
}

impl Sink {
    fn write(&mut self, event: &Event) {
        let line = format!("{}\n", event.to_json());
        let result = match self {
            Sink::Stdout(out) => out.lock().write_all(line.as_bytes()).and_then(|()| out.lock().flush()),
            Sink::File(file, _) => file.write_all(line.as_bytes()),
        };
        if let Err(e) = result {
            let to = match self {
                Sink::Stdout(_) => "stdout".to_owned(),
                Sink::File(_, path) => path.display().to_string(),
            };
            warn!("cannot write an event to {to}: {e}");
        }
    }
}

fn run(args: Args) -> zk_coffee::Result<u8> {
    // The guard first: a public address unguarded stops us before anything else happens.
    let guard = args.listen.as_deref().map(|a| args.http.guard("--listen", a, args.metrics_auth_file.as_ref())).transpose()?;
    let shutdown = Shutdown::new();
    cli::stop_on_signals(&shutdown, exit::OK)?;
    let mut sink = match &args.events {
        Some(path) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::usage(format!("cannot open --events file {}: {e}", path.display())))?;
            Sink::File(file, path.clone())
        }
        None => Sink::Stdout(io::stdout()),
    };
    let session = args.server.config(None)?;
    let ensemble = args.ensemble.clone().unwrap_or_else(|| session.servers.without_chroot().to_string());
    let scope = if args.shops.is_empty() { Scope::All } else { Scope::Only(args.shops.iter().map(|s| s.0.clone()).collect()) };
    let hooks = match &args.on_event {
        Some(command) => {
            let hooks = HookConfig {
                command: Some(command.clone()),
                kinds: args.alert_on.0.clone(),
                timeout: args.hook_timeout,
                max_running: usize::from(args.max_hooks),
                ..HookConfig::default()
            };
            hooks.check()?;
            Some(hooks)
        }
        None => None,
    };
    let servers = session.servers.clone();
    let config = ManagerConfig { session, ensemble, scope, alert_wait: args.alert_wait, forget_after: args.forget_after, hooks };
    let shared = Shared::new(&config);
    let mut poller_config = PollerConfig::new(&config.ensemble, &servers);
    poller_config.interval = args.zookeeper_interval;
    poller_config.tls = config.session.tls.clone();
    let reporter = Arc::clone(&shared);
    let poller = Poller::start(poller_config, move |event| reporter.report(event))?;
    let server = match (&args.listen, guard) {
        (Some(address), Some(guard)) => {
            let mut registry = Registry::default();
            manager::metrics::register(&mut registry, &shared);
            registry.register_collector(Box::new(poller.collector()));
            metrics::build_info(&mut registry);
            let api = Arc::clone(&shared);
            Some(metrics::serve_metrics(address, Arc::new(registry), guard, move |request| {
                manager::api::route(&api, request).or_else(|| manager::page::route(&api, request))
            })?)
        }
        _ => None,
    };
    let mut on_event = |event: &Event| sink.write(event);
    let mut on_ready = || {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status("following the shops")]);
    };
    let result = manager::run(&config, &shared, &shutdown, &mut on_event, &mut on_ready);
    drop(server);
    poller.stop();
    result?;
    Ok(exit::OK)
}
