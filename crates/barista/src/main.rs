//! `barista`: one barista of the zk-coffee shop, as its own process.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use zk_coffee::barista::{self, BaristaConfig, ShiftEnd};
use zk_coffee::cli::{self, ConnectArgs, EXIT_CODES_HELP};
use zk_coffee::{BaristaName, Shutdown};

/// Registers on shift in /barista_group and serves the orders placed in /orders/{name}, in the
/// order they were placed. SIGINT/SIGTERM: leave the group, finish and serve what is queued,
/// remove the empty bucket, exit 0; a second signal exits at once.
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_CODES_HELP)]
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
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    cli::finish("barista", run(args))
}

fn run(args: Args) -> zk_coffee::Result<u8> {
    let shutdown = Shutdown::new();
    cli::stop_on_signals(&shutdown)?;
    let config = BaristaConfig {
        name: args.name.unwrap_or_else(BaristaName::for_this_process),
        brew_time: args.brew_time,
        leave_after_idle: args.leave_after_idle,
    };
    let session = args.connect.connect()?;
    let end = barista::run(&session, &config, &shutdown);
    session.close();
    // Every way a shift ends on request is a success; an abandoned bucket is adopted later.
    if let ShiftEnd::Abandoned { orders_left } = end? {
        log::warn!("left {orders_left} orders in my bucket");
    }
    Ok(zk_coffee::error::exit::OK)
}
