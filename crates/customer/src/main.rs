//! `customer`: one customer of the zk-coffee shop, as its own process.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use zk_coffee::cli::{self, ConnectArgs, EXIT_CODES_HELP};
use zk_coffee::customer::{self, CustomerConfig, Outcome};
use zk_coffee::error::exit;
use zk_coffee::{BaristaName, Menu, Shutdown};

/// Orders one coffee from a barista on shift and waits to be served. Prints one line on
/// stdout: `served order=PATH coffee=NAME barista=NAME wait_ms=N`, or the same starting with
/// `gave-up` when patience ran out (the order is then withdrawn), or `no-barista exit=4`, or
/// `failed exit=N` (the error itself goes to stderr). SIGINT/SIGTERM withdraws the order and
/// exits as "gave up".
#[derive(Parser, Debug)]
#[command(version, after_help = EXIT_CODES_HELP)]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,

    /// Coffee to order (tesora, swisswater, jacob, sogood); default: one at random.
    #[arg(long, env = "CUSTOMER_COFFEE")]
    coffee: Option<String>,

    /// Order from this barista only; default: one on shift at random.
    #[arg(long, env = "CUSTOMER_BARISTA")]
    barista: Option<BaristaName>,

    /// How long to wait to be served before withdrawing the order (seconds, or e.g. 500ms).
    #[arg(long, env = "CUSTOMER_PATIENCE", default_value = "10", value_name = "SECS", value_parser = cli::parse_positive_duration)]
    patience: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let result = run(args);
    if let Err(e) = &result {
        println!("{}", customer::failure_line(e));
    }
    cli::finish("customer", result)
}

fn run(args: Args) -> zk_coffee::Result<u8> {
    let menu = Menu::default();
    // Check the coffee before touching ZooKeeper.
    let coffee = args.coffee.map(|c| menu.check(&c)).transpose()?;
    let shutdown = Shutdown::new();
    cli::stop_on_signals(&shutdown)?;
    let config = CustomerConfig { coffee, barista: args.barista, patience: args.patience, menu };
    let session = args.connect.connect()?;
    let outcome = customer::visit(&session, &config, &shutdown);
    session.close();
    let outcome = outcome?;
    println!("{}", outcome.line());
    Ok(match outcome {
        Outcome::Served(_) => exit::OK,
        Outcome::GaveUp(_) => exit::GAVE_UP,
    })
}
