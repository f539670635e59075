//! Argument validation for every binary (issue 6): invalid names, shop names, durations,
//! counts, menus and connect strings, given as flags or in the environment, are each refused
//! with exit 2 and one line on stderr, before anything is sent to ZooKeeper (the roles are
//! pointed at a closed port with a 30 s connect timeout, and must finish within seconds).
//!
//! `errors.rs` has the first cases of this kind (barista names, connect strings, durations);
//! this covers the rest, and shop-status.

use std::time::Duration;

use zk_coffee_tests::*;

use crate::security::{os, run_shop_status_env, secret_file};

/// Usage errors are found before any connection is made: they must finish well within this.
const USAGE_BOUND: Duration = Duration::from_secs(5);

/// One of the four binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bin {
    Barista,
    Customer,
    ShopInit,
    ShopStatus,
}

const ALL: [Bin; 4] = [Bin::Barista, Bin::Customer, Bin::ShopInit, Bin::ShopStatus];

impl Bin {
    fn name(self) -> &'static str {
        match self {
            Bin::Barista => "barista",
            Bin::Customer => "customer",
            Bin::ShopInit => "shop-init",
            Bin::ShopStatus => "shop-status",
        }
    }

    /// Runs the binary with `--zk ZK --connect-timeout 30 ARGS` and `env` (without the
    /// connect timeout when ARGS set one).
    fn run(self, zk: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let timeout: &[&str] =
            if args.iter().any(|a| a.starts_with("--connect-timeout")) { &[] } else { &["--connect-timeout", "30"] };
        let role = match self {
            Bin::Barista => Role::Barista,
            Bin::Customer => Role::Customer,
            Bin::ShopInit => Role::ShopInit,
            Bin::ShopStatus => {
                let mut all = vec![os("--zk"), os(zk)];
                all.extend(timeout.iter().map(|a| os(a)));
                all.extend(args.iter().map(|a| os(a)));
                return run_shop_status_env(&all, env);
            }
        };
        let mut cmd = TestCommand::new(role).zk(zk).args(timeout).args(args);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.run(EXIT_TIMEOUT)
    }
}

/// A connect string nothing listens on.
fn nowhere() -> String {
    format!("127.0.0.1:{}", closed_port())
}

/// Panics unless `out` is a usage error: exit 2 within [`USAGE_BOUND`], stderr exactly one
/// line (`{program}: error: ...`) holding every one of `needles`, and for the customer its
/// `failed exit=2` line on stdout.
fn assert_usage(bin: Bin, out: &Output, needles: &[&str]) {
    out.assert_code(exit::USAGE).assert_within(USAGE_BOUND);
    let line = out.error_line(needles);
    assert!(line.starts_with(&format!("{}: error: ", bin.name())), "{line:?}");
    assert_eq!(out.stderr.len(), 1, "one line on stderr, nothing else\n{out}");
    if bin == Bin::Customer {
        out.assert_failure_line();
    } else {
        assert!(out.stdout.is_empty(), "{out}");
    }
}

/// Names that cannot be a barista's or a shop's, with what the error says about each.
fn bad_names() -> Vec<(String, &'static str)> {
    vec![
        (String::new(), "it is empty"),
        ("/".into(), "'/' is not allowed"),
        ("a/b".into(), "'/' is not allowed"),
        (".".into(), "reserved"),
        ("..".into(), "reserved"),
        ("zookeeper".into(), "reserved"),
        ("x".repeat(129), "longer than 128 bytes"),
        ("a b".into(), "' ' is not allowed"),
        ("caf\u{e9}".into(), "is not allowed"),
    ]
}

#[test]
fn invalid_shop_names_exit_2_on_every_binary() {
    let zk = nowhere();
    for bin in ALL {
        for (name, why) in bad_names() {
            let out = bin.run(&zk, &["--shop", &name], &[]);
            assert_usage(bin, &out, &["--shop", "invalid shop name", why]);
            let out = bin.run(&zk, &[], &[("ZK_SHOP", &name)]);
            assert_usage(bin, &out, &["invalid shop name", why]);
        }
    }
}

#[test]
fn invalid_barista_names_exit_2_as_flags_and_in_the_environment() {
    let zk = nowhere();
    for (name, why) in bad_names() {
        let out = Bin::Barista.run(&zk, &["--name", &name], &[]);
        assert_usage(Bin::Barista, &out, &["--name", "invalid barista name", why]);
        let out = Bin::Barista.run(&zk, &[], &[("BARISTA_NAME", &name)]);
        assert_usage(Bin::Barista, &out, &["invalid barista name", why]);
        let out = Bin::Customer.run(&zk, &["--barista", &name], &[]);
        assert_usage(Bin::Customer, &out, &["--barista", "invalid barista name", why]);
        let out = Bin::Customer.run(&zk, &[], &[("CUSTOMER_BARISTA", &name)]);
        assert_usage(Bin::Customer, &out, &["invalid barista name", why]);
    }
    // 128 bytes is the longest name: accepted, so the barista goes on to connect (and finds
    // nobody there).
    let longest = "y".repeat(128);
    let out =
        TestCommand::new(Role::Barista).zk(nowhere()).args(["--connect-timeout", "0.5", "--name", &longest]).run(EXIT_TIMEOUT);
    out.assert_code(exit::UNREACHABLE);
}

#[test]
fn malformed_connect_strings_and_timeouts_exit_2_on_every_binary() {
    let zk = nowhere();
    for bin in ALL {
        for bad in ["", "h:port", "h:0", "h:70000", "a:1,,b:2", "h:1/x/", "h:1//x", ":2181", "a b:1", ","] {
            let out = bin.run(bad, &[], &[]);
            assert_usage(bin, &out, &["--zk", "invalid ZooKeeper connect string"]);
        }
        // The environment is checked the same way (with no --zk given).
        let out = match bin {
            Bin::Barista => TestCommand::new(Role::Barista).env("ZK_SERVERS", "h:0").run(EXIT_TIMEOUT),
            Bin::Customer => TestCommand::new(Role::Customer).env("ZK_SERVERS", "h:0").run(EXIT_TIMEOUT),
            Bin::ShopInit => TestCommand::new(Role::ShopInit).env("ZK_SERVERS", "h:0").run(EXIT_TIMEOUT),
            Bin::ShopStatus => run_shop_status_env(&[], &[("ZK_SERVERS", "h:0")]),
        };
        assert_usage(bin, &out, &["invalid ZooKeeper connect string", "h:0"]);
        for (flag, value, needle) in [
            ("--session-timeout", "0", "between 100ms and 3600s"),
            ("--session-timeout", "50ms", "between 100ms and 3600s"),
            ("--session-timeout", "2h", "invalid duration"),
            ("--session-timeout", "abc", "invalid duration"),
            ("--connect-timeout", "0", "must be more than zero"),
            ("--connect-timeout", "1e3", "invalid duration"),
            ("--connect-timeout", "90000", "longer than a day"),
        ] {
            let arg = format!("{flag}={value}");
            let out = bin.run(&zk, &[&arg], &[]);
            assert_usage(bin, &out, &[flag, needle]);
        }
        let out = bin.run(&zk, &[], &[("ZK_SESSION_TIMEOUT", "soon")]);
        assert_usage(bin, &out, &["invalid duration"]);
        let out = bin.run(&zk, &["--no-such-flag"], &[]);
        assert_usage(bin, &out, &["--no-such-flag"]);
    }
}

#[test]
fn barista_durations_exit_2() {
    let zk = nowhere();
    for (flag, value, needle) in [
        ("--brew-time", "abc", "invalid duration"),
        ("--brew-time", "-1", "invalid duration"),
        ("--brew-time", "90000", "longer than a day"),
        ("--brew-time", "1.5.2", "invalid duration"),
        ("--leave-after-idle", "0", "must be more than zero"),
        ("--leave-after-idle", "forever", "invalid duration"),
        ("--drain-timeout", "30m", "invalid duration"),
    ] {
        let arg = format!("{flag}={value}");
        let out = Bin::Barista.run(&zk, &[&arg], &[]);
        assert_usage(Bin::Barista, &out, &[flag, needle]);
    }
    for (key, value) in [("BARISTA_BREW_TIME", "fast"), ("BARISTA_LEAVE_AFTER_IDLE", "0"), ("BARISTA_DRAIN_TIMEOUT", "-5")] {
        let out = Bin::Barista.run(&zk, &[], &[(key, value)]);
        assert_usage(Bin::Barista, &out, &[value]);
    }
}

#[test]
fn customer_counts_durations_and_coffees_exit_2() {
    let zk = nowhere();
    let long_coffee = "c".repeat(65);
    for (args, needles) in [
        (vec!["--orders", "0"], vec!["--orders", "0"]),
        (vec!["--orders=-3"], vec!["--orders"]),
        (vec!["--orders", "many"], vec!["--orders", "many"]),
        (vec!["--concurrency", "0"], vec!["--concurrency", "0"]),
        (vec!["--concurrency", "1001"], vec!["--concurrency", "1001"]),
        (vec!["--orders", "5", "--concurrency", "0"], vec!["--concurrency"]),
        (vec!["--orders", "5", "--sessions", "0"], vec!["--sessions", "0"]),
        (vec!["--sessions", "1001"], vec!["--sessions", "1001"]),
        (vec!["--sessions", "few"], vec!["--sessions", "few"]),
        (vec!["--max-queue", "0"], vec!["--max-queue", "0"]),
        (vec!["--max-queue", "4294967296"], vec!["--max-queue"]),
        (vec!["--duration", "0"], vec!["--duration", "must be more than zero"]),
        (vec!["--duration", "1h"], vec!["--duration", "invalid duration"]),
        (vec!["--patience", "0"], vec!["--patience", "must be more than zero"]),
        (vec!["--patience", "90000"], vec!["--patience", "longer than a day"]),
        (vec!["--choose", "fastest"], vec!["--choose", "unknown choice", "shorter-of-two"]),
        (vec!["--coffee", ""], vec!["invalid coffee name"]),
        (vec!["--coffee", &long_coffee], vec!["invalid coffee name"]),
        (vec!["--coffee", "flat white"], vec!["invalid coffee name"]),
        (vec!["--rate", "0", "--orders", "5"], vec!["--rate", "must be above 0"]),
        (vec!["--rate", "inf", "--duration", "5"], vec!["--rate", "must be above 0"]),
        (vec!["--rate", "fast", "--orders", "5"], vec!["--rate", "not a number"]),
        (vec!["--rate", "5"], vec!["--orders", "--duration"]),
        (vec!["--rate", "5", "--orders", "5", "--concurrency", "2"], vec!["--concurrency", "cannot be used with"]),
        (vec!["--orders", "5", "--max-outstanding", "5"], vec!["--rate"]),
        (vec!["--rate", "5", "--orders", "5", "--max-outstanding", "0"], vec!["--max-outstanding", "0"]),
        (vec!["--merge-summaries", "a.json", "--orders", "3"], vec!["--merge-summaries", "cannot be used with"]),
        (vec!["--merge-summaries", "/nonexistent/a.json"], vec!["cannot read the summary file /nonexistent/a.json"]),
    ] {
        let out = Bin::Customer.run(&zk, &args, &[]);
        assert_usage(Bin::Customer, &out, &needles);
    }
    for (key, value) in
        [("CUSTOMER_PATIENCE", "0"), ("CUSTOMER_MAX_QUEUE", "0"), ("CUSTOMER_CHOOSE", "best"), ("CUSTOMER_COFFEE", "x=y")]
    {
        let out = Bin::Customer.run(&zk, &[], &[(key, value)]);
        assert_usage(Bin::Customer, &out, &[value]);
    }
}

#[test]
fn shop_init_menus_counts_and_secure_without_credentials_exit_2() {
    let zk = nowhere();
    let long_coffee = "c".repeat(65);
    let menus: [(&str, &str); 9] = [
        ("", "the menu is empty"),
        (",", "the menu is empty"),
        ("a b", "invalid coffee name"),
        ("jacob,jacob", "on the menu twice"),
        ("jacob=fast", "invalid duration"),
        ("jacob=-1", "invalid duration"),
        ("jacob=2h", "invalid duration"),
        ("caff\u{e8}", "invalid coffee name"),
        (&long_coffee, "invalid coffee name"),
    ];
    for (menu, needle) in menus {
        let out = Bin::ShopInit.run(&zk, &["--menu", menu], &[]);
        assert_usage(Bin::ShopInit, &out, &[needle]);
        let out = Bin::ShopInit.run(&zk, &[], &[("SHOP_MENU", menu)]);
        assert_usage(Bin::ShopInit, &out, &[needle]);
    }
    for value in ["0", "-1", "lots"] {
        let arg = format!("--max-queue={value}");
        let out = Bin::ShopInit.run(&zk, &[&arg], &[]);
        assert_usage(Bin::ShopInit, &out, &["--max-queue", value]);
        let out = Bin::ShopInit.run(&zk, &[], &[("SHOP_MAX_QUEUE", value)]);
        assert_usage(Bin::ShopInit, &out, &[value]);
    }

    // --secure needs the staff's and the customers' files, and the admin's credentials.
    let dir = Dir::new("secure-args");
    let staff = secret_file(&dir, "staff", "s:p", 0o600);
    let customer = secret_file(&dir, "customer", "c:p", 0o600);
    let (staff, customer) = (staff.to_string_lossy().into_owned(), customer.to_string_lossy().into_owned());
    for args in [
        vec!["--secure"],
        vec!["--secure", "--staff-credentials-file", &staff],
        vec!["--secure", "--customer-credentials-file", &customer],
    ] {
        let out = Bin::ShopInit.run(&zk, &args, &[("ZK_CREDENTIALS", "admin:pw")]);
        assert_usage(Bin::ShopInit, &out, &["required arguments were not provided"]);
    }
    let out =
        Bin::ShopInit.run(&zk, &["--secure", "--staff-credentials-file", &staff, "--customer-credentials-file", &customer], &[]);
    assert_usage(Bin::ShopInit, &out, &["--secure needs the admin's credentials", "ZK_CREDENTIALS"]);
}

/// clap's message for a missing argument spans several lines, and `cli::parse_args` keeps only
/// the first: `shop-init: error: the following required arguments were not provided: (see
/// --help)`, without naming the arguments.
#[test]
fn secure_without_the_role_files_names_what_is_missing() {
    let out = Bin::ShopInit.run(&nowhere(), &["--secure"], &[("ZK_CREDENTIALS", "admin:pw")]);
    assert_usage(Bin::ShopInit, &out, &["--staff-credentials-file", "--customer-credentials-file"]);
}
