//! What the manager serves (issue 13): `/metrics` parsed by the official Prometheus parser
//! and linted by promtool, its served counts equal to the sales ledgers after a load run with a
//! barista killed midway; withdrawals and rejections told from services; the wait histogram;
//! a gone barista's series dropped; `/api/shops` the same document as `shop-status --json`;
//! an address in use exits 11.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use zookeeper::{Acl, CreateMode};

use zk_coffee::status::ShopStatus;
use zk_coffee_tests::fault::*;
use zk_coffee_tests::http::{self, Metrics};
use zk_coffee_tests::*;

/// A loopback address nothing listens on (it was free a moment ago).
fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], closed_port()))
}

/// Starts a manager serving on a free address; waits until it has read the shops.
fn serving_manager(connect: &str, extra: &[&str]) -> (Proc, SocketAddr) {
    let addr = free_address();
    let m = role(connect, Role::ShopManager).args(["--listen", &addr.to_string()]).args(extra.iter()).spawn();
    m.wait_for_stderr("following ", LOG_TIMEOUT);
    (m, addr)
}

/// Served per barista (summed over coffees) in the root shop, from the page.
fn served(metrics: &Metrics) -> BTreeMap<String, f64> {
    let mut per = BTreeMap::new();
    for s in metrics.family("zk_coffee_orders_served").map(|f| f.samples.as_slice()).unwrap_or_default() {
        if s.name == "zk_coffee_orders_served_total" && s.labels.get("shop").is_some_and(|shop| shop == "/") {
            *per.entry(s.labels["barista"].clone()).or_default() += s.value;
        }
    }
    per
}

/// Served per barista, from the ledgers themselves.
fn ledgers(server: &ZkServer) -> BTreeMap<String, f64> {
    let mut per = BTreeMap::new();
    for barista in server.children("/zk-coffee/sales").unwrap_or_default() {
        let Some(node) = server.node(&format!("/zk-coffee/sales/{barista}")) else { continue };
        let total: f64 = String::from_utf8_lossy(&node.data)
            .lines()
            .filter_map(|l| l.split_once('=').and_then(|(_, n)| n.trim().parse::<f64>().ok()))
            .sum();
        per.insert(barista, total);
    }
    per
}

fn shop_labels(ensemble: &str) -> [(&'static str, &str); 2] {
    [("ensemble", ensemble), ("shop", "/")]
}

#[test]
fn served_counts_equal_the_ledgers_after_a_load_run_with_a_barista_killed_midway() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let (mgr, addr) = serving_manager(zk, &["--ensemble", "test"]);
    let mut victim = barista(zk, "victim", "0.05").spawn_on_shift();
    let stayer = barista(zk, "stayer", "0.05").spawn_on_shift();
    let load = role(zk, Role::Customer).args(["--orders", "120", "--concurrency", "8", "--patience", "60"]).spawn();
    // Midway: the victim has served some.
    wait_until(LOG_TIMEOUT, "the victim to serve some orders", || ledgers(&server).get("victim").is_some_and(|n| *n >= 10.0));
    victim.signal("KILL");
    let _ = victim.wait_exit(EXIT_TIMEOUT);
    load.wait_exit(Duration::from_secs(90)).assert_code(exit::OK);

    let metrics = http::wait_metrics(addr, "served counts equal to the ledgers", LOG_TIMEOUT, |m| served(m) == ledgers(&server));
    let total: f64 = ledgers(&server).values().sum();
    assert_eq!(total, 120.0, "every order of the run was served once: {:?}", ledgers(&server));
    // Each served order's wait, as the manager saw its creation and its deletion.
    let waits = metrics
        .family("zk_coffee_order_wait_seconds")
        .and_then(|f| f.samples.iter().find(|s| s.name == "zk_coffee_order_wait_seconds_count"))
        .map(|s| s.value);
    assert_eq!(waits, Some(120.0), "{}", metrics.text);
    let labels = shop_labels("test");
    assert_eq!(metrics.value("zk_coffee_orders_withdrawn_total", &labels), Some(0.0), "{}", metrics.text);
    assert_eq!(metrics.value("zk_coffee_baristas_on_shift", &labels), Some(1.0), "{}", metrics.text);
    let lost = [("ensemble", "test"), ("event", "barista-lost"), ("shop", "/")];
    assert_eq!(metrics.value("zk_coffee_events_total", &lost), Some(1.0), "{}", metrics.text);
    assert!(metrics.value("zk_coffee_build_info", &[("version", env!("CARGO_PKG_VERSION"))]).is_some(), "{}", metrics.text);
    assert!(metrics.value("process_resident_memory_bytes", &[]).is_some_and(|b| b > 0.0), "{}", metrics.text);
    assert_eq!(metrics.value("zk_coffee_zookeeper_up", &[("ensemble", "test"), ("server", zk)]), Some(1.0), "{}", metrics.text);
    stayer.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn withdrawals_rejections_waiting_orders_and_a_gone_baristas_series() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    let zk = server.connect_string();
    let (mgr, addr) = serving_manager(zk, &["--ensemble", "test", "--forget-after", "1"]);
    let labels = shop_labels("test");
    let slow = barista(zk, "slow", "30").spawn_on_shift();

    // One order in hand for 30 s, a second waits behind it; its customer gives up.
    let first = place(customer(zk, Some("slow"), "jacob", "60"));
    let impatient = place(customer(zk, Some("slow"), "tesora", "1"));
    let waiting = http::wait_metrics(addr, "two orders waiting", LOG_TIMEOUT, |m| {
        m.value("zk_coffee_orders_waiting", &[("barista", "slow"), ("ensemble", "test"), ("shop", "/")]) == Some(2.0)
    });
    let oldest =
        waiting.value("zk_coffee_oldest_order_timestamp_seconds", &[("barista", "slow"), ("ensemble", "test"), ("shop", "/")]);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    assert!(oldest.is_some_and(|t| (now - 30.0..=now).contains(&t)), "{}", waiting.text);
    impatient.wait_exit(EXIT_TIMEOUT).assert_code(exit::GAVE_UP);
    http::wait_metrics(addr, "the withdrawal counted", LOG_TIMEOUT, |m| {
        m.value("zk_coffee_orders_withdrawn_total", &labels) == Some(1.0)
    });

    // The barista leaves (SIGTERM twice: at once, the order in hand stays queued); a second
    // barista comes, serves the rest and leaves; the first one's series go after --forget-after.
    let quick = barista(zk, "quick", "0").spawn_on_shift();
    let mut slow = slow;
    slow.signal("TERM");
    slow.signal("TERM");
    let _ = slow.wait_exit(EXIT_TIMEOUT);
    first.wait_exit(EXIT_TIMEOUT).assert_code(exit::OK);
    http::wait_metrics(addr, "quick's sale counted", LOG_TIMEOUT, |m| served(m).get("quick") == Some(&1.0));
    // A garbage order is rejected, and counted as a rejection, not a service.
    server
        .raw()
        .create("/orders/quick/coffee", b"espresso".to_vec(), Acl::open_unsafe().clone(), CreateMode::PersistentSequential)
        .expect("a garbage order");
    http::wait_metrics(addr, "the rejection counted", LOG_TIMEOUT, |m| {
        m.value("zk_coffee_orders_rejected_total", &labels) == Some(1.0)
    });

    let gone = http::wait_metrics(addr, "slow's series dropped", LOG_TIMEOUT, |m| {
        m.value("zk_coffee_orders_waiting", &[("barista", "slow"), ("ensemble", "test"), ("shop", "/")]).is_none()
            && !served(m).contains_key("slow")
    });
    assert_eq!(gone.value("zk_coffee_orders_withdrawn_total", &labels), Some(1.0), "a rejection is no withdrawal: {}", gone.text);
    quick.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn the_api_serves_each_shop_as_shop_status_json_does() {
    let server = ZkServer::builder().tick_ms(TICK_MS).start();
    server.init_shop();
    TestCommand::new(Role::ShopInit)
        .zk(server.connect_string())
        .args(["--shop", "north"])
        .run(EXIT_TIMEOUT)
        .assert_code(exit::OK);
    let zk = server.connect_string();
    let (mgr, addr) = serving_manager(zk, &["--on-event", "true"]);
    let b1 = barista(zk, "b1", "0").spawn_on_shift();
    let n1 = barista(zk, "n1", "0").args(["--shop", "north"]).spawn_on_shift();
    customer(zk, Some("b1"), "jacob", "20").run(EXIT_TIMEOUT).assert_code(exit::OK);
    customer(zk, Some("n1"), "sogood", "20").args(["--shop", "north"]).run(EXIT_TIMEOUT).assert_code(exit::OK);

    // The manager's document of each shop is shop-status's, but for the clock it was read at.
    let status_of = |shop: Option<&str>| -> ShopStatus {
        let cmd = server.cmd(Role::ShopStatus).arg("--json");
        let cmd = match shop {
            Some(s) => cmd.args(["--shop", s]),
            None => cmd,
        };
        let out = cmd.run(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        serde_json::from_str(&out.stdout.join("\n")).expect("shop-status --json")
    };
    let from_api = |path: &str| -> Option<ShopStatus> {
        let answer = http::get(addr, path);
        (answer.status == 200).then(|| serde_json::from_str(&answer.body).expect("the API's JSON"))
    };
    wait_until(LOG_TIMEOUT, "the API to show what shop-status shows", || {
        from_api("/api/shops/%2F") == Some(status_of(None)) && from_api("/api/shops/north") == Some(status_of(Some("north")))
    });
    let all: serde_json::Value = serde_json::from_str(&http::get(addr, "/api/shops").body).expect("JSON");
    assert_eq!(
        all["shops"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["/".to_owned(), "north".to_owned()])
    );
    assert_eq!(http::get(addr, "/api/shops/south").status, 404);
    assert_eq!(http::get(addr, "/healthz").status, 200);
    // The one manager leads both shops' elections (it has a hook).
    let metrics = http::wait_metrics(addr, "the manager to lead both shops", LOG_TIMEOUT, |m| {
        m.family("zk_coffee_manager_leader").is_some_and(|f| f.samples.len() == 2 && f.samples.iter().all(|s| s.value == 1.0))
    });
    assert!(metrics.family("zk_coffee_manager_leader").is_some(), "{}", metrics.text);
    b1.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    n1.stop(EXIT_TIMEOUT).assert_code(exit::OK);
    mgr.stop(EXIT_TIMEOUT).assert_code(exit::OK);
}

#[test]
fn an_address_in_use_exits_11_and_a_malformed_one_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let out = TestCommand::new(Role::ShopManager).zk("127.0.0.1:1").args(["--listen", &address]).run(EXIT_TIMEOUT);
    out.assert_code(exit::LISTEN).assert_within(Duration::from_secs(5));
    out.error_line(&[&format!("cannot listen on {address}")]);
    let out = TestCommand::new(Role::ShopManager).zk("127.0.0.1:1").args(["--listen", "nowhere"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::USAGE).assert_failure_line();
}
