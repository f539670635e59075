//! Open-loop load (`customer --rate R`): orders become due at R a second whatever the shop
//! does, each order's latency counts from when it was due, and `--max-outstanding` caps the
//! orders placed at once. Checked against a real server and real baristas: the rate is kept,
//! a barista frozen for 2 s shows in the percentiles (which it would not if latency counted
//! from placing the order), the cap is reported when hit, and the summary file holds the
//! histogram and merges (`--merge-summaries`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use zk_coffee::summary::Summary as SummaryFile;

use crate::ops::support::{Status, Summary};
use zk_coffee_tests::fault::Frozen;
use zk_coffee_tests::*;

/// The warning an open-loop run logs when the cap is first met.
const CAP_MET: &str = "orders outstanding (--max-outstanding)";

fn zero_brew(server: &ZkServer, name: &str) -> Proc {
    server.cmd(Role::Barista).args(["--name", name, "--brew-time", "0"]).spawn_on_shift()
}

#[test]
fn an_open_loop_run_orders_at_its_rate_and_its_summary_file_holds_the_histogram() {
    const RATE: f64 = 40.0;
    const SECS: f64 = 3.0;
    let server = ZkServer::start();
    server.init_shop();
    let (b1, b2) = (zero_brew(&server, "b1"), zero_brew(&server, "b2"));
    let dir = Dir::new("open-loop");
    let file = dir.join("summary.json");
    let args = ["--rate", "40", "--duration", "3", "--patience", "30", "--summary-json", file.to_str().expect("utf-8")];
    let out = server.cmd(Role::Customer).args(args).run(Duration::from_secs(60));
    out.assert_code(exit::OK);
    let summary = Summary::from_stdout(&out.stdout);
    // Orders k = 0, 1, ... are due at k / RATE seconds, while that is under SECS: 120.
    let due = (RATE * SECS) as u64;
    assert_eq!((summary.count("due"), summary.count("visits"), summary.count("served")), (due, due, due), "{}", summary.line);
    assert_eq!(summary.count("capped"), 0, "{}", summary.line);
    assert!(!out.stderr.iter().any(|l| l.contains(CAP_MET)), "the cap was not met, yet reported\n{out}");
    // Zero-brew baristas serve in milliseconds: a load that placed orders as fast as they are
    // served (closed loop) would be done in well under a second, at hundreds a second.
    let (elapsed, throughput) = (summary.figure("elapsed_s"), summary.figure("throughput"));
    assert!((SECS - 0.1..SECS + 1.5).contains(&elapsed), "elapsed {elapsed}s for {SECS}s of orders: {}", summary.line);
    assert!((RATE * 0.7..RATE * 1.05).contains(&throughput), "{throughput}/s for a rate of {RATE}: {}", summary.line);
    assert_eq!(summary.figure("rate"), RATE);

    // The file: the same counts, and a histogram of every served order.
    let written = SummaryFile::read_json(&file).expect("a summary file");
    assert_eq!((written.served, written.latencies.len()), (due, due));
    assert_eq!(written.line(), summary.line, "the file and the line say the same");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
    assert_eq!((json["mode"].as_str(), json["histogram"]["count"].as_u64()), (Some("open"), Some(due)), "{json}");
    assert_eq!(json["open_loop"]["due"].as_u64(), Some(due), "{json}");

    // The ledgers say the same per barista.
    let status = Status::read(server.connect_string(), None);
    assert_eq!(status.sales_per_barista(), summary.per_barista(), "ledgers vs {}", summary.line);

    // Two copies merge into one summary of twice the orders with the same percentiles (the
    // histograms added, not the percentiles averaged), and the merged file reads back.
    let merged_file = dir.join("merged.json");
    let merged = TestCommand::new(Role::Customer)
        .args(["--merge-summaries", file.to_str().expect("utf-8"), file.to_str().expect("utf-8")])
        .args(["--summary-json", merged_file.to_str().expect("utf-8")])
        .run(EXIT_TIMEOUT);
    merged.assert_code(exit::OK);
    let m = Summary::from_stdout(&merged.stdout);
    assert_eq!((m.count("served"), m.count("due"), m.figure("rate")), (2 * due, 2 * due, 2.0 * RATE), "{}", m.line);
    assert_eq!(m.get("p99_ms"), summary.get("p99_ms"), "{} vs {}", m.line, summary.line);
    let per: BTreeMap<String, u64> = summary.per_barista().into_iter().map(|(b, n)| (b, 2 * n)).collect();
    assert_eq!(m.per_barista(), per);
    assert_eq!(SummaryFile::read_json(&merged_file).expect("merged file").latencies.len(), 2 * due);
    drop((b1, b2));
}

/// A barista frozen (SIGSTOP) for 2 s in the middle of an open-loop run, with at most one
/// order outstanding: the orders due during the freeze are held back by the cap and placed
/// after it, served at once. Counted from when they were due, a fifth of the orders waited
/// over a second; counted from placing them, only the one order placed before the freeze
/// would have, and p95 would show nothing.
#[test]
fn a_frozen_barista_shows_in_the_open_loop_percentiles_counted_from_the_due_time() {
    let server = ZkServer::start();
    server.init_shop();
    let barista = zero_brew(&server, "b1");
    let args = ["--rate", "40", "--duration", "5", "--max-outstanding", "1", "--patience", "30"];
    let load = server.cmd(Role::Customer).args(args).spawn();
    // In full flight, then frozen for 2 s.
    barista.wait_served(20, LOG_TIMEOUT);
    let frozen = Frozen::freeze(barista.pid());
    std::thread::sleep(Duration::from_secs(2));
    let held = frozen.thaw();
    let started_waiting = Instant::now();
    let out = load.wait_exit(Duration::from_secs(60));
    out.assert_code(exit::OK);
    let summary = Summary::from_stdout(&out.stdout);
    assert!(held >= Duration::from_secs(2));
    assert!(started_waiting.elapsed() < Duration::from_secs(30), "{}", summary.line);
    assert_eq!((summary.count("served"), summary.count("due")), (200, 200), "{}", summary.line);

    // The cap was met (the orders due during the freeze waited for a place) and said so.
    let capped = summary.count("capped");
    assert!(capped >= 40, "only {capped} orders held back by a cap of 1 during a 2 s freeze at 40/s: {}", summary.line);
    assert!(summary.figure("max_held_ms") >= 1500.0, "{}", summary.line);
    assert_eq!(out.stderr.iter().filter(|l| l.contains(CAP_MET)).count(), 1, "the cap reported once\n{out}");
    assert!(out.stderr.iter().any(|l| l.contains("orders were held back by the cap of 1 outstanding")), "{out}");

    // About 80 of the 200 orders were due during the freeze, their latencies spread over
    // 0-2 s: p95 ~1.75 s, p99 ~1.95 s.
    let (p95, p99, max) = (summary.figure("p95_ms"), summary.figure("p99_ms"), summary.figure("max_ms"));
    assert!(p95 >= 1200.0, "p95 {p95} ms does not show the 2 s freeze: {}", summary.line);
    assert!(p99 >= 1600.0 && max >= 1800.0, "p99 {p99} ms, max {max} ms: {}", summary.line);
    barista.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}
