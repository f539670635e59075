//! `barista`: one barista of the zk-coffee shop, as its own process.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use zk_coffee::barista::{self, BaristaConfig, Milestone, ShiftEnd};
use zk_coffee::cli::{self, ConnectArgs, HttpArgs};
use zk_coffee::metrics::{self, Guard, HttpServer, Registry};
use zk_coffee::{BaristaName, Shutdown};

/// Registers on shift in /barista_group and serves the orders placed in /orders/{name}, in the
/// order they were placed, and adopts the orphaned buckets of baristas that died.
/// SIGINT/SIGTERM: leave the group, finish the order in hand, hand the queue over to the other
/// baristas (or serve it for up to --drain-timeout when nobody else is on shift), remove the
/// empty bucket, exit 0. A second signal exits at once; queued orders are adopted later.
#[derive(Parser, Debug)]
#[command(version, after_help = cli::exit_codes_help())]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,

    /// Barista name (letters, digits, '_', '-', '.'); default {hostname}_{pid}.
    #[arg(long, env = "BARISTA_NAME")]
    name: Option<BaristaName>,

    /// How long one coffee takes (seconds, or e.g. 500ms).
    #[arg(long, env = "BARISTA_BREW_TIME", default_value = "2", value_name = "SECS", value_parser = cli::parse_duration)]
    brew_time: Duration,

    /// Leave the shop after this long without an order (the original demo used 10).
    #[arg(long, env = "BARISTA_LEAVE_AFTER_IDLE", value_name = "SECS", value_parser = cli::parse_positive_duration)]
    leave_after_idle: Option<Duration>,

    /// On leaving with orders queued and nobody else on shift, serve them for at most this
    /// long; the rest wait in the bucket for the next barista to adopt.
    #[arg(long, env = "BARISTA_DRAIN_TIMEOUT", default_value = "30", value_name = "SECS", value_parser = cli::parse_duration)]
    drain_timeout: Duration,

    /// This boot's id, used only when /proc/sys/kernel/random/boot_id cannot be read (the
    /// systemd unit hides /proc/sys and passes %B). With it, a barista restarted on the same
    /// host takes over the membership node of its dead predecessor at once.
    #[arg(long, env = "BARISTA_BOOT_ID", value_name = "ID", value_parser = parse_boot_id)]
    boot_id: Option<String>,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9721; default: off).
    /// Several baristas on one host need one port each. An address that cannot be used exits
    /// 11 before the barista registers; one that is not loopback needs --http-auth-file (or
    /// --http-insecure).
    #[arg(long, env = "BARISTA_METRICS_LISTEN", value_name = "ADDR", value_parser = cli::parse_listen_address)]
    metrics_listen: Option<String>,

    #[command(flatten)]
    http: HttpArgs,
}

fn parse_boot_id(s: &str) -> Result<String, String> {
    zk_coffee::liveness::normalise_boot_id(s).ok_or_else(|| format!("{s:?} is not a boot id (32 hex digits, dashes allowed)"))
}

fn main() -> ExitCode {
    let args: Args = cli::parse_args("barista", || ());
    cli::init_logging();
    cli::finish("barista", run(args))
}

fn run(args: Args) -> zk_coffee::Result<u8> {
    let shutdown = Shutdown::new();
    cli::stop_on_signals(&shutdown, zk_coffee::error::exit::OK)?;
    let config = BaristaConfig {
        name: args.name.unwrap_or_else(BaristaName::for_this_process),
        brew_time: args.brew_time,
        leave_after_idle: args.leave_after_idle,
        drain_timeout: args.drain_timeout,
        boot_id: args.boot_id,
    };
    let metrics = barista::Metrics::new();
    // Listening first: an address that cannot be used stops us before we touch ZooKeeper.
    let server = match args.metrics_listen.as_deref() {
        Some(address) => Some(serve(address, args.http.guard("--metrics-listen", address, None)?, &metrics)?),
        None => None,
    };
    let session = args.connect.connect()?;
    let end = barista::run(&session, &config, &shutdown, &tell_systemd, &metrics);
    session.close();
    drop(server);
    // Leaving on request and leaving when idle are both a clean end of the shift.
    let _: ShiftEnd = end?;
    Ok(zk_coffee::error::exit::OK)
}

/// Serves the barista's metrics (with the build's and the process's) on `address`.
fn serve(address: &str, guard: Guard, metrics: &barista::Metrics) -> zk_coffee::Result<HttpServer> {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    metrics::build_info(&mut registry);
    metrics::serve_metrics(address, Arc::new(registry), guard, |_| None)
}

/// Tells systemd (when started as a `Type=notify` service, i.e. `NOTIFY_SOCKET` is set) that
/// the barista is ready once it is on shift, and when it starts leaving. Without systemd this
/// does nothing.
fn tell_systemd(milestone: Milestone) {
    use sd_notify::NotifyState;
    let (state, status) = match &milestone {
        Milestone::OnShift { name, generation } => (NotifyState::Ready, format!("on shift as {name} (session {generation})")),
        Milestone::Leaving => (NotifyState::Stopping, "leaving: handing over the queue".to_owned()),
    };
    // A failure to notify must not stop the barista; systemd then reports its own timeout.
    let _ = sd_notify::notify(&[state, NotifyState::Status(&status)]);
}
