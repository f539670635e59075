//! `shop-status`: the shop at a glance, for operators.

use std::process::ExitCode;

use clap::Parser;
use zk_coffee::cli::{self, ConnectArgs};
use zk_coffee::error::exit;
use zk_coffee::status;

/// Shows the baristas on shift (with the facts they registered), each queue's length and the
/// age of its oldest order, orphaned buckets and who adopts them, and sales so far per coffee
/// and per barista. Reads only; changes nothing.
#[derive(Parser, Debug)]
#[command(version, after_help = cli::exit_codes_help())]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,

    /// Print one JSON object instead of text.
    #[arg(long, conflicts_with = "on_shift")]
    json: bool,

    /// Every shop of the ensemble at once: the root shop (if initialised) and every
    /// /shops/NAME, each with its status or the error that kept it from being read, then the
    /// totals across shops.
    #[arg(long, conflicts_with_all = ["shop", "on_shift"])]
    all: bool,

    /// Print only the baristas on shift, one a line: the name, a tab, its queue length (for
    /// shell scripts).
    #[arg(long)]
    on_shift: bool,
}

fn main() -> ExitCode {
    let args: Args = cli::parse_args("shop-status", || ());
    cli::init_logging();
    cli::finish("shop-status", run(args))
}

fn run(args: Args) -> zk_coffee::Result<u8> {
    if args.all {
        let all = status::gather_all(&args.connect.config()?)?;
        println!("{}", if args.json { all.json() } else { all.text() });
        return Ok(exit::OK);
    }
    let session = args.connect.connect()?;
    let status = status::gather(&session);
    session.close();
    let status = status?;
    if args.json {
        println!("{}", status.json());
    } else if args.on_shift {
        let lines = status.on_shift_lines();
        if !lines.is_empty() {
            println!("{lines}");
        }
    } else {
        println!("{}", status.text());
    }
    Ok(exit::OK)
}
