//! Batching and shared watches: a barista follows its bucket with one persistent recursive
//! watch and serves the orders ready together in one transaction (deleting them all and
//! writing its sales ledger once), and a load run with `--watch-all-orders` shares one watch
//! on `/orders` (a `Board`) among all its customers, spread over `--sessions` shared sessions.
//! Checked against real servers and real processes: a large backlog, `Ledger::serve` itself,
//! shared sessions, a server restart under load (persistent watches are set again by the
//! session) and orders rejected under a load run's customers.

use std::collections::BTreeMap;
use std::time::Duration;

use zookeeper::{Acl, CreateMode, ZooKeeper};

use zk_coffee::layout::BaristaName;
use zk_coffee::sales::{Ledger, Sale};

use crate::ops::support::{Status, Summary};
use zk_coffee_tests::*;

/// The most orders a barista reads at once and serves in one transaction (`MAX_BATCH` in
/// crates/zk-coffee/src/barista.rs).
const BATCH: usize = 64;

/// Starts a barista and waits until it is on shift.
/// A zero-brew barista named `name`.
fn zero_brew(server: &ZkServer, name: &str) -> TestCommand {
    server.cmd(Role::Barista).args(["--name", name, "--brew-time", "0"])
}

/// Creates a persistent node with the raw client.
fn create(zk: &ZooKeeper, path: &str, data: &[u8], mode: CreateMode) -> String {
    zk.create(path, data.to_vec(), Acl::open_unsafe().clone(), mode).unwrap_or_else(|e| panic!("create {path}: {e:?}"))
}

/// A sales ledger as stored (`coffee=count` lines), read without the library, with its
/// version (how many times it was written). `None` if there is no ledger node.
fn ledger_node(zk: &ZooKeeper, barista: &str) -> Option<(BTreeMap<String, u64>, i32)> {
    let path = format!("/zk-coffee/sales/{barista}");
    let (data, stat) = match zk.get_data(&path, false) {
        Ok(found) => found,
        Err(zookeeper::ZkError::NoNode) => return None,
        Err(e) => panic!("get_data {path}: {e:?}"),
    };
    let text = String::from_utf8(data).unwrap_or_else(|_| panic!("{path} is not UTF-8"));
    let counts = text
        .lines()
        .map(|line| {
            let (coffee, n) = line.split_once('=').unwrap_or_else(|| panic!("{path}: {line:?} is not coffee=count"));
            (coffee.to_owned(), n.parse().unwrap_or_else(|_| panic!("{path}: {line:?} has no count")))
        })
        .collect();
    Some((counts, stat.version))
}

/// Every bucket under /orders, with what it holds.
fn buckets(server: &ZkServer) -> BTreeMap<String, Vec<String>> {
    let names = server.children("/orders").unwrap_or_default();
    names.into_iter().map(|b| (b.clone(), server.children(&format!("/orders/{b}")).unwrap_or_default())).collect()
}

/// Waits until no bucket holds an order.
fn wait_for_empty_buckets(server: &ZkServer) {
    let mut last = BTreeMap::new();
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_until(LOG_TIMEOUT, "every bucket to be empty", || {
            last = buckets(server);
            last.values().all(Vec::is_empty)
        })
    }));
    if waited.is_err() {
        panic!("orders stranded in the buckets: {last:?}");
    }
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect()
}

// ---------------------------------------------------------------------------------------------
// The barista: a backlog served in batches

#[test]
fn a_backlog_placed_before_the_barista_starts_is_served_in_order_in_batches_and_counted_once() {
    // Five full batches.
    const BACKLOG: usize = 5 * BATCH;
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.raw();
    create(&zk, "/orders/backlog", b"", CreateMode::Persistent);
    // The original customer's orders, with uneven numbers of each coffee (sogood 1 in 7).
    let pattern = ["jacob", "tesora", "jacob", "swisswater", "tesora", "jacob", "sogood"];
    let mut placed = Vec::new();
    let mut ordered: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..BACKLOG {
        let coffee = pattern[i % pattern.len()];
        let path = create(&zk, "/orders/backlog/coffee", coffee.as_bytes(), CreateMode::PersistentSequential);
        placed.push((path.rsplit('/').next().expect("a name").to_owned(), coffee));
        *ordered.entry(coffee.to_owned()).or_default() += 1;
    }
    let names: Vec<String> = placed.iter().map(|(n, _)| n.clone()).collect();
    assert!(names.windows(2).all(|w| order_sequence(&w[0]) < order_sequence(&w[1])), "sequence numbers grow");
    let listed = zk.get_children("/orders/backlog", false).expect("list the bucket");
    assert_eq!(listed.len(), BACKLOG);
    assert_ne!(listed, names, "ZooKeeper listed the bucket in order; the order check below proves nothing");

    let barista = zero_brew(&server, "backlog").spawn_on_shift();
    wait_until(Duration::from_secs(30), "the backlog to be served", || server.children("/orders/backlog") == Some(vec![]));
    barista.wait_served(BACKLOG, LOG_TIMEOUT);

    let (ledger, version) = ledger_node(&zk, "backlog").expect("the barista's ledger");
    assert_eq!(ledger, ordered, "the ledger counts exactly the orders served, per coffee");
    // Created empty (version 0), then written once per transaction: one per batch of 64, not
    // one per order.
    assert_eq!(version as usize, BACKLOG / BATCH, "ledger writes for {BACKLOG} orders: not served {BATCH} at a time");
    let status = Status::read(server.connect_string(), None);
    assert_eq!(status.sales_per_coffee(), ordered);
    assert_eq!(status.on_shift(), ["backlog"]);
    assert_eq!(status.queued(), 0);

    // Its whole log, once it has left: exactly the backlog served, in placement (sequence)
    // order, each as the coffee ordered, nothing withdrawn or rejected.
    let out = barista.stop(EXIT_TIMEOUT);
    assert_eq!(served_orders(&out.stderr), names, "served exactly the backlog, in placement (sequence) order");
    let events = barista_events(&out.stderr);
    for (order, coffee) in &placed {
        assert!(
            events.iter().any(|e| e.kind == Brew::Served && e.order == *order && e.coffee == *coffee),
            "{order} was not served as {coffee}"
        );
    }
    assert!(!out.stderr.iter().any(|l| l.contains("withdrawn") || l.contains("rejected")), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Ledger::serve against a real server

#[test]
fn ledger_serve_deletes_and_counts_a_batch_leaving_out_orders_found_gone() {
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.raw();
    let session = connect_session(server.connect_string(), Duration::from_secs(10));
    let b1 = BaristaName::new("b1").expect("a valid name");
    let mut ledger = Ledger::open(&session, &b1).expect("open b1's ledger");
    assert!(ledger.counts().is_empty());
    assert_eq!(ledger_node(&zk, "b1"), Some((BTreeMap::new(), 0)), "opened empty");
    create(&zk, "/orders/b1", b"", CreateMode::Persistent);
    let place = |coffees: &[&str]| -> Vec<(String, String)> {
        coffees
            .iter()
            .map(|c| (create(&zk, "/orders/b1/coffee", c.as_bytes(), CreateMode::PersistentSequential), (*c).to_owned()))
            .collect()
    };

    // The middle order is withdrawn before the barista serves the three.
    let first = place(&["jacob", "sogood", "tesora"]);
    zk.delete(&first[1].0, None).expect("withdraw the middle order");
    let sales = ledger.serve(&session, &first).expect("serve");
    assert_eq!(sales, [Sale::Served, Sale::Gone, Sale::Served]);
    for (path, _) in &first {
        assert!(!server.exists(path), "{path} is still there");
    }
    let expected = counts(&[("jacob", 1), ("tesora", 1)]);
    assert_eq!(ledger_node(&zk, "b1"), Some((expected.clone(), 1)), "one write counting the two served");
    assert_eq!(ledger.counts(), &expected);

    // Gone at both ends: the one in the middle is served.
    let batch = place(&["sogood", "jacob", "swisswater"]);
    zk.delete(&batch[0].0, None).expect("withdraw the first");
    zk.delete(&batch[2].0, None).expect("withdraw the last");
    assert_eq!(ledger.serve(&session, &batch).expect("serve"), [Sale::Gone, Sale::Served, Sale::Gone]);
    assert!(!server.exists(&batch[1].0));
    let expected = counts(&[("jacob", 2), ("tesora", 1)]);
    assert_eq!(ledger_node(&zk, "b1"), Some((expected.clone(), 2)));

    // Every order gone (the first batch again: served already): nothing served, nothing
    // written.
    assert_eq!(ledger.serve(&session, &first).expect("serve"), [Sale::Gone, Sale::Gone, Sale::Gone]);
    let none_left = place(&["tesora", "tesora"]);
    for (path, _) in &none_left {
        zk.delete(path, None).expect("withdraw");
    }
    assert_eq!(ledger.serve(&session, &none_left).expect("serve"), [Sale::Gone, Sale::Gone]);
    assert_eq!(ledger_node(&zk, "b1"), Some((expected.clone(), 2)), "the ledger was not written");
    assert_eq!(ledger.counts(), &expected);
    assert_eq!(server.children("/orders/b1"), Some(vec![]));
    session.close();
}

#[test]
fn ledger_serve_reads_a_ledger_that_moved_under_it_and_loses_no_count() {
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.raw();
    let session = connect_session(server.connect_string(), Duration::from_secs(10));
    let b1 = BaristaName::new("b1").expect("a valid name");
    // Two handles on one ledger (a barista and, say, its earlier incarnation's last write):
    // the second one's version is stale once the first has served.
    let mut first = Ledger::open(&session, &b1).expect("open");
    let mut second = Ledger::open(&session, &b1).expect("open again");
    create(&zk, "/orders/b1", b"", CreateMode::Persistent);
    let order = |coffee: &str| {
        vec![(create(&zk, "/orders/b1/coffee", coffee.as_bytes(), CreateMode::PersistentSequential), coffee.to_owned())]
    };
    assert_eq!(first.serve(&session, &order("jacob")).expect("serve"), [Sale::Served]);
    let moved = order("tesora");
    assert_eq!(second.serve(&session, &moved).expect("serve on a stale version"), [Sale::Served]);
    assert!(!server.exists(&moved[0].0));
    let expected = counts(&[("jacob", 1), ("tesora", 1)]);
    assert_eq!(ledger_node(&zk, "b1"), Some((expected.clone(), 2)), "the stale handle read the ledger again");
    assert_eq!(second.counts(), &expected);
    session.close();
}

// ---------------------------------------------------------------------------------------------
// The load generator: shared sessions, one Board (`--watch-all-orders`)

#[test]
fn a_load_run_on_two_shared_sessions_adds_up_with_the_baristas_logs_and_ledgers() {
    const ORDERS: u64 = 120;
    let server = ZkServer::start();
    server.init_shop();
    let b1 = zero_brew(&server, "b1").spawn_on_shift();
    let b2 = zero_brew(&server, "b2").spawn_on_shift();
    // The server's connections now: the two baristas and nothing else.
    let before: u64 = server.mntr()["zk_num_alive_connections"].parse().expect("a count");
    let args =
        ["--watch-all-orders", "--orders", &ORDERS.to_string(), "--concurrency", "8", "--sessions", "2", "--patience", "60"];
    let mut run = server.cmd(Role::Customer).args(args).spawn();
    // While it runs, the server never sees more than its two sessions (eight, one per
    // customer, is the default), and for a moment the probe it closes before they connect.
    let mut most = before;
    while !run.has_exited() {
        let now: u64 = server.mntr()["zk_num_alive_connections"].parse().expect("a count");
        most = most.max(now);
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = run.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert!(most <= before + 3, "{before} connections before the load run, {most} during it\n{out}");
    // What the load run connected: its probe of the shop (closed at once), then its two
    // shared sessions.
    let connected = out.stderr.iter().filter(|l| l.contains("] connected to ZooKeeper at ")).count();
    assert_eq!(connected, 1 + 2, "sessions connected by the load run\n{out}");

    let summary = Summary::from_stdout(&out.stdout);
    assert_eq!((summary.count("visits"), summary.count("served")), (ORDERS, ORDERS), "{}", summary.line);
    assert!(summary.other_outcomes().values().all(|n| *n == 0), "{}", summary.line);
    wait_for_empty_buckets(&server);

    // The summary's count per barista = each barista's `served` lines = each one's ledger.
    let per_barista = summary.per_barista();
    assert_eq!(per_barista.values().sum::<u64>(), ORDERS, "{}", summary.line);
    let n1 = per_barista.get("b1").copied().unwrap_or(0) as usize;
    let n2 = per_barista.get("b2").copied().unwrap_or(0) as usize;
    assert!(n1 > 0 && n2 > 0, "shorter-of-two sent every order to one barista: {}", summary.line);
    let status = Status::read(server.connect_string(), None);
    assert_eq!(status.sales_per_barista(), per_barista, "ledgers vs {}", summary.line);
    assert_eq!(status.sales_total(), ORDERS);
    assert_eq!(status.on_shift(), ["b1", "b2"]);
    let (b1, b2) = (b1.stop(EXIT_TIMEOUT), b2.stop(EXIT_TIMEOUT));
    assert_eq!(served_orders(&b1.stderr).len(), n1, "b1's log vs {}", summary.line);
    assert_eq!(served_orders(&b2.stderr).len(), n2, "b2's log vs {}", summary.line);
}

#[test]
fn a_load_run_rides_out_a_server_restart_and_strands_nothing() {
    let mut server = ZkServer::start();
    server.init_shop();
    let mut barista = zero_brew(&server, "steady").spawn_on_shift();
    let mut run = server
        .cmd(Role::Customer)
        .args(["--watch-all-orders", "--duration", "8", "--concurrency", "4", "--patience", "60"])
        .spawn();
    // In full flight: a few hundred orders served.
    barista.wait_served(200, LOG_TIMEOUT);

    server.restart();
    assert!(!run.has_exited(), "the load run ended before the server came back: the restart was not mid-run");
    // Orders placed after the restart are served too (the barista's watch on its bucket was
    // set again, and the load's watch on /orders).
    let restarted = barista.mark();
    barista.wait_log_since(restarted, "20 orders served after the restart", LOG_TIMEOUT, |since| {
        (served_orders(since).len() >= 20).then_some(())
    });

    let out = run.wait_exit(Duration::from_secs(40));
    out.assert_code(exit::OK);
    // A create whose reply the restart swallowed is looked for and, if not found, placed again;
    // if it had been made and served already, that is a second coffee (README, "Guarantees").
    let placed_again = out.stderr.iter().filter(|l| l.contains("after a connection loss; placing it again")).count() as u64;
    let summary = Summary::from_stdout(&out.stdout);
    let served = summary.count("served");
    assert!(served > 0 && served == summary.count("visits"), "{}", summary.line);
    assert!(summary.other_outcomes().values().all(|n| *n == 0), "{}", summary.line);
    assert_eq!(summary.per_barista(), BTreeMap::from([("steady".to_owned(), served)]));

    assert!(!barista.has_exited(), "the barista left its shift");
    wait_until(LOG_TIMEOUT, "the barista to be on shift", || server.exists("/barista_group/steady"));
    wait_for_empty_buckets(&server);

    // A customer arriving now is served by it.
    let out = server.cmd(Role::Customer).args(["--barista", "steady", "--coffee", "jacob"]).run(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let receipt = Receipt::parse(out.single_stdout_line());
    assert_eq!((receipt.outcome.as_str(), receipt.barista.as_str()), ("served", "steady"));
    barista.wait_for_stderr(&format!("served jacob ({})", receipt.order_name()), LOG_TIMEOUT);

    // Counted once each, across the restart: the ledger, the log and the customers agree.
    let status = Status::read(server.connect_string(), None);
    let barista = barista.stop(EXIT_TIMEOUT);
    barista.assert_code(exit::OK);
    let logged = served_orders(&barista.stderr);
    let sold = status.sales_total();
    assert!(
        (served + 1..=served + 1 + placed_again).contains(&sold),
        "ledger {sold} vs {} and one more customer, {placed_again} orders placed again",
        summary.line
    );
    assert_eq!(logged.len() as u64, sold, "the barista's `served` lines vs its ledger");
    let mut unique = logged.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), logged.len(), "an order was logged as served twice");
}

#[test]
fn a_load_runs_orders_rejected_by_a_barista_with_a_new_menu_are_counted_rejected_and_withdrawn() {
    // Deterministic: the orders wait in the bucket of a barista of the original program (a
    // raw client's ephemeral member that never serves) while the menu loses their coffee;
    // then it goes and our barista comes on shift under its name with the new menu.
    const ORDERS: usize = 4;
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.raw();
    create(&zk, "/orders/b1", b"", CreateMode::Persistent);
    create(&zk, "/barista_group/b1", b"", CreateMode::Ephemeral);
    let args = [
        "--watch-all-orders",
        "--orders",
        &ORDERS.to_string(),
        "--concurrency",
        &ORDERS.to_string(),
        "--coffee",
        "jacob",
        "--patience",
        "60",
    ];
    let run = server.cmd(Role::Customer).args(args).spawn();
    wait_until(LOG_TIMEOUT, "the load's orders to be queued", || {
        server.children("/orders/b1").unwrap_or_default().len() == ORDERS
    });
    let queued = server.children("/orders/b1").expect("the bucket");

    server.cmd(Role::ShopInit).args(["--menu", "tesora,sogood"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    zk.close().expect("close the raw barista's session");
    wait_until(LOG_TIMEOUT, "the raw barista to be off shift", || !server.exists("/barista_group/b1"));
    let barista = zero_brew(&server, "b1").spawn_on_shift();

    let out = run.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::FAILURE); // not every order was served
    let summary = Summary::from_stdout(&out.stdout);
    assert_eq!((summary.count("visits"), summary.count("rejected")), (ORDERS as u64, ORDERS as u64), "{}", summary.line);
    let others: u64 = summary.other_outcomes().iter().filter(|(k, _)| *k != "rejected").map(|(_, n)| n).sum();
    assert_eq!((summary.count("served"), others), (0, 0), "{}", summary.line);
    assert_eq!(summary.per_barista(), BTreeMap::new(), "{}", summary.line);
    assert!(out.stderr.iter().any(|l| l.contains(&format!("{ORDERS} rejected"))), "{out}");

    // Each was rejected by the barista, withdrawn by its customer (before the load ended),
    // and never counted as sold.
    for order in &queued {
        let line = barista.wait_for_stderr(&format!("rejected /orders/b1/{order}: "), LOG_TIMEOUT);
        assert!(line.contains("\"jacob\" is not on the menu (tesora, sogood)"), "{line}");
    }
    assert_eq!(server.children("/orders/b1"), Some(vec![]), "the rejected orders were not withdrawn");
    let status = Status::read(server.connect_string(), None);
    assert_eq!(status.sales_total(), 0);
    assert_eq!(status.on_shift(), ["b1"]);
    let out = barista.stop(EXIT_TIMEOUT);
    assert!(served_orders(&out.stderr).is_empty(), "{out}");
}

/// A zero-brew barista often rejects an order before its customer has started to wait for it:
/// the load generator must still hear of every rejection (it once missed them, and reported
/// the order served when the barista removed it after its grace).
#[test]
fn a_load_hears_of_rejections_that_come_before_its_customers_wait() {
    let server = ZkServer::start();
    server.init_shop();
    let barista = zero_brew(&server, "b1").spawn_on_shift();
    server.cmd(Role::ShopInit).args(["--menu", "tesora,sogood"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    barista.wait_for_stderr("shop menu: tesora, sogood", LOG_TIMEOUT);
    // The barista keeps its last good menu; the load, seeing garbage, falls back to the default
    // menu, so its jacob passes its own check and is rejected by the barista at once.
    server.raw().set_data("/zk-coffee/config", b"garbage".to_vec(), None).expect("overwrite the config");
    barista.wait_for_stderr("keeping the menu I have", LOG_TIMEOUT);
    let n = 200;
    let out = server
        .cmd(Role::Customer)
        .args(["--watch-all-orders", "--orders", &n.to_string(), "--concurrency", "8", "--coffee", "jacob", "--patience", "5"])
        .run(Duration::from_secs(60));
    let summary = Summary::from_stdout(&out.stdout);
    assert_eq!(summary.count("rejected"), n, "every order was rejected: {}", summary.line);
    assert_eq!(summary.count("visits"), n, "{}", summary.line);
    wait_for_empty_buckets(&server);
    assert_eq!(ledger_node(&server.raw(), "b1").map(|(c, _)| c).unwrap_or_default(), BTreeMap::new(), "nothing was sold");
}

/// The load generator's one watch on /orders goes with the session it was set on: after its
/// sessions expired (the process was frozen), orders served later must still reach their
/// customers at once, not when their patience runs out.
#[test]
fn a_load_whose_sessions_expired_still_hears_of_orders_served_afterwards() {
    let server = ZkServer::builder().tick_ms(zk_coffee_tests::fault::TICK_MS).start();
    server.init_shop();
    // A barista of the original program, played by the test: it serves when told.
    let raw = server.raw();
    create(&raw, "/orders/manual", b"", CreateMode::Persistent);
    create(&raw, "/barista_group/manual", b"", CreateMode::Ephemeral);
    let load = server
        .cmd(Role::Customer)
        .args([
            "--watch-all-orders",
            "--orders",
            "4",
            "--concurrency",
            "4",
            "--sessions",
            "2",
            "--session-timeout",
            "1",
            "--patience",
            "60",
        ])
        .spawn();
    wait_until(LOG_TIMEOUT, "the four orders to be queued", || buckets(&server).get("manual").is_some_and(|o| o.len() == 4));
    let ports: Vec<u16> = zk_coffee_tests::fault::tcp_connections(load.pid())
        .iter()
        .filter(|t| t.remote == server.port())
        .map(|t| t.local)
        .collect();
    assert!(!ports.is_empty(), "the load holds connections to the server");

    // Frozen until the server has expired its sessions, then thawed: it makes new sessions and
    // looks at its orders, which are still queued.
    let frozen = zk_coffee_tests::fault::Frozen::freeze(load.pid());
    wait_until(Duration::from_secs(15), "the server to drop the frozen load's sessions", || {
        !zk_coffee_tests::fault::serves_connection_from(server.port(), &ports)
    });
    frozen.thaw();
    load.wait_for_stderr("starting a new session", LOG_TIMEOUT);
    // Give every customer time to have looked at its order on the new sessions (a look only
    // reads; what is tested is what happens after it).
    std::thread::sleep(Duration::from_secs(2));

    let served_at = std::time::Instant::now();
    for order in buckets(&server)["manual"].clone() {
        raw.delete(&format!("/orders/manual/{order}"), None).expect("serve");
    }
    let out = load.wait_exit(Duration::from_secs(30));
    out.assert_code(exit::OK);
    let summary = Summary::from_stdout(&out.stdout);
    assert_eq!(summary.count("served"), 4, "{}", summary.line);
    assert!(served_at.elapsed() < Duration::from_secs(10), "the customers heard only after {:?}", served_at.elapsed());
}
