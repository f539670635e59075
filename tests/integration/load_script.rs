//! `scripts/load.sh` on this host (`local`, listed twice: two load "hosts"): closed loop, open
//! loop (`--rate`) and one customer process per order, each merged into one `summary` line
//! whose counts match the baristas' sales ledgers; a load that is not fully served exits 1;
//! bad arguments exit 2; the script is shellcheck-clean. (Across network namespaces over ssh:
//! `multihost::load_sh_runs_load_from_two_hosts_over_ssh_and_the_merge_matches_the_ledgers`.)

use std::collections::BTreeMap;
use std::process::{Command, Output};

use zk_coffee::summary::Summary as SummaryFile;

use crate::ops::support::*;
use zk_coffee_tests::*;

/// Runs `scripts/load.sh --zk CONNECT --customer BIN ARGS...`.
fn load_sh(zk: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(load_script()).args(["--zk", zk, "--customer"]).arg(Role::Customer.path()).args(args);
    clean_env(&mut cmd).stdin(std::process::Stdio::null());
    cmd.output().unwrap_or_else(|e| panic!("cannot run load.sh: {e}"))
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// The per-host lines (`HOST summary ...`) and the merged summary (the last line).
fn host_lines_and_merged(out: &Output, hosts: &[&str]) -> (Vec<Summary>, Summary) {
    let lines = stdout_lines(out);
    let merged = Summary::from_stdout(&lines);
    let per_host: Vec<Summary> = lines[..lines.len() - 1]
        .iter()
        .filter_map(|l| l.split_once(" summary ").map(|(h, rest)| (h.to_owned(), format!("summary {rest}"))))
        .map(|(host, line)| {
            assert!(hosts.contains(&host.as_str()), "a line of an unknown host {host:?}: {}", show(out));
            Summary::from_stdout(&[line])
        })
        .collect();
    assert_eq!(per_host.len(), hosts.len(), "one line per host:\n{}", show(out));
    (per_host, merged)
}

/// Adds per-barista counts.
fn add(into: &mut BTreeMap<String, u64>, more: BTreeMap<String, u64>) {
    for (b, n) in more {
        *into.entry(b).or_default() += n;
    }
}

#[test]
fn load_sh_runs_three_kinds_of_load_on_two_hosts_and_the_merged_counts_match_the_ledgers() {
    let server = ZkServer::start();
    server.init_shop();
    let zero_brew = |name: &str| server.cmd(Role::Barista).args(["--name", name, "--brew-time", "0"]).spawn_on_shift();
    let (b1, b2) = (zero_brew("b1"), zero_brew("b2"));
    let zk = server.connect_string();
    let hosts = ["local", "local"];
    let mut sold: BTreeMap<String, u64> = BTreeMap::new();

    // Closed loop: 41 orders in all, 21 + 20, 4 customers per host.
    let out = load_sh(zk, &["--hosts", "local,local", "--orders", "41", "--concurrency", "4", "--", "--patience", "30"]);
    assert!(out.status.success(), "load.sh: {}", show(&out));
    let (per_host, merged) = host_lines_and_merged(&out, &hosts);
    let mut served: Vec<u64> = per_host.iter().map(|s| s.count("served")).collect();
    served.sort();
    assert_eq!(served, [20, 21], "the orders split over the hosts: {}", show(&out));
    assert_eq!((merged.count("visits"), merged.count("served")), (41, 41), "{}", merged.line);
    assert!(merged.other_outcomes().values().all(|n| *n == 0), "{}", merged.line);
    let mut per_hosts = BTreeMap::new();
    per_host.iter().for_each(|s| add(&mut per_hosts, s.per_barista()));
    assert_eq!(merged.per_barista(), per_hosts, "the merge adds the hosts' counts");
    add(&mut sold, merged.per_barista());
    assert_eq!(Status::read(zk, None).sales_per_barista(), sold, "ledgers vs {}", merged.line);

    // Open loop: 20 orders/s in all for 2 s, 10/s on each host: 40 due, 40 served. The
    // merged summary keeps the kept files' histograms.
    let keep = Dir::new("load-sh-keep");
    let keep_dir = keep.path().to_str().expect("utf-8");
    let out = load_sh(zk, &["--hosts", "local,local", "--duration", "2", "--rate", "20", "--keep", keep_dir]);
    assert!(out.status.success(), "load.sh --rate: {}", show(&out));
    let (per_host, merged) = host_lines_and_merged(&out, &hosts);
    assert!(per_host.iter().all(|s| s.figure("rate") == 10.0 && s.count("due") == 20), "{}", show(&out));
    assert_eq!((merged.count("due"), merged.count("served"), merged.figure("rate")), (40, 40, 20.0), "{}", merged.line);
    let elapsed = merged.figure("elapsed_s");
    assert!((1.9..4.0).contains(&elapsed), "two hosts at once for 2 s took {elapsed}s: {}", merged.line);
    let file = SummaryFile::read_json(&keep.join("merged.json")).expect("the merged summary file");
    assert_eq!((file.served, file.latencies.len()), (40, 40));
    assert_eq!(file.line(), merged.line);
    add(&mut sold, merged.per_barista());
    assert_eq!(Status::read(zk, None).sales_per_barista(), sold, "ledgers vs {}", merged.line);

    // One customer process per order, 3 at a time per host: each process's summary merged on
    // its host, then the hosts' here.
    let out = load_sh(zk, &["--hosts", "local,local", "--orders", "10", "--process-per-order", "--concurrency", "3"]);
    assert!(out.status.success(), "load.sh --process-per-order: {}", show(&out));
    let (per_host, merged) = host_lines_and_merged(&out, &hosts);
    assert!(per_host.iter().all(|s| s.count("served") == 5), "{}", show(&out));
    assert_eq!((merged.count("visits"), merged.count("served")), (10, 10), "{}", merged.line);
    add(&mut sold, merged.per_barista());
    let status = Status::read(zk, None);
    assert_eq!(status.sales_per_barista(), sold, "ledgers vs {}", merged.line);
    assert_eq!((status.sales_total(), status.queued()), (41 + 40 + 10, 0));
    drop((b1, b2));
}

#[test]
fn load_sh_exits_1_unless_every_order_was_served() {
    let server = ZkServer::start();
    server.init_shop();
    // Nobody on shift: every visit ends "no barista" after a second's patience.
    let zk = server.connect_string();
    for args in [
        vec!["--hosts", "local", "--orders", "2", "--concurrency", "2", "--", "--patience", "1"],
        vec!["--hosts", "local,local", "--orders", "2", "--process-per-order", "--", "--patience", "1"],
    ] {
        let out = load_sh(zk, &args);
        assert_eq!(out.status.code(), Some(exit::FAILURE), "{args:?}: {}", show(&out));
        let merged = Summary::from_stdout(&stdout_lines(&out));
        assert_eq!((merged.count("visits"), merged.count("no_barista"), merged.count("served")), (2, 2, 0), "{}", merged.line);
    }
}

#[test]
fn load_sh_refuses_bad_arguments_and_is_shellcheck_clean() {
    let zk = "127.0.0.1:1";
    for (args, needle) in [
        (vec!["--orders", "5"], "--hosts is required"),
        (vec!["--hosts", "local"], "give --orders N or --duration SECS"),
        (vec!["--hosts", "local", "--orders", "0"], "bad --orders"),
        (vec!["--hosts", "local", "--duration", "1.5"], "bad --duration"),
        (vec!["--hosts", "local", "--orders", "5", "--rate", "0"], "bad --rate"),
        (vec!["--hosts", "local", "--orders", "5", "--rate", "fast"], "bad --rate"),
        (vec!["--hosts", "local", "--orders", "5", "--rate", "5", "--concurrency", "2"], "do not go together"),
        (vec!["--hosts", "local", "--orders", "5", "--rate", "5", "--process-per-order"], "do not go together"),
        (vec!["--hosts", "local", "--orders", "5", "--concurrency", "0"], "bad --concurrency"),
        (vec!["--hosts", "local,local,local", "--orders", "2"], "fewer than the 3 hosts"),
        (vec!["--hosts", "local;rm", "--orders", "2"], "bad host"),
        (vec!["--hosts", "local", "--orders", "2", "--", "--orders", "3"], "do not pass --orders after --"),
        (vec!["--hosts", "local", "--orders", "2", "--merge-with", "/nonexistent/customer"], "not found here"),
        (vec!["--hosts", "local", "--orders", "2", "--bogus"], "unknown argument '--bogus'"),
    ] {
        let out = load_sh(zk, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
        assert!(stderr.starts_with("load.sh: error: ") && stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    }
    let out = load_sh(zk, &["--help"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("--process-per-order"), "{}", show(&out));
    match Command::new("shellcheck").arg("-x").arg(load_script()).current_dir(workspace_root()).output() {
        Ok(out) => assert!(out.status.success(), "shellcheck scripts/load.sh:\n{}", show(&out)),
        Err(e) => eprintln!("note: shellcheck is not installed ({e}); scripts/load.sh not linted"),
    }
}
