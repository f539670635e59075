//! `shop-init`: creates the shop's top-level nodes; safe to run any number of times.

use std::process::ExitCode;

use clap::Parser;
use zk_coffee::cli::{self, ConnectArgs, EXIT_CODES_HELP};
use zk_coffee::error::exit;
use zk_coffee::shop;

/// Creates /barista_group and /orders (persistent, data "0") where they are missing, and the
/// chroot of the connect string if it has one. Prints what it created and what it found.
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
}

fn main() -> ExitCode {
    let args: Args = cli::parse_args("shop-init", || ());
    cli::init_logging();
    cli::finish("shop-init", run(args))
}

fn run(args: Args) -> zk_coffee::Result<u8> {
    shop::ensure_chroot(&args.connect.config())?;
    let session = args.connect.connect()?;
    let report = shop::init(&session);
    session.close();
    let report = report?;
    for path in &report.created {
        println!("created {path}");
    }
    for path in &report.found {
        println!("found {path}");
    }
    Ok(exit::OK)
}
