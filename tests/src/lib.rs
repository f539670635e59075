//! Test harness for the zk-coffee integration tests.
//!
//! Modelled on ripgrep's test utilities: small guards and builders that make each test read like
//! the scene it checks, and that clean up after themselves whatever happens. One module per
//! concern: [`command`] (the binaries as commands), [`process`] (running roles and their
//! output), [`logs`] (the one reader of what roles print), [`server`] and [`ensemble`]
//! (ZooKeeper servers), [`proxy`] (network faults), [`procfs`] (what `/proc` tells of a
//! process), [`audit`] (the "nothing lost" check), [`dir`] (temporary directories), [`http`]
//! (asking a role over HTTP, and OpenMetrics pages parsed by the official Prometheus parser and
//! linted by promtool), [`prometheus`] (a real Prometheus server scraping the roles);
//! [`fault`] gathers what the fault tests use. The commonest items are re-exported here.
//!
//! - [`ZkServer`]: a private, real ZooKeeper server (Debian's 3.8, started by `scripts/zk.sh`) on
//!   a free port with its own data directory. It is stopped when the guard drops, also when the
//!   test panics, and by a detached watchdog when the test process is killed (even by SIGKILL).
//!   At most [`max_servers`] run at once in one test process.
//! - [`Role`] and [`TestCommand`]: run one of the workspace's binaries (`barista`, `customer`,
//!   `shop-init`) with `--zk` and arguments, either to completion ([`TestCommand::run`]) or in
//!   the background ([`TestCommand::spawn`] → [`Proc`]).
//! - [`Proc`]: a running role. Its stdout and stderr lines are collected by reader threads; it
//!   is killed when the guard drops. A test can only *wait* for what a running role prints
//!   ([`Proc::wait_log`] and the waits beside it, each with a deadline): a role logs after it
//!   acts, so reading its output once after waiting for an effect in ZooKeeper would race the
//!   line that reports it. What did *not* happen, or how often something was said, is checked
//!   on the [`Output`] once the role has exited ([`Proc::stop`]), with [`Mark`]s for windows.
//! - [`Output`]: what a finished role printed and how it exited: complete, so read it freely.
//! - [`Dir`]: a unique temporary directory, removed on drop.
//! - [`wait_until`]: wait for a condition with a deadline (no bare sleeps in tests).
//! - [`webdriver::Browser`]: a headless chromium driven over WebDriver, for the manager's page.
//! - [`exit`]: the binaries' documented exit codes, the contract the tests check.
//!
//! The binaries are not built by `cargo test -p zk-coffee-tests` (a package cannot depend on
//! another package's binaries): run `cargo build --workspace --bins` first, as
//! `scripts/test.sh` does. The harness refuses binaries that are missing or older than the
//! sources under `crates/`, so a test never silently checks stale code.
//!
//! Environment knobs:
//! - `ZK_COFFEE_TESTS_MAX_SERVERS`: how many servers may run at once (default 3).
//! - `ZK_COFFEE_TESTS_KEEP=1`: keep the temporary directories of [`Dir`] (not the servers').

pub mod audit;
pub mod command;
pub mod dir;
pub mod ensemble;
pub mod events;
pub mod fault;
pub mod http;
pub mod logcapture;
pub mod logs;
pub mod process;
pub mod procfs;
pub mod prometheus;
pub mod proxy;
pub mod server;
pub mod webdriver;

pub use command::*;
pub use dir::*;
pub use events::*;
pub use logs::*;
pub use process::*;
pub use server::*;

use std::time::Duration;

/// The exit codes documented in every binary's `--help`, from the library's one table
/// (`zk_coffee::error::exit`), as the `i32`s `ExitStatus::code` reports.
///
/// They are the contract with scripts and operators: `integration/docs.rs` checks them
/// against README.md's table, so a change on the product side shows up as a failing test.
pub use zk_coffee::error::exit::status as exit;

/// The seed program's menu, in menu order.
pub const MENU: [&str; 4] = ["tesora", "swisswater", "jacob", "sogood"];

/// A generous bound for a role that should finish promptly (a served customer, a barista
/// leaving on SIGTERM). Only exceeded when something hangs.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A generous bound for a log line that should appear promptly.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(20);

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn receipts_parse() {
        let r = Receipt::parse("served order=/orders/b_1/coffee0000000012 coffee=jacob barista=b_1 wait_ms=207");
        assert_eq!(r.outcome, "served");
        assert_eq!(r.order_name(), "coffee0000000012");
        assert_eq!(r.sequence(), 12);
        assert_eq!((r.coffee.as_str(), r.barista.as_str(), r.wait_ms), ("jacob", "b_1", 207));
    }

    #[test]
    #[should_panic(expected = "not a customer result line")]
    fn receipts_refuse_other_lines() {
        Receipt::parse("served order=/orders/b/coffee0000000001 coffee=jacob");
    }

    #[test]
    fn barista_events_are_read_from_log_lines() {
        let log: Vec<String> = [
            "[2026-11-25T13:41:12Z INFO ] barista b1 is on shift (session 1)",
            "[2026-11-25T13:41:13Z INFO ] making jacob for coffee0000000000",
            "[2026-11-25T13:41:13Z INFO ] served jacob (coffee0000000000)",
            "[2026-11-25T13:41:13Z INFO ] served 2 orders",
            "[2026-11-25T13:41:14Z INFO ] making sogood for coffee0000000007 (adopted from b_2)",
            "[2026-11-25T13:41:14Z INFO ] served sogood (coffee0000000007) (adopted from b_2)",
        ]
        .map(String::from)
        .into();
        let event = |kind, coffee: &str, order: &str, from: Option<&str>| BaristaEvent {
            kind,
            coffee: coffee.into(),
            order: order.into(),
            adopted_from: from.map(String::from),
        };
        assert_eq!(
            barista_events(&log),
            [
                event(Brew::Making, "jacob", "coffee0000000000", None),
                event(Brew::Served, "jacob", "coffee0000000000", None),
                event(Brew::Making, "sogood", "coffee0000000007", Some("b_2")),
                event(Brew::Served, "sogood", "coffee0000000007", Some("b_2")),
            ]
        );
        assert_eq!(served_orders(&log), ["coffee0000000000", "coffee0000000007"]);
    }

    /// The waits look at what was printed before they began as well as after, and a wait for
    /// a line that never comes ends when the role closes its output, not at the deadline.
    /// (Runs the built `barista --help`: no server needed.)
    #[test]
    fn waits_see_the_whole_output_and_end_with_it() {
        let help = TestCommand::new(Role::Barista).arg("--help").spawn();
        let usage = help.wait_stdout("the usage line", LOG_TIMEOUT, |out| out.iter().find(|l| l.starts_with("Usage:")).cloned());
        assert_eq!(usage, "Usage: barista [OPTIONS]");
        let mark = help.mark();
        let out = help.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        assert!(out.stdout.len() > 10, "{out}");
        assert!(out.stderr_since(mark).is_empty() && out.stderr_between(Mark::START, mark).is_empty(), "{out}");

        let help = TestCommand::new(Role::Barista).arg("--help").spawn();
        let started = Instant::now();
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            help.wait_for_stderr("a line barista --help never prints", Duration::from_secs(60))
        }));
        let message = *waited.expect_err("the wait fails").downcast::<String>().expect("a panic message");
        assert!(message.contains("it closed its output"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(30), "the wait ran to its deadline");
    }

    #[test]
    fn order_sequences() {
        assert_eq!(order_sequence("coffee0000000042"), Some(42));
        assert_eq!(order_sequence("coffee42"), None);
        assert_eq!(order_sequence("tea0000000042"), None);
    }

    #[test]
    fn unique_names_differ() {
        assert_ne!(unique_name("a/b"), unique_name("a/b"));
        assert!(!unique_name("a/b").contains('/'));
    }

    #[test]
    fn dirs_are_removed_on_drop() {
        let dir = Dir::new("dir-test");
        std::fs::write(dir.join("f"), b"x").unwrap();
        let path = dir.path().to_path_buf();
        assert!(path.is_dir());
        drop(dir);
        if std::env::var_os("ZK_COFFEE_TESTS_KEEP").is_none() {
            assert!(!path.exists());
        }
    }
}
