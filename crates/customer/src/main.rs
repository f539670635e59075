//! `customer`: one customer of the zk-coffee shop as its own process, or many at once (load).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::{ArgGroup, Parser};
use zk_coffee::cli::{self, ConnectArgs};
use zk_coffee::customer::{self, Choice, CustomerConfig, Outcome};
use zk_coffee::error::exit;
use zk_coffee::load::{self, LoadConfig, Summary};
use zk_coffee::session::{Credentials, SessionConfig};
use zk_coffee::{menu, BaristaName, Session, Shutdown};

/// Orders one coffee from a barista on shift and waits to be served. Prints one line on
/// stdout: `served order=PATH coffee=NAME barista=NAME wait_ms=N`, or the same starting with
/// `gave-up` when patience ran out (the order is then withdrawn), or `no-barista exit=4`,
/// `shop-full exit=9` or `failed exit=N` (the error itself goes to stderr). SIGINT/SIGTERM
/// withdraws the order and exits as "gave up".
///
/// With --orders or --duration it is a load generator instead: closed loop, --concurrency
/// customers, each with its own session (or sharing --sessions), order one coffee after
/// another; open loop, --rate R, orders become due R times a second whatever the shop does
/// (latency counted from when each was due). It prints a summary for people and a last line
/// `summary served=... throughput=... p50_ms=...` for scripts, and exits 0 only if every order
/// was served (1 otherwise). --summary-json FILE also writes the summary with its latency
/// histogram; --merge-summaries FILE... adds such files up into one summary.
#[derive(Parser, Debug)]
#[command(version, after_help = cli::exit_codes_help())]
#[command(group(ArgGroup::new("amount").args(["orders", "duration"]).multiple(true)))]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,

    /// Coffee to order, from the shop's menu (by default tesora, swisswater, jacob, sogood);
    /// default: one at random.
    #[arg(long, env = "CUSTOMER_COFFEE")]
    coffee: Option<String>,

    /// Order from this barista only; default: choose among those on shift.
    #[arg(long, env = "CUSTOMER_BARISTA")]
    barista: Option<BaristaName>,

    /// How to choose a barista: shorter-of-two (the shorter queue of two random picks) or
    /// random (as the original program did).
    #[arg(long, env = "CUSTOMER_CHOOSE", default_value = "shorter-of-two", value_name = "HOW")]
    choose: Choice,

    /// Do not join a queue of this many orders or more; if every queue is that long, report
    /// the shop full (exit 9). Default: the shop's setting, else 10000.
    #[arg(long, env = "CUSTOMER_MAX_QUEUE", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_queue: Option<u32>,

    /// How long to wait to be served before withdrawing the order (seconds, or e.g. 500ms).
    #[arg(long, env = "CUSTOMER_PATIENCE", default_value = "10", value_name = "SECS", value_parser = cli::parse_positive_duration)]
    patience: Duration,

    /// Load mode: place this many orders in total.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    orders: Option<u64>,

    /// Load mode: place orders for this long.
    #[arg(long, value_name = "SECS", value_parser = cli::parse_positive_duration)]
    duration: Option<Duration>,

    /// Load mode, closed loop: how many customers order at the same time, each with its own
    /// session, each ordering again as soon as it is served.
    #[arg(long, default_value_t = 1, value_name = "C", value_parser = clap::value_parser!(u16).range(1..=1000))]
    concurrency: u16,

    /// Load mode: spread the customers over this many ZooKeeper sessions (default: closed loop,
    /// one each, as separate processes would have; open loop, 4); fewer, shared sessions ask
    /// less of the server.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    sessions: Option<u16>,

    /// Load mode, open loop: orders become due this many times a second (e.g. 50 or 0.5),
    /// whatever the shop does; each order's latency counts from when it was due.
    #[arg(long, value_name = "R", requires = "amount", conflicts_with = "concurrency", value_parser = load::parse_rate)]
    rate: Option<f64>,

    /// Open loop: at most this many orders placed and not yet done at once; an order due while
    /// that many are waits for a place (keeping its due time), and the summary counts it as
    /// `capped`.
    #[arg(long, value_name = "N", requires = "rate", default_value_t = load::DEFAULT_MAX_OUTSTANDING as u32,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_outstanding: u32,

    /// Load mode: the process's customers share one watch on all of /orders (which hears of
    /// every order in the shop: for one load process alone) instead of each watching its own
    /// order.
    #[arg(long, requires = "amount")]
    watch_all_orders: bool,

    /// Also write the summary, with its latency histogram, to FILE as one line of JSON (README,
    /// "The summary file"); for one visit too, as a summary of that visit.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,

    /// Connect to nothing: add up these summary files (of runs made at the same time, e.g. on
    /// several hosts) and print the merged summary, percentiles from the added histograms.
    #[arg(long, value_name = "FILE", num_args = 1.., conflicts_with_all = ["amount", "rate", "coffee", "barista"])]
    merge_summaries: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let args: Args = cli::parse_args("customer", || println!("failed exit={}", exit::USAGE));
    cli::init_logging();
    if !args.merge_summaries.is_empty() {
        let result = merge(&args);
        if let Err(e) = &result {
            println!("{}", customer::failure_line(e));
        }
        return cli::finish("customer", result);
    }
    let load_mode = args.orders.is_some() || args.duration.is_some();
    let result = if load_mode { run_load(args) } else { run(args) };
    if let (Err(e), false) = (&result, load_mode) {
        println!("{}", customer::failure_line(e));
    }
    cli::finish("customer", result)
}

fn config(args: &Args) -> zk_coffee::Result<CustomerConfig> {
    // A name that cannot be a coffee is refused before touching ZooKeeper; whether the shop
    // serves it is for its menu to say.
    let coffee = args.coffee.as_deref().map(menu::check_name).transpose()?.map(str::to_owned);
    Ok(CustomerConfig {
        coffee,
        barista: args.barista.clone(),
        patience: args.patience,
        choice: args.choose,
        max_queue: args.max_queue,
    })
}

/// The session settings, with an identity of this process's own next to the customers'
/// credentials: in a secured shop, only it may withdraw the orders this process places.
fn session_config(args: &Args) -> zk_coffee::Result<SessionConfig> {
    let mut config = args.connect.config()?;
    config.identity = Some(Credentials::random(&format!("customer-{}", std::process::id())));
    Ok(config)
}

fn run(args: Args) -> zk_coffee::Result<u8> {
    let config = config(&args)?;
    let shutdown = Shutdown::new();
    cli::stop_on_signals(&shutdown, exit::GAVE_UP)?;
    let (wall_start, started) = (SystemTime::now(), Instant::now());
    let outcome = session_config(&args).and_then(Session::connect).and_then(|session| {
        let outcome = customer::visit(&session, &config, &shutdown);
        session.close();
        outcome
    });
    if let Some(path) = &args.summary_json {
        // One visit's summary, so that a script running one process per order can merge them.
        let mut summary = Summary::default();
        summary.count(&outcome, None);
        summary.elapsed = started.elapsed();
        summary.span = Some((wall_start, wall_start + summary.elapsed));
        summary.write_json(path)?;
    }
    let outcome = outcome?;
    println!("{}", outcome.line());
    Ok(match outcome {
        Outcome::Served(_) => exit::OK,
        Outcome::GaveUp(_) => exit::GAVE_UP,
        Outcome::Rejected(..) => exit::REJECTED,
    })
}

fn run_load(args: Args) -> zk_coffee::Result<u8> {
    let load = LoadConfig {
        orders: args.orders,
        duration: args.duration,
        concurrency: usize::from(args.concurrency),
        sessions: args.sessions.map(usize::from),
        rate: args.rate,
        max_outstanding: args.max_outstanding as usize,
        watch_all_orders: args.watch_all_orders,
        customer: config(&args)?,
    };
    let shutdown = Shutdown::new();
    cli::stop_on_signals(&shutdown, exit::GAVE_UP)?;
    let summary = load::run(&session_config(&args)?, &load, &shutdown)?;
    print_summary(&summary, args.summary_json.as_deref())
}

/// `--merge-summaries FILE...`.
fn merge(args: &Args) -> zk_coffee::Result<u8> {
    let summaries = args.merge_summaries.iter().map(|f| Summary::read_json(f)).collect::<zk_coffee::Result<Vec<_>>>()?;
    print_summary(&Summary::merge(&summaries)?, args.summary_json.as_deref())
}

/// The report on stderr, the `summary` line on stdout, the file if asked; exit 0 only if
/// every order was served.
fn print_summary(summary: &Summary, json: Option<&std::path::Path>) -> zk_coffee::Result<u8> {
    if let Some(path) = json {
        summary.write_json(path)?;
    }
    eprintln!("{}", summary.report());
    println!("{}", summary.line());
    Ok(if summary.all_served() { exit::OK } else { exit::FAILURE })
}
