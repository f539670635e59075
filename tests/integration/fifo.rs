//! A barista serves its bucket in the order the orders were placed (by sequence number), not in
//! the order ZooKeeper happens to list them.

use zookeeper::{Acl, CreateMode};

use zk_coffee_tests::*;

/// The orders a barista made, in log order, checking each `making` is followed by its `served`.
fn made_in_order(stderr: &[String]) -> Vec<String> {
    let events = barista_events(stderr);
    let mut made = Vec::new();
    for pair in events.chunks(2) {
        match pair {
            [m, s] if m.kind == Brew::Making && s.kind == Brew::Served && m.coffee == s.coffee && m.order == s.order => {
                made.push(m.order.clone())
            }
            _ => panic!("expected `making X for O` then `served X (O)`, got {pair:?} in {events:?}"),
        }
    }
    made
}

#[test]
fn orders_queued_before_the_barista_starts_are_served_in_sequence_order() {
    let server = ZkServer::start();
    server.init_shop();
    let zk = server.raw();
    zk.create("/orders/fifo", Vec::new(), Acl::open_unsafe().clone(), CreateMode::Persistent).expect("bucket");
    // Twelve orders, as the original customer placed them; the coffee tells them apart.
    let mut placed = Vec::new();
    for i in 0..12 {
        let coffee = MENU[i % MENU.len()];
        let path = zk
            .create(
                "/orders/fifo/coffee",
                coffee.as_bytes().to_vec(),
                Acl::open_unsafe().clone(),
                CreateMode::PersistentSequential,
            )
            .expect("order");
        placed.push(path.rsplit('/').next().unwrap().to_owned());
    }
    let mut sorted = placed.clone();
    sorted.sort();
    assert_eq!(placed, sorted, "sequence numbers grow in placement order");
    // Precondition that makes the test meaningful: ZooKeeper lists them in another order, so
    // a barista that does not sort would fail below.
    let listed = zk.get_children("/orders/fifo", false).expect("list");
    assert_ne!(listed, placed, "ZooKeeper happened to list the bucket sorted; the test proves nothing");

    let barista = server.cmd(Role::Barista).args(["--name", "fifo", "--brew-time", "0.05"]).spawn();
    wait_until(EXIT_TIMEOUT, "the bucket to be empty", || server.children("/orders/fifo") == Some(vec![]));
    // The log line follows the deletion: wait for the last one.
    barista.wait_for_stderr(&format!("served {} ({})", MENU[11 % MENU.len()], placed[11]), LOG_TIMEOUT);
    let out = barista.stop(EXIT_TIMEOUT);
    let made = made_in_order(&out.stderr);
    assert_eq!(made, placed, "served in placement order");
    for (i, e) in barista_events(&out.stderr).iter().filter(|e| e.kind == Brew::Served).enumerate() {
        assert_eq!(e.coffee, MENU[i % MENU.len()], "made the coffee that was ordered");
    }
}

#[test]
fn customers_ordering_while_the_barista_is_busy_are_served_first_come_first_served() {
    let server = ZkServer::start();
    server.init_shop();
    let mut barista = server.cmd(Role::Barista).args(["--name", "slow", "--brew-time", "0.3"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);

    // The first customer makes the barista busy; SIGSTOP keeps it busy (deterministically)
    // while the others order one after another, each starting once the previous one has
    // placed its order.
    let first = server.cmd(Role::Customer).args(["--coffee", "tesora"]).spawn();
    barista.wait_for_stderr("making tesora for", LOG_TIMEOUT);
    barista.signal("STOP");
    let mut customers = vec![first];
    for coffee in ["swisswater", "jacob", "sogood", "jacob"] {
        let c = server.cmd(Role::Customer).args(["--coffee", coffee, "--barista", "slow"]).spawn();
        c.wait_for_stderr("ordered ", LOG_TIMEOUT);
        customers.push(c);
    }
    // The four later orders wait in the bucket (with the first, unless it was served just
    // before the barista stopped).
    let queued = server.children("/orders/slow").expect("bucket").len();
    assert!((4..=5).contains(&queued), "{queued} orders in the bucket");
    barista.signal("CONT");

    let mut receipts = Vec::new();
    for c in customers {
        let out = c.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        let r = Receipt::parse(out.single_stdout_line());
        assert_eq!((r.outcome.as_str(), r.barista.as_str()), ("served", "slow"), "{out}");
        receipts.push(r);
    }
    let placed: Vec<String> = receipts.iter().map(|r| r.order_name().to_owned()).collect();
    let mut sorted = placed.clone();
    sorted.sort();
    assert_eq!(placed, sorted, "customers placed their orders one after another");
    barista.wait_for_stderr(&format!("({})", placed[4]), LOG_TIMEOUT);
    let out = barista.stop(EXIT_TIMEOUT);
    assert_eq!(made_in_order(&out.stderr), placed, "served in placement order");
    let coffees: Vec<&str> = receipts.iter().map(|r| r.coffee.as_str()).collect();
    assert_eq!(coffees, ["tesora", "swisswater", "jacob", "sogood", "jacob"]);
}
