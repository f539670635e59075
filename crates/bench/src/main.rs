//! `zk-coffee-bench`: the measurements of issue 7, the shop manager's of issue 13 and the
//! membership's of issue 15, one step per subcommand, each printing one machine-readable line
//! (`STEP key=value ...`) on stdout.
//! `scripts/bench.sh` starts a server, runs every step and prints the table.
//!
//! The raw steps (`pairs`, `watch-rtt`) use the `zookeeper` crate directly, as the shop does;
//! the shop steps run the real `barista`, `customer`, `shop-init` and `shop-manager` binaries
//! (found next to this one unless `--bin-dir` says otherwise), each step under a chroot of its
//! own that it removes afterwards. Children's stderr goes to `--logs`.

mod common;
mod manager;
mod membership;
mod open_loop;
mod raw;
mod shop;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use common::{dir, Env};
use zk_coffee::duration::parse as parse_duration;

#[derive(Parser, Debug)]
#[command(version, about = "Benchmarks the zk-coffee shop against raw ZooKeeper (issue 7)")]
struct Args {
    /// The server, host:port (no chroot).
    #[arg(long = "zk", env = "ZK_SERVERS", default_value = "127.0.0.1:2181", global = true)]
    servers: String,

    /// Where barista, customer, shop-init and shop-manager are; default: next to this binary.
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,

    /// The server's PID (same host): steps then report its CPU time per unit of work.
    #[arg(long, global = true)]
    server_pid: Option<u32>,

    /// Where the children's logs go.
    #[arg(long, global = true, default_value = "/tmp/zk-coffee-bench-logs")]
    logs: PathBuf,

    #[command(subcommand)]
    step: Step,
}

/// How the `recovery` and `restart` steps kill busy baristas.
#[derive(clap::Args, Debug)]
struct Kills {
    /// The baristas' session timeout.
    #[arg(long, default_value = "10", value_parser = duration)]
    session_timeout: Duration,
    /// Orders queued at the victim.
    #[arg(long, default_value_t = 5)]
    orders: usize,
    /// The victim's brew time (it is killed while brewing the first).
    #[arg(long, default_value = "30", value_parser = duration)]
    brew: Duration,
    /// How many victims, one after another.
    #[arg(long, default_value_t = 3)]
    trials: usize,
}

#[derive(Subcommand, Debug)]
enum Step {
    /// Raw create PERSISTENT_SEQUENTIAL + delete pairs per second, T threads on one handle.
    Pairs {
        /// The client crate.
        #[arg(long, value_enum, default_value = "zookeeper")]
        client: raw::Client,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Run this long before counting.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
    },
    /// One session creates (deletes) a node, another's exists watch fires: p50/p99.
    WatchRtt {
        /// The client crate.
        #[arg(long, value_enum, default_value = "zookeeper")]
        client: raw::Client,
        #[arg(long, default_value_t = 1000)]
        samples: usize,
    },
    /// B baristas (processes, zero brew time) and C concurrent customers (load mode).
    Shop {
        #[arg(long, default_value_t = 1)]
        baristas: usize,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        #[arg(long, default_value_t = 1000)]
        orders: u64,
        /// random or shorter-of-two.
        #[arg(long, default_value = "shorter-of-two")]
        choose: String,
        /// How many of the baristas brew slowly.
        #[arg(long, default_value_t = 0)]
        slow: usize,
        /// Their brew time (e.g. 20ms).
        #[arg(long, default_value = "20ms", value_parser = duration)]
        slow_brew: Duration,
        /// How many sessions the customers share (default: one each).
        #[arg(long)]
        sessions: Option<usize>,
    },
    /// N orders placed in one bucket before its barista starts; the time to drain them.
    Backlog {
        #[arg(long, default_value_t = 10_000)]
        orders: usize,
        #[arg(long, default_value_t = 1)]
        baristas: usize,
        /// Run it this many times and report the median run (for short queues).
        #[arg(long, default_value_t = 1)]
        repeat: usize,
    },
    /// Customer visits with N zero-brew baristas on shift vs with one.
    Scale {
        #[arg(long, default_value_t = 100)]
        baristas: usize,
        /// Orders of the one customer, in each case.
        #[arg(long, default_value_t = 300)]
        orders: u64,
    },
    /// VmRSS of an idle barista and of a waiting customer.
    Rss {
        /// How long to let them settle before reading.
        #[arg(long, default_value = "1", value_parser = duration)]
        settle: Duration,
    },
    /// kill -9 of a busy barista: time until its first orphaned order is served; SIGTERM: time
    /// to a clean exit.
    Recovery(Kills),
    /// kill -9 of a busy barista and at once a restart under its name: time from the restart
    /// until the first order of its queue is served (by itself, not adopted).
    Restart(Kills),
    /// The shop step's load with a shop manager following the shop: its CPU per order served
    /// beside the baristas'; then, under the same load, the lag from a sampled order's
    /// deletion to its count in the manager's /metrics.
    Manager {
        #[arg(long, default_value_t = 4)]
        baristas: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Orders of the CPU run.
        #[arg(long, default_value_t = 12_000)]
        orders: u64,
        /// Sampled orders of the lag run.
        #[arg(long, default_value_t = 200)]
        samples: usize,
    },
    /// VmRSS of a shop manager following S shops of B (raw) baristas each, and following one
    /// empty shop.
    ManagerRss {
        #[arg(long, default_value_t = 100)]
        shops: usize,
        #[arg(long, default_value_t = 10)]
        baristas: usize,
        /// Orders waiting in each barista's bucket.
        #[arg(long, default_value_t = 3)]
        orders: usize,
        /// How long to let it settle once it sees every shop, before reading.
        #[arg(long, default_value = "3", value_parser = duration)]
        settle: Duration,
    },
    /// Closed loop (C customers) against open loop (`customer --rate`, at the closed loop's
    /// throughput), then both with every barista frozen (SIGSTOP) for a while mid-run.
    OpenLoop {
        #[arg(long, default_value_t = 1)]
        baristas: usize,
        /// The baristas' brew time.
        #[arg(long, default_value = "5ms", value_parser = duration)]
        brew: Duration,
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// How long each of the four runs places orders.
        #[arg(long, default_value_t = 9)]
        seconds: u64,
        /// How long the baristas are frozen, from a third of the run in.
        #[arg(long, default_value = "2", value_parser = duration)]
        freeze: Duration,
    },
    /// N barista processes coming on shift at once (issue 15): the server's packets per
    /// arriving barista until the fleet is quiet, the time until all are on shift, and from a
    /// kill -9 of one with orders queued to its orphan adopted; with --baseline-bin, the same
    /// with an older build's binaries, in the same line.
    Membership {
        #[arg(long, default_value_t = 100)]
        baristas: usize,
        /// The baristas' session timeout.
        #[arg(long, default_value = "10", value_parser = duration)]
        session_timeout: Duration,
        /// Orders queued at the victim.
        #[arg(long, default_value_t = 5)]
        orders: usize,
        /// Each build's run must end within this (everything it started is killed then).
        #[arg(long, default_value = "300", value_parser = duration)]
        deadline: Duration,
        /// Also run with barista and shop-init from this directory (e.g. a build of main).
        #[arg(long)]
        baseline_bin: Option<PathBuf>,
    },
    /// Prints the table of a run from its lines (`KEY STEP key=value ...`) in FILE.
    Table {
        file: PathBuf,
        /// Only the membership rows (`scripts/bench.sh --membership`).
        #[arg(long)]
        membership: bool,
    },
    /// One thread's calls through the shop's session layer vs the raw client: time and CPU.
    Calls {
        #[arg(long, default_value_t = 2000)]
        calls: usize,
    },
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("zk-coffee-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> common::Result<String> {
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find my own path: {e}"))?
            .parent()
            .ok_or("my own path has no directory")?
            .to_path_buf(),
    };
    let env = Env { servers: args.servers, bin_dir, logs: dir(&args.logs)?, server_pid: args.server_pid };
    match args.step {
        Step::Pairs { client, threads, seconds, warmup } => raw::pairs(&env, client, threads, seconds, warmup),
        Step::WatchRtt { client, samples } => raw::watch_rtt(&env, client, samples),
        Step::Shop { baristas, concurrency, orders, choose, slow, slow_brew, sessions } => {
            shop::shop(&env, &shop::ShopRun { baristas, concurrency, orders, choose, slow, slow_brew, sessions })
        }
        Step::Backlog { orders, baristas, repeat } => shop::backlog(&env, orders, baristas, repeat),
        Step::Scale { baristas, orders } => shop::scale(&env, baristas, orders),
        Step::Rss { settle } => shop::rss(&env, settle),
        Step::Recovery(k) => shop::recovery(&env, k.session_timeout, k.orders, k.brew, k.trials),
        Step::Restart(k) => shop::restart(&env, k.session_timeout, k.orders, k.brew, k.trials),
        Step::Calls { calls } => raw::calls(&env, calls),
        Step::Manager { baristas, concurrency, orders, samples } => {
            manager::manager(&env, baristas, concurrency, orders, samples)
        }
        Step::ManagerRss { shops, baristas, orders, settle } => manager::manager_rss(&env, shops, baristas, orders, settle),
        Step::OpenLoop { baristas, brew, concurrency, seconds, freeze } => {
            open_loop::open_loop(&env, &open_loop::OpenLoopRun { baristas, brew, concurrency, seconds, freeze })
        }
        Step::Membership { baristas, session_timeout, orders, deadline, baseline_bin } => {
            let run = membership::MembershipRun { baristas, session_timeout, orders, deadline, baseline: baseline_bin };
            membership::membership(&env, &run)
        }
        Step::Table { file, membership } => {
            let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let table = if membership { table::render_membership(&text) } else { table::render(&text) };
            table.map(|t| t.trim_end().to_owned())
        }
    }
}
