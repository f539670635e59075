//! Load processes whose watches scale: each customer of a load process watches its own order
//! and reads its two picks' queue lengths when choosing, so the servers' work per order does
//! not grow with the number of load processes; with `--watch-all-orders` every process's one
//! watch on `/orders` hears of every order in the shop, and it does. Measured as the server's
//! packets (received + sent, `mntr`) per order served, with real processes.

use std::process::{Command, Stdio};

use crate::ops::support::Summary;
use zk_coffee_tests::*;

/// The server's packets so far, received and sent.
fn packets(server: &ZkServer) -> u64 {
    let mntr = server.mntr();
    let count = |key: &str| mntr.get(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| panic!("no {key} in mntr"));
    count("zk_packets_received") + count("zk_packets_sent")
}

/// Runs `processes` load processes at once, each placing `orders / processes` orders with
/// `concurrency` customers (and `extra` flags); the server's packets per order served.
fn packets_per_order(server: &ZkServer, processes: usize, concurrency: usize, orders: u64, extra: &[&str]) -> f64 {
    let before = packets(server);
    let each = (orders / processes as u64).to_string();
    let children: Vec<_> = (0..processes)
        .map(|_| {
            let mut cmd = Command::new(Role::Customer.path());
            clean_env(&mut cmd).env("RUST_LOG", "warn").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
            cmd.args(["--zk", server.connect_string(), "--orders", &each, "--concurrency", &concurrency.to_string()]);
            cmd.args(["--patience", "60"]).args(extra);
            die_with_parent(&mut cmd);
            cmd.spawn().expect("start a load process")
        })
        .collect();
    let mut served = 0;
    for child in children {
        let out = child.wait_with_output().expect("wait for a load process");
        let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        let summary = Summary::from_stdout(&lines);
        assert!(out.status.success(), "a load process failed: {}", summary.line);
        served += summary.count("served");
    }
    assert_eq!(served, orders);
    (packets(server) - before) as f64 / served as f64
}

#[test]
fn eight_load_processes_cost_the_server_per_order_what_one_costs() {
    const ORDERS: u64 = 400;
    let server = ZkServer::start();
    server.init_shop();
    let _baristas: Vec<Proc> =
        ["b1", "b2"].iter().map(|b| server.cmd(Role::Barista).args(["--name", b, "--brew-time", "0"]).spawn_on_shift()).collect();
    let one = packets_per_order(&server, 1, 8, ORDERS, &[]);
    let eight = packets_per_order(&server, 8, 1, ORDERS, &[]);
    let eight_sharing = packets_per_order(&server, 8, 1, ORDERS, &["--watch-all-orders"]);
    let ratio = eight / one;
    assert!(
        (1.0 / 1.3..=1.3).contains(&ratio),
        "8 load processes × 1 customer: {eight:.1} packets per order, 1 × 8: {one:.1} ({ratio:.2} ×)"
    );
    // One watch on all of /orders per process: every order's placing and serving reach all 8
    // (quiet: 1.7 ×; with the suite running beside it the sessions' pings, the same in both,
    // narrow it to about 1.35 ×).
    assert!(
        eight_sharing >= 1.2 * eight,
        "8 × 1 with --watch-all-orders: {eight_sharing:.1} packets per order, with own watches {eight:.1}"
    );
}
