//! The seed scene: shop-init, three baristas and six customers as real processes.

use std::collections::{BTreeMap, BTreeSet};

use zk_coffee_tests::*;

#[test]
fn three_baristas_serve_six_customers_and_leave_cleanly_on_sigterm() {
    let server = ZkServer::start();
    let init = server.init_shop();
    // The original roots, then this project's own nodes (under /zk-coffee).
    let shop_nodes = shop_init_report(&init, "created");

    // Baristas with their default names, {hostname}_{pid}.
    let mut baristas: Vec<Proc> = (0..3).map(|_| server.cmd(Role::Barista).args(["--brew-time", "0.2"]).spawn()).collect();
    let mut names = BTreeMap::new(); // name -> index in `baristas`
    for (i, b) in baristas.iter().enumerate() {
        let line = b.wait_for_stderr(" is on shift", LOG_TIMEOUT);
        let name = line.split("barista ").nth(1).and_then(|r| r.split(' ').next()).expect("a name").to_owned();
        assert!(name.ends_with(&format!("_{}", b.pid())), "default name {name:?} is not host_pid");
        names.insert(name, i);
    }
    assert_eq!(names.len(), 3, "three distinct names: {names:?}");

    let customers: Vec<Proc> = (0..6).map(|_| server.cmd(Role::Customer).spawn()).collect();
    let mut receipts = Vec::new();
    for c in customers {
        let out = c.wait_exit(EXIT_TIMEOUT);
        out.assert_code(exit::OK);
        let r = Receipt::parse(out.single_stdout_line());
        assert_eq!(r.outcome, "served", "{out}");
        assert!(names.contains_key(&r.barista), "served by an unknown barista: {r:?}");
        assert_eq!(r.order, format!("/orders/{}/{}", r.barista, r.order_name()), "{r:?}");
        assert!(r.sequence() < 6, "{r:?}");
        assert!(MENU.contains(&r.coffee.as_str()), "{r:?}");
        receipts.push(r);
    }
    let orders: BTreeSet<&str> = receipts.iter().map(|r| r.order.as_str()).collect();
    assert_eq!(orders.len(), 6, "six distinct orders: {receipts:?}");

    // Each barista logs serving what it served (after deleting the order).
    for r in &receipts {
        baristas[names[&r.barista]].wait_for_stderr(&format!("served {} ({})", r.coffee, r.order_name()), LOG_TIMEOUT);
    }

    // The tree: the two roots with data "0", each barista's ephemeral member, empty bucket and
    // sales ledger; no orders, no adoption claims.
    let ledgers: Vec<String> = names.keys().map(|name| format!("/zk-coffee/sales/{name}")).collect();
    let mut expected = shop_nodes.clone();
    expected.extend(ledgers.iter().cloned());
    for name in names.keys() {
        expected.push(format!("/barista_group/{name}"));
        expected.push(format!("/orders/{name}"));
    }
    expected.sort();
    assert_eq!(server.tree_off_rota("/"), expected, "no order nodes left, nothing else");
    let mut rota = server.rota();
    rota.sort();
    assert_eq!(rota, names.keys().cloned().collect::<Vec<String>>(), "each barista has one place on the rota");
    for root in ["/barista_group", "/orders"] {
        let node = server.node(root).expect("root exists");
        assert_eq!(node.data, b"0", "{root}");
        assert!(!node.ephemeral, "{root}");
    }
    for name in names.keys() {
        assert!(server.node(&format!("/barista_group/{name}")).expect("member").ephemeral, "{name}");
        let bucket = server.node(&format!("/orders/{name}")).expect("bucket");
        assert!(!bucket.ephemeral && bucket.num_children == 0, "{name}: {bucket:?}");
    }
    assert_eq!(server.mntr()["zk_ephemerals_count"], "6", "three members and three places on the rota");

    // SIGTERM: each barista leaves the group and exits 0; the empty buckets are removed (by
    // their owner, or by a colleague still on shift that adopted the emptied bucket first).
    for b in &mut baristas {
        b.signal("TERM");
    }
    let outs: Vec<Output> = baristas.into_iter().map(|b| b.wait_exit(EXIT_TIMEOUT)).collect();
    for out in &outs {
        out.assert_code(exit::OK);
        assert!(out.stderr.iter().any(|l| l.contains("left the group")), "{out}");
    }
    // Each order was made and served by the barista the customer named, for the coffee it
    // asked, and by nobody else: six coffees in all.
    for r in &receipts {
        let events = barista_events(&outs[names[&r.barista]].stderr);
        for kind in [Brew::Making, Brew::Served] {
            let event = BaristaEvent { kind, coffee: r.coffee.clone(), order: r.order_name().into(), adopted_from: None };
            assert!(events.contains(&event), "{event:?} not in {events:?}");
        }
    }
    let served: usize = outs.iter().map(|o| served_orders(&o.stderr).len()).sum();
    assert_eq!(served, 6, "the baristas served six coffees in all");
    // The ledgers stay: they are the shop's sales history.
    let mut expected = shop_nodes.clone();
    expected.extend(ledgers);
    expected.sort();
    assert_eq!(server.tree("/"), expected, "members, buckets and claims are gone");
    assert_eq!(server.mntr()["zk_ephemerals_count"], "0");
}
