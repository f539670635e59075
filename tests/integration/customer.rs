//! The customer's side: waiting for a barista to come on shift, leaving on SIGTERM, and a full
//! shop (`--max-queue`).

use zk_coffee_tests::*;

#[test]
fn a_customer_waits_for_a_barista_to_come_on_shift() {
    let server = ZkServer::start();
    server.init_shop();
    let customer = server.cmd(Role::Customer).args(["--coffee", "tesora", "--patience", "20"]).spawn();
    // The customer is waiting once it watches the (empty) group (wchp lists data watches only).
    wait_until(LOG_TIMEOUT, "the customer to watch /barista_group", || {
        // Two: the (empty) group's children, and the closed sign it read before.
        server.mntr().get("zk_watch_count").map(String::as_str) == Some("2")
    });
    assert_eq!(server.tree("/orders"), Vec::<String>::new(), "ordered from nobody?");
    let barista = server.cmd(Role::Barista).args(["--name", "late", "--brew-time", "0.1"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);
    let out = customer.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!((r.outcome.as_str(), r.barista.as_str(), r.coffee.as_str()), ("served", "late", "tesora"));
}

#[test]
fn sigterm_makes_a_waiting_customer_withdraw_its_order() {
    let server = ZkServer::start();
    server.init_shop();
    let mut barista = server.cmd(Role::Barista).args(["--name", "b", "--brew-time", "0.1"]).spawn();
    barista.wait_for_stderr("is on shift", LOG_TIMEOUT);
    barista.signal("STOP"); // busy: the order waits in the bucket
    let mut customer = server.cmd(Role::Customer).args(["--coffee", "jacob", "--patience", "30"]).spawn();
    customer.wait_for_stderr("ordered jacob from b", LOG_TIMEOUT);
    assert_eq!(server.children("/orders/b").map(|c| c.len()), Some(1));
    customer.signal("TERM");
    let out = customer.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::GAVE_UP);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!((r.outcome.as_str(), r.barista.as_str()), ("gave-up", "b"), "{out}");
    assert!(!server.exists(&r.order), "the order was withdrawn");

    // The barista, once it continues, has nothing to make.
    barista.signal("CONT");
    barista.signal("TERM");
    let out = barista.wait_exit(EXIT_TIMEOUT);
    out.assert_code(exit::OK);
    assert!(barista_events(&out.stderr).is_empty(), "made a withdrawn order\n{out}");
}

/// While a customer waits for a barista to come on shift, SIGTERM ends the wait at once: it
/// exits as "gave up" without having placed an order.
#[test]
fn sigterm_ends_a_customer_waiting_for_a_barista() {
    let server = ZkServer::start();
    server.init_shop();
    let mut customer = server.cmd(Role::Customer).args(["--coffee", "tesora", "--patience", "30"]).spawn();
    wait_until(LOG_TIMEOUT, "the customer to watch /barista_group", || {
        // Two: the (empty) group's children, and the closed sign it read before.
        server.mntr().get("zk_watch_count").map(String::as_str) == Some("2")
    });
    customer.signal("TERM");
    // `customer --help`: "SIGINT/SIGTERM withdraws the order and exits as 'gave up'".
    let out = customer.wait_exit(EXIT_TIMEOUT);
    out.assert_within(std::time::Duration::from_secs(10)).assert_code(exit::GAVE_UP);
    assert_eq!(server.tree("/orders"), Vec::<String>::new(), "no order was placed");
}

/// `--max-queue N` (or the shop's `shop-init --max-queue N`): a customer skips queues of N
/// orders or more. With every queue full it orders nothing and exits 9 (`shop-full exit=9`);
/// with one queue below N it orders there.
#[test]
fn a_full_shop_turns_the_customer_away_and_a_short_queue_takes_it() {
    use zookeeper::{Acl, CreateMode};
    let server = ZkServer::start();
    server.init_shop();
    // Two baristas each busy with a long brew, so their queues stay as they are.
    let _slow: Vec<Proc> = ["b1", "b2"]
        .iter()
        .map(|b| server.cmd(Role::Barista).args(["--name", b, "--brew-time", "600"]).spawn_on_shift())
        .collect();
    let raw = server.raw();
    let order = |bucket: &str| {
        raw.create(
            &format!("/orders/{bucket}/coffee"),
            b"jacob".to_vec(),
            Acl::open_unsafe().clone(),
            CreateMode::PersistentSequential,
        )
        .expect("place an order")
    };
    let queue = |bucket: &str| server.children(&format!("/orders/{bucket}")).expect("the bucket").len();
    for bucket in ["b1", "b1", "b2", "b2"] {
        order(bucket);
    }
    let customer = || server.cmd(Role::Customer).args(["--coffee", "tesora", "--max-queue", "2", "--patience", "3"]);

    let out = customer().run(EXIT_TIMEOUT);
    out.assert_code(9);
    assert_eq!(out.single_stdout_line(), "shop-full exit=9", "{out}");
    assert_eq!((queue("b1"), queue("b2")), (2, 2), "the customer turned away placed no order");
    // The same with the shop's own maximum (shop-init --max-queue) instead of the flag.
    server.cmd(Role::ShopInit).args(["--max-queue", "2"]).run(EXIT_TIMEOUT).assert_code(exit::OK);
    let out = server.cmd(Role::Customer).args(["--coffee", "tesora", "--patience", "3"]).run(EXIT_TIMEOUT);
    out.assert_code(9);
    assert_eq!(out.single_stdout_line(), "shop-full exit=9", "{out}");
    assert_eq!((queue("b1"), queue("b2")), (2, 2), "the customer turned away placed no order");

    // One queue below the maximum: the customer orders there (and gives up on the long brew).
    let third = server.cmd(Role::Barista).args(["--name", "b3", "--brew-time", "600"]).spawn_on_shift();
    order("b3");
    let out = customer().run(EXIT_TIMEOUT);
    let r = Receipt::parse(out.single_stdout_line());
    assert_eq!((r.outcome.as_str(), r.barista.as_str()), ("gave-up", "b3"), "{out}");
    out.assert_code(exit::GAVE_UP);
    assert_eq!((queue("b1"), queue("b2"), queue("b3")), (2, 2, 1), "its order was withdrawn");
    drop(third);
}
